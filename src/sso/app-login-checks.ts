import { APP_LOGIN_CHECK_TTL_MS, digestForKey, keys, type KeyValueStore } from '../store/index.js';

export type SsoTypeName = 'SAML' | 'OAUTH';

/** sessionKey as the app sends it: URL-safe, 16–128 characters. */
export const SESSION_KEY_RE = /^[A-Za-z0-9._~-]{16,128}$/;

/**
 * S-18: when an app login (one that carried a sessionKey) finishes, the bridge remembers it for 10
 * minutes; the app's POST /login/check/{sessionKey} consumes it once.
 */
export class AppLoginChecks {
  constructor(private readonly store: KeyValueStore) {}

  async record(sessionKey: string, fields: { ssoType: SsoTypeName; domain: string; memberId: string }): Promise<void> {
    await this.store.set(keys.appLoginCheck(digestForKey(sessionKey)), JSON.stringify(fields), { ttlMs: APP_LOGIN_CHECK_TTL_MS });
  }

  /** True once for a finished app login of that SSO type; false for anything else, and on every later call. */
  async consume(rawSessionKey: unknown, ssoType: unknown): Promise<boolean> {
    if (typeof rawSessionKey !== 'string' || !SESSION_KEY_RE.test(rawSessionKey)) return false;
    if (ssoType !== 'SAML' && ssoType !== 'OAUTH') return false;
    const raw = await this.store.getDel(keys.appLoginCheck(digestForKey(rawSessionKey)));
    if (raw === null) return false;
    return (JSON.parse(raw) as { ssoType: SsoTypeName }).ssoType === ssoType;
  }
}
