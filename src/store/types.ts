/**
 * The storage interface every part of idp-bridge uses. It is a deliberately small subset of Redis
 * semantics so that it has two honest implementations — Redis (ioredis) and in-process memory — and
 * one contract test suite runs on both (test/contract/store.contract.test.ts).
 *
 * Keys are built only in `keys.ts`. TTLs are in milliseconds.
 */
export interface SetOptions {
  /** Expire the key after this many milliseconds. */
  ttlMs?: number;
  /** Only set when the key does not exist (Redis SET NX). */
  nx?: boolean;
}

/** One write of an atomic batch (see KeyValueStore.atomic). */
export type AtomicOp =
  | { op: 'set'; key: string; value: string; ttlMs?: number }
  | { op: 'del'; key: string }
  | { op: 'hSet'; key: string; fields: Record<string, string> }
  | { op: 'hDel'; key: string; fields: string[] }
  | { op: 'hIncrBy'; key: string; field: string; by: number }
  | { op: 'sAdd'; key: string; members: string[] }
  | { op: 'sRem'; key: string; members: string[] }
  | { op: 'zAdd'; key: string; members: string[] }
  | { op: 'zRem'; key: string; members: string[] }
  /** PEXPIRE: (re)sets the key's time to live; nothing when the key does not exist. */
  | { op: 'expire'; key: string; ttlMs: number };

/**
 * One end of an XRANGE / XREVRANGE range: `'-'` / `'+'` (the oldest / newest), or an entry id
 * (`<ms>-<seq>`, or `<ms>` meaning the whole millisecond), inclusive unless `exclusive`.
 */
export type StreamBound = '-' | '+' | { id: string; exclusive?: boolean };

/** One entry of a stream: its id `<ms>-<seq>` and its value. */
export interface StreamEntry {
  id: string;
  value: string;
}

/**
 * One end of a ZRANGEBYLEX range: `'-'` / `'+'` (the lowest / highest), or a value, inclusive unless
 * `exclusive`. Members compare byte by byte in their UTF-8 encoding (Redis's lexicographic order).
 */
export type LexBound = '-' | '+' | { value: string; exclusive?: boolean };

export interface KeyValueStore {
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | null>;
  /** Returns false only when `nx` was asked and the key already existed. */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /** Atomically reads and deletes (Redis GETDEL): the basis of single-use records. */
  getDel(key: string): Promise<string | null>;
  /** Any keys, in any slots (one DEL per key); rejects if any DEL fails. */
  del(...keys: string[]): Promise<number>;
  /** Remaining time to live in ms; -1 when the key has none, -2 when it does not exist. */
  pttl(key: string): Promise<number>;
  expire(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Compare-and-renew (one atomic step, a Lua script on Redis): when the string at `key` is exactly
   * `expected`, sets its time to live to `ttlMs` and returns true; otherwise (another value, no key)
   * changes nothing and returns false. What a lock's holder renews its lease with (LeaseLock).
   */
  expireIfEquals(key: string, expected: string, ttlMs: number): Promise<boolean>;
  /** Compare-and-delete (atomic): deletes `key` only when its string is exactly `expected`; true when it did. */
  delIfEquals(key: string, expected: string): Promise<boolean>;

  hGet(key: string, field: string): Promise<string | null>;
  hGetAll(key: string): Promise<Record<string, string>>;
  hSet(key: string, fields: Record<string, string>): Promise<void>;
  /** Sets the field only if absent; true when it was set. */
  hSetNx(key: string, field: string, value: string): Promise<boolean>;
  hDel(key: string, ...fields: string[]): Promise<number>;

  sAdd(key: string, ...members: string[]): Promise<number>;
  sRem(key: string, ...members: string[]): Promise<number>;
  sMembers(key: string): Promise<string[]>;
  sIsMember(key: string, member: string): Promise<boolean>;

  /**
   * Iterates a set in batches: start with cursor '0'; a returned cursor of '0' ends the iteration.
   * Members present for the whole iteration are returned at least once (Redis SSCAN semantics);
   * callers must therefore be idempotent per member.
   */
  sScan(key: string, cursor: string, count: number): Promise<[string, string[]]>;
  /**
   * MGET / SUNION. The keys must share a hash tag (one tenant's keys, `idpb:{domain}:…`), as Redis
   * Cluster needs: both stores reject other calls with CrossSlotError, on every deployment.
   */
  mGet(keys: string[]): Promise<Array<string | null>>;
  sUnion(keys: string[]): Promise<string[]>;
  sCard(key: string): Promise<number>;
  hLen(key: string): Promise<number>;
  hIncrBy(key: string, field: string, by: number): Promise<number>;

  /**
   * Lexicographic indexes: sorted sets whose members all have score 0 (ZADD key 0 m …), so they are
   * ordered by their UTF-8 bytes. zAdd returns how many were new, zRem how many were there.
   */
  zAdd(key: string, ...members: string[]): Promise<number>;
  zRem(key: string, ...members: string[]): Promise<number>;
  /** ZRANGEBYLEX key min max LIMIT 0 limit: at most `limit` members between the bounds, in order. */
  zRangeByLex(key: string, min: LexBound, max: LexBound, limit: number): Promise<string[]>;
  zCard(key: string): Promise<number>;

  /**
   * Sends the writes as one MULTI/EXEC: a connection failure applies none of them, and no other
   * client sees a state in between. (A command Redis itself refuses — a bug — does not undo the
   * others.) All keys of one batch must share a hash tag, as Redis Cluster needs: use keys of one
   * tenant (`idpb:{domain}:…`); both stores reject other batches with CrossSlotError, applying nothing.
   */
  atomic(ops: AtomicOp[]): Promise<void>;

  /**
   * Appends to a stream (XADD, one field): the entry's id is `<atMs>-<seq>`, or, when the stream's newest
   * entry is not older than `atMs` (another process's clock, a clock set back), the next id after it
   * (the server's time if later). With `minIdMs`, entries older than that may be dropped (MINID ~:
   * approximate, some older ones may stay). Returns the id.
   */
  xAdd(key: string, value: string, options: { atMs: number; minIdMs?: number }): Promise<string>;
  /** XRANGE key start end COUNT count: at most `count` entries, oldest first. */
  xRange(key: string, start: StreamBound, end: StreamBound, count: number): Promise<StreamEntry[]>;
  /** XREVRANGE key end start COUNT count: at most `count` entries, newest first. */
  xRevRange(key: string, end: StreamBound, start: StreamBound, count: number): Promise<StreamEntry[]>;
  xLen(key: string): Promise<number>;

  /** LPUSH then LTRIM to `max` entries (at least 1): a capped, newest-first log. */
  pushCapped(key: string, value: string, max: number): Promise<void>;
  lRange(key: string, start: number, stop: number): Promise<string[]>;

  /** INCR; sets the TTL when the counter is created. */
  incr(key: string, ttlMs: number): Promise<number>;

  /** Throws StoreUnavailableError when the store cannot be reached. */
  ping(): Promise<void>;
  /**
   * Throws StoreUnavailableError unless the store can serve every key now (readiness, /readyz): on one
   * server a ping; on a Redis Cluster, full slot coverage and every master answering `cluster_state:ok`.
   */
  ready(): Promise<void>;
  close(): Promise<void>;
}
