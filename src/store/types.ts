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

export interface KeyValueStore {
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | null>;
  /** Returns false only when `nx` was asked and the key already existed. */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  /** Atomically reads and deletes (Redis GETDEL): the basis of single-use records. */
  getDel(key: string): Promise<string | null>;
  del(...keys: string[]): Promise<number>;
  /** Remaining time to live in ms; -1 when the key has none, -2 when it does not exist. */
  pttl(key: string): Promise<number>;
  expire(key: string, ttlMs: number): Promise<boolean>;

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

  /** LPUSH then LTRIM to `max` entries (at least 1): a capped, newest-first log. */
  pushCapped(key: string, value: string, max: number): Promise<void>;
  lRange(key: string, start: number, stop: number): Promise<string[]>;

  /** INCR; sets the TTL when the counter is created. */
  incr(key: string, ttlMs: number): Promise<number>;

  /** Throws StoreUnavailableError when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
