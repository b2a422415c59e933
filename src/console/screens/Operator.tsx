import { useCallback, useEffect, useId, useState } from 'react';
import { ApiError, type FieldProblem, type Tenant } from '../api';
import { operatorApi, type CreatedDomain, type DomainSummary, type OpClient } from '../api-operator';
import type { ScreenProps } from '../App';
import { BusyButton, ConfirmDialog, CopyButton, Dialog, EmptyState, ErrorAlert, Field, Loading, useAnnounce } from '../components/ui';
import { useI18n, type MessageKey } from '../i18n';

const DOMAIN_RE = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
const ACCOUNT_RE = /^[^\s@]+@[^\s@]+$/;
const CLIENT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{2,99}$/;
const PLANS: Array<Tenant['plan']> = ['free', 'standard', 'advanced'];
const PAGE = 50;
/** Protocol names (RFC 7591), the same in every language. */
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;

export function OperatorScreen({ navigate, onOpenDomain }: ScreenProps & { onOpenDomain: (domain: string) => void }) {
  const { t } = useI18n();
  return (
    <>
      <h1 tabIndex={-1}>{t('operator.title')}</h1>
      <p className="lead">{t('operator.intro')}</p>
      <DomainsSection
        onOpen={(domain) => {
          onOpenDomain(domain);
          navigate('overview');
        }}
      />
      <ClientsSection />
    </>
  );
}

function mdmKey(mode: DomainSummary['mdm']['mode']): MessageKey {
  return mode === 'external' ? 'operator.mdm.external' : mode === 'builtin' ? 'operator.mdm.builtin' : 'operator.mdm.none';
}

function DomainsSection({ onOpen }: { onOpen: (domain: string) => void }) {
  const { t, formatDate, formatNumber } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [rows, setRows] = useState<DomainSummary[] | null>(null);
  const [total, setTotal] = useState(0);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [creating, setCreating] = useState(false);
  const [planFor, setPlanFor] = useState<DomainSummary | null>(null);

  const load = useCallback(async (after: string | null = null) => {
    try {
      const page = await operatorApi.domains({ cursor: after, count: PAGE });
      setRows((current) => (after && current ? [...current, ...page.domains] : page.domains));
      setCursor(page.nextCursor);
      setTotal(page.total);
      setError(null);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section className="panel" aria-labelledby={`${id}-domains`}>
      <h2 id={`${id}-domains`}>{t('operator.domains')}</h2>
      <p className="hint">{t('operator.domainsHint', { total: formatNumber(total) })}</p>
      <p>
        <button type="button" className="button button-primary" onClick={() => setCreating(true)} data-testid="domain-create-open">
          {t('operator.create')}
        </button>
      </p>
      <ErrorAlert error={error} />
      {rows === null && !error ? <Loading /> : null}
      {rows && rows.length === 0 ? <EmptyState title={t('operator.noDomains')} /> : null}
      {rows && rows.length > 0 ? (
        <div className="table-wrap">
          <table className="table" data-testid="domains-table">
            <caption className="visually-hidden">{t('operator.domains')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('operator.domain')}</th>
                <th scope="col">{t('overview.plan')}</th>
                <th scope="col">{t('overview.sso')}</th>
                <th scope="col">{t('operator.mdm')}</th>
                <th scope="col">{t('overview.members')}</th>
                <th scope="col">{t('operator.lastLogin')}</th>
                <th scope="col">{t('common.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.domain} data-testid={`domain-row-${d.domain}`}>
                  <th scope="row">
                    <a
                      href="/console/"
                      onClick={(e) => {
                        e.preventDefault();
                        onOpen(d.domain);
                      }}
                      data-testid={`domain-open-${d.domain}`}
                    >
                      {d.domain}
                    </a>
                    <span className="hint"> {d.name}</span>
                  </th>
                  <td data-testid="domain-plan">{t(`plan.${d.plan}` as MessageKey)}</td>
                  <td>
                    <span className={`badge ${d.sso.enabled ? 'badge-on' : 'badge-off'}`}>{d.sso.enabled ? t('sso.state.on') : t('sso.state.off')}</span> {d.sso.type === 'saml' ? 'SAML' : 'OAuth'}
                  </td>
                  <td>{t(mdmKey(d.mdm.mode))}</td>
                  <td>{formatNumber(d.memberCount)}</td>
                  <td>{d.lastLoginAt ? formatDate(d.lastLoginAt) : t('operator.never')}</td>
                  <td>
                    <button type="button" className="button button-small button-secondary" aria-label={t('operator.changePlanFor', { domain: d.domain })} onClick={() => setPlanFor(d)} data-testid={`plan-open-${d.domain}`}>
                      {t('operator.changePlan')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {cursor ? (
        <button type="button" className="button button-secondary" onClick={() => void load(cursor)}>
          {t('operator.more')}
        </button>
      ) : null}
      <CreateDomainDialog
        open={creating}
        onClose={() => setCreating(false)}
        onCreated={(created) => {
          announce(t('operator.created', { domain: created.domain }));
          void load();
        }}
      />
      <PlanDialog
        target={planFor}
        onClose={() => setPlanFor(null)}
        onSaved={(domain, plan) => {
          announce(t('operator.planChanged', { domain, plan: t(`plan.${plan}` as MessageKey) }));
          setPlanFor(null);
          void load();
        }}
      />
    </section>
  );
}

function CreateDomainDialog({ open, onClose, onCreated }: { open: boolean; onClose: () => void; onCreated: (created: CreatedDomain) => void }) {
  const { t } = useI18n();
  const id = useId();
  const [domain, setDomain] = useState('');
  const [name, setName] = useState('');
  const [plan, setPlan] = useState<Tenant['plan']>('free');
  const [account, setAccount] = useState('');
  const [adminName, setAdminName] = useState('');
  const [withPassword, setWithPassword] = useState(true);
  const [password, setPassword] = useState('');
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<CreatedDomain | null>(null);
  // Bumped when the form is refused: once the errors are rendered, focus goes to the first field to fix.
  const [refusals, setRefusals] = useState(0);
  useEffect(() => {
    if (refusals) document.getElementById(`${id}-form`)?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }, [refusals, id]);

  const reset = () => {
    setDomain('');
    setName('');
    setPlan('free');
    setAccount('');
    setAdminName('');
    setPassword('');
    setWithPassword(true);
    setProblems([]);
    setError(null);
    setCreated(null);
  };
  const close = () => {
    reset();
    onClose();
  };

  const check = (): FieldProblem[] => {
    const local: FieldProblem[] = [];
    const d = domain.trim().toLowerCase();
    if (!DOMAIN_RE.test(d)) local.push({ path: 'domain', message: t('operator.domainInvalid') });
    if (!name.trim()) local.push({ path: 'name', message: t('operator.nameRequired') });
    if (!ACCOUNT_RE.test(account.trim())) local.push({ path: 'superAdmin.account', message: t('operator.accountInvalid') });
    if (!adminName.trim()) local.push({ path: 'superAdmin.name', message: t('operator.nameRequired') });
    if (withPassword && (password.length < 10 || !/\d/.test(password))) local.push({ path: 'superAdmin.password', message: t('operator.passwordWeak') });
    return local;
  };

  const submit = async () => {
    const local = check();
    setProblems(local);
    setError(null);
    if (local.length) {
      setRefusals((n) => n + 1);
      return;
    }
    setBusy(true);
    try {
      const result = await operatorApi.createDomain({
        domain: domain.trim().toLowerCase(),
        name: name.trim(),
        plan,
        superAdmin: { account: account.trim(), name: adminName.trim(), ...(withPassword ? { password } : {}) },
      });
      setCreated(result);
      onCreated(result);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'password_policy_violation') setProblems([{ path: 'superAdmin.password', message: err.message }]);
      else if (err instanceof ApiError && err.fieldProblems.length) setProblems(err.fieldProblems);
      setError(err);
      setRefusals((n) => n + 1);
    } finally {
      setBusy(false);
    }
  };

  const problem = (path: string) => problems.find((p) => p.path === path)?.message;

  return (
    <Dialog
      open={open}
      title={t('operator.createTitle')}
      onClose={close}
      busy={busy}
      testId="domain-create-dialog"
      footer={
        created ? (
          <button type="button" className="button button-primary" onClick={close} data-testid="domain-create-done">
            {t('common.close')}
          </button>
        ) : (
          <>
            <button type="button" className="button button-secondary" onClick={close} disabled={busy}>
              {t('common.cancel')}
            </button>
            <BusyButton busy={busy} label={t('operator.create')} onClick={() => void submit()} testId="domain-create-submit" />
          </>
        )
      }
    >
      {created ? (
        <div className="alert alert-success" data-testid="domain-created">
          <p className="alert-title">{t('operator.created', { domain: created.domain })}</p>
          {created.invitation ? (
            <>
              <p>{t('operator.invitationOnce')}</p>
              <p className="copy-row">
                <code data-testid="domain-invitation-url">{created.invitation.url}</code>
                <CopyButton value={created.invitation.url} what={t('operator.invitation')} />
              </p>
            </>
          ) : (
            <p>{t('operator.createdWithPassword', { account: created.superAdmin.account })}</p>
          )}
        </div>
      ) : (
        <form
          id={`${id}-form`}
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <Field label={t('operator.domain')} hint={t('operator.domainHint')} error={problem('domain')}>
            {(props) => <input {...props} type="text" value={domain} autoCapitalize="none" spellCheck={false} onChange={(e) => setDomain(e.target.value)} data-testid="new-domain" />}
          </Field>
          <Field label={t('operator.orgName')} error={problem('name')}>
            {(props) => <input {...props} type="text" value={name} maxLength={200} onChange={(e) => setName(e.target.value)} data-testid="new-domain-name" />}
          </Field>
          <Field label={t('overview.plan')}>
            {(props) => (
              <select {...props} value={plan} onChange={(e) => setPlan(e.target.value as Tenant['plan'])} data-testid="new-domain-plan">
                {PLANS.map((p) => (
                  <option key={p} value={p}>
                    {t(`plan.${p}` as MessageKey)}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <fieldset className="group">
            <legend>{t('operator.firstSuperAdmin')}</legend>
            <Field label={t('operator.account')} error={problem('superAdmin.account')}>
              {(props) => <input {...props} type="email" value={account} autoCapitalize="none" spellCheck={false} onChange={(e) => setAccount(e.target.value)} data-testid="new-admin-account" />}
            </Field>
            <Field label={t('operator.adminName')} error={problem('superAdmin.name')}>
              {(props) => <input {...props} type="text" value={adminName} maxLength={200} onChange={(e) => setAdminName(e.target.value)} data-testid="new-admin-name" />}
            </Field>
            <div className="radios" role="radiogroup" aria-label={t('operator.howSignIn')}>
              <div className="radio">
                <input id={`${id}-pw`} type="radio" name={`${id}-how`} checked={withPassword} onChange={() => setWithPassword(true)} />
                <label htmlFor={`${id}-pw`}>{t('operator.withPassword')}</label>
              </div>
              <div className="radio">
                <input id={`${id}-inv`} type="radio" name={`${id}-how`} checked={!withPassword} onChange={() => setWithPassword(false)} data-testid="new-admin-invite" />
                <label htmlFor={`${id}-inv`}>{t('operator.withInvitation')}</label>
              </div>
            </div>
            {withPassword ? (
              <Field label={t('operator.password')} hint={t('operator.passwordHint')} error={problem('superAdmin.password')}>
                {(props) => <input {...props} type="password" value={password} autoComplete="new-password" maxLength={256} onChange={(e) => setPassword(e.target.value)} data-testid="new-admin-password" />}
              </Field>
            ) : null}
          </fieldset>
          <ErrorAlert error={error} />
        </form>
      )}
    </Dialog>
  );
}

function PlanDialog({ target, onClose, onSaved }: { target: DomainSummary | null; onClose: () => void; onSaved: (domain: string, plan: Tenant['plan']) => void }) {
  const { t } = useI18n();
  const [plan, setPlan] = useState<Tenant['plan']>('free');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (target) {
      setPlan(target.plan);
      setError(null);
    }
  }, [target]);
  const save = async () => {
    if (!target) return;
    setBusy(true);
    setError(null);
    try {
      await operatorApi.setPlan(target.domain, plan);
      onSaved(target.domain, plan);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <ConfirmDialog
      open={target !== null}
      title={t('operator.changePlanFor', { domain: target?.domain ?? '' })}
      body={
        <Field label={t('overview.plan')} hint={t('operator.planHint')}>
          {(props) => (
            <select {...props} value={plan} onChange={(e) => setPlan(e.target.value as Tenant['plan'])} data-testid="plan-select">
              {PLANS.map((p) => (
                <option key={p} value={p}>
                  {t(`plan.${p}` as MessageKey)}
                </option>
              ))}
            </select>
          )}
        </Field>
      }
      confirmLabel={t('common.save')}
      busy={busy}
      error={error}
      onConfirm={() => void save()}
      onClose={onClose}
      testId="plan-dialog"
    />
  );
}

function uriLines(text: string): string[] {
  return text
    .split(/\s+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function checkUris(t: (k: MessageKey) => string, list: string[]): string | undefined {
  if (list.length === 0) return t('operator.client.urisRequired');
  for (const value of list) {
    try {
      const url = new URL(value);
      if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash || value.includes('#')) return t('operator.client.uriInvalid');
    } catch {
      return t('operator.client.uriInvalid');
    }
  }
  return undefined;
}

function ClientsSection() {
  const { t, formatDate } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [clients, setClients] = useState<OpClient[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [clientId, setClientId] = useState('');
  const [name, setName] = useState('');
  const [uris, setUris] = useState('');
  const [method, setMethod] = useState<'client_secret_basic' | 'client_secret_post'>('client_secret_basic');
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [busy, setBusy] = useState(false);
  const [createError, setCreateError] = useState<unknown>(null);
  const [secret, setSecret] = useState<{ clientId: string; value: string } | null>(null);
  const [editing, setEditing] = useState<OpClient | null>(null);
  const [deleting, setDeleting] = useState<OpClient | null>(null);
  const [deleteBusy, setDeleteBusy] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);

  const load = useCallback(async () => {
    try {
      setClients((await operatorApi.clients()).clients);
    } catch (err) {
      setError(err);
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  const create = async () => {
    const local: FieldProblem[] = [];
    if (!CLIENT_ID_RE.test(clientId.trim())) local.push({ path: 'clientId', message: t('operator.client.idInvalid') });
    if (!name.trim()) local.push({ path: 'name', message: t('operator.nameRequired') });
    const uriProblem = checkUris(t, uriLines(uris));
    if (uriProblem) local.push({ path: 'redirectUris', message: uriProblem });
    setProblems(local);
    setCreateError(null);
    if (local.length) return;
    setBusy(true);
    try {
      const created = await operatorApi.createClient({ clientId: clientId.trim(), name: name.trim(), redirectUris: uriLines(uris), tokenEndpointAuthMethod: method });
      setSecret({ clientId: created.clientId, value: created.clientSecret });
      setClientId('');
      setName('');
      setUris('');
      announce(t('operator.client.created', { clientId: created.clientId }));
      await load();
    } catch (err) {
      if (err instanceof ApiError && err.fieldProblems.length) setProblems(err.fieldProblems.map((p) => ({ ...p, path: p.path.split('.')[0]! })));
      setCreateError(err);
    } finally {
      setBusy(false);
    }
  };

  const remove = async (client: OpClient) => {
    setDeleteBusy(true);
    setDeleteError(null);
    try {
      await operatorApi.deleteClient(client.clientId);
      setDeleting(null);
      announce(t('operator.client.deleted', { clientId: client.clientId }));
      await load();
    } catch (err) {
      setDeleteError(err);
    } finally {
      setDeleteBusy(false);
    }
  };

  const problem = (path: string) => problems.find((p) => p.path === path)?.message;

  return (
    <section className="panel" aria-labelledby={`${id}-clients`}>
      <h2 id={`${id}-clients`}>{t('operator.clients')}</h2>
      <p className="hint">{t('operator.clientsHint')}</p>
      <ErrorAlert error={error} />
      {clients === null && !error ? <Loading /> : null}
      {clients && clients.length > 0 ? (
        <div className="table-wrap">
          <table className="table" data-testid="clients-table">
            <caption className="visually-hidden">{t('operator.clients')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('operator.client.id')}</th>
                <th scope="col">{t('operator.client.redirectUris')}</th>
                <th scope="col">{t('operator.client.auth')}</th>
                <th scope="col">{t('operator.client.source')}</th>
                <th scope="col">{t('common.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {clients.map((c) => (
                <tr key={c.clientId} data-testid={`client-row-${c.clientId}`}>
                  <th scope="row">
                    <code>{c.clientId}</code>
                    {c.name ? <span className="hint"> {c.name}</span> : null}
                  </th>
                  <td>
                    {c.redirectUris.map((u) => (
                      <code key={u} className="block">
                        {u}
                      </code>
                    ))}
                  </td>
                  <td>{c.tokenEndpointAuthMethod}</td>
                  <td>
                    {c.readOnly ? t('operator.client.fromConfig') : t('operator.client.fromApi')} {c.createdAt ? <span className="hint">{formatDate(c.createdAt)}</span> : null}
                  </td>
                  <td>
                    {c.readOnly ? (
                      <span className="hint">{t('operator.client.readOnly')}</span>
                    ) : (
                      <span className="actions">
                        <button type="button" className="button button-small button-secondary" aria-label={t('operator.client.editFor', { clientId: c.clientId })} onClick={() => setEditing(c)} data-testid={`client-edit-${c.clientId}`}>
                          {t('common.edit')}
                        </button>{' '}
                        <button
                          type="button"
                          className="button button-small button-danger"
                          aria-label={t('operator.client.deleteFor', { clientId: c.clientId })}
                          onClick={() => {
                            setDeleteError(null);
                            setDeleting(c);
                          }}
                          data-testid={`client-delete-${c.clientId}`}
                        >
                          {t('operator.client.delete')}
                        </button>
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <h3>{t('operator.client.add')}</h3>
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
        data-testid="client-form"
      >
        <Field label={t('operator.client.id')} hint={t('operator.client.idHint')} error={problem('clientId')}>
          {(props) => <input {...props} type="text" value={clientId} autoCapitalize="none" spellCheck={false} onChange={(e) => setClientId(e.target.value)} data-testid="client-id" />}
        </Field>
        <Field label={t('operator.client.name')} error={problem('name')}>
          {(props) => <input {...props} type="text" value={name} maxLength={100} onChange={(e) => setName(e.target.value)} data-testid="client-name" />}
        </Field>
        <Field label={t('operator.client.redirectUris')} hint={t('operator.client.urisHint')} error={problem('redirectUris')}>
          {(props) => <textarea {...props} rows={3} value={uris} spellCheck={false} onChange={(e) => setUris(e.target.value)} data-testid="client-uris" />}
        </Field>
        <Field label={t('operator.client.auth')}>
          {(props) => (
            <select {...props} value={method} onChange={(e) => setMethod(e.target.value as typeof method)} data-testid="client-auth">
              {AUTH_METHODS.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          )}
        </Field>
        <ErrorAlert error={createError} />
        <BusyButton type="submit" busy={busy} label={t('operator.client.add')} testId="client-create" />
      </form>
      {secret ? (
        <div className="alert alert-success" data-testid="client-created">
          <p className="alert-title">{t('operator.client.secretOnce', { clientId: secret.clientId })}</p>
          <p className="copy-row">
            <code data-testid="client-secret">{secret.value}</code>
            <CopyButton value={secret.value} what={t('operator.client.secret')} testId="client-secret-copy" />
          </p>
          <button type="button" className="button button-secondary" onClick={() => setSecret(null)}>
            {t('apiKeys.dismiss')}
          </button>
        </div>
      ) : null}
      <EditClientDialog
        client={editing}
        onClose={() => setEditing(null)}
        onSaved={(c) => {
          setEditing(null);
          announce(t('operator.client.saved', { clientId: c.clientId }));
          void load();
        }}
      />
      <ConfirmDialog
        open={deleting !== null}
        title={t('operator.client.deleteFor', { clientId: deleting?.clientId ?? '' })}
        body={<p>{t('operator.client.deleteBody')}</p>}
        confirmLabel={t('operator.client.delete')}
        danger
        busy={deleteBusy}
        error={deleteError}
        onConfirm={() => deleting && void remove(deleting)}
        onClose={() => setDeleting(null)}
        testId="client-delete-dialog"
      />
    </section>
  );
}

function EditClientDialog({ client, onClose, onSaved }: { client: OpClient | null; onClose: () => void; onSaved: (c: OpClient) => void }) {
  const { t } = useI18n();
  const [uris, setUris] = useState('');
  const [problem, setProblem] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (client) {
      setUris(client.redirectUris.join('\n'));
      setProblem(undefined);
      setError(null);
    }
  }, [client]);
  const save = async () => {
    if (!client) return;
    const local = checkUris(t, uriLines(uris));
    setProblem(local);
    if (local) return;
    setBusy(true);
    setError(null);
    try {
      onSaved(await operatorApi.updateClient(client.clientId, { redirectUris: uriLines(uris) }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <ConfirmDialog
      open={client !== null}
      title={t('operator.client.editFor', { clientId: client?.clientId ?? '' })}
      body={
        <Field label={t('operator.client.redirectUris')} hint={t('operator.client.urisHint')} error={problem}>
          {(props) => <textarea {...props} rows={4} value={uris} spellCheck={false} onChange={(e) => setUris(e.target.value)} data-testid="client-edit-uris" />}
        </Field>
      }
      confirmLabel={t('common.save')}
      busy={busy}
      error={error}
      onConfirm={() => void save()}
      onClose={onClose}
      testId="client-edit-dialog"
    />
  );
}
