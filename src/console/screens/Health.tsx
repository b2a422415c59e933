import { useCallback, useEffect, useState } from 'react';
import { operatorApi, type Health } from '../api-operator';
import type { ScreenProps } from '../App';
import { ErrorAlert, Loading, usePolling } from '../components/ui';
import { useI18n, type MessageKey } from '../i18n';

/** Health at a glance for the operator: four cards, refreshed every 30 s. */
export function HealthScreen({ navigate, onOpenDomain }: ScreenProps & { onOpenDomain: (domain: string) => void }) {
  const { t, formatDate, formatNumber } = useI18n();
  const [health, setHealth] = useState<Health | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      setHealth(await operatorApi.health());
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  usePolling(load, 30_000, true);

  const open = (domain: string, route: 'sso' | 'external-keys') => {
    onOpenDomain(domain);
    navigate(route);
  };

  return (
    <>
      <h1 tabIndex={-1}>{t('health.title')}</h1>
      <p className="lead">{t('health.intro')}</p>
      <ErrorAlert error={error} />
      {!health && !error ? <Loading /> : null}
      {health ? (
        <>
          <p data-testid="health-status">
            <span className={`badge ${health.status === 'ok' ? 'badge-on' : 'badge-bad'}`}>{health.status === 'ok' ? t('health.ok') : t('health.degraded')}</span>{' '}
            <span className="hint">{t('health.checkedAt', { at: formatDate(health.checkedAt) })}</span>
          </p>
          <div className="cards">
            <section className="card" aria-labelledby="health-store" data-testid="health-store">
              <h2 id="health-store">{t('health.store')}</h2>
              <p className="big">
                <span className={`badge ${health.store.status === 'ok' ? 'badge-on' : 'badge-bad'}`}>{health.store.status === 'ok' ? t('health.reachable') : t('health.unreachable')}</span>
              </p>
              <dl className="facts">
                <dt>{t('health.mode')}</dt>
                <dd>{t(`health.mode.${health.store.mode}` as MessageKey)}</dd>
                <dt>{t('health.latency')}</dt>
                <dd>{health.store.latencyMs === null ? '—' : `${health.store.latencyMs} ms`}</dd>
              </dl>
            </section>
            <section className="card" aria-labelledby="health-workers" data-testid="health-workers">
              <h2 id="health-workers">{t('health.workers')}</h2>
              <p className="big" data-testid="health-workers-serving">
                {formatNumber(health.workers.serving)}
              </p>
              <p className="hint">{t('health.workersHint', { seconds: health.workers.heartbeatSeconds })}</p>
            </section>
            <section className="card" aria-labelledby="health-certs" data-testid="health-certs">
              <h2 id="health-certs">{t('health.certificates')}</h2>
              <p className="big">{formatNumber(health.certificates.expiring.length)}</p>
              {health.certificates.expiring.length === 0 ? (
                <p className="hint">{t('health.noCertificates', { days: health.certificates.withinDays })}</p>
              ) : (
                <ul className="plain-list">
                  {health.certificates.expiring.map((c) => (
                    <li key={`${c.domain}-${c.index}`}>
                      <a
                        href="/console/sso"
                        onClick={(e) => {
                          e.preventDefault();
                          open(c.domain, 'sso');
                        }}
                      >
                        {c.domain}
                      </a>{' '}
                      {c.expired ? <span className="badge badge-bad">{t('health.expired')}</span> : t('health.daysLeft', { days: c.daysLeft })} <span className="hint">{formatDate(c.notAfter)}</span>
                    </li>
                  ))}
                </ul>
              )}
            </section>
            <section className="card" aria-labelledby="health-runs" data-testid="health-runs">
              <h2 id="health-runs">{t('health.runs')}</h2>
              <p className="big">{formatNumber(health.resumableRuns.length)}</p>
              {health.resumableRuns.length === 0 ? (
                <p className="hint">{t('health.noRuns')}</p>
              ) : (
                <ul className="plain-list">
                  {health.resumableRuns.map((r) => (
                    <li key={`${r.domain}-${r.kind}`}>
                      <a
                        href={r.kind === 'sso_switch' ? '/console/sso' : '/console/external-keys'}
                        onClick={(e) => {
                          e.preventDefault();
                          open(r.domain, r.kind === 'sso_switch' ? 'sso' : 'external-keys');
                        }}
                      >
                        {r.domain}
                      </a>{' '}
                      {r.kind === 'sso_switch' ? t('health.run.switch') : t('health.run.import')} <span className="hint">{formatDate(r.startedAt)}</span>
                    </li>
                  ))}
                </ul>
              )}
            </section>
          </div>
          {health.truncated ? <p className="note">{t('health.truncated', { count: formatNumber(health.tenantsChecked) })}</p> : null}
        </>
      ) : null}
    </>
  );
}
