import { useId, useState } from 'react';
import { mdmApi, type MdmPreview, type MdmPutBody } from '../../api-mdm';
import { BusyButton, ConfirmDialog, ErrorAlert, PermissionNote, useAnnounce } from '../../components/ui';
import { useI18n } from '../../i18n';
import type { MdmPartProps } from './index';
import { ValueChoice, valueReady } from './shared';

/** Switching third-party MDM sync on (value choice, then the precautions dialog with the preview's counts) or off. */
export function SyncSwitch({ domain, data, canSuper, reload, onIssued }: MdmPartProps) {
  const { t } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const on = data.settings.mode === 'external';
  const [custom, setCustom] = useState(false);
  const [value, setValue] = useState('');
  const [body, setBody] = useState<MdmPutBody | null>(null);
  const [preview, setPreview] = useState<MdmPreview | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const open = async (next: MdmPutBody) => {
    setError(null);
    setBusy(true);
    try {
      setPreview(await mdmApi.preview(domain, next));
      setBody(next);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const confirm = async () => {
    if (!body) return;
    setBusy(true);
    setError(null);
    try {
      const result = await mdmApi.put(domain, body);
      if (result.key) onIssued(result.key);
      setBody(null);
      setPreview(null);
      setValue('');
      announce(body.mode === 'external' ? t('mdm.enabled') : t('mdm.disabled'));
      await reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const items = preview
    ? [
        preview.issuesKey ? t('mdm.precautions.sessions', { count: preview.mobileSessionsEnded }) : null,
        preview.issuesKey ? t('mdm.precautions.appNeedsKey') : null,
        preview.mode === 'external' && preview.previousMode !== 'external' ? t('mdm.precautions.builtin', { count: preview.builtinExceptionsDeleted }) : null,
        preview.keysReplaced > 0 ? t('mdm.precautions.replaced', { count: preview.keysReplaced }) : null,
        preview.keysDeactivated > 0 ? t('mdm.precautions.deactivated', { count: preview.keysDeactivated }) : null,
        preview.mode !== 'external' ? t('mdm.precautions.sessionsStay') : null,
      ].filter((x): x is string => x !== null)
    : [];

  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{t('mdm.sync.title')}</h2>
      <p>
        <span className={`badge ${on ? 'badge-on' : 'badge-off'}`} data-testid="mdm-sync-state">
          {on ? t('mdm.sync.on') : t('mdm.sync.off')}
        </span>
      </p>
      {!on ? (
        <>
          <ValueChoice rules={data.settings.rules} custom={custom} value={value} onCustom={setCustom} onValue={setValue} disabled={!canSuper} testId="mdm-enable" />
          <BusyButton
            busy={busy && !body}
            label={t('mdm.sync.enable')}
            disabled={!canSuper || !valueReady(t, custom, value, data.settings.rules)}
            describedBy={canSuper ? undefined : `${id}-perm`}
            onClick={() => void open({ mode: 'external', ...(custom ? { customKey: value } : {}) })}
            testId="mdm-enable"
          />
        </>
      ) : (
        <BusyButton
          busy={busy && !body}
          kind="secondary"
          label={t('mdm.sync.disable')}
          disabled={!canSuper}
          describedBy={canSuper ? undefined : `${id}-perm`}
          onClick={() => void open({ mode: 'none' })}
          testId="mdm-disable"
        />
      )}
      <PermissionNote id={`${id}-perm`} allowed={canSuper} need="super" />
      {!body ? <ErrorAlert error={error} /> : null}
      <ConfirmDialog
        open={body !== null}
        title={body?.mode === 'external' ? t('mdm.precautions.title') : t('mdm.precautions.offTitle')}
        body={
          <>
            <p>{t('mdm.precautions.lead')}</p>
            <ul data-testid="mdm-precautions">
              {items.map((item) => (
                <li key={item}>{item}</li>
              ))}
            </ul>
          </>
        }
        confirmLabel={body?.mode === 'external' ? t('mdm.sync.enableConfirm') : t('mdm.sync.disableConfirm')}
        danger
        busy={busy}
        error={error}
        onConfirm={() => void confirm()}
        onClose={() => {
          setBody(null);
          setPreview(null);
        }}
        testId="mdm-precautions-dialog"
      />
    </section>
  );
}

/** M-7: restricting other-domain accounts, with the four device behaviours in plain words. */
export function RestrictOtherDomains({ domain, data, canSuper, reload }: MdmPartProps) {
  const { t } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [checked, setChecked] = useState(data.settings.restrictOtherDomains);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      await mdmApi.put(domain, { mode: 'external', restrictOtherDomains: checked });
      announce(t('common.saved'));
      await reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{t('mdm.restrict.title')}</h2>
      <div className="check">
        <input id={`${id}-c`} type="checkbox" checked={checked} disabled={!canSuper} onChange={(e) => setChecked(e.target.checked)} data-testid="mdm-restrict" />
        <label htmlFor={`${id}-c`}>{t('mdm.restrict.label')}</label>
      </div>
      <p>{t('mdm.restrict.lead')}</p>
      <ol data-testid="mdm-restrict-behaviours">
        <li>{t('mdm.restrict.a')}</li>
        <li>{t('mdm.restrict.b')}</li>
        <li>{t('mdm.restrict.c')}</li>
        <li>{t('mdm.restrict.d')}</li>
      </ol>
      <p className="note">{t('mdm.restrict.unique')}</p>
      <ErrorAlert error={error} />
      <BusyButton busy={busy} label={t('common.save')} disabled={!canSuper || checked === data.settings.restrictOtherDomains} describedBy={canSuper ? undefined : `${id}-perm`} onClick={() => void save()} testId="mdm-restrict-save" />
      <PermissionNote id={`${id}-perm`} allowed={canSuper} need="super" />
    </section>
  );
}
