import { assertSameSlot } from './hash-slot.js';
import type { AtomicOp, KeyValueStore, LexBound, SetOptions, StreamBound, StreamEntry } from './types.js';

type Entry =
  | { type: 'string'; value: string; expiresAt: number | null }
  | { type: 'hash'; value: Map<string, string>; expiresAt: number | null }
  | { type: 'set'; value: Set<string>; expiresAt: number | null }
  | { type: 'list'; value: string[]; expiresAt: number | null }
  /** A sorted set of score-0 members: kept in Redis's lexicographic (UTF-8 byte) order. */
  | { type: 'zset'; value: string[]; expiresAt: number | null }
  /** A stream: entries in id order, each id as numbers too. */
  | { type: 'stream'; value: Array<StreamEntry & { ms: number; seq: number }>; expiresAt: number | null };

/** `<ms>-<seq>` (or `<ms>`: seq 0 as a start, the highest as an end) as numbers; throws on a malformed id, as Redis does. */
function parseStreamId(id: string, asEnd: boolean): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(id);
  if (!m) throw new Error('ERR Invalid stream ID specified as stream command argument');
  return [Number(m[1]), m[2] === undefined ? (asEnd ? Number.MAX_SAFE_INTEGER : 0) : Number(m[2])];
}

function compareIds(a: [number, number], b: [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/**
 * Compares as Redis does (UTF-8 bytes, i.e. code points). UTF-16 code units order the same except
 * that a surrogate (a code point past U+FFFF) must sort after U+E000–U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? 1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}

/** The first index whose member is not below `value` (binary search). */
function lowerBound(sorted: string[], value: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareUtf8(sorted[mid]!, value) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class WrongTypeError extends Error {
  constructor() {
    super('WRONGTYPE Operation against a key holding the wrong kind of value');
  }
}

/**
 * In-process store for `npm start` without Redis and for unit tests of pure logic. Same semantics as
 * the Redis store (the contract suite proves it), including Redis Cluster's one-slot rule for
 * multi-key calls; single process only, nothing survives a restart.
 */
export class MemoryStore implements KeyValueStore {
  readonly kind = 'memory' as const;
  private readonly data = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, e] of this.data) if (e.expiresAt !== null && e.expiresAt <= t) this.data.delete(k);
  }

  private live(key: string): Entry | undefined {
    const e = this.data.get(key);
    if (e && e.expiresAt !== null && e.expiresAt <= this.now()) {
      this.data.delete(key);
      return undefined;
    }
    return e;
  }

  private typed<T extends Entry['type']>(key: string, type: T): Extract<Entry, { type: T }> | undefined {
    const e = this.live(key);
    if (e && e.type !== type) throw new WrongTypeError();
    return e as Extract<Entry, { type: T }> | undefined;
  }

  private ensure<T extends Entry['type']>(key: string, type: T, make: () => Extract<Entry, { type: T }>['value']): Extract<Entry, { type: T }> {
    let e = this.typed(key, type);
    if (!e) {
      e = { type, value: make(), expiresAt: null } as unknown as Extract<Entry, { type: T }>;
      this.data.set(key, e);
    }
    return e;
  }

  private dropIfEmpty(key: string, e: Entry): void {
    if (e.type === 'stream') return; // Redis keeps an emptied stream
    const size = e.type === 'string' ? 1 : e.type === 'list' || e.type === 'zset' ? e.value.length : e.value.size;
    if (size === 0) this.data.delete(key);
  }

  async get(key: string): Promise<string | null> {
    return Promise.resolve(this.typed(key, 'string')?.value ?? null);
  }

  async set(key: string, value: string, options: SetOptions = {}): Promise<boolean> {
    if (options.nx && this.live(key)) return Promise.resolve(false);
    this.data.set(key, { type: 'string', value, expiresAt: options.ttlMs ? this.now() + options.ttlMs : null });
    return Promise.resolve(true);
  }

  async getDel(key: string): Promise<string | null> {
    const e = this.typed(key, 'string');
    if (!e) return Promise.resolve(null);
    this.data.delete(key);
    return Promise.resolve(e.value);
  }

  async del(...keys: string[]): Promise<number> {
    let n = 0;
    for (const k of keys) if (this.live(k) && this.data.delete(k)) n++;
    return Promise.resolve(n);
  }

  async pttl(key: string): Promise<number> {
    const e = this.live(key);
    if (!e) return Promise.resolve(-2);
    return Promise.resolve(e.expiresAt === null ? -1 : e.expiresAt - this.now());
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const e = this.live(key);
    if (!e) return Promise.resolve(false);
    e.expiresAt = this.now() + ttlMs;
    return Promise.resolve(true);
  }

  async expireIfEquals(key: string, expected: string, ttlMs: number): Promise<boolean> {
    const e = this.typed(key, 'string');
    if (!e || e.value !== expected) return Promise.resolve(false);
    e.expiresAt = this.now() + ttlMs;
    return Promise.resolve(true);
  }

  async delIfEquals(key: string, expected: string): Promise<boolean> {
    const e = this.typed(key, 'string');
    if (!e || e.value !== expected) return Promise.resolve(false);
    this.data.delete(key);
    return Promise.resolve(true);
  }

  async hGet(key: string, field: string): Promise<string | null> {
    return Promise.resolve(this.typed(key, 'hash')?.value.get(field) ?? null);
  }

  async hGetAll(key: string): Promise<Record<string, string>> {
    return Promise.resolve(Object.fromEntries(this.typed(key, 'hash')?.value ?? []));
  }

  async hSet(key: string, fields: Record<string, string>): Promise<void> {
    if (Object.keys(fields).length === 0) return Promise.resolve();
    const e = this.ensure(key, 'hash', () => new Map());
    for (const [f, v] of Object.entries(fields)) e.value.set(f, v);
    return Promise.resolve();
  }

  async hSetNx(key: string, field: string, value: string): Promise<boolean> {
    const e = this.ensure(key, 'hash', () => new Map());
    if (e.value.has(field)) return Promise.resolve(false);
    e.value.set(field, value);
    return Promise.resolve(true);
  }

  async hDel(key: string, ...fields: string[]): Promise<number> {
    const e = this.typed(key, 'hash');
    if (!e) return Promise.resolve(0);
    let n = 0;
    for (const f of fields) if (e.value.delete(f)) n++;
    this.dropIfEmpty(key, e);
    return Promise.resolve(n);
  }

  async sAdd(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    const e = this.ensure(key, 'set', () => new Set());
    let n = 0;
    for (const m of members) {
      if (!e.value.has(m)) {
        e.value.add(m);
        n++;
      }
    }
    return Promise.resolve(n);
  }

  async sRem(key: string, ...members: string[]): Promise<number> {
    const e = this.typed(key, 'set');
    if (!e) return Promise.resolve(0);
    let n = 0;
    for (const m of members) if (e.value.delete(m)) n++;
    this.dropIfEmpty(key, e);
    return Promise.resolve(n);
  }

  async sMembers(key: string): Promise<string[]> {
    return Promise.resolve([...(this.typed(key, 'set')?.value ?? [])]);
  }

  async sIsMember(key: string, member: string): Promise<boolean> {
    return Promise.resolve(this.typed(key, 'set')?.value.has(member) ?? false);
  }

  async sScan(key: string, cursor: string, count: number): Promise<[string, string[]]> {
    // Cursor = the last member returned; members are visited in sorted order, so deleting members
    // during the iteration never skips others.
    const after = cursor === '0' ? null : Buffer.from(cursor, 'base64url').toString('utf8');
    const all = [...(this.typed(key, 'set')?.value ?? [])].sort();
    const start = after === null ? 0 : all.findIndex((m) => m > after);
    if (start < 0) return Promise.resolve(['0', []]);
    const batch = all.slice(start, start + count);
    const done = start + count >= all.length;
    return Promise.resolve([done ? '0' : Buffer.from(batch[batch.length - 1]!).toString('base64url'), batch]);
  }

  async mGet(keys: string[]): Promise<Array<string | null>> {
    assertSameSlot('mGet', keys);
    return Promise.resolve(keys.map((k) => this.typed(k, 'string')?.value ?? null));
  }

  async sUnion(keys: string[]): Promise<string[]> {
    assertSameSlot('sUnion', keys);
    const out = new Set<string>();
    for (const k of keys) for (const m of this.typed(k, 'set')?.value ?? []) out.add(m);
    return Promise.resolve([...out]);
  }

  async sCard(key: string): Promise<number> {
    return Promise.resolve(this.typed(key, 'set')?.value.size ?? 0);
  }

  async hLen(key: string): Promise<number> {
    return Promise.resolve(this.typed(key, 'hash')?.value.size ?? 0);
  }

  async hIncrBy(key: string, field: string, by: number): Promise<number> {
    const e = this.ensure(key, 'hash', () => new Map());
    const n = Number(e.value.get(field) ?? '0') + by;
    if (!Number.isSafeInteger(n)) throw new Error('ERR hash value is not an integer');
    e.value.set(field, String(n));
    return Promise.resolve(n);
  }

  async zAdd(key: string, ...members: string[]): Promise<number> {
    if (members.length === 0) return Promise.resolve(0);
    const e = this.ensure(key, 'zset', () => []);
    let n = 0;
    for (const m of members) {
      const at = lowerBound(e.value, m);
      if (e.value[at] === m) continue;
      e.value.splice(at, 0, m);
      n++;
    }
    return Promise.resolve(n);
  }

  async zRem(key: string, ...members: string[]): Promise<number> {
    const e = this.typed(key, 'zset');
    if (!e) return Promise.resolve(0);
    let n = 0;
    for (const m of members) {
      const at = lowerBound(e.value, m);
      if (e.value[at] !== m) continue;
      e.value.splice(at, 1);
      n++;
    }
    this.dropIfEmpty(key, e);
    return Promise.resolve(n);
  }

  async zRangeByLex(key: string, min: LexBound, max: LexBound, limit: number): Promise<string[]> {
    const all = this.typed(key, 'zset')?.value ?? [];
    if (limit <= 0) return Promise.resolve([]);
    let start = 0;
    if (min === '+') start = all.length;
    else if (min !== '-') {
      start = lowerBound(all, min.value);
      if (min.exclusive && all[start] === min.value) start++;
    }
    const out: string[] = [];
    for (let i = start; i < all.length && out.length < limit; i++) {
      const m = all[i]!;
      if (max === '-') break;
      if (max !== '+') {
        const c = compareUtf8(m, max.value);
        if (c > 0 || (c === 0 && max.exclusive)) break;
      }
      out.push(m);
    }
    return Promise.resolve(out);
  }

  async zCard(key: string): Promise<number> {
    return Promise.resolve(this.typed(key, 'zset')?.value.length ?? 0);
  }

  async atomic(ops: AtomicOp[]): Promise<void> {
    // Redis Cluster's rule holds here too, so a cross-slot batch fails in every test.
    assertSameSlot('atomic', ops.map((o) => o.key));
    // Single-threaded: check every op's type first, then apply, so a bad op applies nothing.
    for (const o of ops) {
      const want = o.op === 'set' || o.op === 'del' || o.op === 'expire' ? null : o.op.startsWith('h') ? 'hash' : o.op.startsWith('z') ? 'zset' : 'set';
      const e = this.live(o.key);
      if (want && e && e.type !== want) throw new WrongTypeError();
    }
    for (const o of ops) {
      switch (o.op) {
        case 'set':
          await this.set(o.key, o.value, { ttlMs: o.ttlMs });
          break;
        case 'del':
          await this.del(o.key);
          break;
        case 'hSet':
          await this.hSet(o.key, o.fields);
          break;
        case 'hDel':
          await this.hDel(o.key, ...o.fields);
          break;
        case 'hIncrBy':
          await this.hIncrBy(o.key, o.field, o.by);
          break;
        case 'sAdd':
          await this.sAdd(o.key, ...o.members);
          break;
        case 'sRem':
          await this.sRem(o.key, ...o.members);
          break;
        case 'zAdd':
          await this.zAdd(o.key, ...o.members);
          break;
        case 'zRem':
          await this.zRem(o.key, ...o.members);
          break;
        case 'expire':
          await this.expire(o.key, o.ttlMs);
          break;
      }
    }
  }

  async xAdd(key: string, value: string, options: { atMs: number; minIdMs?: number }): Promise<string> {
    const e = this.ensure(key, 'stream', () => []);
    const last = e.value[e.value.length - 1];
    let ms = Math.max(0, Math.floor(options.atMs));
    let seq = 0;
    // As Redis's `*` when the newest entry is later: the server's time, or the next id after that entry.
    if (last && last.ms > ms) ms = Math.max(this.now(), last.ms);
    if (last && last.ms === ms) seq = last.seq + 1;
    const id = `${ms}-${seq}`;
    e.value.push({ id, value, ms, seq });
    if (options.minIdMs !== undefined) {
      const keepFrom = e.value.findIndex((x) => x.ms >= options.minIdMs!);
      e.value.splice(0, keepFrom < 0 ? e.value.length : keepFrom);
    }
    return Promise.resolve(id);
  }

  /** Entries between the bounds, oldest first. */
  private streamSlice(key: string, start: StreamBound, end: StreamBound): Array<StreamEntry & { ms: number; seq: number }> {
    const all = this.typed(key, 'stream')?.value ?? [];
    const lo = start === '-' ? null : start === '+' ? [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] as [number, number] : parseStreamId(start.id, false);
    const hi = end === '+' ? null : end === '-' ? [0, -1] as [number, number] : parseStreamId(end.id, true);
    const loEx = typeof start === 'object' && start.exclusive;
    const hiEx = typeof end === 'object' && end.exclusive;
    return all.filter((x) => {
      const id: [number, number] = [x.ms, x.seq];
      if (lo) {
        const c = compareIds(id, lo);
        if (c < 0 || (c === 0 && loEx)) return false;
      }
      if (hi) {
        const c = compareIds(id, hi);
        if (c > 0 || (c === 0 && hiEx)) return false;
      }
      return true;
    });
  }

  async xRange(key: string, start: StreamBound, end: StreamBound, count: number): Promise<StreamEntry[]> {
    if (count <= 0) return Promise.resolve([]);
    return Promise.resolve(this.streamSlice(key, start, end).slice(0, count).map(({ id, value }) => ({ id, value })));
  }

  async xRevRange(key: string, end: StreamBound, start: StreamBound, count: number): Promise<StreamEntry[]> {
    if (count <= 0) return Promise.resolve([]);
    const slice = this.streamSlice(key, start, end);
    return Promise.resolve(slice.slice(Math.max(0, slice.length - count)).reverse().map(({ id, value }) => ({ id, value })));
  }

  async xLen(key: string): Promise<number> {
    return Promise.resolve(this.typed(key, 'stream')?.value.length ?? 0);
  }

  async pushCapped(key: string, value: string, max: number): Promise<void> {
    const e = this.ensure(key, 'list', () => []);
    e.value.unshift(value);
    if (e.value.length > Math.max(1, max)) e.value.length = Math.max(1, max);
    return Promise.resolve();
  }

  async lRange(key: string, start: number, stop: number): Promise<string[]> {
    const list = this.typed(key, 'list')?.value ?? [];
    const end = stop < 0 ? list.length + stop + 1 : stop + 1;
    return Promise.resolve(list.slice(start < 0 ? Math.max(0, list.length + start) : start, Math.max(0, end)));
  }

  async incr(key: string, ttlMs: number): Promise<number> {
    const e = this.typed(key, 'string');
    if (!e) {
      this.data.set(key, { type: 'string', value: '1', expiresAt: this.now() + ttlMs });
      return Promise.resolve(1);
    }
    const n = Number(e.value) + 1;
    if (!Number.isSafeInteger(n)) throw new Error('ERR value is not an integer or out of range');
    e.value = String(n);
    return Promise.resolve(n);
  }

  async ping(): Promise<void> {
    return Promise.resolve();
  }

  async ready(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.data.clear();
    return Promise.resolve();
  }
}
