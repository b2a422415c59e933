import { keys, type KeyValueStore } from '../store/index.js';
import { fromAccountId } from './account-id.js';

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string; accountId?: string; consumed?: number };

/**
 * oidc-provider's storage on the project's store (Redis in production, the in-process store in the
 * demo): one key per model row with the row's TTL, plus the indexes oidc-provider needs (grant id,
 * session uid, user code) and ours for O-4 (grants and sessions per member and per tenant).
 */
export function storeAdapterFactory(store: KeyValueStore) {
  return class StoreAdapter {
    constructor(private readonly model: string) {}

    private key(id: string): string {
      return keys.opModel(this.model, id);
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const ttlMs = expiresIn ? expiresIn * 1000 : undefined;
      const key = this.key(id);
      // The row and its indexes are independent writes: sent together (ioredis pipelines them). The
      // token endpoint writes rows on every refresh.
      const writes: Array<Promise<unknown>> = [store.set(key, JSON.stringify(payload), { ttlMs })];
      if (payload.grantId) {
        const rows = keys.opGrantRows(payload.grantId);
        writes.push(
          Promise.all([store.sAdd(rows, key), ttlMs ? store.pttl(rows) : Infinity]).then(async ([, pttl]) => {
            if (ttlMs && pttl < ttlMs) await store.expire(rows, ttlMs);
          }),
        );
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
      const raw = await store.get(this.key(id));
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
      const [raw, ttl] = await Promise.all([store.get(key), store.pttl(key)]);
      if (raw === null) return;
      const payload = { ...(JSON.parse(raw) as Payload), consumed: Math.floor(Date.now() / 1000) };
      await store.set(key, JSON.stringify(payload), { ttlMs: ttl > 0 ? ttl : undefined });
    }

    async destroy(id: string): Promise<void> {
      await store.del(this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      const rows = keys.opGrantRows(grantId);
      const members = await store.sMembers(rows);
      // One DEL per key: the rows of a grant live in different Redis Cluster slots.
      await Promise.all([...members, rows].map((k) => store.del(k)));
    }
  };
}
