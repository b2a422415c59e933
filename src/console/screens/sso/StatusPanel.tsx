import { useId, useState } from 'react';
import type { SsoView } from '../../api';
import { PermissionNote } from '../../components/ui';
import { useI18n } from '../../i18n';
import { protocolKey } from '../Overview';
import { SwitchDialog } from './SwitchDialog';
import { TestSignInButton } from './TestSignIn';

export function StatusPanel({ sso, domain, canWrite, canSuper, onChanged }: { sso: SsoView; domain: string; canWrite: boolean; canSuper: boolean; onChanged: () => Promise<void> }) {
  const { t } = useI18n();
  const superNote = useId();
  const writeNote = useId();
  const [switchOpen, setSwitchOpen] = useState<'preview' | 'resume' | null>(null);
  const interrupted = sso.switchInProgress && !sso.switchInProgress.running ? sso.switchInProgress : null;
  return (
    <section className="panel" aria-labelledby="sso-status">
      <h2 id="sso-status">{t('sso.status')}</h2>
      <div className="status-row">
        <span className={`badge ${sso.enabled ? 'badge-on' : 'badge-off'}`} data-testid="sso-state">
          {sso.enabled ? t('sso.state.on') : t('sso.state.off')}
        </span>
        <span>{t(protocolKey(sso))}</span>
      </div>
      {interrupted ? (
        <div className="alert alert-warn" role="alert" data-testid="resume-banner">
          <p className="alert-title">{t('sso.resume.banner')}</p>
          <p>{t('sso.resume.detail', { done: interrupted.membersDone, total: interrupted.membersTotal })}</p>
          <button type="button" className="button button-primary" disabled={!canSuper} aria-describedby={canSuper ? undefined : superNote} onClick={() => setSwitchOpen('resume')} data-testid="resume-switch">
            {t('sso.resume.button')}
          </button>
        </div>
      ) : null}
      <div className="actions">
        <TestSignInButton domain={domain} canWrite={canWrite} noteId={writeNote} />
        <button
          type="button"
          className="button button-primary"
          disabled={!canSuper || Boolean(sso.switchInProgress)}
          aria-describedby={canSuper ? undefined : superNote}
          onClick={() => setSwitchOpen('preview')}
          data-testid="sso-switch"
        >
          {sso.enabled ? t('sso.turnOff') : t('sso.turnOn')}
        </button>
      </div>
      <PermissionNote id={superNote} allowed={canSuper} need="super" />
      <PermissionNote id={writeNote} allowed={canWrite} need="write" />
      {switchOpen ? (
        <SwitchDialog
          domain={domain}
          target={switchOpen === 'resume' ? (interrupted?.target ?? !sso.enabled) : !sso.enabled}
          resume={switchOpen === 'resume'}
          onClose={() => {
            setSwitchOpen(null);
            void onChanged();
          }}
        />
      ) : null}
    </section>
  );
}
