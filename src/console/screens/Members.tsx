import { useCallback, useEffect, useId, useRef, useState } from 'react';
import { api, ApiError, type FieldProblem, type Member, type MemberQuery, type MemberStatus, type Role } from '../api';
import type { ScreenProps } from '../App';
import { CsvUpload } from '../components/CsvUpload';
import { BusyButton, ConfirmDialog, Dialog, EmptyState, ErrorAlert, Field, Loading, PermissionNote, useAnnounce } from '../components/ui';
import { useI18n, type MessageKey } from '../i18n';

const STATUSES: readonly MemberStatus[] = ['in_use', 'pending', 'unapproved', 'suspended'];
const ROLES: readonly Role[] = ['member', 'admin', 'super_admin'];
const PAGE = 50;
/** The file format's header line (column names are part of the format, not translated). */
const MEMBERS_CSV_HEADER = 'account,name,externalKey,role';

export function MembersScreen({ domain, session }: ScreenProps) {
  const { t, formatNumber } = useI18n();
  const announce = useAnnounce();
  const id = useId();
  const [filters, setFilters] = useState<MemberQuery>({ q: '', status: '', role: '', hasExternalKey: '' });
  const [applied, setApplied] = useState<MemberQuery>(filters);
  const [members, setMembers] = useState<Member[] | null>(null);
  const [total, setTotal] = useState(0);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [editing, setEditing] = useState<Member | 'new' | null>(null);
  const [confirm, setConfirm] = useState<Member | null>(null);
  const [confirmBusy, setConfirmBusy] = useState(false);
  const [confirmError, setConfirmError] = useState<unknown>(null);
  const [csvOpen, setCsvOpen] = useState(false);
  const seq = useRef(0);
  const canWrite = session.permissions.write;

  const load = useCallback(
    async (query: MemberQuery, cursor: string | null) => {
      const mine = ++seq.current;
      setLoading(true);
      setError(null);
      try {
        const page = await api.members(domain, { ...query, count: PAGE, cursor });
        if (mine !== seq.current) return;
        setMembers((old) => (cursor && old ? [...old, ...page.members] : page.members));
        setTotal(page.total);
        setNextCursor(page.nextCursor);
        if (!cursor) announce(t('members.found', { count: formatNumber(page.total) }));
      } catch (err) {
        if (mine === seq.current) setError(err);
      } finally {
        if (mine === seq.current) setLoading(false);
      }
    },
    [domain, announce, t, formatNumber],
  );

  useEffect(() => {
    void load(applied, null);
  }, [applied, load]);

  // Search as you type, 300 ms after the last key.
  useEffect(() => {
    if (filters.q === applied.q) return;
    const timer = window.setTimeout(() => setApplied((a) => ({ ...a, q: filters.q })), 300);
    return () => window.clearTimeout(timer);
  }, [filters.q, applied.q]);

  const setFilter = (patch: Partial<MemberQuery>) => {
    setFilters((f) => ({ ...f, ...patch }));
    if (!('q' in patch)) setApplied((a) => ({ ...a, ...patch }));
  };

  const toggleStatus = async (m: Member) => {
    setConfirmBusy(true);
    setConfirmError(null);
    try {
      const saved = await api.patchMember(domain, m.id, { status: m.status === 'suspended' ? 'in_use' : 'suspended' });
      setMembers((list) => list?.map((x) => (x.id === saved.id ? saved : x)) ?? null);
      announce(t(saved.status === 'suspended' ? 'members.suspended' : 'members.restored', { name: saved.name }));
      setConfirm(null);
    } catch (err) {
      setConfirmError(err);
    } finally {
      setConfirmBusy(false);
    }
  };

  const filtered = Boolean(applied.q || applied.status || applied.role || applied.hasExternalKey);

  return (
    <>
      <div className="title-row">
        <h1 tabIndex={-1}>{t('members.title')}</h1>
        <div className="actions">
          <button type="button" className="button button-secondary" disabled={!canWrite} aria-describedby={canWrite ? undefined : `${id}-perm`} onClick={() => setCsvOpen(true)} data-testid="members-csv-open">
            {t('members.bulkAdd')}
          </button>
          <button type="button" className="button button-primary" disabled={!canWrite} aria-describedby={canWrite ? undefined : `${id}-perm`} onClick={() => setEditing('new')} data-testid="member-add">
            {t('members.add')}
          </button>
        </div>
      </div>
      <PermissionNote id={`${id}-perm`} allowed={canWrite} need="write" />
      <form
        className="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied({ ...filters });
        }}
      >
        <div className="field">
          <label htmlFor={`${id}-q`}>{t('members.search')}</label>
          <input id={`${id}-q`} type="search" value={filters.q} placeholder={t('members.searchPlaceholder')} onChange={(e) => setFilter({ q: e.target.value })} data-testid="members-search" />
        </div>
        <div className="field">
          <label htmlFor={`${id}-status`}>{t('members.status')}</label>
          <select id={`${id}-status`} value={filters.status} onChange={(e) => setFilter({ status: e.target.value as MemberStatus | '' })} data-testid="members-filter-status">
            <option value="">{t('members.any')}</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {t(`status.${s}` as MessageKey)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-role`}>{t('members.role')}</label>
          <select id={`${id}-role`} value={filters.role} onChange={(e) => setFilter({ role: e.target.value as Role | '' })} data-testid="members-filter-role">
            <option value="">{t('members.any')}</option>
            {ROLES.map((r) => (
              <option key={r} value={r}>
                {t(`role.${r}` as MessageKey)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${id}-ek`}>{t('member.externalKey')}</label>
          <select id={`${id}-ek`} value={filters.hasExternalKey} onChange={(e) => setFilter({ hasExternalKey: e.target.value as 'true' | 'false' | '' })} data-testid="members-filter-external-key">
            <option value="">{t('members.any')}</option>
            <option value="true">{t('members.withKey')}</option>
            <option value="false">{t('members.withoutKey')}</option>
          </select>
        </div>
      </form>
      <p className="count" data-testid="members-total">
        {members ? t('members.total', { count: formatNumber(total) }) : null}
      </p>
      <ErrorAlert error={error} />
      {members === null && loading ? <Loading /> : null}
      {members && members.length === 0 && !loading ? (
        <EmptyState title={filtered ? t('members.emptyFiltered') : t('members.empty')} body={filtered ? t('members.emptyFilteredHint') : t('members.emptyHint')} />
      ) : null}
      {members && members.length > 0 ? (
        <div className="table-wrap">
          <table className="table" data-testid="members-table">
            <caption className="visually-hidden">{t('members.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('member.account')}</th>
                <th scope="col">{t('member.name')}</th>
                <th scope="col">{t('member.externalKey')}</th>
                <th scope="col">{t('members.role')}</th>
                <th scope="col">{t('members.status')}</th>
                <th scope="col">{t('common.actions')}</th>
              </tr>
            </thead>
            <tbody>
              {members.map((m) => (
                <tr key={m.id} data-member-id={m.id}>
                  <td>{m.account}</td>
                  <td>{m.name}</td>
                  <td>{m.externalKey ? <code>{m.externalKey}</code> : <span className="muted">{t('members.noKey')}</span>}</td>
                  <td>{t(`role.${m.role}` as MessageKey)}</td>
                  <td>
                    <span className={`badge badge-status-${m.status}`}>{t(`status.${m.status}` as MessageKey)}</span>
                  </td>
                  <td className="row-actions">
                    <button type="button" className="button button-small button-secondary" disabled={!canWrite} onClick={() => setEditing(m)} aria-label={t('members.editLabel', { name: m.name })}>
                      {t('common.edit')}
                    </button>
                    <button
                      type="button"
                      className="button button-small button-secondary"
                      disabled={!canWrite}
                      onClick={() => {
                        setConfirmError(null);
                        setConfirm(m);
                      }}
                      aria-label={t(m.status === 'suspended' ? 'members.restoreLabel' : 'members.suspendLabel', { name: m.name })}
                    >
                      {m.status === 'suspended' ? t('members.restore') : t('members.suspend')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {members && nextCursor ? (
        <p className="actions">
          <BusyButton kind="secondary" busy={loading} busyLabel={t('common.loading')} label={t('members.loadMore')} onClick={() => void load(applied, nextCursor)} testId="members-load-more" />
          <span className="hint">{t('members.showing', { shown: formatNumber(members.length), total: formatNumber(total) })}</span>
        </p>
      ) : null}

      {editing ? (
        <MemberDialog
          domain={domain}
          member={editing === 'new' ? null : editing}
          canSuper={session.permissions.super}
          onClose={() => setEditing(null)}
          onSaved={(saved, created) => {
            setEditing(null);
            announce(t(created ? 'members.created' : 'common.saved', { name: saved.name }));
            if (created) void load(applied, null);
            else setMembers((list) => list?.map((x) => (x.id === saved.id ? saved : x)) ?? null);
          }}
        />
      ) : null}
      <ConfirmDialog
        open={confirm !== null}
        title={confirm?.status === 'suspended' ? t('members.restoreTitle') : t('members.suspendTitle')}
        body={<p>{confirm ? t(confirm.status === 'suspended' ? 'members.restoreBody' : 'members.suspendBody', { name: confirm.name, account: confirm.account }) : null}</p>}
        confirmLabel={confirm?.status === 'suspended' ? t('members.restore') : t('members.suspend')}
        danger={confirm?.status !== 'suspended'}
        busy={confirmBusy}
        error={confirmError}
        onConfirm={() => confirm && void toggleStatus(confirm)}
        onClose={() => setConfirm(null)}
        testId="member-status-dialog"
      />
      <Dialog
        open={csvOpen}
        title={t('members.bulkAdd')}
        onClose={() => setCsvOpen(false)}
        testId="members-csv-dialog"
        footer={
          <button type="button" className="button button-secondary" onClick={() => setCsvOpen(false)}>
            {t('common.close')}
          </button>
        }
      >
        <p>{t('members.csvIntro')}</p>
        <p>
          <code>{MEMBERS_CSV_HEADER}</code>
        </p>
        <CsvUpload
          label={t('members.csvFile')}
          submitLabel={t('members.csvSubmit')}
          reportName={`members-errors-${domain}.csv`}
          allowed={canWrite}
          send={(file, onProgress) => api.uploadMembersCsv(domain, file, onProgress)}
          renderSuccess={(r) => {
            return <p className="alert-title">{t('members.csvDone', { count: formatNumber(r.created) })}</p>;
          }}
          testId="members-csv"
        />
      </Dialog>
    </>
  );
}

const ACCOUNT_RE = /^[^\s@]+@[^\s@]+$/;
const BAD_KEY_RE = /[%\\#/?\u0000-\u001f\u007f]/;

function MemberDialog({ domain, member, canSuper, onClose, onSaved }: { domain: string; member: Member | null; canSuper: boolean; onClose: () => void; onSaved: (m: Member, created: boolean) => void }) {
  const { t } = useI18n();
  const [account, setAccount] = useState(member?.account ?? '');
  const [name, setName] = useState(member?.name ?? '');
  const [externalKey, setExternalKey] = useState(member?.externalKey ?? '');
  const [role, setRole] = useState<Role>(member?.role ?? 'member');
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const formId = useId();

  const validate = (): FieldProblem[] => {
    const p: FieldProblem[] = [];
    if (!ACCOUNT_RE.test(account.trim())) p.push({ path: 'account', message: t('member.accountInvalid') });
    if (!name.trim()) p.push({ path: 'name', message: t('member.nameRequired') });
    if (externalKey && (externalKey.length > 100 || BAD_KEY_RE.test(externalKey))) p.push({ path: 'externalKey', message: t('member.externalKeyInvalid') });
    return p;
  };

  const submit = async () => {
    const local = validate();
    setProblems(local);
    setError(null);
    if (local.length) return;
    setBusy(true);
    try {
      if (member) {
        const patch: Parameters<typeof api.patchMember>[2] = {};
        if (account.trim() !== member.account) patch.account = account.trim();
        if (name.trim() !== member.name) patch.name = name.trim();
        if (externalKey.trim() !== (member.externalKey ?? '')) patch.externalKey = externalKey.trim() || null;
        if (role !== member.role) patch.role = role;
        onSaved(Object.keys(patch).length ? await api.patchMember(domain, member.id, patch) : member, false);
      } else {
        onSaved(await api.createMember(domain, { account: account.trim(), name: name.trim(), role, ...(externalKey.trim() ? { externalKey: externalKey.trim() } : {}) }), true);
      }
    } catch (err) {
      if (err instanceof ApiError) {
        const fp = err.fieldProblems;
        if (fp.length) setProblems(fp);
        // Conflicts name a field too.
        if (err.code === 'account_conflict') setProblems([{ path: 'account', message: err.message }]);
        if (err.code === 'external_key_conflict' || err.code === 'external_key_required') setProblems([{ path: 'externalKey', message: err.message }]);
      }
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const problem = (path: string) => problems.find((p) => p.path === path)?.message;

  return (
    <Dialog
      open
      title={member ? t('members.editTitle') : t('members.addTitle')}
      onClose={onClose}
      busy={busy}
      testId="member-dialog"
      footer={
        <>
          <button type="button" className="button button-secondary" onClick={onClose} disabled={busy}>
            {t('common.cancel')}
          </button>
          <button type="submit" form={formId} className="button button-primary" disabled={busy} aria-busy={busy || undefined} data-testid="member-save">
            {busy ? <span className="spinner" aria-hidden="true" /> : null}
            {busy ? t('common.saving') : member ? t('common.save') : t('members.add')}
          </button>
        </>
      }
    >
      <form
        id={formId}
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Field label={t('member.account')} hint={t('member.accountHint')} error={problem('account')}>
          {(props) => <input {...props} type="email" autoComplete="off" value={account} onChange={(e) => setAccount(e.target.value)} data-testid="member-account" />}
        </Field>
        <Field label={t('member.name')} error={problem('name')}>
          {(props) => <input {...props} type="text" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} data-testid="member-name" />}
        </Field>
        <Field label={t('member.externalKey')} hint={t('member.externalKeyHint')} error={problem('externalKey')}>
          {(props) => <input {...props} type="text" autoComplete="off" spellCheck={false} value={externalKey} onChange={(e) => setExternalKey(e.target.value)} data-testid="member-external-key" />}
        </Field>
        <Field label={t('members.role')} hint={canSuper ? undefined : t('member.roleHint')} error={problem('role')}>
          {(props) => (
            <select {...props} value={role} onChange={(e) => setRole(e.target.value as Role)} data-testid="member-role">
              {ROLES.map((r) => (
                <option key={r} value={r} disabled={!canSuper && (r === 'super_admin' || member?.role === 'super_admin')}>
                  {t(`role.${r}` as MessageKey)}
                </option>
              ))}
            </select>
          )}
        </Field>
        <ErrorAlert error={error} />
      </form>
    </Dialog>
  );
}
