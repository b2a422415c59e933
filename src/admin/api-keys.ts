import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';

/** What an API key may do: `read` only reads; `full` does everything its tenant's super admin may. */
export type ApiKeyScope = 'read' | 'full';

/**
 * Who is calling the admin API: the operator (config key), a tenant's API key (automation), or an
 * administrator signed in to the console as themselves (a member whose role is admin or super admin).
 */
export type AdminPrincipal =
  | { kind: 'operator' }
  | { kind: 'tenant'; domain: string; keyId: string; scope: ApiKeyScope }
  | { kind: 'member'; domain: string; memberId: string; role: 'super_admin' | 'admin'; sessionId: string };

interface StoredKey {
  id: string;
  domain: string;
  name: string;
  createdAt: number;
  /** Absent on keys stored before scopes existed: those are `full`. */
  scope?: ApiKeyScope;
  /** Ms since the epoch; absent = never expires (also keys stored before expiry existed). */
  expiresAt?: number;
}

/** A tenant API key as listed (never the key itself). */
export interface ApiKeyView {
  id: string;
  name: string;
  scope: ApiKeyScope;
  createdAt: string;
  expiresAt: string | null;
  expired: boolean;
}

/** The longest an API key may live: a year (366 days, for leap years). */
export const API_KEY_MAX_LIFETIME_MS = 366 * 86_400_000;

const KEY_RE = /^idpb_[A-Za-z0-9_-]{43}$/;

/**
 * Admin API keys (§11): the operator key from config reaches everything; tenant keys reach only their
 * tenant. A tenant key is 256 random bits, shown once; only its SHA-256 is stored.
 */
export class AdminKeys {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly operatorKey: string | undefined,
  ) {}

  async resolve(presented: string | undefined): Promise<AdminPrincipal | null> {
    if (!presented || presented.length > 200) return null;
    if (this.operatorKey) {
      const a = Buffer.from(presented);
      const b = Buffer.from(this.operatorKey);
      if (a.length === b.length && timingSafeEqual(a, b)) return { kind: 'operator' };
    }
    if (!KEY_RE.test(presented)) return null;
    const raw = await this.store.get(keys.adminApiKey(digestForKey(presented)));
    if (raw === null) return null;
    const stored = JSON.parse(raw) as StoredKey;
    // An expired key is refused like an unknown one; it stays listed (expired: true) until revoked.
    if (stored.expiresAt !== undefined && stored.expiresAt <= this.clock.now()) return null;
    return { kind: 'tenant', domain: stored.domain, keyId: stored.id, scope: stored.scope ?? 'full' };
  }

  /** `expiresAt` (ms) is checked by the caller (in the future, within API_KEY_MAX_LIFETIME_MS). */
  async create(domain: string, name: string, options: { scope?: ApiKeyScope; expiresAt?: number } = {}): Promise<ApiKeyView & { key: string }> {
    const key = `idpb_${randomBytes(32).toString('base64url')}`;
    const stored: StoredKey = {
      id: `key_${randomBytes(8).toString('hex')}`,
      domain,
      name,
      createdAt: this.clock.now(),
      scope: options.scope ?? 'full',
      ...(options.expiresAt === undefined ? {} : { expiresAt: options.expiresAt }),
    };
    const digest = digestForKey(key);
    await this.store.set(keys.adminApiKey(digest), JSON.stringify(stored));
    await this.store.hSet(keys.adminApiKeysOf(domain), { [stored.id]: digest });
    const { id, ...view } = this.view(stored);
    return { id, key, ...view };
  }

  async list(domain: string): Promise<ApiKeyView[]> {
    const out: ApiKeyView[] = [];
    for (const digest of Object.values(await this.store.hGetAll(keys.adminApiKeysOf(domain)))) {
      const raw = await this.store.get(keys.adminApiKey(digest));
      if (raw === null) continue;
      out.push(this.view(JSON.parse(raw) as StoredKey));
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  private view(k: StoredKey): ApiKeyView {
    return {
      id: k.id,
      name: k.name,
      scope: k.scope ?? 'full',
      createdAt: new Date(k.createdAt).toISOString(),
      expiresAt: k.expiresAt === undefined ? null : new Date(k.expiresAt).toISOString(),
      expired: k.expiresAt !== undefined && k.expiresAt <= this.clock.now(),
    };
  }

  /** True when the key existed. */
  async revoke(domain: string, id: string): Promise<boolean> {
    const digest = await this.store.hGet(keys.adminApiKeysOf(domain), id);
    if (digest === null) return false;
    await this.store.del(keys.adminApiKey(digest));
    await this.store.hDel(keys.adminApiKeysOf(domain), id);
    return true;
  }
}
