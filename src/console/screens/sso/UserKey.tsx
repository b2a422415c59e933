import { useId, useState } from 'react';
import { api, type SsoView } from '../../api';
import { BusyButton, ErrorAlert, useAnnounce } from '../../components/ui';
import { useI18n } from '../../i18n';

export function UserKeyPanel({ sso, domain, canWrite, onSaved }: { sso: SsoView; domain: string; canWrite: boolean; onSaved: (sso: SsoView) => void }) {
  const { t } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [choice, setChoice] = useState(sso.userKey);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  return (
    <section className="panel" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{t('userKey.title')}</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          api
            .patchSso(domain, { userKey: choice })
            .then((r) => {
              if (r.sso) onSaved(r.sso);
              announce(t('common.saved'));
            })
            .catch((err: unknown) => setError(err))
            .finally(() => setBusy(false));
        }}
      >
        <fieldset className="radios" disabled={!canWrite}>
          <legend className="visually-hidden">{t('userKey.title')}</legend>
          <div className="radio">
            <input id={`${id}-ek`} type="radio" name="userKey" checked={choice === 'externalKey'} onChange={() => setChoice('externalKey')} aria-describedby={`${id}-ek-hint`} data-testid="user-key-external" />
            <label htmlFor={`${id}-ek`}>{t('userKey.externalKey')}</label>
            <p className="hint" id={`${id}-ek-hint`}>
              {t('userKey.externalKeyHint')}
            </p>
          </div>
          <div className="radio">
            <input id={`${id}-acc`} type="radio" name="userKey" checked={choice === 'account'} onChange={() => setChoice('account')} aria-describedby={`${id}-acc-hint`} data-testid="user-key-account" />
            <label htmlFor={`${id}-acc`}>{t('userKey.account')}</label>
            <p className="hint" id={`${id}-acc-hint`}>
              {t('userKey.accountHint')}
            </p>
          </div>
        </fieldset>
        {choice === 'account' ? (
          <p className="note note-warn" data-testid="user-key-caution">
            {t('userKey.caution')}
          </p>
        ) : null}
        <ErrorAlert error={error} />
        <BusyButton type="submit" busy={busy} label={t('common.save')} busyLabel={t('common.saving')} disabled={!canWrite || choice === sso.userKey} testId="user-key-save" />
      </form>
    </section>
  );
}
