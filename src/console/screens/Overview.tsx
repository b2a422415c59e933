import { useEffect, useState } from 'react';
import { api, type SsoView, type Tenant } from '../api';
import type { ScreenProps } from '../App';
import { CopyButton, ErrorAlert, Loading } from '../components/ui';
import { useI18n, type MessageKey } from '../i18n';
import { hrefOf, type Route } from '../router';

export function protocolKey(sso: Pick<SsoView, 'type' | 'oauth'>): MessageKey {
  return sso.type === 'saml' ? 'sso.protocol.saml' : sso.oauth?.profile === 'oidc' ? 'sso.protocol.oidc' : 'sso.protocol.works';
}

export function OverviewScreen({ domain, navigate, session }: ScreenProps) {
  const { t, formatNumber } = useI18n();
  const [data, setData] = useState<{ tenant: Tenant; sso: SsoView; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    let live = true;
    Promise.all([api.tenant(domain), api.sso(domain), api.members(domain, { count: 1 })])
      .then(([tenant, sso, page]) => live && setData({ tenant, sso, total: page.total }))
      .catch((err: unknown) => live && setError(err));
    return () => {
      live = false;
    };
  }, [domain]);

  const link = (route: Route, key: MessageKey) => (
    <a
      className="quick-link"
      href={hrefOf(route)}
      onClick={(e) => {
        e.preventDefault();
        navigate(route);
      }}
    >
      {t(key)}
    </a>
  );

  return (
    <>
      <h1 tabIndex={-1}>{t('overview.title')}</h1>
      <ErrorAlert error={error} />
      {!data && !error ? <Loading /> : null}
      {data ? (
        <>
          <div className="cards">
            <section className="card" aria-labelledby="ov-tenant">
              <h2 id="ov-tenant">{t('overview.tenant')}</h2>
              <p className="big" data-testid="overview-tenant-name">
                {data.tenant.name}
              </p>
              <dl className="facts">
                <dt>{t('overview.domain')}</dt>
                <dd>{data.tenant.domain}</dd>
                <dt>{t('overview.plan')}</dt>
                <dd>{t(`plan.${data.tenant.plan}` as MessageKey)}</dd>
              </dl>
            </section>
            <section className="card" aria-labelledby="ov-sso">
              <h2 id="ov-sso">{t('overview.sso')}</h2>
              <p className="big">
                <span className={`badge ${data.sso.enabled ? 'badge-on' : 'badge-off'}`} data-testid="overview-sso-state">
                  {data.sso.enabled ? t('sso.state.on') : t('sso.state.off')}
                </span>
              </p>
              <dl className="facts">
                <dt>{t('sso.protocol')}</dt>
                <dd>{t(protocolKey(data.sso))}</dd>
              </dl>
              {data.sso.switchInProgress && !data.sso.switchInProgress.running ? <p className="note note-warn">{t('sso.resume.banner')}</p> : null}
            </section>
            <section className="card" aria-labelledby="ov-members">
              <h2 id="ov-members">{t('overview.members')}</h2>
              <p className="big" data-testid="overview-member-count">
                {formatNumber(data.total)}
              </p>
            </section>
          </div>
          <section className="panel" aria-labelledby="ov-direct">
            <h2 id="ov-direct">{t('sp.directLoginUrl')}</h2>
            <p className="hint">{t('overview.directHint')}</p>
            <p className="copy-row">
              <code>{data.sso.sp.directLoginUrl}</code>
              <CopyButton value={data.sso.sp.directLoginUrl} what={t('sp.directLoginUrl')} />
            </p>
          </section>
          <section className="panel" aria-labelledby="ov-links">
            <h2 id="ov-links">{t('overview.quickLinks')}</h2>
            <ul className="quick-links">
              <li>{link('sso', 'overview.link.sso')}</li>
              <li>{link('members', 'overview.link.members')}</li>
              <li>{link('external-keys', 'overview.link.externalKeys')}</li>
              {session.permissions.super ? <li>{link('api-keys', 'overview.link.apiKeys')}</li> : null}
            </ul>
          </section>
        </>
      ) : null}
    </>
  );
}
