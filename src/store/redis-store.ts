import { Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors/index.js';
import type { AtomicOp, KeyValueStore, SetOptions } from './types.js';

export interface RedisStoreOptions {
  url: string;
  keyPrefix?: string;
  commandTimeoutMs: number;
}

/** Errors Redis itself answered (a bug of ours, e.g. WRONGTYPE) are not "store unavailable". */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

/**
 * The production store. Fails fast instead of queueing while Redis is away (no offline queue, a
 * per-command timeout, one retry), so callers get 503 `store_unavailable` at once, and reconnects
 * by itself when Redis returns.
 */
export class RedisStore implements KeyValueStore {
  readonly kind = 'redis' as const;
  readonly client: Redis;

  constructor(options: RedisStoreOptions) {
    const redisOptions: RedisOptions = {
      keyPrefix: options.keyPrefix || undefined,
      lazyConnect: true,
      enableOfflineQueue: false,
      // A command in flight when the connection drops fails; it is never re-sent after reconnecting:
      // Redis may already have run it (only the reply was lost), and a second HINCRBY, INCR, LPUSH or
      // MULTI would apply twice.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(1000, options.commandTimeoutMs),
      retryStrategy: (times) => Math.min(100 * times, 2000),
      // Concurrent commands (a batch of members in the SSO switch, a CSV import) share round trips.
      enableAutoPipelining: true,
    };
    this.client = new Redis(options.url, redisOptions);
    // Connection errors are reported through readiness and per-request 503s; without a listener
    // ioredis would print them as unhandled.
    this.client.on('error', () => undefined);
  }

  /** Connects once; if Redis is not there yet, keeps retrying in the background. */
  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      throw new StoreUnavailableError(err);
    }
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (isReplyError(err)) throw err;
      throw new StoreUnavailableError(err);
    }
  }

  get(key: string): Promise<string | null> {
    return this.run(() => this.client.get(key));
  }

  set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    return this.run(async () => {
      let reply: string | null;
      if (options.ttlMs && options.nx) reply = await this.client.set(key, value, 'PX', options.ttlMs, 'NX');
      else if (options.ttlMs) reply = await this.client.set(key, value, 'PX', options.ttlMs);
      else if (options.nx) reply = await this.client.set(key, value, 'NX');
      else reply = await this.client.set(key, value);
      return reply === 'OK';
    });
  }

  getDel(key: string): Promise<string | null> {
    return this.run(() => this.client.getdel(key));
  }

  del(...keys: string[]): Promise<number> {
    if (keys.length === 0) return Promise.resolve(0);
    // One DEL per key keeps this valid on Redis Cluster when the keys live in different slots.
    return this.run(async () => {
      if (keys.length === 1) return this.client.del(keys[0]!);
      const results = await this.client.pipeline(keys.map((k) => ['del', k])).exec();
      return (results ?? []).reduce((n, [err, v]) => (err ? n : n + Number(v)), 0);
    });
  }

  pttl(key: string): Promise<number> {
    return this.run(() => this.client.pttl(key));
  }

  expire(key: string, ttlMs: number): Promise<boolean> {
    return this.run(async () => (await this.client.pexpire(key, ttlMs)) === 1);
  }

  hGet(key: string, field: string): Promise<string | null> {
    return this.run(() => this.client.hget(key, field));
  }

  hGetAll(key: string): Promise<Record<string, string>> {
    return this.run(() => this.client.hgetall(key));
  }

  hSet(key: string, fields: Record<string, string>): Promise<void> {
    return this.run(async () => {
      if (Object.keys(fields).length) await this.client.hset(key, fields);
    });
  }

  hSetNx(key: string, field: string, value: string): Promise<boolean> {
    return this.run(async () => (await this.client.hsetnx(key, field, value)) === 1);
  }

  hDel(key: string, ...fields: string[]): Promise<number> {
    if (fields.length === 0) return Promise.resolve(0);
    return this.run(() => this.client.hdel(key, ...fields));
  }

  sAdd(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return this.run(() => this.client.sadd(key, ...members));
  }

  sRem(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return this.run(() => this.client.srem(key, ...members));
  }

  sMembers(key: string): Promise<string[]> {
    return this.run(() => this.client.smembers(key));
  }

  sIsMember(key: string, member: string): Promise<boolean> {
    return this.run(async () => (await this.client.sismember(key, member)) === 1);
  }

  sScan(key: string, cursor: string, count: number): Promise<[string, string[]]> {
    return this.run(() => this.client.sscan(key, cursor, 'COUNT', count));
  }

  mGet(keys: string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return Promise.resolve([]);
    return this.run(() => this.client.mget(...keys));
  }

  sUnion(keys: string[]): Promise<string[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return this.run(() => this.client.sunion(...keys));
  }

  sCard(key: string): Promise<number> {
    return this.run(() => this.client.scard(key));
  }

  hLen(key: string): Promise<number> {
    return this.run(() => this.client.hlen(key));
  }

  hIncrBy(key: string, field: string, by: number): Promise<number> {
    return this.run(() => this.client.hincrby(key, field, by));
  }

  atomic(ops: AtomicOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    return this.run(async () => {
      const multi = this.client.multi();
      for (const o of ops) {
        switch (o.op) {
          case 'set':
            if (o.ttlMs) multi.set(o.key, o.value, 'PX', o.ttlMs);
            else multi.set(o.key, o.value);
            break;
          case 'del':
            multi.del(o.key);
            break;
          case 'hSet':
            if (Object.keys(o.fields).length) multi.hset(o.key, o.fields);
            break;
          case 'hDel':
            if (o.fields.length) multi.hdel(o.key, ...o.fields);
            break;
          case 'hIncrBy':
            multi.hincrby(o.key, o.field, o.by);
            break;
          case 'sAdd':
            if (o.members.length) multi.sadd(o.key, ...o.members);
            break;
          case 'sRem':
            if (o.members.length) multi.srem(o.key, ...o.members);
            break;
        }
      }
      const res = await multi.exec();
      const failed = res?.find(([err]) => err)?.[0];
      if (failed) throw failed;
    });
  }

  pushCapped(key: string, value: string, max: number): Promise<void> {
    return this.run(async () => {
      // MULTI reports a failed command in its results instead of rejecting: surface it.
      const res = await this.client.multi().lpush(key, value).ltrim(key, 0, Math.max(1, max) - 1).exec();
      const failed = res?.find(([err]) => err)?.[0];
      if (failed) throw failed;
    });
  }

  lRange(key: string, start: number, stop: number): Promise<string[]> {
    return this.run(() => this.client.lrange(key, start, stop));
  }

  incr(key: string, ttlMs: number): Promise<number> {
    return this.run(async () => {
      // SET NX PX then INCR: the TTL is set exactly once, when the counter is created (Redis ≥ 2.6.12).
      const res = await this.client.multi().set(key, '0', 'PX', ttlMs, 'NX').incr(key).exec();
      const [err, value] = res?.[1] ?? [new Error('empty reply'), null];
      if (err) throw err;
      return Number(value);
    });
  }

  ping(): Promise<void> {
    return this.run(async () => {
      await this.client.ping();
    });
  }

  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }
}
