import { useId, useState } from 'react';
import { mdmApi, type BuiltinException } from '../../api-mdm';
import { ConfirmDialog, EmptyState, PermissionNote, useAnnounce } from '../../components/ui';
import { useI18n } from '../../i18n';
import type { MdmPartProps } from './index';

/** Built-in MDM exception settings: listed and deleted; switching third-party sync on deletes them all (M-1). */
export function BuiltinExceptions({ domain, data, canSuper, reload }: MdmPartProps) {
  const { t, formatDate } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [target, setTarget] = useState<BuiltinException | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const remove = async (e: BuiltinException) => {
    setBusy(true);
    setError(null);
    try {
      await mdmApi.deleteException(domain, e.id);
      setTarget(null);
      announce(t('mdm.exceptions.deleted', { account: e.account }));
      await reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{t('mdm.exceptions.title')}</h2>
      <p>{t('mdm.exceptions.lead')}</p>
      <p className="note" data-testid="mdm-android-note">
        {t('mdm.exceptions.android')}
      </p>
      {data.exceptions.length === 0 ? (
        <EmptyState title={t('mdm.exceptions.empty')} />
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="mdm-exceptions-table">
            <caption className="visually-hidden">{t('mdm.exceptions.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('mdm.exceptions.account')}</th>
                <th scope="col">{t('mdm.exceptions.note')}</th>
                <th scope="col">{t('mdm.keys.created')}</th>
                <th scope="col">{t('common.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {data.exceptions.map((e) => (
                <tr key={e.id}>
                  <td>{e.account}</td>
                  <td>{e.note ?? '—'}</td>
                  <td>{formatDate(e.createdAt)}</td>
                  <td>
                    <button
                      type="button"
                      className="button button-small button-danger"
                      disabled={!canSuper}
                      aria-describedby={canSuper ? undefined : `${id}-perm`}
                      aria-label={t('mdm.exceptions.deleteLabel', { account: e.account })}
                      onClick={() => {
                        setError(null);
                        setTarget(e);
                      }}
                    >
                      {t('mdm.exceptions.delete')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <PermissionNote id={`${id}-perm`} allowed={canSuper} need="super" />
      <ConfirmDialog
        open={target !== null}
        title={t('mdm.exceptions.deleteTitle')}
        body={<p>{target ? t('mdm.exceptions.deleteBody', { account: target.account }) : null}</p>}
        confirmLabel={t('mdm.exceptions.delete')}
        danger
        busy={busy}
        error={error}
        onConfirm={() => target && void remove(target)}
        onClose={() => setTarget(null)}
        testId="mdm-exception-dialog"
      />
    </section>
  );
}
