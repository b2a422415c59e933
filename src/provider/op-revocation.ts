import type { MemberSessionEnder, TenantTokenRevoker } from '../admin/sso-switch.js';
import { keys, type KeyValueStore } from '../store/index.js';

/**
 * O-4: the revocations of docs/spec.md §6 and §8 reach every grant, token and OP session. Registered with the SSO
 * switch (members' OP sessions and grants end; every token of the tenant is revoked) and used by the
 * MDM rules for mobile grants.
 */
export class OpRevocation implements MemberSessionEnder, TenantTokenRevoker {
  constructor(private readonly store: KeyValueStore) {}

  /** Deletes a grant and every token row issued under it; returns how many access/refresh tokens died. */
  async revokeGrant(grantId: string): Promise<number> {
    const rows = keys.opGrantRows(grantId);
    const members = await this.store.sMembers(rows);
    await this.store.del(...members, rows, keys.opModel('Grant', grantId));
    return members.filter((k) => k.includes(':AccessToken:') || k.includes(':RefreshToken:')).length;
  }

  async revokeMember(domain: string, memberId: string): Promise<{ grants: number; sessions: number; tokens: number }> {
    const grantsKey = keys.opMemberGrants(domain, memberId);
    const sessionsKey = keys.opMemberSessions(domain, memberId);
    const [grantIds, sessionIds] = await Promise.all([this.store.sMembers(grantsKey), this.store.sMembers(sessionsKey)]);
    const tokens = (await Promise.all(grantIds.map((g) => this.revokeGrant(g)))).reduce((a, b) => a + b, 0);
    const sessions = await this.store.del(...sessionIds.map((id) => keys.opModel('Session', id)));
    await this.store.del(grantsKey, sessionsKey);
    if (grantIds.length) await this.store.sRem(keys.opTenantGrants(domain), ...grantIds);
    return { grants: grantIds.length, sessions, tokens };
  }

  /** MemberSessionEnder: OP sessions and grants (web services and the mobile app) of a batch of members. */
  async endSessionsOfMembers(domain: string, memberIds: string[]): Promise<number> {
    // One batch of the switch at a time (bounded): its members concurrently, so the store pipelines them.
    const results = await Promise.all(memberIds.map((id) => this.revokeMember(domain, id)));
    return results.reduce((n, r) => n + r.sessions + r.grants, 0);
  }

  /** MemberSessionEnder: what endSessionsOfMembers would count now (live OP sessions, and grants), without ending anything. */
  async countSessionsOfMembers(domain: string, memberIds: string[]): Promise<number> {
    const counts = await Promise.all(
      memberIds.map(async (id) => {
        const [grants, sessionIds] = await Promise.all([this.store.sCard(keys.opMemberGrants(domain, id)), this.store.sMembers(keys.opMemberSessions(domain, id))]);
        const ttls = await Promise.all(sessionIds.map((sid) => this.store.pttl(keys.opModel('Session', sid))));
        return grants + ttls.filter((t) => t !== -2).length;
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** TenantTokenRevoker: the tokens revokeTenantTokens would revoke now, without revoking any. */
  async countTenantTokens(domain: string): Promise<number> {
    let tokens = 0;
    let cursor = '0';
    do {
      const [next, ids] = await this.store.sScan(keys.opTenantGrants(domain), cursor, 500);
      for (const rows of await Promise.all(ids.map((g) => this.store.sMembers(keys.opGrantRows(g))))) {
        tokens += rows.filter((k) => k.includes(':AccessToken:') || k.includes(':RefreshToken:')).length;
      }
      cursor = next;
    } while (cursor !== '0');
    return tokens;
  }

  /** TenantTokenRevoker: every grant of the tenant; returns the number of tokens revoked. */
  async revokeTenantTokens(domain: string): Promise<number> {
    const key = keys.opTenantGrants(domain);
    let tokens = 0;
    let cursor = '0';
    do {
      const [next, ids] = await this.store.sScan(key, cursor, 500);
      for (const n of await Promise.all(ids.map((g) => this.revokeGrant(g)))) tokens += n;
      cursor = next;
    } while (cursor !== '0');
    await this.store.del(key);
    return tokens;
  }
}
