import { randomUUID } from 'node:crypto';
import type { ScimPatchOperation } from 'scim-patch';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { keys, type AtomicOp, type KeyValueStore } from '../store/index.js';
import type { Clock } from '../domain/clock.js';
import { equalityOn, matches, parseFilter } from './filter.js';
import { MAX_PATCH_MEMBERS, URN } from './schema-documents.js';
import { applyPatch, checkIfMatch, normalisePatch, scimBase, type ListPage, type ListQuery } from './scim-users.js';

/*
 * SCIM Groups of one tenant (docs/spec.md §14). The product has no member groups of its own (a tenant's
 * `group` is its company group), so a SCIM group is kept here: a record, its member set (SSCAN-paged,
 * SADD/SREM in pages as the IdP sends them) and, per member, the set of its groups, so deleting a member
 * leaves no dangling membership. Member changes never load the whole group: a PATCH touches only the
 * members it names.
 */

interface StoredGroup {
  id: string;
  displayName: string;
  externalId?: string;
  created: number;
  lastModified: number;
  version: number;
}

export interface GroupChange {
  group: StoredGroup;
  added: number;
  removed: number;
}

const ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const MAX_NAME = 256;

const bad = (detail: string): AppError => new AppError('scim_invalid_value', { detail, message: `SCIM group: ${detail}.` });

function field(o: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(o).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : o[key];
}

function displayNameOf(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_NAME || /[\u0000-\u001f\u007f]/.test(v)) throw bad(`displayName must be 1–${MAX_NAME} characters`);
  return v;
}

function externalIdOf(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || v.length > MAX_NAME) throw bad(`externalId must be a string of at most ${MAX_NAME} characters`);
  return v;
}

/** Member ids of a `members` value: [{value}] (or one {value}); at most MAX_PATCH_MEMBERS. */
function memberIdsOf(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (list.length > MAX_PATCH_MEMBERS) throw new AppError('scim_too_many', { detail: `${list.length} members in one request` });
  return list.map((m) => {
    const value = m && typeof m === 'object' ? field(m as Record<string, unknown>, 'value') : undefined;
    if (typeof value !== 'string' || !ID_RE.test(value)) throw bad('each member needs a value that is a user id');
    return value;
  });
}

export class ScimGroups {
  constructor(private readonly deps: { store: KeyValueStore; clock: Clock; publicUrl: string }) {}

  private base(tenant: Tenant): string {
    return scimBase(this.deps.publicUrl, tenant.domain);
  }

  async load(tenant: Tenant, id: string): Promise<StoredGroup> {
    const raw = ID_RE.test(id) ? await this.deps.store.get(keys.scimGroup(tenant.domain, id)) : null;
    if (raw === null) throw new AppError('scim_resource_not_found', { detail: `no group ${id.slice(0, 64)}` });
    return JSON.parse(raw) as StoredGroup;
  }

  /** The group as SCIM shows it; its members only when asked (they may be 50,000). */
  async resource(tenant: Tenant, g: StoredGroup, withMembers: boolean): Promise<Record<string, unknown>> {
    const base = this.base(tenant);
    const members = withMembers ? await this.deps.store.sMembers(keys.scimGroupMembers(tenant.domain, g.id)) : null;
    return {
      schemas: [URN.group],
      id: g.id,
      ...(g.externalId ? { externalId: g.externalId } : {}),
      displayName: g.displayName,
      ...(members ? { members: members.sort().map((m) => ({ value: m, $ref: `${base}/Users/${m}`, type: 'User' })) } : {}),
      meta: { resourceType: 'Group', created: new Date(g.created).toISOString(), lastModified: new Date(g.lastModified).toISOString(), location: `${base}/Groups/${g.id}`, version: `W/"${g.version}"` },
    };
  }

  /** 400 invalidValue unless every id is a member of the tenant. */
  private async checkMembers(domain: string, ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 1000) {
      const batch = ids.slice(i, i + 1000);
      const found = await this.deps.store.mGet(batch.map((id) => keys.member(domain, id)));
      const missing = batch.filter((_, j) => found[j] === null);
      if (missing.length) throw bad(`${missing.length} member value(s) name no user of this domain`);
    }
  }

  /** Claims a displayName for the group (409 uniqueness when another group has it); returns a release function. */
  private async claimName(domain: string, id: string, name: string): Promise<() => Promise<void>> {
    const key = keys.scimGroupByName(domain);
    const lower = name.toLowerCase();
    if (!(await this.deps.store.hSetNx(key, lower, id)) && (await this.deps.store.hGet(key, lower)) !== id) {
      throw new AppError('scim_uniqueness', { detail: 'group displayName taken' });
    }
    return async () => {
      if ((await this.deps.store.hGet(key, lower)) === id) await this.deps.store.hDel(key, lower);
    };
  }

  private membershipOps(domain: string, groupId: string, add: string[], remove: string[]): AtomicOp[] {
    const ops: AtomicOp[] = [];
    if (add.length) ops.push({ op: 'sAdd', key: keys.scimGroupMembers(domain, groupId), members: add });
    if (remove.length) ops.push({ op: 'sRem', key: keys.scimGroupMembers(domain, groupId), members: remove });
    for (const m of add) ops.push({ op: 'sAdd', key: keys.scimMemberGroups(domain, m), members: [groupId] });
    for (const m of remove) ops.push({ op: 'sRem', key: keys.scimMemberGroups(domain, m), members: [groupId] });
    return ops;
  }

  async create(tenant: Tenant, body: unknown): Promise<GroupChange> {
    const o = body && typeof body === 'object' ? (body as Record<string, unknown>) : null;
    if (!o) throw new AppError('scim_invalid_syntax', { detail: 'body is not an object' });
    const domain = tenant.domain;
    const now = this.deps.clock.now();
    const group: StoredGroup = { id: randomUUID(), displayName: displayNameOf(field(o, 'displayName')), externalId: externalIdOf(field(o, 'externalId')), created: now, lastModified: now, version: 1 };
    const members = [...new Set(memberIdsOf(field(o, 'members')))];
    await this.checkMembers(domain, members);
    const release = await this.claimName(domain, group.id, group.displayName);
    try {
      await this.deps.store.atomic([
        { op: 'set', key: keys.scimGroup(domain, group.id), value: JSON.stringify(group) },
        { op: 'sAdd', key: keys.scimGroupIds(domain), members: [group.id] },
        ...this.membershipOps(domain, group.id, members, []),
      ]);
    } catch (err) {
      await release();
      throw err;
    }
    return { group, added: members.length, removed: 0 };
  }

  /** PUT: displayName, externalId and the whole member list. */
  async replace(tenant: Tenant, id: string, body: unknown, ifMatch: string | undefined): Promise<GroupChange> {
    const o = body && typeof body === 'object' ? (body as Record<string, unknown>) : null;
    if (!o) throw new AppError('scim_invalid_syntax', { detail: 'body is not an object' });
    const current = await this.load(tenant, id);
    checkIfMatch(ifMatch, `W/"${current.version}"`);
    const wanted = field(o, 'members') === undefined ? null : new Set(memberIdsOf(field(o, 'members')));
    return this.apply(tenant, current, { displayName: displayNameOf(field(o, 'displayName')), externalId: externalIdOf(field(o, 'externalId')) }, wanted, [], []);
  }

  /**
   * PATCH: operations on `members` (add / remove by value list, remove by `members[value eq "…"]`, replace)
   * become set changes of just those members; the others (displayName, externalId) go through scim-patch.
   */
  async patch(tenant: Tenant, id: string, body: unknown, ifMatch: string | undefined): Promise<GroupChange> {
    const ops = normalisePatch(body);
    const current = await this.load(tenant, id);
    checkIfMatch(ifMatch, `W/"${current.version}"`);
    const add = new Set<string>();
    const remove = new Set<string>();
    let replaceWith: Set<string> | null = null;
    const rest: ScimPatchOperation[] = [];
    let values = 0;
    const count = (ids: string[]): string[] => {
      values += ids.length;
      if (values > MAX_PATCH_MEMBERS) throw new AppError('scim_too_many', { detail: `more than ${MAX_PATCH_MEMBERS} member values` });
      return ids;
    };
    const doAdd = (ids: string[]): void => {
      for (const m of ids) {
        remove.delete(m);
        add.add(m);
      }
    };
    const doRemove = (ids: string[]): void => {
      for (const m of ids) {
        add.delete(m);
        remove.add(m);
      }
    };
    const doReplace = (ids: string[]): void => {
      replaceWith = new Set(ids);
      add.clear();
      remove.clear();
    };
    for (const op of ops) {
      const path = op.path?.trim();
      const filtered = path ? /^members\[\s*value\s+eq\s+"([^"]+)"\s*\]$/i.exec(path) : null;
      if (filtered && op.op === 'remove') {
        doRemove(count([filtered[1]!]));
        continue;
      }
      if (path && /^members$/i.test(path)) {
        const ids = count(memberIdsOf(op.value));
        if (op.op === 'add') doAdd(ids);
        else if (op.op === 'replace') doReplace(ids);
        else if (op.value === undefined) doReplace([]);
        else doRemove(ids);
        continue;
      }
      if (path && /^members/i.test(path)) throw new AppError('scim_invalid_path', { detail: `unsupported members path` });
      if (!path && op.op !== 'remove' && op.value && typeof op.value === 'object') {
        // Okta and Entra send {op: replace, value: {id, displayName, members?}} without a path.
        const others: Record<string, unknown> = {};
        let members: unknown;
        for (const [k, v] of Object.entries(op.value as Record<string, unknown>)) {
          if (k.toLowerCase() === 'members') members = v;
          else if (k.toLowerCase() !== 'id') others[k] = v;
        }
        if (members !== undefined) {
          const ids = count(memberIdsOf(members));
          if (op.op === 'add') doAdd(ids);
          else doReplace(ids);
        }
        if (Object.keys(others).length) rest.push({ ...op, value: others });
        continue;
      }
      if (path && /^(id|meta)(\.|$)/i.test(path)) throw new AppError('scim_mutability', { detail: `path ${path}` });
      rest.push(op);
    }
    let displayName = current.displayName;
    let externalId = current.externalId;
    if (rest.length) {
      const doc = { schemas: [URN.group], id: current.id, displayName, ...(externalId ? { externalId } : {}), meta: {} };
      const patched = applyPatch(doc, rest);
      displayName = displayNameOf(field(patched, 'displayName'));
      externalId = externalIdOf(field(patched, 'externalId'));
    }
    return this.apply(tenant, current, { displayName, externalId }, replaceWith, [...add], [...remove]);
  }

  private async apply(tenant: Tenant, current: StoredGroup, fields: { displayName: string; externalId: string | undefined }, replaceWith: Set<string> | null, add: string[], remove: string[]): Promise<GroupChange> {
    const { store, clock } = this.deps;
    const domain = tenant.domain;
    if (replaceWith) {
      const now = new Set(await store.sMembers(keys.scimGroupMembers(domain, current.id)));
      for (const m of replaceWith) if (!now.has(m) && !add.includes(m)) add.push(m);
      for (const m of now) if (!replaceWith.has(m) && !add.includes(m)) remove.push(m);
    }
    await this.checkMembers(domain, add);
    const renamed = fields.displayName.toLowerCase() !== current.displayName.toLowerCase();
    const release = renamed ? await this.claimName(domain, current.id, fields.displayName) : null;
    const group: StoredGroup = { ...current, displayName: fields.displayName, externalId: fields.externalId, lastModified: clock.now(), version: current.version + 1 };
    if (group.externalId === undefined) delete group.externalId;
    try {
      await store.atomic([
        { op: 'set', key: keys.scimGroup(domain, group.id), value: JSON.stringify(group) },
        ...(renamed ? [{ op: 'hDel' as const, key: keys.scimGroupByName(domain), fields: [current.displayName.toLowerCase()] }] : []),
        ...this.membershipOps(domain, group.id, add, remove),
      ]);
    } catch (err) {
      await release?.();
      throw err;
    }
    return { group, added: add.length, removed: remove.length };
  }

  async remove(tenant: Tenant, id: string, ifMatch: string | undefined): Promise<StoredGroup> {
    const g = await this.load(tenant, id);
    checkIfMatch(ifMatch, `W/"${g.version}"`);
    const domain = tenant.domain;
    const members = await this.deps.store.sMembers(keys.scimGroupMembers(domain, g.id));
    await this.deps.store.atomic([
      { op: 'del', key: keys.scimGroup(domain, g.id) },
      { op: 'sRem', key: keys.scimGroupIds(domain), members: [g.id] },
      { op: 'hDel', key: keys.scimGroupByName(domain), fields: [g.displayName.toLowerCase()] },
      { op: 'del', key: keys.scimGroupMembers(domain, g.id) },
      ...members.map((m): AtomicOp => ({ op: 'sRem', key: keys.scimMemberGroups(domain, m), members: [g.id] })),
    ]);
    return g;
  }

  async list(tenant: Tenant, query: ListQuery, withMembers: boolean): Promise<ListPage> {
    const filter = query.filter === undefined ? undefined : parseFilter(query.filter, 'Group');
    const domain = tenant.domain;
    const start = query.startIndex - 1;
    const byName = filter ? equalityOn(filter, ['displayname']) : null;
    let ids: string[];
    if (byName) {
      const id = await this.deps.store.hGet(keys.scimGroupByName(domain), byName.value.toLowerCase());
      ids = id === null ? [] : [id];
    } else {
      ids = (await this.deps.store.sMembers(keys.scimGroupIds(domain))).sort();
    }
    const needMembers = withMembers || Boolean(filter && /members/i.test(query.filter ?? ''));
    const out: Array<Record<string, unknown>> = [];
    let total = 0;
    for (let i = 0; i < ids.length; i += 500) {
      const batch = ids.slice(i, i + 500);
      if (!filter && (i + batch.length <= start || out.length >= query.count)) {
        total += batch.length;
        continue;
      }
      const raws = await this.deps.store.mGet(batch.map((g) => keys.scimGroup(domain, g)));
      for (const raw of raws) {
        if (raw === null) continue;
        const r = await this.resource(tenant, JSON.parse(raw) as StoredGroup, needMembers);
        if (filter && !matches(r, filter)) continue;
        if (total >= start && out.length < query.count) out.push(withMembers ? r : { ...r, members: undefined });
        total++;
      }
    }
    return { totalResults: total, resources: out };
  }
}
