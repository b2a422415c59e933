import type { Clock } from '../domain/clock.js';
import { keys, LOGIN_ACTIVITY_TTL_MS, type KeyValueStore } from '../store/index.js';
import type { Logger } from './logger.js';

export type LoginProtocol = 'saml' | 'oauth' | 'password';
export type LoginResult = 'success' | 'failure';

export const LOGIN_PROTOCOLS: readonly LoginProtocol[] = ['saml', 'oauth', 'password'];
/** The longest range the counters cover (their TTL is a little longer). */
export const LOGIN_ACTIVITY_MAX_DAYS = 31;
const DAY_MS = 24 * 3600_000;

export interface ActivityDay {
  /** UTC day, YYYY-MM-DD. */
  date: string;
  saml: { success: number; failure: number };
  oauth: { success: number; failure: number };
  password: { success: number; failure: number };
}

export interface ActivitySummary {
  from: string;
  to: string;
  days: ActivityDay[];
  /** The most frequent refusal reasons over the range, most frequent first (at most 10). */
  topRefusalReasons: Array<{ reason: string; count: number }>;
}

const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * Sign-in counters per tenant and UTC day, in the store (every process counts together; nothing in
 * process memory): one MULTI per login — HINCRBY `<protocol>:<result>`, for a refusal HINCRBY
 * `reason:<reason>` too, and the day's TTL.
 */
export class LoginActivity {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Counts one login. Never throws: counting must not fail a sign-in. */
  async record(domain: string | undefined, protocol: LoginProtocol, result: LoginResult, reason?: string): Promise<void> {
    if (!domain) return;
    const key = keys.loginActivity(domain, dayOf(this.clock.now()));
    try {
      await this.store.atomic([
        { op: 'hIncrBy', key, field: `${protocol}:${result}`, by: 1 },
        ...(result === 'failure' ? [{ op: 'hIncrBy' as const, key, field: `reason:${(reason ?? 'unknown').slice(0, 100)}`, by: 1 }] : []),
        { op: 'expire', key, ttlMs: LOGIN_ACTIVITY_TTL_MS },
      ]);
    } catch (err) {
      this.logger.error({ err, domain }, 'sign-in activity could not be counted');
    }
  }

  /** The last `days` UTC days, today included, oldest first. */
  async summary(domain: string, days: number): Promise<ActivitySummary> {
    const n = Math.min(Math.max(1, Math.floor(days)), LOGIN_ACTIVITY_MAX_DAYS);
    const today = Date.parse(`${dayOf(this.clock.now())}T00:00:00Z`);
    const dates = Array.from({ length: n }, (_, i) => dayOf(today - (n - 1 - i) * DAY_MS));
    const hashes = await Promise.all(dates.map((d) => this.store.hGetAll(keys.loginActivity(domain, d))));
    const reasons = new Map<string, number>();
    const out = dates.map((date, i): ActivityDay => {
      const h = hashes[i]!;
      const count = (field: string): number => Number(h[field] ?? 0);
      for (const [field, value] of Object.entries(h)) {
        if (field.startsWith('reason:')) reasons.set(field.slice(7), (reasons.get(field.slice(7)) ?? 0) + Number(value));
      }
      return {
        date,
        saml: { success: count('saml:success'), failure: count('saml:failure') },
        oauth: { success: count('oauth:success'), failure: count('oauth:failure') },
        password: { success: count('password:success'), failure: count('password:failure') },
      };
    });
    const topRefusalReasons = [...reasons]
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1))
      .slice(0, 10);
    return { from: dates[0]!, to: dates[dates.length - 1]!, days: out, topRefusalReasons };
  }
}
