import { useId, useState } from 'react';
import { api, ApiError, type FieldProblem, type SsoPatch, type SsoView } from '../../api';
import { BusyButton, ErrorAlert, Field, PermissionNote, useAnnounce } from '../../components/ui';
import { useI18n, type MessageKey } from '../../i18n';

type Protocol = 'saml' | 'works' | 'oidc';
const protocolOf = (sso: SsoView): Protocol => (sso.type === 'saml' ? 'saml' : sso.oauth?.profile === 'oidc' ? 'oidc' : 'works');

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

export function SettingsForm({ sso, domain, canWrite, onSaved }: { sso: SsoView; domain: string; canWrite: boolean; onSaved: (sso: SsoView) => void }) {
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
