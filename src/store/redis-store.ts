import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors/index.js';
import { ClusterReadiness } from './cluster-readiness.js';
import { assertSameSlot, CrossSlotError } from './hash-slot.js';
import type { AtomicOp, KeyValueStore, LexBound, SetOptions, StreamBound, StreamEntry } from './types.js';

/** A Redis node (a Cluster seed node or a sentinel). */
export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** Where the data lives: one server (or a proxy) by URL, a master found through Sentinel, or a Cluster. */
export type RedisTarget =
  | { url: string }
  | { sentinels: RedisNodeAddress[]; sentinelName: string; sentinelPassword?: string }
  | { clusterNodes: RedisNodeAddress[] };

export type RedisStoreOptions = RedisTarget & {
  /** Prepended to every key by ioredis. No braces: the key's own `{domain}` tag must decide its slot. */
  keyPrefix?: string;
  commandTimeoutMs: number;
  /** ACL user and password of the Sentinel-managed or Cluster nodes (a `url` carries its own). */
  username?: string;
  password?: string;
  /** TLS to the nodes and sentinels of Sentinel or Cluster (for one server, use a `rediss://` url). */
  tls?: boolean;
};

export type RedisMode = 'standalone' | 'sentinel' | 'cluster';

/**
 * Replies that say Redis cannot serve right now (a failover, a replica loading, a cluster missing a
 * shard): the same as an unreachable store. Any other reply error (WRONGTYPE …) is a bug of ours.
 */
const TRANSIENT_REPLY_RE = /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

function isReplyError(err: unknown): err is Error & { previousErrors?: unknown[] } {
  return err instanceof Error && err.name === 'ReplyError';
}

/** A reply error that is a bug of ours (e.g. WRONGTYPE), not "store unavailable". */
function isBugReply(err: unknown): boolean {
  if (!isReplyError(err)) return false;
  const replies = [err, ...(err.previousErrors ?? [])];
  return !replies.some((e) => e instanceof Error && TRANSIENT_REPLY_RE.test(e.message));
}

/** A LexBound as Redis writes it: `-`, `+`, `[value` or `(value`. */
function lexArg(bound: LexBound): string {
  if (bound === '-' || bound === '+') return bound;
  return `${bound.exclusive ? '(' : '['}${bound.value}`;
}

/** A StreamBound as Redis writes it: `-`, `+`, `id` or `(id` (exclusive: Redis ≥ 6.2). */
function streamArg(bound: StreamBound): string {
  if (bound === '-' || bound === '+') return bound;
  return `${bound.exclusive ? '(' : ''}${bound.id}`;
}

/** The field every stream entry of ours holds its value in. */
const STREAM_FIELD = 'v';

function streamEntries(raw: Array<[string, string[]]>): StreamEntry[] {
  return raw.map(([id, fields]) => ({ id, value: fields[fields.indexOf(STREAM_FIELD) + 1] ?? '' }));
}

/** ZADD's arguments for members of score 0. */
function zeroScored(members: string[]): string[] {
  return members.flatMap((m) => ['0', m]);
}

/** Compare-and-renew / compare-and-delete of a lock's value (KEYS[1]; ARGV[1] the expected value). */
const EXPIRE_IF_EQUALS = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const DEL_IF_EQUALS = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

type ScriptedClient = {
  idpbExpireIfEquals(key: string, expected: string, ttlMs: number): Promise<number>;
  idpbDelIfEquals(key: string, expected: string): Promise<number>;
};

const reconnectDelay = (times: number): number => Math.min(100 * times, 2000);

/**
 * The production store, on one Redis server, a Sentinel-monitored master, or a Redis Cluster. Fails
 * fast instead of queueing while Redis is away (no offline queue, a per-command timeout, no retry of
 * a command once sent), so callers get 503 `store_unavailable` at once, and reconnects by itself when
 * Redis returns.
 */
export class RedisStore implements KeyValueStore {
  readonly kind = 'redis' as const;
  readonly mode: RedisMode;
  readonly keyPrefix: string;
  readonly client: Redis | Cluster;
  private readonly connectTimeoutMs: number;
  /** Sentinel mode: subscriptions to the sentinels' `+switch-master`. */
  private readonly failoverWatchers: Redis[] = [];
  /**
   * Counts the connection's changes of state (closed, reconnecting, ready, a Cluster node gone or added):
   * a readiness answer cached before the latest change is stale.
   */
  connectionChanges = 0;
  /** Cluster mode: what ready() asks (slot coverage, every master). */
  private readonly clusterReadiness: ClusterReadiness | null = null;

  constructor(options: RedisStoreOptions) {
    this.keyPrefix = options.keyPrefix ?? '';
    this.connectTimeoutMs = Math.max(1000, options.commandTimeoutMs);
    if (/[{}]/.test(this.keyPrefix)) throw new Error('keyPrefix may not contain braces: the key\'s own {domain} hash tag must decide its Cluster slot');
    const perConnection: RedisOptions = {
      enableOfflineQueue: false,
      // A command in flight when the connection drops fails; it is never re-sent after reconnecting:
      // Redis may already have run it (only the reply was lost), and a second HINCRBY, INCR, LPUSH or
      // MULTI would apply twice.
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: this.connectTimeoutMs,
      // Concurrent commands (a batch of members in the SSO switch, a CSV import) share round trips.
      enableAutoPipelining: true,
    };
    const auth: RedisOptions = {
      ...(options.username ? { username: options.username } : {}),
      ...(options.password ? { password: options.password } : {}),
      ...(options.tls ? { tls: {} } : {}),
    };
    if ('clusterNodes' in options) {
      this.mode = 'cluster';
      const clusterOptions: ClusterOptions = {
        keyPrefix: this.keyPrefix || undefined,
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        scaleReads: 'master',
        // MOVED and ASK are followed (the command did not run). A closed connection or CLUSTERDOWN is
        // not retried: the command may have run, and the caller should get its 503 now.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        clusterRetryStrategy: reconnectDelay,
        slotsRefreshTimeout: Math.max(1000, options.commandTimeoutMs),
        redisOptions: { ...perConnection, ...auth },
      };
      this.client = new Cluster(options.clusterNodes, clusterOptions);
      this.clusterReadiness = new ClusterReadiness(options.clusterNodes, { timeoutMs: Math.min(1000, options.commandTimeoutMs), redisOptions: auth });
    } else {
      const common: RedisOptions = { ...perConnection, keyPrefix: this.keyPrefix || undefined, lazyConnect: true, retryStrategy: reconnectDelay };
      if ('url' in options) {
        this.mode = 'standalone';
        this.client = new Redis(options.url, common);
      } else {
        this.mode = 'sentinel';
        this.client = new Redis({
          ...common,
          ...auth,
          sentinels: options.sentinels,
          name: options.sentinelName,
          role: 'master',
          ...(options.sentinelPassword ? { sentinelPassword: options.sentinelPassword } : {}),
          ...(options.tls ? { enableTLSForSentinelMode: true, sentinelTLS: {} } : {}),
          sentinelRetryStrategy: reconnectDelay,
          // A master demoted after a failover answers writes with READONLY: that command fails (503)
          // and the connection asks the sentinels for the new master.
          reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 1 : false),
        });
        this.watchFailovers(options.sentinels, options.sentinelName, { password: options.sentinelPassword, tls: options.tls });
      }
    }
    // Connection errors are reported through readiness and per-request 503s; without a listener
    // ioredis would print them as unhandled.
    this.client.on('error', () => undefined);
    // EVALSHA, falling back to EVAL once per connection; ioredis applies the key prefix to KEYS.
    this.client.defineCommand('idpbExpireIfEquals', { numberOfKeys: 1, lua: EXPIRE_IF_EQUALS });
    this.client.defineCommand('idpbDelIfEquals', { numberOfKeys: 1, lua: DEL_IF_EQUALS });
    for (const event of ['close', 'end', 'reconnecting', 'ready', '+node', '-node', 'node error']) this.client.on(event, () => this.connectionChanges++);
  }

  /**
   * Sentinel mode: leaves the old master as soon as a sentinel announces a new one. A sentinel demotes
   * a live old master only on its next check (seconds later), and until then writes sent there would
   * succeed and be lost. (What ioredis's own `failoverDetector` does, but with its connection errors
   * handled: that one's sentinel connections have no error listener.)
   */
  private watchFailovers(sentinels: RedisNodeAddress[], name: string, options: { password?: string; tls?: boolean }): void {
    for (const sentinel of sentinels) {
      const watcher = new Redis({
        ...sentinel,
        ...(options.password ? { password: options.password } : {}),
        ...(options.tls ? { tls: {} } : {}),
        lazyConnect: true,
        connectTimeout: this.connectTimeoutMs,
        retryStrategy: reconnectDelay,
      });
      watcher.on('error', () => undefined);
      watcher.on('message', (_channel: string, message: string) => {
        // "<master name> <old ip> <old port> <new ip> <new port>"
        if (message.split(' ')[0] === name && this.client.status === 'ready') this.client.disconnect(true);
      });
      this.failoverWatchers.push(watcher);
    }
  }

  /**
   * Connects once, waiting at most the connect timeout; if Redis is not there yet, throws
   * StoreUnavailableError and keeps trying in the background.
   */
  async connect(): Promise<void> {
    for (const watcher of this.failoverWatchers) watcher.subscribe('+switch-master').catch(() => undefined);
    const attempt = this.client.connect();
    attempt.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis (${this.mode}) not reachable within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
    });
    try {
      await Promise.race([attempt, limit]);
    } catch (err) {
      throw new StoreUnavailableError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  private async run<T>(op: () => Promise<T>): Promise<T> {
    // A Cluster client that is not ready would hold auto-pipelined commands until it is: fail now.
    if (this.client instanceof Cluster && this.client.status !== 'ready') {
      throw new StoreUnavailableError(new Error(`Redis Cluster connection is ${this.client.status}`));
    }
    try {
      return await op();
    } catch (err) {
      if (err instanceof CrossSlotError || isBugReply(err)) throw err;
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
    // One DEL per key: valid on Redis Cluster whatever slots the keys hash to (auto-pipelining still
    // sends them together). Any DEL that fails fails the call: "ended" must not be counted silently short.
    return this.run(async () => (await Promise.all(keys.map((k) => this.client.del(k)))).reduce((n, v) => n + v, 0));
  }

  pttl(key: string): Promise<number> {
    return this.run(() => this.client.pttl(key));
  }

  expire(key: string, ttlMs: number): Promise<boolean> {
    return this.run(async () => (await this.client.pexpire(key, ttlMs)) === 1);
  }

  expireIfEquals(key: string, expected: string, ttlMs: number): Promise<boolean> {
    return this.run(async () => (await (this.client as unknown as ScriptedClient).idpbExpireIfEquals(key, expected, ttlMs)) === 1);
  }

  delIfEquals(key: string, expected: string): Promise<boolean> {
    return this.run(async () => (await (this.client as unknown as ScriptedClient).idpbDelIfEquals(key, expected)) === 1);
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
    return this.run(() => {
      assertSameSlot('mGet', keys);
      return this.client.mget(...keys);
    });
  }

  sUnion(keys: string[]): Promise<string[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return this.run(() => {
      assertSameSlot('sUnion', keys);
      return this.client.sunion(...keys);
    });
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

  zAdd(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return this.run(() => this.client.zadd(key, ...zeroScored(members)));
  }

  zRem(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    return this.run(() => this.client.zrem(key, ...members));
  }

  zRangeByLex(key: string, min: LexBound, max: LexBound, limit: number): Promise<string[]> {
    if (limit <= 0) return Promise.resolve([]);
    return this.run(() => this.client.zrangebylex(key, lexArg(min), lexArg(max), 'LIMIT', 0, limit));
  }

  zCard(key: string): Promise<number> {
    return this.run(() => this.client.zcard(key));
  }

  atomic(ops: AtomicOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    return this.run(async () => {
      // MULTI/EXEC on Cluster: one slot per transaction.
      assertSameSlot('atomic', ops.map((o) => o.key));
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
          case 'zAdd':
            if (o.members.length) multi.zadd(o.key, ...zeroScored(o.members));
            break;
          case 'zRem':
            if (o.members.length) multi.zrem(o.key, ...o.members);
            break;
          case 'expire':
            multi.pexpire(o.key, o.ttlMs);
            break;
        }
      }
      const res = await multi.exec();
      const failed = res?.find(([err]) => err)?.[0];
      if (failed) throw failed;
    });
  }

  xAdd(key: string, value: string, options: { atMs: number; minIdMs?: number }): Promise<string> {
    const trim = options.minIdMs === undefined ? [] : ['MINID', '~', String(Math.max(0, Math.floor(options.minIdMs)))];
    const add = (id: string): Promise<string | null> =>
      (this.client.xadd as (...args: string[]) => Promise<string | null>).call(this.client, key, ...trim, id, STREAM_FIELD, value);
    return this.run(async () => {
      try {
        // `<ms>-*`: Redis ≥ 7.0 picks the sequence number.
        return (await add(`${Math.max(0, Math.floor(options.atMs))}-*`))!;
      } catch (err) {
        // The newest entry is not older than atMs: `*` takes the next id after it (or the server's time).
        if (!(isReplyError(err) && /equal or smaller/.test(err.message))) throw err;
        return (await add('*'))!;
      }
    });
  }

  xRange(key: string, start: StreamBound, end: StreamBound, count: number): Promise<StreamEntry[]> {
    if (count <= 0) return Promise.resolve([]);
    return this.run(async () => streamEntries(await this.client.xrange(key, streamArg(start), streamArg(end), 'COUNT', count)));
  }

  xRevRange(key: string, end: StreamBound, start: StreamBound, count: number): Promise<StreamEntry[]> {
    if (count <= 0) return Promise.resolve([]);
    return this.run(async () => streamEntries(await this.client.xrevrange(key, streamArg(end), streamArg(start), 'COUNT', count)));
  }

  xLen(key: string): Promise<number> {
    return this.run(() => this.client.xlen(key));
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

  /**
   * Standalone and Sentinel: a PING of the master. Cluster: the client is connected, the slot map covers
   * every slot and every master owning slots answers CLUSTER INFO with `cluster_state:ok` (ClusterReadiness).
   */
  async ready(): Promise<void> {
    if (!this.clusterReadiness) return this.ping();
    if (this.client.status !== 'ready') throw new StoreUnavailableError(new Error(`Redis Cluster connection is ${this.client.status}`));
    return this.clusterReadiness.check();
  }

  async close(): Promise<void> {
    this.clusterReadiness?.close();
    try {
      await this.client.quit();
    } catch {
      // already gone
    } finally {
      // Also stops what QUIT leaves behind: reconnect timers, sentinel and cluster-node connections.
      this.client.disconnect();
      for (const watcher of this.failoverWatchers) watcher.disconnect();
    }
  }
}
