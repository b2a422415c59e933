import { useId, useState } from 'react';
import { mdmApi, type MdmKey } from '../../api-mdm';
import { BusyButton, ConfirmDialog, ErrorAlert, Field, PermissionNote, useAnnounce } from '../../components/ui';
import { useI18n, type Translate } from '../../i18n';
import type { MdmPartProps } from './index';
import { ValueChoice, valueReady } from './shared';

const GRACE_CHOICES = [0, 3600, 86_400, 7 * 86_400] as const;

function statusOf(t: Translate, k: MdmKey, formatDate: (iso: string | null) => string): { label: string; badge: string } {
  if (k.status === 'revoked') return { label: t('mdm.keys.revoked'), badge: 'badge-off' };
  if (k.status === 'inactive') return { label: t('mdm.keys.inactive'), badge: 'badge-off' };
  if (!k.admitting) return { label: t('mdm.keys.scheduled'), badge: 'badge-warn' };
  if (k.graceUntil) return { label: t('mdm.keys.inGrace', { until: formatDate(k.graceUntil) }), badge: 'badge-warn' };
  return { label: t('mdm.keys.admitting'), badge: 'badge-on' };
}

/** Midnight (local time) of a yyyy-mm-dd date, as ISO 8601; today or empty → now. */
function effectiveIso(day: string): string | undefined {
  if (!day) return undefined;
  const at = new Date(`${day}T00:00:00`);
  return at.getTime() <= Date.now() ? undefined : at.toISOString();
}

/** M-11 … M-14: the keys with their dates and sessions; add, reissue, revoke — each confirmed with who is signed out. */
export function KeyList({ domain, data, canSuper, reload, onIssued }: MdmPartProps) {
  const { t, formatDate, formatNumber } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const rules = data.settings.rules;
  const active = data.keys.filter((k) => k.status === 'active');
  const [custom, setCustom] = useState(false);
  const [value, setValue] = useState('');
  const [day, setDay] = useState('');
  const [grace, setGrace] = useState<number>(0);
  const [dialog, setDialog] = useState<{ kind: 'add' } | { kind: 'reissue' } | { kind: 'revoke'; key: MdmKey } | null>(null);
  const [replacement, setReplacement] = useState('new');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const run = async (work: () => Promise<string>) => {
    setBusy(true);
    setError(null);
    try {
      announce(await work());
      setDialog(null);
      setValue('');
      await reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const sessionsOf = (keys: MdmKey[]) => keys.reduce((n, k) => n + k.liveSessions, 0);
  const revokeKey = dialog?.kind === 'revoke' ? dialog.key : null;
  const othersAdmitting = revokeKey ? active.some((k) => k.id !== revokeKey.id && k.admitting) : true;
  const successors = revokeKey ? active.filter((k) => k.id !== revokeKey.id) : [];

  const confirmBody = (): string => {
    if (!dialog) return '';
    if (dialog.kind === 'add') return effectiveIso(day) ? t('mdm.keys.addLater', { date: formatDate(effectiveIso(day)) }) : t('mdm.keys.addNow');
    if (dialog.kind === 'reissue') {
      const n = sessionsOf(active);
      return grace > 0 ? t('mdm.keys.reissueGrace', { count: n, hours: grace / 3600 }) : t('mdm.keys.reissueNow', { count: n });
    }
    return t('mdm.keys.revokeBody', { count: dialog.key.liveSessions, key: dialog.key.masked });
  };
  const onConfirm = () => {
    if (!dialog) return;
    if (dialog.kind === 'add') {
      void run(async () => {
        const added = await mdmApi.addKey(domain, { ...(custom ? { value } : {}), ...(effectiveIso(day) ? { effectiveFrom: effectiveIso(day) } : {}) });
        onIssued(added);
        return t('mdm.keys.added');
      });
    } else if (dialog.kind === 'reissue') {
      void run(async () => {
        const r = await mdmApi.reissue(domain, { ...(grace > 0 ? { graceSeconds: grace } : {}), ...(custom ? { value } : {}) });
        onIssued(r);
        return t('mdm.keys.reissued', { count: r.mobileSessionsEnded });
      });
    } else {
      const key = dialog.key;
      void run(async () => {
        const r = await mdmApi.revoke(domain, key.id, othersAdmitting ? undefined : replacement);
        if (r.replacement) onIssued(r.replacement);
        return t('mdm.keys.revokedDone', { count: r.mobileSessionsEnded });
      });
    }
  };

  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{t('mdm.keys.title')}</h2>
      <p>{t('mdm.keys.lead', { max: rules.maxActiveKeys })}</p>
      <div className="table-wrap">
        <table className="table" data-testid="mdm-keys-table">
          <caption className="visually-hidden">{t('mdm.keys.title')}</caption>
          <thead>
            <tr>
              <th scope="col">{t('mdm.keys.key')}</th>
              <th scope="col">{t('mdm.keys.status')}</th>
              <th scope="col">{t('mdm.keys.created')}</th>
              <th scope="col">{t('mdm.keys.effectiveFrom')}</th>
              <th scope="col">{t('mdm.keys.lastPresented')}</th>
              <th scope="col">{t('mdm.keys.liveSessions')}</th>
              <th scope="col">{t('common.actions')}</th>
            </tr>
          </thead>
          <tbody>
            {data.keys.map((k) => {
              const s = statusOf(t, k, formatDate);
              return (
                <tr key={k.id} data-testid="mdm-key-row" data-key-id={k.id}>
                  <td>
                    <code>{k.masked}</code>
                  </td>
                  <td>
                    <span className={`badge ${s.badge}`}>{s.label}</span>
                  </td>
                  <td>{formatDate(k.createdAt)}</td>
                  <td>{formatDate(k.effectiveFrom)}</td>
                  <td>{k.lastPresentedAt ? formatDate(k.lastPresentedAt) : t('mdm.keys.never')}</td>
                  <td data-testid="mdm-key-sessions">{formatNumber(k.liveSessions)}</td>
                  <td>
                    {k.status === 'active' ? (
                      <button
                        type="button"
                        className="button button-small button-danger"
                        disabled={!canSuper}
                        aria-describedby={canSuper ? undefined : `${id}-perm`}
                        aria-label={t('mdm.keys.revokeLabel', { key: k.masked })}
                        onClick={() => {
                          setError(null);
                          setReplacement('new');
                          setDialog({ kind: 'revoke', key: k });
                        }}
                        data-testid="mdm-key-revoke"
                      >
                        {t('mdm.keys.revoke')}
                      </button>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <h3>{t('mdm.keys.newTitle')}</h3>
      <ValueChoice rules={rules} custom={custom} value={value} onCustom={setCustom} onValue={setValue} disabled={!canSuper} testId="mdm-new" />
      <Field label={t('mdm.keys.effectiveDate')} hint={t('mdm.keys.effectiveHint')}>
        {(props) => <input {...props} type="date" value={day} disabled={!canSuper} onChange={(e) => setDay(e.target.value)} data-testid="mdm-new-effective" />}
      </Field>
      <Field label={t('mdm.keys.grace')} hint={t('mdm.keys.graceHint')}>
        {(props) => (
          <select {...props} value={grace} disabled={!canSuper} onChange={(e) => setGrace(Number(e.target.value))} data-testid="mdm-new-grace">
            {GRACE_CHOICES.map((g) => (
              <option key={g} value={g}>
                {g === 0 ? t('mdm.keys.graceNone') : t('mdm.keys.graceHours', { hours: g / 3600 })}
              </option>
            ))}
          </select>
        )}
      </Field>
      <p className="copy-row">
        <BusyButton busy={false} label={t('mdm.keys.add')} disabled={!canSuper || !valueReady(t, custom, value, rules) || active.length >= rules.maxActiveKeys} describedBy={canSuper ? undefined : `${id}-perm`} onClick={() => setDialog({ kind: 'add' })} testId="mdm-key-add" />
        <BusyButton busy={false} kind="secondary" label={t('mdm.keys.reissue')} disabled={!canSuper || !valueReady(t, custom, value, rules)} describedBy={canSuper ? undefined : `${id}-perm`} onClick={() => setDialog({ kind: 'reissue' })} testId="mdm-key-reissue" />
      </p>
      <PermissionNote id={`${id}-perm`} allowed={canSuper} need="super" />
      <ConfirmDialog
        open={dialog !== null}
        title={dialog?.kind === 'add' ? t('mdm.keys.addTitle') : dialog?.kind === 'reissue' ? t('mdm.keys.reissueTitle') : t('mdm.keys.revokeTitle')}
        body={
          <>
            <p data-testid="mdm-confirm-body">{confirmBody()}</p>
            {revokeKey && !othersAdmitting ? (
              <fieldset className="radios">
                <legend>{t('mdm.keys.replacementLegend')}</legend>
                <p className="note">{t('mdm.keys.lastKey')}</p>
                {[{ id: 'new', label: t('mdm.keys.replacementNew') }, ...successors.map((k) => ({ id: k.id, label: t('mdm.keys.replacementExisting', { key: k.masked, date: formatDate(k.effectiveFrom) }) }))].map((o) => (
                  <div className="radio" key={o.id}>
                    <input id={`${id}-r-${o.id}`} type="radio" name={`${id}-replacement`} checked={replacement === o.id} onChange={() => setReplacement(o.id)} data-testid={`mdm-replacement-${o.id}`} />
                    <label htmlFor={`${id}-r-${o.id}`}>{o.label}</label>
                  </div>
                ))}
              </fieldset>
            ) : null}
          </>
        }
        confirmLabel={dialog?.kind === 'add' ? t('mdm.keys.add') : dialog?.kind === 'reissue' ? t('mdm.keys.reissue') : t('mdm.keys.revoke')}
        danger={dialog?.kind !== 'add'}
        busy={busy}
        error={error}
        onConfirm={onConfirm}
        onClose={() => setDialog(null)}
        testId="mdm-key-dialog"
      />
      {!dialog ? <ErrorAlert error={error} /> : null}
    </section>
  );
}
