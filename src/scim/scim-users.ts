import { randomUUID } from 'node:crypto';
import { patchBodyValidation, scimPatch, type ScimPatchOperation } from 'scim-patch';
import type { MemberSessionEnder } from '../admin/sso-switch.js';
import type { MemberSearch } from '../admin/member-search.js';
import type { Clock } from '../domain/clock.js';
import type { Member } from '../domain/member.js';
import { splitEntry } from '../domain/member-index.js';
import type { MemberRepository } from '../domain/members.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError, isAppError } from '../errors/index.js';
import { keys, type AtomicOp, type KeyValueStore } from '../store/index.js';
import { equalityOn, matches, parseFilter, type ScimFilter } from './filter.js';
import { MAX_PATCH_OPERATIONS, URN } from './schema-documents.js';
import { isActive, readScimUser, toScimUser, type ScimUserExtra, type ScimUserInput } from './user-mapping.js';

export interface ScimDeps {
  store: KeyValueStore;
  members: MemberRepository;
  /** Builds the member search indexes of tenants older than them (the list walks the account index). */
  memberSearch: MemberSearch;
  /** Web sessions and OP sessions/tokens (the SSO switch's enders): deactivation and deletion end them all at once. */
  sessionEnders: MemberSessionEnder[];
  clock: Clock;
  publicUrl: string;
}

/** What changed, for the audit trail (ids and flags, never attribute values). */
export interface UserChange {
  member: Member;
  resource: Record<string, unknown>;
  deactivated: boolean;
  sessionsEnded: number;
}

export interface ListQuery {
  filter?: string;
  startIndex: number;
  count: number;
}

export interface ListPage {
  totalResults: number;
  resources: Array<Record<string, unknown>>;
}

const READ_BATCH = 500;

export const scimBase = (publicUrl: string, domain: string): string => `${publicUrl}/scim/v2/${domain}`;

export const versionOf = (resource: Record<string, unknown>): string => (resource.meta as { version: string }).version;

/** 412 when If-Match is given and names another version (`*` matches any). */
export function checkIfMatch(ifMatch: string | undefined, version: string): void {
  if (ifMatch === undefined) return;
  const tags = ifMatch.split(',').map((t) => t.trim());
  if (tags.includes('*') || tags.includes(version)) return;
  throw new AppError('scim_precondition_failed', { detail: 'If-Match does not name the current version' });
}

/** Entra ID sends `op` capitalised (`Replace`), scim-patch wants it lower case; values stay as sent. */
export function normalisePatch(body: unknown): ScimPatchOperation[] {
  const b = body as { schemas?: unknown; Operations?: unknown } | null;
  if (!b || typeof b !== 'object' || !Array.isArray(b.schemas) || !b.schemas.includes(URN.patchOp) || !Array.isArray(b.Operations)) {
    throw new AppError('scim_invalid_syntax', { detail: 'not a PatchOp message' });
  }
  if (b.Operations.length === 0 || b.Operations.length > MAX_PATCH_OPERATIONS) throw new AppError('scim_too_many', { detail: `${b.Operations.length} operations` });
  const ops = b.Operations.map((raw: unknown) => {
    const o = raw as { op?: unknown; path?: unknown; value?: unknown } | null;
    if (!o || typeof o !== 'object' || typeof o.op !== 'string' || !/^(add|remove|replace)$/i.test(o.op)) throw new AppError('scim_invalid_syntax', { detail: 'bad op' });
    if (o.path !== undefined && (typeof o.path !== 'string' || o.path.length > 500)) throw new AppError('scim_invalid_path', { detail: 'bad path' });
    // add and replace carry a value (RFC 7644 §3.5.2.1, §3.5.2.3); without one nothing could be meant.
    if (!/^remove$/i.test(o.op) && o.value === undefined) throw new AppError('scim_invalid_syntax', { detail: `${o.op} without a value` });
    return { ...o, op: o.op.toLowerCase() } as ScimPatchOperation;
  });
  try {
    patchBodyValidation({ schemas: [URN.patchOp], Operations: ops });
  } catch (err) {
    throw new AppError('scim_invalid_syntax', { detail: 'PatchOp refused by scim-patch', cause: err });
  }
  return ops;
}

/**
 * Entra ID's second PATCH dialect: a pathless add/replace whose value keys are attribute paths
 * (`{"name.givenName": "…", "urn:…:enterprise:2.0:User:department": "…"}`). Each such key becomes an
 * operation of its own with that path; plain keys stay in the value object.
 */
export function expandPathless(ops: ScimPatchOperation[]): ScimPatchOperation[] {
  return ops.flatMap((op): ScimPatchOperation[] => {
    if (op.path !== undefined || op.op === 'remove' || !op.value || typeof op.value !== 'object' || Array.isArray(op.value)) return [op];
    const plain: Record<string, unknown> = {};
    const pathed: ScimPatchOperation[] = [];
    for (const [k, v] of Object.entries(op.value as Record<string, unknown>)) {
      if (k.includes('.') || (k.includes(':') && !/^urn:ietf:params:scim:schemas:extension:enterprise:2\.0:User$/i.test(k))) pathed.push({ op: op.op, path: k, value: v });
      else plain[k] = v;
    }
    return [...(Object.keys(plain).length ? [{ ...op, value: plain }] : []), ...pathed];
  });
}

/** Applies PATCH operations to a resource with scim-patch; its refusals become 400 invalidPath / noTarget. */
export function applyPatch(resource: Record<string, unknown>, ops: ScimPatchOperation[]): Record<string, unknown> {
  const doc = structuredClone({ ...resource, meta: { ...(resource.meta as object), created: new Date(0), lastModified: new Date(0) } });
  try {
    return scimPatch(doc as never, ops, { mutateDocument: true, treatMissingAsAdd: true });
  } catch (err) {
    throw new AppError('scim_invalid_path', { detail: `PATCH not applicable: ${err instanceof Error ? err.name : 'error'}`, cause: err });
  }
}

/**
 * SCIM Users of one tenant over the member repository (docs/spec.md §14). Every write of a member and
 * its SCIM attributes is one MULTI (MemberRepository.save with extra ops); a clash on userName or
 * externalId is 409 uniqueness and writes nothing. Super admins are read-only here.
 */
export class ScimUsers {
  constructor(private readonly deps: ScimDeps) {}

  private base(tenant: Tenant): string {
    return scimBase(this.deps.publicUrl, tenant.domain);
  }

  async load(tenant: Tenant, id: string): Promise<{ member: Member; extra: ScimUserExtra | null }> {
    const member = /^[A-Za-z0-9._:-]{1,64}$/.test(id) ? await this.deps.members.findById(tenant.domain, id) : null;
    if (!member) throw new AppError('scim_resource_not_found', { detail: `no user ${id.slice(0, 64)}` });
    const raw = await this.deps.store.get(keys.scimUser(tenant.domain, member.id));
    return { member, extra: raw === null ? null : (JSON.parse(raw) as ScimUserExtra) };
  }

  async read(tenant: Tenant, id: string): Promise<Record<string, unknown>> {
    const { member, extra } = await this.load(tenant, id);
    return toScimUser(member, extra, this.base(tenant), await this.groupsOf(tenant.domain, member.id));
  }

  private async groupsOf(domain: string, memberId: string): Promise<Array<{ value: string; display: string }>> {
    const ids = await this.deps.store.sMembers(keys.scimMemberGroups(domain, memberId));
    if (!ids.length) return [];
    const raws = await this.deps.store.mGet(ids.map((g) => keys.scimGroup(domain, g)));
    return raws.flatMap((r) => (r === null ? [] : [{ value: (JSON.parse(r) as { id: string }).id, display: (JSON.parse(r) as { displayName: string }).displayName }]));
  }

  async create(tenant: Tenant, body: unknown): Promise<UserChange> {
    return this.write(tenant, null, readScimUser(body));
  }

  /** PUT (Okta sends full replaces). An omitted externalId keeps the external key: it is the member's SSO identity (only null or "" removes it). */
  async replace(tenant: Tenant, id: string, body: unknown, ifMatch: string | undefined): Promise<UserChange> {
    const { member, extra } = await this.load(tenant, id);
    checkIfMatch(ifMatch, versionOf(toScimUser(member, extra, this.base(tenant))));
    const input = readScimUser(body);
    const said = body && typeof body === 'object' && Object.keys(body).some((k) => k.toLowerCase() === 'externalid');
    return this.write(tenant, member, said ? input : { ...input, externalKey: member.externalKey });
  }

  async patch(tenant: Tenant, id: string, body: unknown, ifMatch: string | undefined): Promise<UserChange> {
    const ops = normalisePatch(body);
    const { member, extra } = await this.load(tenant, id);
    const current = toScimUser(member, extra, this.base(tenant));
    checkIfMatch(ifMatch, versionOf(current));
    for (const op of ops) {
      if (op.path && /^(id|meta|groups)(\.|$|\[)/i.test(op.path)) throw new AppError('scim_mutability', { detail: `path ${op.path}` });
    }
    const patched = applyPatch(current, expandPathless(ops));
    // displayName and name are shown derived from the member's name when SCIM never set them: left as shown, they stay derived.
    if (extra?.displayName === undefined && patched.displayName === current.displayName) delete patched.displayName;
    if (extra?.name === undefined && JSON.stringify(patched.name) === JSON.stringify(current.name)) delete patched.name;
    return this.write(tenant, member, readScimUser(patched));
  }

  private async write(tenant: Tenant, previous: Member | null, input: ScimUserInput): Promise<UserChange> {
    const { members, clock } = this.deps;
    const domain = tenant.domain;
    if (previous?.role === 'super_admin') throw new AppError('scim_super_admin_protected', { detail: `member ${previous.id} is a super admin` });
    // S-25 / S-26: the external-key rules of the member directory hold here too.
    if (tenant.sso.enabled && !input.externalKey && (!previous || tenant.sso.userKey === 'externalKey')) throw new AppError('external_key_required');
    const id = previous?.id ?? randomUUID();
    // Uniqueness of userName and externalId is decided by the repository's index claims (HSETNX), which
    // release what they claimed when the other one clashes: 409 with nothing written.
    const now = clock.now();
    let status: Member['status'];
    if (input.active === false) status = 'suspended';
    else if (!previous) status = 'in_use';
    else if (input.active === true && !isActive(previous)) status = 'in_use';
    else status = previous.status;
    const next: Member = previous
      ? { ...previous, account: input.account, name: input.name, externalKey: input.externalKey, status }
      : { id, domain, account: input.account, name: input.name, externalKey: input.externalKey, role: 'member', status, appPasswords: [], createdAt: now };
    const extra: ScimUserExtra = { ...input.extra, lastModified: now };
    const extraOps: AtomicOp[] = [{ op: 'set', key: keys.scimUser(domain, id), value: JSON.stringify(extra) }];
    let saved: Member;
    try {
      saved = await members.save(domain, next, extraOps);
    } catch (err) {
      if (isAppError(err) && (err.code === 'account_conflict' || err.code === 'external_key_conflict')) throw new AppError('scim_uniqueness', { detail: err.code, cause: err });
      throw err;
    }
    const deactivated = Boolean(previous && isActive(previous) && !isActive(saved));
    const sessionsEnded = saved.status === 'suspended' && previous ? await this.endSessions(domain, id) : 0;
    return { member: saved, resource: toScimUser(saved, extra, this.base(tenant)), deactivated, sessionsEnded };
  }

  /** Every web session, OP session, grant and token of the member, at once (as suspension and the SSO switch do). */
  private async endSessions(domain: string, memberId: string): Promise<number> {
    let n = 0;
    for (const ender of this.deps.sessionEnders) n += await ender.endSessionsOfMembers(domain, [memberId]);
    return n;
  }

  /** DELETE: the member is removed as the admin API removes one (sessions and tokens end first), with its SCIM attributes and group memberships. */
  async remove(tenant: Tenant, id: string, ifMatch: string | undefined): Promise<{ member: Member; sessionsEnded: number }> {
    const { member, extra } = await this.load(tenant, id);
    if (member.role === 'super_admin') throw new AppError('scim_super_admin_protected', { detail: `member ${member.id} is a super admin` });
    checkIfMatch(ifMatch, versionOf(toScimUser(member, extra, this.base(tenant))));
    const domain = tenant.domain;
    const sessionsEnded = await this.endSessions(domain, member.id);
    // The repository deletes the SCIM attributes and group memberships with the member, in one MULTI.
    await this.deps.members.delete(domain, member.id);
    return { member, sessionsEnded };
  }

  async list(tenant: Tenant, query: ListQuery): Promise<ListPage> {
    const filter = query.filter === undefined ? undefined : parseFilter(query.filter, 'User');
    const domain = tenant.domain;
    const start = query.startIndex - 1;
    if (filter) {
      const lookup = await this.lookup(tenant, filter);
      if (lookup) return { totalResults: lookup.length, resources: lookup.slice(start, start + query.count) };
    }
    await this.deps.memberSearch.ensureIndex(domain);
    // Walks the account index (members in account order, stable across pages).
    const out: Array<Record<string, unknown>> = [];
    let seen = 0;
    let after: string | null = null;
    if (!filter) {
      const totalResults = await this.deps.store.sCard(keys.memberIds(domain));
      for (;;) {
        const entries = await this.deps.store.zRangeByLex(keys.memberSearchByAccount(domain), after === null ? '-' : { value: after, exclusive: true }, '+', READ_BATCH);
        if (!entries.length) break;
        after = entries[entries.length - 1]!;
        const from = Math.max(0, start - seen);
        const wanted = entries.slice(from, from + query.count - out.length);
        seen += entries.length;
        if (wanted.length) out.push(...(await this.resources(tenant, wanted.map((e) => splitEntry(e).id))));
        if (out.length >= query.count) break;
      }
      return { totalResults, resources: out.slice(0, query.count) };
    }
    let total = 0;
    for (;;) {
      const entries = await this.deps.store.zRangeByLex(keys.memberSearchByAccount(domain), after === null ? '-' : { value: after, exclusive: true }, '+', READ_BATCH);
      if (!entries.length) break;
      after = entries[entries.length - 1]!;
      for (const r of await this.resources(tenant, entries.map((e) => splitEntry(e).id))) {
        if (!matches(r, filter)) continue;
        if (total >= start && out.length < query.count) out.push(r);
        total++;
      }
    }
    return { totalResults: total, resources: out };
  }

  /** Index lookups for `userName eq`, `externalId eq`, `id eq` (Entra's and Okta's checks before a create); null when the filter needs a scan. */
  private async lookup(tenant: Tenant, filter: ScimFilter): Promise<Array<Record<string, unknown>> | null> {
    const eq = equalityOn(filter, ['username', 'externalid', 'id']);
    if (!eq) return null;
    const { members } = this.deps;
    const m =
      eq.name === 'username'
        ? await members.findByAccount(tenant.domain, eq.value)
        : eq.name === 'externalid'
          ? await members.findByExternalKey(tenant.domain, eq.value)
          : /^[A-Za-z0-9._:-]{1,64}$/.test(eq.value)
            ? await members.findById(tenant.domain, eq.value)
            : null;
    return m ? this.resources(tenant, [m.id]) : [];
  }

  private async resources(tenant: Tenant, ids: string[]): Promise<Array<Record<string, unknown>>> {
    if (!ids.length) return [];
    const domain = tenant.domain;
    const [records, extras] = await Promise.all([
      this.deps.store.mGet(ids.map((id) => keys.member(domain, id))),
      this.deps.store.mGet(ids.map((id) => keys.scimUser(domain, id))),
    ]);
    return records.flatMap((raw, i) => (raw === null ? [] : [toScimUser(JSON.parse(raw) as Member, extras[i] ? (JSON.parse(extras[i]) as ScimUserExtra) : null, this.base(tenant))]));
  }
}
