import type { Clock } from '../domain/clock.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';
import type { LoginTransaction } from './transactions.js';

export type SsoTypeName = 'SAML' | 'OAUTH';

/** sessionKey as the app sends it: URL-safe, 16–128 characters. A SAML AuthnRequest ID (`_` + 40 hex) is one too. */
export const SESSION_KEY_RE = /^[A-Za-z0-9._~-]{16,128}$/;

/** The marker an app login carries to the IdP (S-14: `userAgent=LineWorks`), for SAML and OAuth alike. */
export const APP_USER_AGENT = 'LineWorks';

interface CheckRecord {
  domain: string;
  createdAt: number;
}

/**
 * The key the IdP checks an app login with (S-18): for SAML the AuthnRequest ID the IdP received, for
 * OAuth the `sessionKey` parameter sent to the IdP. Undefined for web logins.
 */
export function appCheckOf(txn: Pick<LoginTransaction, 'clientKind' | 'ssoType' | 'requestId' | 'sessionKey'>): { ssoType: SsoTypeName; sessionKey: string } | undefined {
  if (txn.clientKind !== 'app') return undefined;
  const sessionKey = txn.ssoType === 'saml' ? txn.requestId : txn.sessionKey;
  if (sessionKey === undefined) return undefined;
  return { ssoType: txn.ssoType === 'saml' ? 'SAML' : 'OAUTH', sessionKey };
}

/**
 * S-18: while an app login is in flight, the IdP may ask `POST /login/check/{sessionKey}` whether the
 * login really comes from the app. The record is written when the app login starts (with the login
 * transaction's lifetime), taken out atomically by the first check (GETDEL: one key, so it holds on
 * Redis Cluster and in the memory store alike), and deleted when the IdP's answer consumes the
 * transaction — so a check answers yes once, and only while the login is live.
 */
export class AppLoginChecks {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  private key(check: { ssoType: SsoTypeName; sessionKey: string }): string {
    return keys.appLoginCheck(check.ssoType, digestForKey(check.sessionKey));
  }

  /** At the start of an app login (after its transaction is stored). Nothing for a web login. */
  async open(txn: LoginTransaction): Promise<void> {
    const check = appCheckOf(txn);
    if (!check) return;
    const record: CheckRecord = { domain: txn.domain, createdAt: txn.createdAt };
    await this.store.set(this.key(check), JSON.stringify(record), { ttlMs: this.ttlMs });
  }

  /** When the login's transaction is consumed (the IdP answered, whatever the outcome): no later check succeeds. */
  async close(txn: LoginTransaction): Promise<void> {
    const check = appCheckOf(txn);
    if (check) await this.store.del(this.key(check));
  }

  /** True once for a live app login of that SSO type; false for anything else, and on every later call. */
  async consume(rawSessionKey: unknown, ssoType: unknown): Promise<boolean> {
    if (typeof rawSessionKey !== 'string' || !SESSION_KEY_RE.test(rawSessionKey)) return false;
    if (ssoType !== 'SAML' && ssoType !== 'OAUTH') return false;
    const raw = await this.store.getDel(this.key({ ssoType, sessionKey: rawSessionKey }));
    if (raw === null) return false;
    const record = JSON.parse(raw) as CheckRecord;
    // Expired by the injected clock, as the transaction itself would be.
    return this.clock.now() - record.createdAt < this.ttlMs;
  }
}
