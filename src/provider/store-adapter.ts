import { AsyncLocalStorage } from 'node:async_hooks';
import { keys, type KeyValueStore } from '../store/index.js';
import { fromAccountId } from './account-id.js';

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string; accountId?: string; consumed?: number };

/**
 * Rows already read in this request (the MDM guard reads the refresh token oidc-provider then reads
 * again). `withRequestCache` opens one per request; a write of a row drops it.
 */
const requestRows = new AsyncLocalStorage<Map<string, string | null>>();

export function withRequestCache<T>(run: () => T): T {
  return requestRows.run(new Map(), run);
}

/**
 * oidc-provider's storage on the project's store (Redis in production, the in-process store in the
 * demo): one key per model row with the row's TTL, plus the indexes oidc-provider needs (grant id,
 * session uid, user code) and ours for O-4 (grants and sessions per member and per tenant).
 */
export function storeAdapterFactory(
  store: KeyValueStore,
  options: {
    grantRowsTtlMs: number;
    /** The `Client` model: clients added through the admin API (src/provider/op-clients.ts), read on each lookup. */
    findClient?: (clientId: string) => Promise<Record<string, unknown> | undefined>;
  },
) {
  return class StoreAdapter {
    constructor(private readonly model: string) {}

    private key(id: string): string {
      return keys.opModel(this.model, id);
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const ttlMs = expiresIn ? expiresIn * 1000 : undefined;
      const key = this.key(id);
      requestRows.getStore()?.delete(key);
      // The row and its indexes are independent writes: sent together (ioredis pipelines them). The
      // token endpoint writes rows on every refresh.
      const writes: Array<Promise<unknown>> = [store.set(key, JSON.stringify(payload), { ttlMs })];
      if (payload.grantId) {
        const rows = keys.opGrantRows(payload.grantId);
        // The index lives as long as the longest row of a grant can (the grant's own TTL).
        writes.push(store.sAdd(rows, key), store.expire(rows, Math.max(options.grantRowsTtlMs, ttlMs ?? 0)));
      }
      if (this.model === 'Session' && payload.uid) writes.push(store.set(keys.opSessionUid(payload.uid), id, { ttlMs }));
      if (payload.userCode) writes.push(store.set(keys.opUserCode(payload.userCode), id, { ttlMs }));
      const account = fromAccountId(payload.accountId);
      if (account && this.model === 'Grant') {
        writes.push(store.sAdd(keys.opMemberGrants(account.domain, account.memberId), id), store.sAdd(keys.opTenantGrants(account.domain), id));
      }
      if (account && this.model === 'Session') writes.push(store.sAdd(keys.opMemberSessions(account.domain, account.memberId), id));
      await Promise.all(writes);
    }

    async find(id: string): Promise<Payload | undefined> {
      // Clients live in their own hash; the registration feature is off, so oidc-provider never writes them.
      if (this.model === 'Client') return options.findClient ? await options.findClient(id) : undefined;
      const key = this.key(id);
      // The raw JSON is kept, so each caller gets an object of its own to change.
      const cache = requestRows.getStore();
      const raw = cache?.has(key) ? cache.get(key)! : await store.get(key);
      cache?.set(key, raw);
      return raw === null ? undefined : (JSON.parse(raw) as Payload);
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      const id = await store.get(keys.opSessionUid(uid));
      return id === null ? undefined : this.find(id);
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      const id = await store.get(keys.opUserCode(userCode));
      return id === null ? undefined : this.find(id);
    }

    async consume(id: string): Promise<void> {
      const key = this.key(id);
      requestRows.getStore()?.delete(key);
      const [raw, ttl] = await Promise.all([store.get(key), store.pttl(key)]);
      if (raw === null) return;
      const payload = { ...(JSON.parse(raw) as Payload), consumed: Math.floor(Date.now() / 1000) };
      await store.set(key, JSON.stringify(payload), { ttlMs: ttl > 0 ? ttl : undefined });
    }

    async destroy(id: string): Promise<void> {
      requestRows.getStore()?.delete(this.key(id));
      await store.del(this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const rows = keys.opGrantRows(grantId);
      requestRows.getStore()?.clear();
      const members = await store.sMembers(rows);
      // One DEL per key: the rows of a grant live in different Redis Cluster slots.
      await Promise.all([...members, rows].map((k) => store.del(k)));
    }
  };
}
