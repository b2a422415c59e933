import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { DOMAIN_RE } from '../domain/tenant.js';
import { digestForKey, keys, OPERATOR_SLOT, type KeyValueStore } from '../store/index.js';

/** How the administrator proved who they are when the console session began. */
export type ConsoleSignInMethod = 'saml' | 'oauth' | 'password';

/** How an operator proved who they are: the operator key (config `adminApiKey`). */
export type OperatorSignInMethod = 'operator_key';

/** What the store keeps of a console session (never the cookie's secret: the keys hold only its SHA-256). */
interface StoredMemberSession {
  /** A public id (`cs_…`) for audit events and logs; it opens nothing. */
  id: string;
  /** Absent on sessions stored before operator sessions existed: those are members'. */
  kind?: 'member';
  domain: string;
  memberId: string;
  csrfToken: string;
  method: ConsoleSignInMethod;
  createdAt: number;
}

/**
 * The operator's console session: no tenant, no member. Kept in a slot of its own (OPERATOR_SLOT, a
 * name that is no DNS name, so no tenant shares it); `domain` is that slot's name.
 */
interface StoredOperatorSession {
  id: string;
  kind: 'operator';
  domain: typeof OPERATOR_SLOT;
  memberId: null;
  csrfToken: string;
  method: OperatorSignInMethod;
  createdAt: number;
}

type StoredConsoleSession = StoredMemberSession | StoredOperatorSession;

interface SessionTimes {
  /** Last use (ms), as last written; writes are spaced by at most TOUCH_INTERVAL_MS. */
  lastSeenAt: number;
  /** The session ends at the earlier of these two (ms). */
  idleExpiresAt: number;
  absoluteExpiresAt: number;
}

export type MemberConsoleSession = StoredMemberSession & SessionTimes;
export type OperatorConsoleSession = StoredOperatorSession & SessionTimes;
export type ConsoleSession = MemberConsoleSession | OperatorConsoleSession;

export interface ConsoleTimeouts {
  idleMs: number;
  absoluteMs: number;
}

/**
 * `<43 base64url characters of secret>.<domain>`: the domain only says which tenant's slot holds the
 * session; `<secret>.operator` names the operator's slot (`operator` has no dot: it is never a domain).
 */
const COOKIE_RE = /^([A-Za-z0-9_-]{43})\.([a-z0-9.-]{1,253})$/;
const CSRF_RE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Requests closer together than this do not rewrite the last-use time: the idle timeout is exact to
 * within this much, and a console polling every few seconds costs one write per interval, not one per request.
 */
const TOUCH_INTERVAL_MS = 15_000;

function parseCookie(value: unknown): { secret: string; domain: string } | null {
  if (typeof value !== 'string') return null;
  const m = COOKIE_RE.exec(value);
  if (!m || (m[2] !== OPERATOR_SLOT && !DOMAIN_RE.test(m[2]!))) return null;
  return { secret: m[1]!, domain: m[2]! };
}

/**
 * Console sessions: an administrator (a member whose role is admin or super admin) signed in to the
 * console of their tenant. The cookie carries 256 random bits and the tenant's domain; the store keeps
 * the session under the SHA-256 of the bits, in the tenant's hash slot, as two keys written and
 * deleted together in one MULTI (so it works alike on one Redis, Redis Cluster and the memory store):
 *
 * - the record (member, CSRF token, sign-in method, creation time), which lives until the absolute timeout;
 * - the last-use time, which lives for the idle timeout and is rewritten on use.
 *
 * Both timeouts are also checked against the injected clock, so tests move time instead of waiting.
 * A last-use write racing a sign-out can leave that one key behind (never the record): without the
 * record no session is found, and the orphan expires with its TTL. Who the member is and what role they
 * hold is not kept here: the admin API re-reads the member on every request.
 */
function newSessionId(): string {
  return `cs_${randomBytes(8).toString('hex')}`;
}

export class ConsoleSessions {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly timeouts: ConsoleTimeouts,
  ) {}

  get idleMs(): number {
    return this.timeouts.idleMs;
  }

  get absoluteMs(): number {
    return this.timeouts.absoluteMs;
  }

  /** A new session of a member; returns the cookie value (shown to this browser only) and the session. */
  async create(fields: { domain: string; memberId: string; method: ConsoleSignInMethod }): Promise<{ cookieValue: string; session: MemberConsoleSession }> {
    const now = this.clock.now();
    const stored: StoredMemberSession = { id: newSessionId(), kind: 'member', ...fields, csrfToken: randomBytes(32).toString('base64url'), createdAt: now };
    const { cookieValue, session } = await this.write(stored);
    return { cookieValue, session: session as MemberConsoleSession };
  }

  /** A new session of the operator (signed in with the operator key), with the members' cookie scheme and timeouts. */
  async createOperator(): Promise<{ cookieValue: string; session: OperatorConsoleSession }> {
    const now = this.clock.now();
    const stored: StoredOperatorSession = {
      id: newSessionId(),
      kind: 'operator',
      domain: OPERATOR_SLOT,
      memberId: null,
      csrfToken: randomBytes(32).toString('base64url'),
      method: 'operator_key',
      createdAt: now,
    };
    const { cookieValue, session } = await this.write(stored);
    return { cookieValue, session: session as OperatorConsoleSession };
  }

  private async write(stored: StoredConsoleSession): Promise<{ cookieValue: string; session: ConsoleSession }> {
    const secret = randomBytes(32).toString('base64url');
    const digest = digestForKey(secret);
    await this.store.atomic([
      { op: 'set', key: keys.consoleSession(stored.domain, digest), value: JSON.stringify(stored), ttlMs: this.timeouts.absoluteMs },
      { op: 'set', key: keys.consoleSessionSeen(stored.domain, digest), value: String(stored.createdAt), ttlMs: this.timeouts.idleMs },
    ]);
    return { cookieValue: `${secret}.${stored.domain}`, session: this.view(stored, stored.createdAt) };
  }

  /**
   * The live session the cookie names, its idle time slid to now; null when there is none (unknown,
   * malformed, or past either timeout — then it is deleted).
   */
  async use(cookieValue: unknown): Promise<ConsoleSession | null> {
    const parsed = parseCookie(cookieValue);
    if (!parsed) return null;
    const digest = digestForKey(parsed.secret);
    const recordKey = keys.consoleSession(parsed.domain, digest);
    const seenKey = keys.consoleSessionSeen(parsed.domain, digest);
    const [raw, seenRaw] = await this.store.mGet([recordKey, seenKey]);
    if (raw === null || raw === undefined) return null;
    const stored = JSON.parse(raw) as StoredConsoleSession;
    // The cookie's slot and the record's kind must agree: a member record never opens as the operator's.
    const operatorRecord = stored.kind === 'operator';
    const lastSeenAt = Number(seenRaw);
    const now = this.clock.now();
    if (stored.domain !== parsed.domain || operatorRecord !== (parsed.domain === OPERATOR_SLOT) || seenRaw === null || seenRaw === undefined || !Number.isFinite(lastSeenAt)) {
      await this.store.del(recordKey, seenKey);
      return null;
    }
    const session = this.view(stored, lastSeenAt);
    if (now >= session.idleExpiresAt || now >= session.absoluteExpiresAt) {
      await this.store.del(recordKey, seenKey);
      return null;
    }
    if (now - lastSeenAt < TOUCH_INTERVAL_MS) return session;
    await this.store.set(seenKey, String(now), { ttlMs: Math.min(this.timeouts.idleMs, session.absoluteExpiresAt - now) });
    return this.view(stored, now);
  }

  /** Ends the session the cookie names; true when there was one. */
  async destroy(cookieValue: unknown): Promise<boolean> {
    const parsed = parseCookie(cookieValue);
    if (!parsed) return false;
    const digest = digestForKey(parsed.secret);
    const ended = await this.store.del(keys.consoleSession(parsed.domain, digest));
    await this.store.del(keys.consoleSessionSeen(parsed.domain, digest));
    return ended > 0;
  }

  /** Constant-time comparison of a presented X-CSRF-Token with the session's. */
  static csrfMatches(session: ConsoleSession, presented: unknown): boolean {
    if (typeof presented !== 'string' || !CSRF_RE.test(presented)) return false;
    return timingSafeEqual(Buffer.from(presented), Buffer.from(session.csrfToken));
  }

  private view(stored: StoredConsoleSession, lastSeenAt: number): ConsoleSession {
    return {
      // Only the operator's records say their kind; older member records do not.
      ...(stored.kind === 'operator' ? {} : { kind: 'member' as const }),
      ...stored,
      lastSeenAt,
      idleExpiresAt: lastSeenAt + this.timeouts.idleMs,
      absoluteExpiresAt: stored.createdAt + this.timeouts.absoluteMs,
    };
  }
}
