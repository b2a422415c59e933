import type { MemberSessionEnder } from '../admin/sso-switch.js';
import type { Clock } from '../domain/clock.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';
import { newOpaqueId } from './transactions.js';

export interface WebSession {
  memberId: string;
  domain: string;
  account: string;
  authMethod: 'saml' | 'oauth' | 'password';
  clientKind: 'web' | 'app';
  createdAt: number;
  expiresAt: number;
  /** SAML: for single logout (S-13). */
  nameId?: string;
  sessionIndex?: string;
}

const SESSION_ID_RE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Web sessions. The cookie holds 256 random bits; the store keys the session by their SHA-256, so a
 * copy of the store does not hand out live cookies. Each member keeps an index of its sessions so
 * they can all be ended (logout everywhere, SSO switch).
 */
export class WebSessions implements MemberSessionEnder {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
  ) {}

  async create(fields: Omit<WebSession, 'createdAt' | 'expiresAt'>, ttlMs: number): Promise<{ id: string; session: WebSession }> {
    const id = newOpaqueId(32);
    const now = this.clock.now();
    const session: WebSession = { ...fields, createdAt: now, expiresAt: now + ttlMs };
    const digest = digestForKey(id);
    const indexKey = keys.memberSessions(session.domain, session.memberId);
    // Sent together (one round trip, pipelined); commands to one key run in order, so PTTL sees the SADD.
    const [, , indexTtl] = await Promise.all([
      this.store.set(keys.webSession(digest), JSON.stringify(session), { ttlMs }),
      this.store.sAdd(indexKey, digest),
      this.store.pttl(indexKey),
    ]);
    if (indexTtl < ttlMs) await this.store.expire(indexKey, ttlMs);
    return { id, session };
  }

  async find(rawId: unknown): Promise<WebSession | null> {
    if (typeof rawId !== 'string' || !SESSION_ID_RE.test(rawId)) return null;
    const raw = await this.store.get(keys.webSession(digestForKey(rawId)));
    if (raw === null) return null;
    const session = JSON.parse(raw) as WebSession;
    return session.expiresAt > this.clock.now() ? session : null;
  }

  /** Ends one session; returns it (or null when there was none). */
  async destroy(rawId: unknown): Promise<WebSession | null> {
    if (typeof rawId !== 'string' || !SESSION_ID_RE.test(rawId)) return null;
    const digest = digestForKey(rawId);
    const raw = await this.store.getDel(keys.webSession(digest));
    if (raw === null) return null;
    const session = JSON.parse(raw) as WebSession;
    await this.store.sRem(keys.memberSessions(session.domain, session.memberId), digest);
    return session;
  }

  /** Ends the member's sessions that match (e.g. one SAML SessionIndex); returns how many ended. */
  async destroyMatching(domain: string, memberId: string, match: (session: WebSession) => boolean): Promise<number> {
    const indexKey = keys.memberSessions(domain, memberId);
    let ended = 0;
    for (const digest of await this.store.sMembers(indexKey)) {
      const raw = await this.store.get(keys.webSession(digest));
      if (raw === null) {
        await this.store.sRem(indexKey, digest);
        continue;
      }
      if (match(JSON.parse(raw) as WebSession)) {
        ended += await this.store.del(keys.webSession(digest));
        await this.store.sRem(indexKey, digest);
      }
    }
    return ended;
  }

  /** MemberSessionEnder: the SSO switch ends the web sessions of a batch of members through this. */
  async endSessionsOfMembers(domain: string, memberIds: string[]): Promise<number> {
    const indexKeys = memberIds.map((id) => keys.memberSessions(domain, id));
    const digests = await this.store.sUnion(indexKeys);
    const ended = await this.store.del(...digests.map((d) => keys.webSession(d)));
    await this.store.del(...indexKeys);
    return ended;
  }

  /** MemberSessionEnder: how many web sessions endSessionsOfMembers would end now (the switch preview). Changes nothing. */
  async countSessionsOfMembers(domain: string, memberIds: string[]): Promise<number> {
    const digests = await this.store.sUnion(memberIds.map((id) => keys.memberSessions(domain, id)));
    const ttls = await Promise.all(digests.map((d) => this.store.pttl(keys.webSession(d))));
    return ttls.filter((t) => t !== -2).length;
  }

  /** Ends every session of a member; returns how many were live. */
  async destroyAllOfMember(domain: string, memberId: string): Promise<number> {
    const indexKey = keys.memberSessions(domain, memberId);
    const digests = await this.store.sMembers(indexKey);
    const n = await this.store.del(...digests.map((d) => keys.webSession(d)));
    await this.store.del(indexKey);
    return n;
  }
}
