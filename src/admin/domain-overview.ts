import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { memberSchema, type Member } from '../domain/member.js';
import { memberIndexOps } from '../domain/member-index.js';
import { checkPasswordPolicy, hashPassword } from '../domain/passwords.js';
import { tenantSchema, type Tenant, type TenantInput } from '../domain/tenant.js';
import type { TenantRepository } from '../domain/tenants.js';
import { AppError } from '../errors/index.js';
import type { MdmMode } from '../mdm/mdm-keys.js';
import type { Logger } from '../observability/logger.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';
import { INVITATION_TTL_MS, type Invitation } from './member-directory.js';

/**
 * Records that a member of the tenant just signed in: one SET per successful login, read by the
 * operator's domain list. A store error here is logged and does not fail the login it follows.
 */
export async function recordTenantLogin(deps: { store: KeyValueStore; clock: Clock }, domain: string, log?: Pick<Logger, 'warn'>): Promise<void> {
  try {
    await deps.store.set(keys.tenantLastLogin(domain), String(deps.clock.now()));
  } catch (err) {
    log?.warn({ err, domain }, 'could not record the tenant last-login time');
  }
}

/** One row of the operator's domain list. */
export interface DomainSummary {
  domain: string;
  name: string;
  plan: Tenant['plan'];
  group: string | null;
  sso: { enabled: boolean; type: Tenant['sso']['type'] };
  mdm: { mode: MdmMode };
  memberCount: number;
  lastLoginAt: string | null;
}

export interface DomainSummaryPage {
  domains: DomainSummary[];
  /** The `cursor` of the next page (the last domain of this one), or null at the end. */
  nextCursor: string | null;
  total: number;
}

/**
 * The operator's view over every tenant, a page at a time in domain order. Per tenant one MGET of its
 * own slot (record, last login, MDM settings) and one SCARD (members): the work of a page is bounded by
 * its size, whatever the number of tenants.
 */
export async function listDomainSummaries(store: KeyValueStore, tenants: TenantRepository, query: { cursor?: string; count: number; only?: string }): Promise<DomainSummaryPage> {
  const all = query.only === undefined ? await tenants.listDomains() : [query.only];
  const start = query.cursor === undefined ? 0 : all.findIndex((d) => d > query.cursor!);
  const slice = start < 0 ? [] : all.slice(start, start + query.count);
  const rows = await Promise.all(
    slice.map(async (domain): Promise<DomainSummary | null> => {
      const [[tenantRaw, lastLogin, mdmRaw], memberCount] = await Promise.all([
        store.mGet([keys.tenant(domain), keys.tenantLastLogin(domain), keys.mdmSettings(domain)]),
        store.sCard(keys.memberIds(domain)),
      ]);
      if (tenantRaw === null || tenantRaw === undefined) return null;
      const tenant = JSON.parse(tenantRaw) as Tenant;
      const mdm = mdmRaw ? (JSON.parse(mdmRaw) as { mode?: MdmMode }) : {};
      const last = lastLogin === null || lastLogin === undefined ? NaN : Number(lastLogin);
      return {
        domain,
        name: tenant.name,
        plan: tenant.plan,
        group: tenant.group ?? null,
        sso: { enabled: tenant.sso.enabled, type: tenant.sso.type },
        mdm: { mode: mdm.mode ?? 'none' },
        memberCount,
        lastLoginAt: Number.isFinite(last) ? new Date(last).toISOString() : null,
      };
    }),
  );
  const end = start < 0 ? all.length : start + slice.length;
  return { domains: rows.filter((r): r is DomainSummary => r !== null), nextCursor: end < all.length ? slice[slice.length - 1]! : null, total: all.length };
}

export interface NewDomainInput {
  domain: string;
  name: string;
  plan: Tenant['plan'];
  group?: string;
  superAdmin: { account: string; name: string; password?: string };
}

export interface CreatedDomain {
  tenant: Tenant;
  superAdmin: Member;
  /** When no password was given: the invitation link (shown once) the super admin sets theirs with. */
  invitation: { id: string; token: string; expiresAt: number } | null;
}

const CREATE_LOCK_TTL_MS = 30_000;

/**
 * A new tenant together with its first super admin. Everything is checked first (domain free, password
 * against the new tenant's policy); then the tenant record, the member, its unique and search indexes
 * and its invitation are written in one MULTI of the tenant's slot, so a failure leaves no tenant
 * without its administrator. The tenant index (another slot) is written before it: a failure between
 * the two leaves only a listed domain with no record, which listing skips and a retry fills. The
 * invitation's token key (global) is written last; if that write fails the member stays pending and
 * the operator can invite again through the members API.
 */
export async function createDomainWithSuperAdmin(deps: { store: KeyValueStore; tenants: TenantRepository; clock: Clock }, input: NewDomainInput): Promise<CreatedDomain> {
  const { store, tenants, clock } = deps;
  const tenantInput: TenantInput = {
    domain: input.domain,
    name: input.name,
    plan: input.plan,
    ...(input.group ? { group: input.group } : {}),
    sso: { enabled: false, type: 'saml', userKey: 'externalKey', setExpireTime: false },
  };
  const tenant = tenantSchema.parse(tenantInput);
  const { password } = input.superAdmin;
  // A new tenant has SSO off (S-23): its super admin signs in with a password, set now or through the invitation.
  const passwordHash = password === undefined ? undefined : await hashPassword(checkPasswordPolicy(tenant.passwordPolicy, password));
  const lockKey = keys.tenantCreateLock(tenant.domain);
  if (!(await store.set(lockKey, '1', { ttlMs: CREATE_LOCK_TTL_MS, nx: true }))) {
    throw new AppError('conflict', { message: 'This domain is being registered right now.', detail: 'tenant create lock held' });
  }
  try {
    if (await tenants.find(tenant.domain)) throw new AppError('conflict', { message: 'This domain is already registered.' });
    const now = clock.now();
    const member = memberSchema.parse({
      id: randomUUID(),
      domain: tenant.domain,
      account: input.superAdmin.account,
      name: input.superAdmin.name,
      role: 'super_admin',
      status: passwordHash ? 'in_use' : 'pending',
      passwordHash,
      appPasswords: [],
      createdAt: now,
    });
    const token = passwordHash ? null : randomBytes(32).toString('base64url');
    const invitation: Invitation | null = token ? { id: `inv_${randomBytes(8).toString('hex')}`, memberId: member.id, createdAt: now, expiresAt: now + INVITATION_TTL_MS } : null;
    await store.sAdd(keys.tenantIndex(), tenant.domain);
    await store.atomic([
      { op: 'set', key: keys.tenant(tenant.domain), value: JSON.stringify(tenant) },
      { op: 'set', key: keys.member(tenant.domain, member.id), value: JSON.stringify(member) },
      { op: 'sAdd', key: keys.memberIds(tenant.domain), members: [member.id] },
      { op: 'hSet', key: keys.memberByAccount(tenant.domain), fields: { [member.account.toLowerCase()]: member.id } },
      ...memberIndexOps(tenant.domain, null, member),
      ...(invitation && token ? [{ op: 'hSet' as const, key: keys.invitations(tenant.domain), fields: { [invitation.id]: JSON.stringify({ ...invitation, tokenDigest: digestForKey(token) }) } }] : []),
    ]);
    if (invitation && token) await store.set(keys.invitationByToken(digestForKey(token)), `${tenant.domain} ${invitation.id}`, { ttlMs: INVITATION_TTL_MS });
    return { tenant, superAdmin: member, invitation: invitation && token ? { id: invitation.id, token, expiresAt: invitation.expiresAt } : null };
  } finally {
    await store.del(lockKey);
  }
}
