import { useId, useState } from 'react';
import { mdmApi, type IssuedKey } from '../../api-mdm';
import { BusyButton, CopyButton, ErrorAlert, PermissionNote } from '../../components/ui';
import { useI18n } from '../../i18n';
import type { MdmPartProps } from './index';

/** M-3: what to paste into the MDM's managed app configuration: key name, type and value, each with a copy button. */
export function ManagedConfig({ domain, data, canSuper, issued }: MdmPartProps & { issued: IssuedKey | null }) {
  const { t } = useI18n();
  const id = useId();
  const [revealed, setRevealed] = useState<IssuedKey | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  // The key to distribute: the newest one that admits now, else the newest active (scheduled) one.
  const active = data.keys.filter((k) => k.status === 'active');
  const current = active.find((k) => k.admitting) ?? active[0] ?? null;
  const shown = issued && data.keys.some((k) => k.id === issued.id && k.status === 'active') ? issued : revealed && revealed.id === current?.id ? revealed : null;

  const reveal = async () => {
    if (!current) return;
    setBusy(true);
    setError(null);
    try {
      setRevealed(await mdmApi.reveal(domain, current.id));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby={`${id}-h`} data-testid="mdm-managed-config">
      <h2 id={`${id}-h`}>{t('mdm.config.title')}</h2>
      <p>{t('mdm.config.lead')}</p>
      <div className="table-wrap">
        <table className="table">
          <caption className="visually-hidden">{t('mdm.config.title')}</caption>
          <tbody>
            <tr>
              <th scope="row">{t('mdm.config.keyName')}</th>
              <td>
                <span className="copy-row">
                  <code data-testid="mdm-config-key">{data.settings.configKey}</code>
                  <CopyButton value={data.settings.configKey} what={t('mdm.config.keyName')} testId="mdm-copy-key" />
                </span>
              </td>
            </tr>
            <tr>
              <th scope="row">{t('mdm.config.type')}</th>
              <td>
                <span className="copy-row">
                  <code data-testid="mdm-config-type">{data.settings.valueType}</code>
                  <CopyButton value={data.settings.valueType} what={t('mdm.config.type')} testId="mdm-copy-type" />
                </span>
              </td>
            </tr>
            <tr>
              <th scope="row">{t('mdm.config.value')}</th>
              <td>
                {shown ? (
                  <span className="copy-row">
                    <code data-testid="mdm-config-value">{shown.value}</code>
                    <CopyButton value={shown.value} what={t('mdm.config.value')} testId="mdm-copy-value" />
                  </span>
                ) : current ? (
                  <>
                    <code>{current.masked}</code>{' '}
                    <BusyButton busy={busy} kind="secondary" label={t('mdm.config.reveal')} disabled={!canSuper} describedBy={canSuper ? undefined : `${id}-perm`} onClick={() => void reveal()} testId="mdm-reveal" />
                  </>
                ) : (
                  t('mdm.config.noKey')
                )}
              </td>
            </tr>
          </tbody>
        </table>
      </div>
      {shown ? <p className="note">{t('mdm.config.secret')}</p> : null}
      <p className="note">{t('mdm.config.revealAudited')}</p>
      <PermissionNote id={`${id}-perm`} allowed={canSuper} need="super" />
      <ErrorAlert error={error} />
    </section>
  );
}
