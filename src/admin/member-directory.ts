import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { AppPassword, Member } from '../domain/member.js';
import type { MemberRepository, NewMember } from '../domain/members.js';
import { checkPasswordPolicy, hashPassword } from '../domain/passwords.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';
import type { WebSessions } from '../sso/sessions.js';
import { MemberSearch, type MemberSearchPage, type MemberSearchQuery } from './member-search.js';

/** A member as the admin API shows it: never a password hash or an app password's hash. */
export interface MemberView {
  id: string;
  account: string;
  name: string;
  externalKey: string | null;
  role: Member['role'];
  status: Member['status'];
  hasPassword: boolean;
  appPasswords: Array<{ id: string; name: string; createdAt: string }>;
}

export function memberView(m: Member): MemberView {
  return {
    id: m.id,
    account: m.account,
    name: m.name,
    externalKey: m.externalKey ?? null,
    role: m.role,
    status: m.status,
    hasPassword: Boolean(m.passwordHash),
    appPasswords: m.appPasswords.map((p) => ({ id: p.id, name: p.name, createdAt: new Date(p.createdAt).toISOString() })),
  };
}

export interface Invitation {
  id: string;
  memberId: string;
  createdAt: number;
  expiresAt: number;
}

export const INVITATION_TTL_MS = 7 * 24 * 3600_000;

/** S-23: refused with 409 `sso_enabled` while SSO is on. */
export function refuseWhileSso(tenant: Tenant, what: string): void {
  if (tenant.sso.enabled) throw new AppError('sso_enabled', { detail: `${what} refused while SSO is on`, message: `${what} is not available while single sign-on is on.` });
}

/** S-24: only while SSO is on. */
export function requireSso(tenant: Tenant, what: string): void {
  if (!tenant.sso.enabled) throw new AppError('sso_required', { detail: `${what} needs SSO on`, message: `${what} is only available while single sign-on is on.` });
}

/**
 * The member directory's use cases (docs/spec.md §6, §7, §11), shared by the admin API and the service side:
 * every S-23/S-25 rule is enforced here, once.
 */
export class MemberDirectory {
  readonly searcher: MemberSearch;

  constructor(
    private readonly members: MemberRepository,
    private readonly sessions: WebSessions,
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    /** S-19 / O-4: a member suspended or removed loses OP sessions and grants too (services told by back-channel logout). */
    private readonly opSessions?: { revokeMember(domain: string, memberId: string): Promise<unknown> },
  ) {
    this.searcher = new MemberSearch(store);
  }

  async load(tenant: Tenant, id: string): Promise<Member> {
    const member = /^[A-Za-z0-9._:-]{1,64}$/.test(id) ? await this.members.findById(tenant.domain, id) : null;
    if (!member) throw new AppError('unknown_member', { detail: `no member ${id.slice(0, 64)}` });
    return member;
  }

  async create(tenant: Tenant, input: NewMember & { password?: string }): Promise<Member> {
    if (tenant.sso.enabled && !input.externalKey) throw new AppError('external_key_required');
    if (input.password !== undefined) refuseWhileSso(tenant, 'Setting a password when adding a member');
    const { password, ...fields } = input;
    if (await this.members.findByAccount(tenant.domain, fields.account)) throw new AppError('account_conflict');
    const passwordHash = password === undefined ? undefined : await hashPassword(checkPasswordPolicy(tenant.passwordPolicy, password));
    return this.members.save(tenant.domain, { ...fields, id: undefined, passwordHash, appPasswords: [], createdAt: this.clock.now() });
  }

  async update(tenant: Tenant, member: Member, patch: Partial<Pick<Member, 'name' | 'role' | 'status' | 'account'>> & { externalKey?: string | null }): Promise<Member> {
    // S-24/S-26: external keys are set while SSO is on (and may be set before enabling, for mapping).
    const next: Member = { ...member, ...patch, externalKey: patch.externalKey === undefined ? member.externalKey : (patch.externalKey ?? undefined) };
    if (tenant.sso.enabled && !next.externalKey && tenant.sso.userKey === 'externalKey') throw new AppError('external_key_required');
    const saved = await this.members.save(tenant.domain, next);
    if (patch.status && patch.status !== 'in_use' && member.status === 'in_use') {
      await this.sessions.destroyAllOfMember(tenant.domain, member.id);
      await this.opSessions?.revokeMember(tenant.domain, member.id);
    }
    return saved;
  }

  async remove(tenant: Tenant, member: Member): Promise<void> {
    await this.sessions.destroyAllOfMember(tenant.domain, member.id);
    await this.opSessions?.revokeMember(tenant.domain, member.id);
    await this.members.delete(tenant.domain, member.id);
  }

  async setPassword(tenant: Tenant, member: Member, password: unknown): Promise<void> {
    refuseWhileSso(tenant, "Changing a member's password");
    const passwordHash = await hashPassword(checkPasswordPolicy(tenant.passwordPolicy, password));
    await this.members.replace({ ...member, passwordHash });
    await this.sessions.destroyAllOfMember(tenant.domain, member.id);
  }

  /** Creates an invitation link token for a pending member; the token is returned once. */
  async invite(tenant: Tenant, member: Member): Promise<{ invitation: Invitation; token: string }> {
    refuseWhileSso(tenant, 'Inviting members');
    if (member.status !== 'pending') throw new AppError('conflict', { message: 'Only pending members can be invited.' });
    const token = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    const invitation: Invitation = { id: `inv_${randomBytes(8).toString('hex')}`, memberId: member.id, createdAt: now, expiresAt: now + INVITATION_TTL_MS };
    await this.store.hSet(keys.invitations(tenant.domain), { [invitation.id]: JSON.stringify({ ...invitation, tokenDigest: digestForKey(token) }) });
    await this.store.set(keys.invitationByToken(digestForKey(token)), `${tenant.domain} ${invitation.id}`, { ttlMs: INVITATION_TTL_MS });
    return { invitation, token };
  }

  async createAppPassword(tenant: Tenant, member: Member, name: string): Promise<{ appPassword: Omit<AppPassword, 'hash'>; password: string }> {
    refuseWhileSso(tenant, 'Creating third-party app passwords');
    if (!tenant.thirdPartyAppPasswordsAllowed) throw new AppError('forbidden', { message: 'Third-party app passwords are switched off for this organisation.' });
    if (member.appPasswords.length >= 20) throw new AppError('conflict', { message: 'A member can hold at most 20 app passwords.' });
    const password = randomBytes(18).toString('base64url');
    const entry: AppPassword = { id: `app_${randomBytes(8).toString('hex')}`, name, hash: await hashPassword(password), createdAt: this.clock.now() };
    await this.members.replace({ ...member, appPasswords: [...member.appPasswords, entry] });
    const { hash: _hash, ...visible } = entry;
    return { appPassword: visible, password };
  }

  async deleteAppPassword(member: Member, id: string): Promise<boolean> {
    if (!member.appPasswords.some((p) => p.id === id)) return false;
    await this.members.replace({ ...member, appPasswords: member.appPasswords.filter((p) => p.id !== id) });
    return true;
  }

  /** A page of the member search (see member-search.ts): prefix on account / name words / external key, filters, ordered paging. */
  search(tenant: Tenant, query: MemberSearchQuery): Promise<MemberSearchPage> {
    return this.searcher.search(tenant, query);
  }
}
