import type { MemberSessionEnder, TenantTokenRevoker } from '../admin/sso-switch.js';
import { keys, type KeyValueStore } from '../store/index.js';
import { fromAccountId } from './account-id.js';
import { noticesOfSession, type LogoutNotice } from './backchannel-logout.js';

/** Where the notices of ended OP sessions and grants go (backchannel-logout.ts); it must not wait for deliveries. */
export interface LogoutNotifier {
  notify(notices: readonly LogoutNotice[]): void;
}

/**
 * O-4 and S-19: the revocations of docs/spec.md §6 and §8 reach every grant, token and OP session. Registered with the SSO
 * switch (members' OP sessions and grants end; every token of the tenant is revoked) and used by the
 * MDM rules for mobile grants. It is also the one place where OP sessions and grants end, so it tells the
 * services that registered a back-channel logout URI (the notifier queues; nothing here waits for them).
 */
export class OpRevocation implements MemberSessionEnder, TenantTokenRevoker {
  constructor(
    private readonly store: KeyValueStore,
    private readonly notifier?: LogoutNotifier,
  ) {}

  /** Who to tell that a grant ended outside a session: its client, about its subject. */
  private async grantNotice(grantId: string): Promise<LogoutNotice | null> {
    const raw = await this.store.get(keys.opModel('Grant', grantId));
    if (raw === null) return null;
    const grant = JSON.parse(raw) as { clientId?: string; accountId?: string };
    return grant.clientId && grant.accountId ? { clientId: grant.clientId, sub: grant.accountId } : null;
  }

  /** Deletes a grant and every token row issued under it; returns how many access/refresh tokens died. */
  async revokeGrant(grantId: string, options: { notify?: boolean } = {}): Promise<number> {
    const notice = options.notify !== false && this.notifier ? await this.grantNotice(grantId) : null;
    const rows = keys.opGrantRows(grantId);
    const members = await this.store.sMembers(rows);
    await this.store.del(...members, rows, keys.opModel('Grant', grantId));
    if (notice) this.notifier!.notify([notice]);
    return members.filter((k) => k.includes(':AccessToken:') || k.includes(':RefreshToken:')).length;
  }

  /**
   * S-19: ends one OP browser session (the one whose cookie the browser sent) and tells its services.
   * Web services' tokens end with it (expiresWithSession); grants that outlive sessions (the mobile app,
   * offline_access) stay. With `domain`, only a session of a member of that tenant ends. Returns whether a session was live.
   */
  async endSession(sessionId: string, options: { domain?: string } = {}): Promise<boolean> {
    const key = keys.opModel('Session', sessionId);
    const raw = await this.store.get(key);
    if (raw === null) return false;
    const account = fromAccountId((JSON.parse(raw) as { accountId?: string }).accountId);
    if (options.domain !== undefined && account?.domain !== options.domain) return false;
    const ended = (await this.store.del(key)) > 0;
    if (account) await this.store.sRem(keys.opMemberSessions(account.domain, account.memberId), sessionId);
    if (ended) this.notifier?.notify(noticesOfSession(raw));
    return ended;
  }

  /** Ends every OP browser session of a member (IdP-initiated logout), leaving grants that outlive sessions. */
  async endSessionsOfMember(domain: string, memberId: string): Promise<number> {
    const sessionIds = await this.store.sMembers(keys.opMemberSessions(domain, memberId));
    let ended = 0;
    for (const id of sessionIds) if (await this.endSession(id)) ended++;
    return ended;
  }

  async revokeMember(domain: string, memberId: string): Promise<{ grants: number; sessions: number; tokens: number }> {
    const grantsKey = keys.opMemberGrants(domain, memberId);
    const sessionsKey = keys.opMemberSessions(domain, memberId);
    const [grantIds, sessionIds] = await Promise.all([this.store.sMembers(grantsKey), this.store.sMembers(sessionsKey)]);
    const sessionKeys = sessionIds.map((id) => keys.opModel('Session', id));
    // Read before anything is deleted: each session names its services and their sid; a grant outside
    // every session (the mobile app) is told by subject alone.
    const notices: LogoutNotice[] = [];
    if (this.notifier) {
      for (const raw of await Promise.all(sessionKeys.map((k) => this.store.get(k)))) notices.push(...noticesOfSession(raw));
      const told = new Set(notices.map((n) => n.clientId));
      for (const n of await Promise.all(grantIds.map((g) => this.grantNotice(g)))) if (n && !told.has(n.clientId)) notices.push(n);
    }
    const tokens = (await Promise.all(grantIds.map((g) => this.revokeGrant(g, { notify: false })))).reduce((a, b) => a + b, 0);
    const sessions = await this.store.del(...sessionKeys);
    await this.store.del(grantsKey, sessionsKey);
    if (grantIds.length) await this.store.sRem(keys.opTenantGrants(domain), ...grantIds);
    if (notices.length) this.notifier!.notify(notices);
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
