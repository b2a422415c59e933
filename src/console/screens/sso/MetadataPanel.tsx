import { useId, useState } from 'react';
import { api, type MetadataImport } from '../../api';
import { BusyButton, ErrorAlert, Field, useAnnounce } from '../../components/ui';
import { useI18n } from '../../i18n';

export function MetadataPanel({ domain, canWrite, onImported }: { domain: string; canWrite: boolean; onImported: () => Promise<void> }) {
  const { t } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [source, setSource] = useState<'file' | 'url'>('url');
  const [url, setUrl] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<MetadataImport | null>(null);
  const [invalid, setInvalid] = useState(false);

  const submit = async () => {
    setError(null);
    setResult(null);
    if (source === 'url' && !/^https?:\/\/\S+$/.test(url.trim())) {
      setInvalid(true);
      return;
    }
    if (source === 'file' && !file) {
      setInvalid(true);
      return;
    }
    setBusy(true);
    try {
      const r = source === 'url' ? await api.importMetadataUrl(domain, url.trim()) : await api.importMetadataXml(domain, await file!.text());
      setResult(r);
      announce(t('metadata.imported'));
      await onImported();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{t('metadata.title')}</h2>
      <p className="hint">{t('metadata.intro')}</p>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
        data-testid="metadata-form"
      >
        <fieldset className="radios" disabled={!canWrite}>
          <legend>{t('metadata.source')}</legend>
          <div className="radio">
            <input id={`${id}-url`} type="radio" name="source" checked={source === 'url'} onChange={() => (setSource('url'), setInvalid(false))} data-testid="metadata-source-url" />
            <label htmlFor={`${id}-url`}>{t('metadata.fromUrl')}</label>
          </div>
          <div className="radio">
            <input id={`${id}-file`} type="radio" name="source" checked={source === 'file'} onChange={() => (setSource('file'), setInvalid(false))} data-testid="metadata-source-file" />
            <label htmlFor={`${id}-file`}>{t('metadata.fromFile')}</label>
          </div>
        </fieldset>
        {source === 'url' ? (
          <Field label={t('metadata.url')} hint={t('metadata.urlHint')} error={invalid ? t('metadata.urlInvalid') : undefined}>
            {(props) => (
              <input
                {...props}
                type="url"
                value={url}
                disabled={!canWrite}
                data-testid="metadata-url"
                spellCheck={false}
                onChange={(e) => {
                  setUrl(e.target.value);
                  setInvalid(false);
                }}
              />
            )}
          </Field>
        ) : (
          <Field label={t('metadata.file')} error={invalid ? t('metadata.fileMissing') : undefined}>
            {(props) => (
              <input
                {...props}
                type="file"
                accept=".xml,application/xml,text/xml,application/samlmetadata+xml"
                disabled={!canWrite}
                data-testid="metadata-file"
                onChange={(e) => {
                  setFile(e.target.files?.[0] ?? null);
                  setInvalid(false);
                }}
              />
            )}
          </Field>
        )}
        <ErrorAlert error={error} />
        {result ? (
          <div className="alert alert-success" data-testid="metadata-result">
            <p className="alert-title">{t('metadata.imported')}</p>
            <dl className="facts">
              <dt>{t('sso.field.idpEntityId')}</dt>
              <dd>
                <code>{result.entityId}</code>
              </dd>
              <dt>{t('sso.field.samlLoginUrl')}</dt>
              <dd>
                <code>{result.ssoUrl}</code>
              </dd>
              <dt>{t('metadata.certificates')}</dt>
              <dd>{result.certificates}</dd>
            </dl>
            {result.warnings.map((w) => (
              <p className="note note-warn" key={w}>
                {w}
              </p>
            ))}
          </div>
        ) : null}
        <div className="actions">
          <BusyButton type="submit" busy={busy} busyLabel={t('metadata.importing')} label={t('metadata.import')} disabled={!canWrite} testId="metadata-import" />
        </div>
      </form>
    </section>
  );
}
