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
}

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
    return { kind: 'tenant', domain: stored.domain, keyId: stored.id, scope: 'full' };
  }

  async create(domain: string, name: string): Promise<{ id: string; key: string; name: string; createdAt: string }> {
    const key = `idpb_${randomBytes(32).toString('base64url')}`;
    const stored: StoredKey = { id: `key_${randomBytes(8).toString('hex')}`, domain, name, createdAt: this.clock.now() };
    const digest = digestForKey(key);
    await this.store.set(keys.adminApiKey(digest), JSON.stringify(stored));
    await this.store.hSet(keys.adminApiKeysOf(domain), { [stored.id]: digest });
    return { id: stored.id, key, name, createdAt: new Date(stored.createdAt).toISOString() };
  }

  async list(domain: string): Promise<Array<{ id: string; name: string; createdAt: string }>> {
    const out: Array<{ id: string; name: string; createdAt: string }> = [];
    for (const digest of Object.values(await this.store.hGetAll(keys.adminApiKeysOf(domain)))) {
      const raw = await this.store.get(keys.adminApiKey(digest));
      if (raw === null) continue;
      const k = JSON.parse(raw) as StoredKey;
      out.push({ id: k.id, name: k.name, createdAt: new Date(k.createdAt).toISOString() });
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
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
