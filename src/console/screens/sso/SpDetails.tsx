import { api, type SsoView } from '../../api';
import { CopyButton } from '../../components/ui';
import { useI18n, type MessageKey } from '../../i18n';

export function SpPanel({ sso, domain }: { sso: SsoView; domain: string }) {
  const { t } = useI18n();
  const rows: Array<[MessageKey, string, string]> = [
    ['sp.entityId', sso.sp.entityId, 'sp-entity-id'],
    ['sp.acsUrl', sso.sp.acsUrl, 'sp-acs-url'],
    ['sp.sloUrl', sso.sp.sloUrl, 'sp-slo-url'],
    ['sp.metadataUrl', sso.sp.metadataUrl, 'sp-metadata-url'],
    ['sp.directLoginUrl', sso.sp.directLoginUrl, 'sp-direct-login-url'],
  ];
  return (
    <section className="panel" aria-labelledby="sp-h">
      <h2 id="sp-h">{t('sp.title')}</h2>
      <p className="hint">{t('sp.intro')}</p>
      <dl className="sp-list">
        {rows.map(([label, value, testId]) => (
          <div className="sp-row" key={testId}>
            <dt>{t(label)}</dt>
            <dd>
              <code data-testid={testId}>{value}</code>
              <CopyButton value={value} what={t(label)} testId={`copy-${testId}`} />
            </dd>
          </div>
        ))}
      </dl>
      <p className="actions">
        <a className="button button-secondary" href={sso.sp.metadataUrl} download data-testid="sp-metadata-download">
          {t('sp.downloadMetadata')}
        </a>
        {sso.sp.certificateUrl ? (
          <a className="button button-secondary" href={api.spCertificateUrl(domain)} download data-testid="sp-certificate-download">
            {t('sp.downloadCertificate')}
          </a>
        ) : (
          <span className="hint">{t('sp.noCertificate')}</span>
        )}
      </p>
    </section>
  );
}
