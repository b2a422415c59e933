import { randomUUID } from 'node:crypto';
import { keys, type AtomicOp, type KeyValueStore } from '../store/index.js';
import type { z } from 'zod';
import { AppError } from '../errors/index.js';
import { memberSchema, type Member } from './member.js';
import { memberIndexOps } from './member-index.js';

export type NewMember = Omit<z.input<typeof memberSchema>, 'id' | 'domain'> & { id?: string };

/** Member records and their unique indexes (account, external key) within one tenant. */
export class MemberRepository {
  constructor(private readonly store: KeyValueStore) {}

  async findById(domain: string, id: string): Promise<Member | null> {
    const raw = await this.store.get(keys.member(domain, id));
    return raw === null ? null : (JSON.parse(raw) as Member);
  }

  async findByAccount(domain: string, account: string): Promise<Member | null> {
    const id = await this.store.hGet(keys.memberByAccount(domain), account.toLowerCase());
    return id === null ? null : this.findById(domain, id);
  }

  async findByExternalKey(domain: string, externalKey: string): Promise<Member | null> {
    const id = await this.store.hGet(keys.memberByExternalKey(domain), externalKey);
    return id === null ? null : this.findById(domain, id);
  }

  /**
   * Creates or replaces a member, keeping the indexes in step. Index entries are claimed with
   * HSETNX first, so a clash with another member is detected instead of silently overwritten; a claim
   * this call made is released again when a later one clashes. `extraOps` (keys of the same tenant) are
   * written in the member's own MULTI (SCIM attributes, group memberships).
   */
  async save(domain: string, input: NewMember, extraOps: AtomicOp[] = []): Promise<Member> {
    const member = memberSchema.parse({ ...input, id: input.id ?? randomUUID(), domain });
    const previous = await this.findById(domain, member.id);
    const claim = async (key: string, value: string | undefined, oldValue: string | undefined): Promise<void> => {
      if (value === undefined || value === oldValue) return;
      const claimed = await this.store.hSetNx(key, value, member.id);
      if (!claimed && (await this.store.hGet(key, value)) !== member.id) {
        throw new AppError(key === keys.memberByAccount(domain) ? 'account_conflict' : 'external_key_conflict', { detail: `index clash for member ${member.id}` });
      }
    };
    const claimedAccount = member.account !== previous?.account;
    await claim(keys.memberByAccount(domain), member.account, previous?.account);
    try {
      await claim(keys.memberByExternalKey(domain), member.externalKey, previous?.externalKey);
    } catch (err) {
      // Never leave an account claimed by a member that was not written (a half-created member).
      if (claimedAccount && (await this.store.hGet(keys.memberByAccount(domain), member.account)) === member.id) await this.store.hDel(keys.memberByAccount(domain), member.account);
      throw err;
    }
    // The record, the id set, the search indexes and the released unique-index entries change together.
    await this.store.atomic([
      { op: 'set', key: keys.member(domain, member.id), value: JSON.stringify(member) },
      { op: 'sAdd', key: keys.memberIds(domain), members: [member.id] },
      ...memberIndexOps(domain, previous, member),
      ...(previous && previous.account !== member.account ? [{ op: 'hDel' as const, key: keys.memberByAccount(domain), fields: [previous.account] }] : []),
      ...(previous?.externalKey && previous.externalKey !== member.externalKey ? [{ op: 'hDel' as const, key: keys.memberByExternalKey(domain), fields: [previous.externalKey] }] : []),
      ...extraOps,
    ]);
    return member;
  }

  /** Deletes a member and its index entries (sessions are ended by the caller). True when it existed. */
  async delete(domain: string, id: string, extraOps: AtomicOp[] = []): Promise<boolean> {
    const member = await this.findById(domain, id);
    if (!member) return false;
    // Whoever deletes (admin API, SCIM), the member leaves its SCIM groups in the same MULTI.
    const groups = await this.store.sMembers(keys.scimMemberGroups(domain, id));
    const leaveGroups = groups.map((g): AtomicOp => ({ op: 'sRem', key: keys.scimGroupMembers(domain, g), members: [id] }));
    await this.store.atomic([...deleteOps(domain, member), ...leaveGroups, ...extraOps]);
    return true;
  }

  /**
   * Deletes members by id, as delete() does each (record, id set, unique and search indexes), in one
   * MULTI for the batch; ids with no record are skipped. Keep batches to a few hundred. Returns how many existed.
   */
  async deleteMany(domain: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const records = await this.store.mGet(ids.map((id) => keys.member(domain, id)));
    const found = records.flatMap((r) => (r === null ? [] : [JSON.parse(r) as Member]));
    // (ids whose record is gone are still taken out of the id set)
    const ops: AtomicOp[] = [{ op: 'sRem', key: keys.memberIds(domain), members: ids }, ...found.flatMap((m) => deleteOps(domain, m))];
    await this.store.atomic(ops);
    return found.length;
  }

  /** Writes a member whose identifying fields (account, name, external key) did not change: no index is touched. */
  async replace(member: Member): Promise<void> {
    await this.store.set(keys.member(member.domain, member.id), JSON.stringify(member));
  }
}

/** What deleting a member writes: its record, its id in the set, its unique-index entries and its search entries. */
function deleteOps(domain: string, member: Member): AtomicOp[] {
  return [
    { op: 'del', key: keys.member(domain, member.id) },
    { op: 'sRem', key: keys.memberIds(domain), members: [member.id] },
    { op: 'hDel', key: keys.memberByAccount(domain), fields: [member.account] },
    ...(member.externalKey ? [{ op: 'hDel' as const, key: keys.memberByExternalKey(domain), fields: [member.externalKey] }] : []),
    ...memberIndexOps(domain, member, null),
    // Its SCIM attributes and its SCIM group list (docs/spec.md §14).
    { op: 'del', key: keys.scimUser(domain, member.id) },
    { op: 'del', key: keys.scimMemberGroups(domain, member.id) },
  ];
}
