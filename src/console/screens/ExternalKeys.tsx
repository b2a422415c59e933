import type { ScreenProps } from '../App';
import { api } from '../api';
import { CsvUpload } from '../components/CsvUpload';
import { useI18n } from '../i18n';

export function ExternalKeysScreen({ domain, session }: ScreenProps) {
  const { t, formatNumber } = useI18n();
  return (
    <>
      <h1 tabIndex={-1}>{t('ek.title')}</h1>
      <p className="lead">{t('ek.intro')}</p>
      <section className="panel" aria-labelledby="ek-download">
        <h2 id="ek-download">{t('ek.downloadTitle')}</h2>
        <p className="hint">{t('ek.downloadHint')}</p>
        <a className="button button-secondary" href={api.externalKeysCsvUrl(domain)} download data-testid="external-keys-download">
          {t('ek.download')}
        </a>
      </section>
      <section className="panel" aria-labelledby="ek-upload">
        <h2 id="ek-upload">{t('ek.uploadTitle')}</h2>
        <p className="hint">{t('ek.uploadHint')}</p>
        <CsvUpload
          label={t('ek.file')}
          submitLabel={t('ek.upload')}
          reportName={`external-keys-errors-${domain}.csv`}
          allowed={session.permissions.write}
          send={(file, onProgress) => api.uploadExternalKeysCsv(domain, file, onProgress)}
          renderSuccess={(r) => (
            <>
              <p className="alert-title">{t('ek.done')}</p>
              <ul data-testid="external-keys-summary">
                <li data-count="updated">{t('ek.updated', { count: formatNumber(r.updated) })}</li>
                <li data-count="removed">{t('ek.removed', { count: formatNumber(r.removed) })}</li>
                <li data-count="unchanged">{t('ek.unchanged', { count: formatNumber(r.unchanged) })}</li>
              </ul>
            </>
          )}
          testId="external-keys-csv"
        />
      </section>
    </>
  );
}
