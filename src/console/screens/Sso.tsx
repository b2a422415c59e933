import { useCallback, useEffect, useId, useState, type ReactNode } from 'react';
import {
  api,
  ApiError,
  type FieldProblem,
  type MetadataImport,
  type SsoPatch,
  type SsoPreview,
  type SsoView,
  type SsoWriteResult,
  type SwitchEffects,
  type SwitchProgress,
  type TestSignIn,
  type TestSignInStart,
} from '../api';
import type { ScreenProps } from '../App';
import { BusyButton, CopyButton, Dialog, ErrorAlert, Field, Loading, PermissionNote, useAnnounce, usePolling } from '../components/ui';
import { useI18n, type MessageKey } from '../i18n';
import { protocolKey } from './Overview';

type Protocol = 'saml' | 'works' | 'oidc';
const protocolOf = (sso: SsoView): Protocol => (sso.type === 'saml' ? 'saml' : sso.oauth?.profile === 'oidc' ? 'oidc' : 'works');

export function SsoScreen({ domain, session }: ScreenProps) {
  const { t } = useI18n();
  const [sso, setSso] = useState<SsoView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const reload = useCallback(async () => {
    try {
      setSso(await api.sso(domain));
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, [domain]);
  useEffect(() => {
    void reload();
  }, [reload]);

  return (
    <>
      <h1 tabIndex={-1}>{t('sso.title')}</h1>
      <ErrorAlert error={error} />
      {!sso && !error ? <Loading /> : null}
      {sso ? (
        <>
          <StatusPanel sso={sso} domain={domain} canWrite={session.permissions.write} canSuper={session.permissions.super} onChanged={reload} />
          <SettingsForm key={JSON.stringify([sso.type, sso.oauth?.profile, sso.saml?.idpEntityId, sso.webLoginUrl])} sso={sso} domain={domain} canWrite={session.permissions.write} onSaved={setSso} />
          {sso.type === 'saml' ? <MetadataPanel domain={domain} canWrite={session.permissions.write} onImported={reload} /> : null}
          {sso.type === 'saml' ? <CertificatesPanel sso={sso} domain={domain} canWrite={session.permissions.write} onSaved={setSso} /> : null}
          <SpPanel sso={sso} domain={domain} />
          <UserKeyPanel sso={sso} domain={domain} canWrite={session.permissions.write} onSaved={setSso} />
        </>
      ) : null}
    </>
  );
}

// --- status, switch and test sign-in --------------------------------------------------------------

function StatusPanel({ sso, domain, canWrite, canSuper, onChanged }: { sso: SsoView; domain: string; canWrite: boolean; canSuper: boolean; onChanged: () => Promise<void> }) {
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
function SwitchDialog({ domain, target, resume, onClose }: { domain: string; target: boolean; resume: boolean; onClose: () => void }) {
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

function TestSignInButton({ domain, canWrite, noteId }: { domain: string; canWrite: boolean; noteId: string }) {
  const { t, formatDate } = useI18n();
  const announce = useAnnounce();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [started, setStarted] = useState<TestSignInStart | null>(null);
  const [outcome, setOutcome] = useState<TestSignIn | null>(null);
  const [expired, setExpired] = useState(false);

  const start = async () => {
    setBusy(true);
    setError(null);
    setOutcome(null);
    setExpired(false);
    try {
      const s = await api.startTestSignIn(domain);
      setStarted(s);
      window.open(s.url, '_blank', 'noopener');
      announce(t('test.opened'));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const pending = Boolean(started) && !expired && (!outcome || outcome.status === 'pending');
  usePolling(
    async () => {
      if (!started) return;
      if (Date.parse(started.expiresAt) < Date.now()) {
        setExpired(true);
        return;
      }
      try {
        const o = await api.testSignIn(domain, started.id);
        setOutcome(o);
        if (o.status !== 'pending') announce(o.status === 'succeeded' ? t('test.succeeded') : t('test.failed'));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) setExpired(true);
      }
    },
    1000,
    pending,
  );

  return (
    <div className="test-signin">
      <BusyButton kind="secondary" busy={busy} label={t('test.button')} disabled={!canWrite} describedBy={canWrite ? undefined : noteId} onClick={() => void start()} testId="test-sign-in" />
      <ErrorAlert error={error} />
      {started ? (
        <div className="test-result" data-testid="test-sign-in-result" data-status={expired ? 'expired' : (outcome?.status ?? 'pending')}>
          {pending ? (
            <p>
              <span className="spinner" aria-hidden="true" />
              {t('test.waiting')}{' '}
              <a href={started.url} target="_blank" rel="noopener noreferrer" data-testid="test-sign-in-link">
                {t('test.openAgain')}
              </a>
            </p>
          ) : null}
          {expired ? <p className="note note-warn">{t('test.expired')}</p> : null}
          {outcome?.status === 'succeeded' ? (
            <div className="alert alert-success">
              <p className="alert-title">{t('test.succeeded')}</p>
              <dl className="facts">
                <dt>{t('test.member')}</dt>
                <dd data-testid="test-sign-in-member">
                  {outcome.member ? `${outcome.member.name} (${outcome.member.account})` : '—'}
                </dd>
                <dt>{t('member.externalKey')}</dt>
                <dd>{outcome.member?.externalKey ?? '—'}</dd>
                <dt>{t('test.assertedId')}</dt>
                <dd>
                  <code>{outcome.assertedId ?? '—'}</code>
                </dd>
                <dt>{t('test.finishedAt')}</dt>
                <dd>{formatDate(outcome.finishedAt)}</dd>
              </dl>
            </div>
          ) : null}
          {outcome?.status === 'failed' ? (
            <div className="alert alert-error" data-testid="test-sign-in-failure" data-reason={outcome.reason}>
              <p className="alert-title">{t('test.failed')}</p>
              <p>{outcome.message}</p>
              <dl className="facts">
                <dt>{t('test.reason')}</dt>
                <dd>
                  <code data-testid="test-sign-in-reason">{outcome.reason ?? outcome.code ?? '—'}</code>
                </dd>
                {outcome.assertedId ? (
                  <>
                    <dt>{t('test.assertedId')}</dt>
                    <dd>
                      <code>{outcome.assertedId}</code>
                    </dd>
                  </>
                ) : null}
              </dl>
            </div>
          ) : null}
        </div>
      ) : null}
    </div>
  );
}

// --- settings -------------------------------------------------------------------------------------

type FormValues = Record<
  | 'webLoginUrl'
  | 'appLoginUrl'
  | 'logoutUrl'
  | 'idpEntityId'
  | 'idpSloUrl'
  | 'clientId'
  | 'clientSecret'
  | 'tokenUrl'
  | 'userInfoUrl'
  | 'issuer'
  | 'userKeyClaim'
  | 'scopes',
  string
> & { setExpireTime: boolean; signAuthnRequests: boolean; allowUnsolicited: boolean; allowSha1: boolean };

function valuesOf(sso: SsoView): FormValues {
  return {
    webLoginUrl: sso.webLoginUrl ?? '',
    appLoginUrl: sso.appLoginUrl ?? '',
    logoutUrl: sso.logoutUrl ?? '',
    idpEntityId: sso.saml?.idpEntityId ?? '',
    idpSloUrl: sso.saml?.idpSloUrl ?? '',
    clientId: sso.oauth?.clientId ?? '',
    clientSecret: '',
    tokenUrl: sso.oauth?.tokenUrl ?? '',
    userInfoUrl: sso.oauth?.userInfoUrl ?? '',
    issuer: sso.oauth?.issuer ?? '',
    userKeyClaim: sso.oauth?.userKeyClaim ?? 'sub',
    scopes: (sso.oauth?.scopes ?? ['openid']).join(' '),
    setExpireTime: sso.setExpireTime,
    signAuthnRequests: sso.saml?.signAuthnRequests ?? false,
    allowUnsolicited: sso.saml?.allowUnsolicited ?? false,
    allowSha1: sso.saml?.allowSha1 ?? false,
  };
}

/** Only what changed (PATCH merges `saml` and `oauth` field by field with what is stored). */
function patchOf(protocol: Protocol, initialProtocol: Protocol, v: FormValues, init: FormValues): SsoPatch {
  const patch: SsoPatch = {};
  const changed = <K extends keyof FormValues>(k: K) => v[k] !== init[k];
  const str = (k: keyof FormValues) => (v[k] as string).trim();
  if (protocol !== initialProtocol) patch.type = protocol === 'saml' ? 'saml' : 'oauth';
  for (const k of ['webLoginUrl', 'appLoginUrl', 'logoutUrl'] as const) if (changed(k) && str(k)) patch[k] = str(k);
  if (changed('setExpireTime')) patch.setExpireTime = v.setExpireTime;
  if (protocol === 'saml') {
    const saml: NonNullable<SsoPatch['saml']> = {};
    if (changed('idpEntityId')) saml.idpEntityId = str('idpEntityId');
    if (changed('idpSloUrl') && str('idpSloUrl')) saml.idpSloUrl = str('idpSloUrl');
    for (const k of ['signAuthnRequests', 'allowUnsolicited', 'allowSha1'] as const) if (changed(k)) saml[k] = v[k];
    if (Object.keys(saml).length) patch.saml = saml;
  } else {
    const oauth: NonNullable<SsoPatch['oauth']> = {};
    if (protocol !== initialProtocol) oauth.profile = protocol;
    if (changed('clientId')) oauth.clientId = str('clientId');
    if (str('clientSecret')) oauth.clientSecret = str('clientSecret');
    if (protocol === 'works') {
      if (changed('tokenUrl') && str('tokenUrl')) oauth.tokenUrl = str('tokenUrl');
      if (changed('userInfoUrl') && str('userInfoUrl')) oauth.userInfoUrl = str('userInfoUrl');
    } else {
      if (changed('issuer') && str('issuer')) oauth.issuer = str('issuer');
      if (changed('userKeyClaim') && str('userKeyClaim')) oauth.userKeyClaim = str('userKeyClaim');
      if (changed('scopes')) oauth.scopes = str('scopes').split(/\s+/).filter(Boolean);
    }
    if (Object.keys(oauth).length) patch.oauth = oauth;
  }
  return patch;
}

function problemFor(problems: FieldProblem[], ...paths: string[]): string | undefined {
  const p = problems.find((x) => paths.includes(x.path));
  return p?.message;
}

function SettingsForm({ sso, domain, canWrite, onSaved }: { sso: SsoView; domain: string; canWrite: boolean; onSaved: (sso: SsoView) => void }) {
  const { t } = useI18n();
  const announce = useAnnounce();
  const noteId = useId();
  const initialProtocol = protocolOf(sso);
  const [protocol, setProtocol] = useState<Protocol>(initialProtocol);
  const initial = valuesOf(sso);
  const [v, setV] = useState<FormValues>(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [warnings, setWarnings] = useState<string[]>([]);
  const set = <K extends keyof FormValues>(k: K, value: FormValues[K]) => setV((old) => ({ ...old, [k]: value }));

  const save = async () => {
    setBusy(true);
    setError(null);
    setProblems([]);
    setWarnings([]);
    try {
      const patch = patchOf(protocol, initialProtocol, v, initial);
      if (Object.keys(patch).length === 0) {
        announce(t('common.noChanges'));
        return;
      }
      const result = await api.patchSso(domain, patch);
      setWarnings(result.warnings ?? []);
      announce(t('common.saved'));
      if (result.sso) onSaved(result.sso);
    } catch (err) {
      if (err instanceof ApiError && err.fieldProblems.length) {
        setProblems(err.fieldProblems);
        announce(t('form.fixErrors'));
      }
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const text = (k: keyof FormValues, label: MessageKey, paths: string[], hint?: MessageKey, type = 'url', testId?: string) => (
    <Field label={t(label)} hint={hint ? t(hint) : undefined} error={problemFor(problems, ...paths)}>
      {(props) => (
        <input
          {...props}
          type={type}
          value={v[k] as string}
          disabled={!canWrite}
          data-testid={testId}
          onChange={(e) => set(k, e.target.value)}
          spellCheck={false}
          autoComplete="off"
        />
      )}
    </Field>
  );
  const check = (k: 'setExpireTime' | 'signAuthnRequests' | 'allowUnsolicited' | 'allowSha1', label: MessageKey, hint: MessageKey) => (
    <div className="check">
      <input id={`${noteId}-${k}`} type="checkbox" checked={v[k]} disabled={!canWrite} onChange={(e) => set(k, e.target.checked)} aria-describedby={`${noteId}-${k}-hint`} />
      <label htmlFor={`${noteId}-${k}`}>{t(label)}</label>
      <p className="hint" id={`${noteId}-${k}-hint`}>
        {t(hint)}
      </p>
    </div>
  );
  const unplaced = problems.filter(
    (p) =>
      ![
        'webLoginUrl',
        'appLoginUrl',
        'logoutUrl',
        'saml.idpEntityId',
        'saml.idpSloUrl',
        'oauth.clientId',
        'oauth.clientSecret',
        'oauth.tokenUrl',
        'oauth.userInfoUrl',
        'oauth.issuer',
        'oauth.userKeyClaim',
        'oauth.scopes',
      ].includes(p.path),
  );

  return (
    <section className="panel" aria-labelledby="sso-settings">
      <h2 id="sso-settings">{t('sso.settings')}</h2>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
        data-testid="sso-settings-form"
      >
        <fieldset className="radios" disabled={!canWrite}>
          <legend>{t('sso.protocol')}</legend>
          {(['saml', 'works', 'oidc'] as const).map((p) => (
            <div className="radio" key={p}>
              <input id={`${noteId}-p-${p}`} type="radio" name="protocol" value={p} checked={protocol === p} onChange={() => setProtocol(p)} data-testid={`protocol-${p}`} />
              <label htmlFor={`${noteId}-p-${p}`}>{t(`sso.protocol.${p}` as MessageKey)}</label>
            </div>
          ))}
        </fieldset>
        {protocol === 'saml' ? (
          <>
            {text('idpEntityId', 'sso.field.idpEntityId', ['saml.idpEntityId'], 'sso.hint.idpEntityId', 'text', 'field-idp-entity-id')}
            {text('webLoginUrl', 'sso.field.samlLoginUrl', ['webLoginUrl'], 'sso.hint.samlLoginUrl', 'url', 'field-web-login-url')}
            {text('idpSloUrl', 'sso.field.idpSloUrl', ['saml.idpSloUrl'])}
            {text('logoutUrl', 'sso.field.logoutUrl', ['logoutUrl'], 'sso.hint.logoutUrl')}
            {check('signAuthnRequests', 'sso.field.signAuthnRequests', 'sso.hint.signAuthnRequests')}
            {check('allowUnsolicited', 'sso.field.allowUnsolicited', 'sso.hint.allowUnsolicited')}
            {check('allowSha1', 'sso.field.allowSha1', 'sso.hint.allowSha1')}
          </>
        ) : (
          <>
            {protocol === 'oidc'
              ? text('issuer', 'sso.field.issuer', ['oauth.issuer'], 'sso.hint.issuer', 'url', 'field-issuer')
              : text('webLoginUrl', 'sso.field.authorizeUrl', ['webLoginUrl'], undefined, 'url', 'field-web-login-url')}
            {text('clientId', 'sso.field.clientId', ['oauth.clientId'], undefined, 'text', 'field-client-id')}
            <Field label={t('sso.field.clientSecret')} hint={t(sso.oauth ? 'sso.hint.clientSecretKeep' : 'sso.hint.clientSecret')} error={problemFor(problems, 'oauth.clientSecret')}>
              {(props) => <input {...props} type="password" autoComplete="new-password" value={v.clientSecret} disabled={!canWrite} onChange={(e) => set('clientSecret', e.target.value)} />}
            </Field>
            {protocol === 'works' ? (
              <>
                {text('tokenUrl', 'sso.field.tokenUrl', ['oauth.tokenUrl'])}
                {text('userInfoUrl', 'sso.field.userInfoUrl', ['oauth.userInfoUrl'])}
              </>
            ) : (
              <>
                {text('userKeyClaim', 'sso.field.userKeyClaim', ['oauth.userKeyClaim'], 'sso.hint.userKeyClaim', 'text')}
                {text('scopes', 'sso.field.scopes', ['oauth.scopes'], 'sso.hint.scopes', 'text')}
              </>
            )}
            {text('logoutUrl', 'sso.field.logoutUrl', ['logoutUrl'], 'sso.hint.logoutUrl')}
          </>
        )}
        {text('appLoginUrl', 'sso.field.appLoginUrl', ['appLoginUrl'], 'sso.hint.appLoginUrl')}
        {check('setExpireTime', 'sso.field.setExpireTime', 'sso.hint.setExpireTime')}
        {unplaced.length ? (
          <ul className="field-error" data-testid="form-problems">
            {unplaced.map((p) => (
              <li key={p.path}>
                <code>{p.path}</code> {p.message}
              </li>
            ))}
          </ul>
        ) : null}
        <ErrorAlert error={error} />
        {warnings.map((w) => (
          <p className="note note-warn" key={w}>
            {w}
          </p>
        ))}
        <div className="actions">
          <BusyButton type="submit" busy={busy} busyLabel={t('common.saving')} label={t('common.save')} disabled={!canWrite} describedBy={canWrite ? undefined : `${noteId}-perm`} testId="sso-save" />
        </div>
        <PermissionNote id={`${noteId}-perm`} allowed={canWrite} need="write" />
      </form>
    </section>
  );
}

function MetadataPanel({ domain, canWrite, onImported }: { domain: string; canWrite: boolean; onImported: () => Promise<void> }) {
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

function CertificatesPanel({ sso, domain, canWrite, onSaved }: { sso: SsoView; domain: string; canWrite: boolean; onSaved: (sso: SsoView) => void }) {
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

function SpPanel({ sso, domain }: { sso: SsoView; domain: string }) {
  const { t } = useI18n();
  const rows: Array<[MessageKey, string, string]> = [
    ['sp.entityId', sso.sp.entityId, 'sp-entity-id'],
    ['sp.acsUrl', sso.sp.acsUrl, 'sp-acs-url'],
    ['sp.sloUrl', sso.sp.sloUrl, 'sp-slo-url'],
    ['sp.metadataUrl', sso.sp.metadataUrl, 'sp-metadata-url'],
    ['sp.directLoginUrl', sso.sp.directLoginUrl, 'sp-direct-login-url'],
  ];
  return (
    <section className="panel" aria-labelledby="sp-h">
      <h2 id="sp-h">{t('sp.title')}</h2>
      <p className="hint">{t('sp.intro')}</p>
      <dl className="sp-list">
        {rows.map(([label, value, testId]) => (
          <div className="sp-row" key={testId}>
            <dt>{t(label)}</dt>
            <dd>
              <code data-testid={testId}>{value}</code>
              <CopyButton value={value} what={t(label)} testId={`copy-${testId}`} />
            </dd>
          </div>
        ))}
      </dl>
      <p className="actions">
        <a className="button button-secondary" href={sso.sp.metadataUrl} download data-testid="sp-metadata-download">
          {t('sp.downloadMetadata')}
        </a>
        {sso.sp.certificateUrl ? (
          <a className="button button-secondary" href={api.spCertificateUrl(domain)} download data-testid="sp-certificate-download">
            {t('sp.downloadCertificate')}
          </a>
        ) : (
          <span className="hint">{t('sp.noCertificate')}</span>
        )}
      </p>
    </section>
  );
}

function UserKeyPanel({ sso, domain, canWrite, onSaved }: { sso: SsoView; domain: string; canWrite: boolean; onSaved: (sso: SsoView) => void }) {
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
