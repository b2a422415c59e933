import { useId, useState } from 'react';
import { api, ApiError, type SsoView } from '../../api';
import { BusyButton, ErrorAlert, Field, useAnnounce } from '../../components/ui';
import { useI18n } from '../../i18n';

export function CertificatesPanel({ sso, domain, canWrite, onSaved }: { sso: SsoView; domain: string; canWrite: boolean; onSaved: (sso: SsoView) => void }) {
  const { t, formatDate } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [pem, setPem] = useState('');
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [problem, setProblem] = useState<string | undefined>();
  const pems = sso.saml?.idpCertificates ?? [];

  const save = async (certs: string[], what: string) => {
    setBusy(what);
    setError(null);
    setProblem(undefined);
    try {
      const result = await api.patchSso(domain, { saml: { idpCertificates: certs } });
      if (result.sso) onSaved(result.sso);
      setPem('');
      announce(t('common.saved'));
    } catch (err) {
      if (err instanceof ApiError) setProblem(err.fieldProblems.find((p) => p.path.startsWith('saml.idpCertificates'))?.message);
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{t('certs.title')}</h2>
      {sso.certificates.length === 0 ? (
        <p className="empty-inline">{t('certs.none')}</p>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="certificates">
            <thead>
              <tr>
                <th scope="col">{t('certs.subject')}</th>
                <th scope="col">{t('certs.fingerprint')}</th>
                <th scope="col">{t('certs.expires')}</th>
                <th scope="col">{t('certs.state')}</th>
                <th scope="col">
                  <span className="visually-hidden">{t('common.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {sso.certificates.map((c) => (
                <tr key={c.index} data-expired={c.expired || undefined} data-expires-soon={c.expiresSoon || undefined}>
                  <td>
                    {c.subject}
                    <br />
                    <span className="hint">{t('certs.issuer', { issuer: c.issuer })}</span>
                  </td>
                  <td>
                    <code className="fingerprint">{c.fingerprintSha256}</code>
                  </td>
                  <td>{formatDate(c.notAfter)}</td>
                  <td>
                    <span className={`badge ${c.expired ? 'badge-bad' : c.expiresSoon ? 'badge-warn' : 'badge-on'}`}>
                      {c.expired ? t('certs.expired') : c.expiresSoon ? t('certs.expiresSoon') : t('certs.valid')}
                    </span>
                  </td>
                  <td>
                    <BusyButton
                      kind="secondary"
                      busy={busy === `remove-${c.index}`}
                      label={t('certs.remove')}
                      disabled={!canWrite || busy !== null}
                      onClick={() => void save(pems.filter((_, i) => i !== c.index), `remove-${c.index}`)}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (!pem.includes('BEGIN CERTIFICATE')) {
            setProblem(t('certs.pemInvalid'));
            return;
          }
          void save([...pems, pem.trim()], 'add');
        }}
      >
        <Field label={t('certs.add')} hint={t('certs.addHint')} error={problem}>
          {(props) => <textarea {...props} rows={4} value={pem} disabled={!canWrite || pems.length >= 2} onChange={(e) => setPem(e.target.value)} spellCheck={false} className="mono" />}
        </Field>
        <ErrorAlert error={error} />
        <BusyButton type="submit" kind="secondary" busy={busy === 'add'} label={t('certs.addButton')} disabled={!canWrite || pems.length >= 2 || busy !== null} />
        {pems.length >= 2 ? <p className="hint">{t('certs.max')}</p> : null}
      </form>
    </section>
  );
}
