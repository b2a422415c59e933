import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { api, type SsoPreview, type SsoWriteResult, type SwitchEffects, type SwitchProgress } from '../../api';
import { Dialog, ErrorAlert, Loading, useAnnounce, usePolling } from '../../components/ui';
import { useI18n, type MessageKey } from '../../i18n';

const EFFECTS: ReadonlyArray<keyof SwitchEffects> = [
  'pendingActivated',
  'sessionsEnded',
  'tokensRevoked',
  'invitationsInvalidated',
  'unapprovedDeleted',
  'passwordsDeleted',
  'appPasswordsDeleted',
];

function EffectList({ effects, testId }: { effects: Partial<SwitchEffects>; testId: string }) {
  const { t, formatNumber } = useI18n();
  return (
    <ul className="effects" data-testid={testId}>
      {EFFECTS.map((k) => (
        <li key={k} data-effect={k} className={(effects[k] ?? 0) === 0 ? 'effect-zero' : undefined}>
          <span className="effect-count">{formatNumber(effects[k] ?? 0)}</span> <span>{t(`effect.${k}` as MessageKey)}</span>
        </li>
      ))}
    </ul>
  );
}

type SwitchStep =
  | { step: 'preview'; preview: SsoPreview | null; error: unknown }
  | { step: 'running'; progress: SwitchProgress | null }
  | { step: 'done'; result: SsoWriteResult | undefined }
  | { step: 'failed'; error: unknown };

/** Preview → confirm → progress (GET …/sso every 500 ms while the PATCH runs) → summary. */
export function SwitchDialog({ domain, target, resume, onClose }: { domain: string; target: boolean; resume: boolean; onClose: () => void }) {
  const { t, formatNumber } = useI18n();
  const announce = useAnnounce();
  const [state, setState] = useState<SwitchStep>(resume ? { step: 'running', progress: null } : { step: 'preview', preview: null, error: null });

  const run = useCallback(
    (action: () => Promise<SsoWriteResult | undefined>) => {
      setState({ step: 'running', progress: null });
      announce(t('switch.running'));
      action().then(
        (result) => {
          setState({ step: 'done', result });
          announce(t(target ? 'switch.doneOn' : 'switch.doneOff'));
        },
        (error: unknown) => {
          setState({ step: 'failed', error });
          announce(t('switch.failed'));
        },
      );
    },
    [announce, t, target],
  );

  useEffect(() => {
    if (resume) {
      run(() => api.resumeSwitch(domain));
      return;
    }
    let live = true;
    api.previewSso(domain, { enabled: target }).then(
      (preview) => live && setState({ step: 'preview', preview, error: null }),
      (error: unknown) => live && setState({ step: 'preview', preview: null, error }),
    );
    return () => {
      live = false;
    };
    // Runs once when the dialog opens.
  }, []);

  usePolling(
    async () => {
      try {
        const sso = await api.sso(domain);
        setState((s) => (s.step === 'running' ? { step: 'running', progress: sso.switchInProgress ?? s.progress } : s));
      } catch {
        // the next tick tries again; the PATCH itself reports failure
      }
    },
    500,
    state.step === 'running',
  );

  const busy = state.step === 'running';
  const title = t(target ? 'switch.titleOn' : 'switch.titleOff');
  let body: ReactNode = null;
  let footer: ReactNode = null;
  if (state.step === 'preview') {
    const blocked = Boolean(state.preview && state.preview.problems.length > 0);
    body = state.preview ? (
      <div data-testid="switch-preview">
        <p>{t(target ? 'switch.introOn' : 'switch.introOff')}</p>
        <EffectList effects={state.preview.effects} testId="switch-preview-effects" />
        {state.preview.problems.length ? (
          <div className="alert alert-error" role="alert" data-testid="switch-problems">
            <p className="alert-title">{t('switch.problems')}</p>
            <ul>
              {state.preview.problems.map((p) => (
                <li key={p.path}>
                  <code>{p.path}</code> {p.message}
                </li>
              ))}
            </ul>
          </div>
        ) : null}
        {state.preview.warnings.length ? (
          <div className="alert alert-warn">
            <ul>
              {state.preview.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          </div>
        ) : null}
      </div>
    ) : state.error ? (
      <ErrorAlert error={state.error} />
    ) : (
      <Loading />
    );
    footer = (
      <>
        <button type="button" className="button button-secondary" onClick={onClose}>
          {t('common.cancel')}
        </button>
        <button
          type="button"
          className={`button ${target ? 'button-primary' : 'button-danger'}`}
          disabled={!state.preview || blocked}
          onClick={() => run(() => api.patchSso(domain, { enabled: target }))}
          data-testid="switch-confirm"
        >
          {t(target ? 'switch.confirmOn' : 'switch.confirmOff')}
        </button>
      </>
    );
  } else if (state.step === 'running') {
    const p = state.progress;
    const total = p?.membersTotal ?? 0;
    body = (
      <div data-testid="switch-progress-panel">
        <p>{t(resume ? 'switch.resuming' : 'switch.running')}</p>
        <label htmlFor="switch-progress">{t('switch.progressLabel')}</label>
        {total > 0 ? (
          <progress id="switch-progress" max={total} value={p?.membersDone ?? 0} data-testid="switch-progress" />
        ) : (
          <progress id="switch-progress" data-testid="switch-progress" />
        )}
        <p className="hint" data-testid="switch-progress-text">
          {total > 0 ? t('switch.progressCount', { done: formatNumber(p?.membersDone ?? 0), total: formatNumber(total) }) : t('switch.starting')}
        </p>
      </div>
    );
  } else if (state.step === 'done') {
    body = (
      <div data-testid="switch-summary">
        <div className="alert alert-success">
          <p className="alert-title">{t(target ? 'switch.doneOn' : 'switch.doneOff')}</p>
        </div>
        {state.result?.effects ? <EffectList effects={state.result.effects} testId="switch-summary-effects" /> : null}
        {state.result?.warnings?.map((w) => (
          <p className="note note-warn" key={w}>
            {w}
          </p>
        ))}
      </div>
    );
    footer = (
      <button type="button" className="button button-primary" onClick={onClose} data-testid="switch-close">
        {t('common.close')}
      </button>
    );
  } else {
    body = (
      <>
        <ErrorAlert error={state.error} />
        <p>{t('switch.failedHint')}</p>
      </>
    );
    footer = (
      <button type="button" className="button button-primary" onClick={onClose} data-testid="switch-close">
        {t('common.close')}
      </button>
    );
  }
  return (
    <Dialog open title={title} onClose={onClose} busy={busy} footer={footer} testId="switch-dialog">
      {body}
    </Dialog>
  );
}
