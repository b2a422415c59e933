import { useCallback, useEffect, useId, useState } from 'react';
import { api, ApiError, type ApiKey, type CreatedApiKey, type FieldProblem } from '../api';
import type { ScreenProps } from '../App';
import { BusyButton, ConfirmDialog, CopyButton, EmptyState, ErrorAlert, Field, Loading, PermissionNote, useAnnounce } from '../components/ui';
import { useI18n } from '../i18n';

function isoDay(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

export function ApiKeysScreen({ domain, session }: ScreenProps) {
  const { t, formatDate } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const canSuper = session.permissions.super;
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [name, setName] = useState('');
  const [scope, setScope] = useState<'read' | 'full'>('read');
  const [expires, setExpires] = useState(isoDay(90));
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<unknown>(null);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [revoke, setRevoke] = useState<ApiKey | null>(null);
  const [revokeBusy, setRevokeBusy] = useState(false);
  const [revokeError, setRevokeError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      setKeys((await api.apiKeys(domain)).apiKeys);
    } catch (err) {
      setError(err);
    }
  }, [domain]);
  useEffect(() => {
    void load();
  }, [load]);

  const create = async () => {
    const local: FieldProblem[] = [];
    if (!name.trim()) local.push({ path: 'name', message: t('apiKeys.nameRequired') });
    if (expires && (expires <= isoDay(0) || expires > isoDay(366))) local.push({ path: 'expiresAt', message: t('apiKeys.expiryInvalid') });
    setProblems(local);
    setCreateError(null);
    if (local.length) return;
    setCreating(true);
    try {
      const key = await api.createApiKey(domain, { name: name.trim(), scope, ...(expires ? { expiresAt: new Date(`${expires}T23:59:59Z`).toISOString() } : {}) });
      setCreated(key);
      setName('');
      announce(t('apiKeys.created'));
      await load();
    } catch (err) {
      if (err instanceof ApiError && err.fieldProblems.length) setProblems(err.fieldProblems);
      setCreateError(err);
    } finally {
      setCreating(false);
    }
  };

  const doRevoke = async (key: ApiKey) => {
    setRevokeBusy(true);
    setRevokeError(null);
    try {
      await api.revokeApiKey(domain, key.id);
      setRevoke(null);
      announce(t('apiKeys.revoked', { name: key.name }));
      await load();
    } catch (err) {
      setRevokeError(err);
    } finally {
      setRevokeBusy(false);
    }
  };

  const problem = (path: string) => problems.find((p) => p.path === path)?.message;

  return (
    <>
      <h1 tabIndex={-1}>{t('apiKeys.title')}</h1>
      <p className="lead">{t('apiKeys.intro')}</p>
      <ErrorAlert error={error} />
      {keys === null && !error ? <Loading /> : null}
      {keys && keys.length === 0 ? <EmptyState title={t('apiKeys.empty')} body={t('apiKeys.emptyHint')} /> : null}
      {keys && keys.length > 0 ? (
        <div className="table-wrap">
          <table className="table" data-testid="api-keys-table">
            <caption className="visually-hidden">{t('apiKeys.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('apiKeys.name')}</th>
                <th scope="col">{t('apiKeys.scope')}</th>
                <th scope="col">{t('apiKeys.createdAt')}</th>
                <th scope="col">{t('apiKeys.expiresAt')}</th>
                <th scope="col">{t('common.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td>{k.scope === 'read' ? t('apiKeys.scopeRead') : t('apiKeys.scopeFull')}</td>
                  <td>{formatDate(k.createdAt)}</td>
                  <td>
                    {k.expiresAt ? formatDate(k.expiresAt) : t('apiKeys.never')} {k.expired ? <span className="badge badge-bad">{t('apiKeys.expired')}</span> : null}
                  </td>
                  <td>
                    <button
                      type="button"
                      className="button button-small button-danger"
                      disabled={!canSuper}
                      aria-describedby={canSuper ? undefined : `${id}-perm`}
                      aria-label={t('apiKeys.revokeLabel', { name: k.name })}
                      onClick={() => {
                        setRevokeError(null);
                        setRevoke(k);
                      }}
                    >
                      {t('apiKeys.revoke')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <section className="panel" aria-labelledby={`${id}-new`}>
        <h2 id={`${id}-new`}>{t('apiKeys.createTitle')}</h2>
        <form
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void create();
          }}
          data-testid="api-key-form"
        >
          <Field label={t('apiKeys.name')} hint={t('apiKeys.nameHint')} error={problem('name')}>
            {(props) => <input {...props} type="text" value={name} maxLength={100} disabled={!canSuper} onChange={(e) => setName(e.target.value)} data-testid="api-key-name" />}
          </Field>
          <fieldset className="radios" disabled={!canSuper}>
            <legend>{t('apiKeys.scope')}</legend>
            <div className="radio">
              <input id={`${id}-read`} type="radio" name="scope" checked={scope === 'read'} onChange={() => setScope('read')} />
              <label htmlFor={`${id}-read`}>{t('apiKeys.scopeRead')}</label>
            </div>
            <div className="radio">
              <input id={`${id}-full`} type="radio" name="scope" checked={scope === 'full'} onChange={() => setScope('full')} />
              <label htmlFor={`${id}-full`}>{t('apiKeys.scopeFull')}</label>
            </div>
          </fieldset>
          <Field label={t('apiKeys.expiresAt')} hint={t('apiKeys.expiryHint')} error={problem('expiresAt')}>
            {(props) => <input {...props} type="date" value={expires} min={isoDay(1)} max={isoDay(365)} disabled={!canSuper} onChange={(e) => setExpires(e.target.value)} data-testid="api-key-expiry" />}
          </Field>
          <ErrorAlert error={createError} />
          <BusyButton type="submit" busy={creating} label={t('apiKeys.create')} disabled={!canSuper} describedBy={canSuper ? undefined : `${id}-perm`} testId="api-key-create" />
          <PermissionNote id={`${id}-perm`} allowed={canSuper} need="super" />
        </form>
        {created ? (
          <div className="alert alert-success" data-testid="api-key-created">
            <p className="alert-title">{t('apiKeys.showOnce')}</p>
            <p className="copy-row">
              <code data-testid="api-key-value">{created.key}</code>
              <CopyButton value={created.key} what={t('apiKeys.key')} testId="api-key-copy" />
            </p>
            <button type="button" className="button button-secondary" onClick={() => setCreated(null)}>
              {t('apiKeys.dismiss')}
            </button>
          </div>
        ) : null}
      </section>
      <ConfirmDialog
        open={revoke !== null}
        title={t('apiKeys.revokeTitle')}
        body={<p>{revoke ? t('apiKeys.revokeBody', { name: revoke.name }) : null}</p>}
        confirmLabel={t('apiKeys.revoke')}
        danger
        busy={revokeBusy}
        error={revokeError}
        onConfirm={() => revoke && void doRevoke(revoke)}
        onClose={() => setRevoke(null)}
        testId="api-key-revoke-dialog"
      />
    </>
  );
}
