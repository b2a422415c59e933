import { AppError } from '../errors/index.js';
import type { Member } from './member.js';
import type { MemberRepository } from './members.js';
import type { Tenant } from './tenant.js';

/**
 * S-1 … S-3: the IdP's identifier (SAML NameID, OAuth user_id, OIDC claim) names a member by
 * external key (exact, case-sensitive) or by account (case-insensitive). No member is created on
 * the fly; only `in_use` members may log in.
 */
export async function mapAssertedIdentity(tenant: Tenant, assertedId: string, members: MemberRepository): Promise<Member> {
  const member =
    tenant.sso.userKey === 'account'
      ? await members.findByAccount(tenant.domain, assertedId)
      : await members.findByExternalKey(tenant.domain, assertedId);
  if (!member) throw new AppError('member_not_found', { reason: 'member_not_found', detail: `no member for ${tenant.sso.userKey}` });
  if (member.status !== 'in_use') {
    throw new AppError('member_not_active', { reason: 'member_not_active', detail: `member ${member.id} is ${member.status}` });
  }
  return member;
}
