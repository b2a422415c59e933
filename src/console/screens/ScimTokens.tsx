import { useCallback, useEffect, useId, useState } from 'react';
import { api, ApiError, type FieldProblem, type IssuedScimToken, type ScimToken } from '../api';
import type { ScreenProps } from '../App';
import { BusyButton, ConfirmDialog, CopyButton, EmptyState, ErrorAlert, Field, Loading, PermissionNote, useAnnounce } from '../components/ui';
import { useI18n } from '../i18n';

/** A secret on screen: the one just issued or rotated, with what happened to it. */
interface Shown {
  token: IssuedScimToken;
  rotated: boolean;
}

/**
 * SCIM provisioning tokens (issue 16, docs/spec.md §14): the domain's SCIM base URL to paste into Entra ID or
 * Okta, and its bearer tokens — issued and rotated with the secret shown once, revoked with a confirmation.
 * Changes are the super admin's (the API answers 403 to others); an admin sees the list read-only.
 */
export function ScimTokensScreen({ domain, session }: ScreenProps) {
  const { t, formatDate } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const canSuper = session.permissions.super;
  const [tokens, setTokens] = useState<ScimToken[] | null>(null);
  const [baseUrl, setBaseUrl] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState('');
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [issuing, setIssuing] = useState(false);
  const [issueError, setIssueError] = useState<unknown>(null);
  const [shown, setShown] = useState<Shown | null>(null);
  const [pending, setPending] = useState<{ action: 'rotate' | 'revoke'; token: ScimToken } | null>(null);
  const [pendingBusy, setPendingBusy] = useState(false);
  const [pendingError, setPendingError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      const listed = await api.scimTokens(domain);
      setTokens(listed.tokens);
      setBaseUrl(listed.scimBaseUrl);
    } catch (err) {
      setError(err);
    }
  }, [domain]);
  useEffect(() => {
    void load();
  }, [load]);

  const issue = async () => {
    const local: FieldProblem[] = [];
    if (!name.trim()) local.push({ path: 'name', message: t('scim.nameRequired') });
    setProblems(local);
    setIssueError(null);
    if (local.length) return;
    setIssuing(true);
    try {
      const token = await api.issueScimToken(domain, name.trim());
      setShown({ token, rotated: false });
      setName('');
      announce(t('scim.issued', { name: token.name }));
      await load();
    } catch (err) {
      if (err instanceof ApiError && err.fieldProblems.length) setProblems(err.fieldProblems);
      setIssueError(err);
    } finally {
      setIssuing(false);
    }
  };

  const confirm = async () => {
    if (!pending) return;
    setPendingBusy(true);
    setPendingError(null);
    try {
      if (pending.action === 'rotate') {
        const token = await api.rotateScimToken(domain, pending.token.id);
        setShown({ token, rotated: true });
        announce(t('scim.rotated', { name: pending.token.name }));
      } else {
        await api.revokeScimToken(domain, pending.token.id);
        if (shown?.token.id === pending.token.id) setShown(null);
        announce(t('scim.revoked', { name: pending.token.name }));
      }
      setPending(null);
      await load();
    } catch (err) {
      setPendingError(err);
    } finally {
      setPendingBusy(false);
    }
  };

  const problem = (path: string) => problems.find((p) => p.path === path)?.message;
  const perm = canSuper ? undefined : `${id}-perm`;

  return (
    <>
      <h1 tabIndex={-1}>{t('scim.title')}</h1>
      <p className="lead">{t('scim.intro')}</p>
      <ErrorAlert error={error} />
      {baseUrl ? (
        <section className="panel" aria-labelledby={`${id}-url`}>
          <h2 id={`${id}-url`}>{t('scim.baseUrl')}</h2>
          <p className="copy-row">
            <code data-testid="scim-base-url">{baseUrl}</code>
            <CopyButton value={baseUrl} what={t('scim.baseUrl')} testId="scim-base-url-copy" />
          </p>
          <p className="note">{t('scim.baseUrlHint')}</p>
        </section>
      ) : null}
      {tokens === null && !error ? <Loading /> : null}
      {tokens && tokens.length === 0 ? <EmptyState title={t('scim.empty')} body={t('scim.emptyHint')} /> : null}
      {tokens && tokens.length > 0 ? (
        <div className="table-wrap">
          <table className="table" data-testid="scim-tokens-table">
            <caption className="visually-hidden">{t('scim.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('scim.name')}</th>
                <th scope="col">{t('scim.createdAt')}</th>
                <th scope="col">{t('scim.rotatedAt')}</th>
                <th scope="col">{t('common.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {tokens.map((k) => (
                <tr key={k.id} data-testid="scim-token-row" data-token-id={k.id}>
                  <td>{k.name}</td>
                  <td>{formatDate(k.createdAt)}</td>
                  <td>{k.rotatedAt ? formatDate(k.rotatedAt) : t('scim.neverRotated')}</td>
                  <td>
                    <span className="row-actions">
                      <button
                        type="button"
                        className="button button-small button-secondary"
                        disabled={!canSuper}
                        aria-describedby={perm}
                        aria-label={t('scim.rotateLabel', { name: k.name })}
                        data-testid="scim-token-rotate"
                        onClick={() => {
                          setPendingError(null);
                          setPending({ action: 'rotate', token: k });
                        }}
                      >
                        {t('scim.rotate')}
                      </button>
                      <button
                        type="button"
                        className="button button-small button-danger"
                        disabled={!canSuper}
                        aria-describedby={perm}
                        aria-label={t('scim.revokeLabel', { name: k.name })}
                        data-testid="scim-token-revoke"
                        onClick={() => {
                          setPendingError(null);
                          setPending({ action: 'revoke', token: k });
                        }}
                      >
                        {t('scim.revoke')}
                      </button>
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {shown ? (
        <div className="alert alert-success" data-testid="scim-token-shown">
          <p className="alert-title">{shown.rotated ? t('scim.showOnceRotated', { name: shown.token.name }) : t('scim.showOnce', { name: shown.token.name })}</p>
          <p className="copy-row">
            <code data-testid="scim-token-value">{shown.token.token}</code>
            <CopyButton value={shown.token.token} what={t('scim.token')} testId="scim-token-copy" />
          </p>
          <button type="button" className="button button-secondary" onClick={() => setShown(null)} data-testid="scim-token-dismiss">
            {t('scim.dismiss')}
          </button>
        </div>
      ) : null}
      <section className="panel" aria-labelledby={`${id}-new`}>
        <h2 id={`${id}-new`}>{t('scim.issueTitle')}</h2>
        <form
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void issue();
          }}
          data-testid="scim-token-form"
        >
          <Field label={t('scim.name')} hint={t('scim.nameHint')} error={problem('name')}>
            {(props) => <input {...props} type="text" value={name} maxLength={100} disabled={!canSuper} onChange={(e) => setName(e.target.value)} data-testid="scim-token-name" />}
          </Field>
          <ErrorAlert error={issueError} />
          <BusyButton type="submit" busy={issuing} label={t('scim.issue')} disabled={!canSuper} describedBy={perm} testId="scim-token-issue" />
          <PermissionNote id={`${id}-perm`} allowed={canSuper} need="super" />
        </form>
      </section>
      <ConfirmDialog
        open={pending !== null}
        title={pending?.action === 'rotate' ? t('scim.rotateTitle') : t('scim.revokeTitle')}
        body={<p>{pending ? t(pending.action === 'rotate' ? 'scim.rotateBody' : 'scim.revokeBody', { name: pending.token.name }) : null}</p>}
        confirmLabel={pending?.action === 'rotate' ? t('scim.rotate') : t('scim.revoke')}
        danger={pending?.action !== 'rotate'}
        busy={pendingBusy}
        error={pendingError}
        onConfirm={() => void confirm()}
        onClose={() => setPending(null)}
        testId="scim-token-dialog"
      />
    </>
  );
}
