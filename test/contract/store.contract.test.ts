import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { StoreUnavailableError } from '../../src/errors/index.js';
import { CrossSlotError, MemoryStore, type KeyValueStore } from '../../src/store/index.js';
import { createTestRedisStore } from '../helpers/redis.js';
import { createTestRedisClusterStore } from '../helpers/redis-cluster.js';

interface StoreFixture {
  store: KeyValueStore;
  cleanup: () => Promise<void>;
}

/** A misuse Redis answers with WRONGTYPE: a bug of ours (500), never "store unavailable" (503). */
function isWrongType(err: unknown): boolean {
  return err instanceof Error && !(err instanceof StoreUnavailableError) && /^WRONGTYPE/.test(err.message);
}

/**
 * The KeyValueStore contract. Every assertion here holds for every implementation — in-process, one
 * Redis server, Redis Cluster: the in-process store must behave exactly like Redis wherever idp-bridge
 * relies on it, and nothing may rely on keys sharing a server.
 */
function storeContract(name: string, makeStore: () => Promise<StoreFixture>): void {
  describe(`KeyValueStore contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: KeyValueStore;
    /** A fresh key per use, so cases never see each other's data. */
    const k = (label: string): string => `contract:${label}:${randomBytes(6).toString('hex')}`;

    before(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    after(async () => fixture.cleanup());

    it('names its kind', () => {
      assert.ok(store.kind === 'memory' || store.kind === 'redis');
    });

    it('ping resolves', async () => {
      assert.equal(await store.ping(), undefined);
    });

    it('ready resolves while the store can serve every key', async () => {
      assert.equal(await store.ready(), undefined);
    });

    describe('strings', () => {
      it('get is null for a missing key; set then get returns the value', async () => {
        const key = k('str');
        assert.equal(await store.get(key), null);
        assert.equal(await store.set(key, 'v1'), true);
        assert.equal(await store.get(key), 'v1');
        assert.equal(await store.set(key, 'v2'), true, 'a plain set overwrites');
        assert.equal(await store.get(key), 'v2');
      });

      it('keeps values byte for byte (unicode, empty string, JSON)', async () => {
        const key = k('str');
        for (const value of ['', 'ünï©ødé ✓ 😀', JSON.stringify({ a: [1, 'b'], c: null }), 'line1\nline2\r\n\t']) {
          await store.set(key, value);
          assert.equal(await store.get(key), value);
        }
      });

      it('set with ttlMs gives the key a TTL and the key disappears after it', async () => {
        const key = k('ttl');
        assert.equal(await store.set(key, 'short', { ttlMs: 80 }), true);
        const ttl = await store.pttl(key);
        assert.ok(ttl > 0 && ttl <= 80, `pttl ${ttl} is within (0, 80]`);
        assert.equal(await store.get(key), 'short');
        await sleep(200);
        assert.equal(await store.get(key), null);
        assert.equal(await store.pttl(key), -2);
        assert.equal(await store.getDel(key), null);
        assert.equal(await store.del(key), 0, 'an expired key is not counted as deleted');
      });

      it('a plain set removes an earlier TTL', async () => {
        const key = k('ttl');
        await store.set(key, 'a', { ttlMs: 60_000 });
        assert.ok((await store.pttl(key)) > 0);
        await store.set(key, 'b');
        assert.equal(await store.pttl(key), -1);
      });

      it('set nx: true and written when absent, false and untouched when present', async () => {
        const key = k('nx');
        assert.equal(await store.set(key, 'first', { nx: true }), true);
        assert.equal(await store.get(key), 'first');
        assert.equal(await store.set(key, 'second', { nx: true }), false);
        assert.equal(await store.get(key), 'first', 'nx never overwrites');
        assert.equal(await store.set(key, 'third', { nx: false }), true, 'nx: false is a plain set');
        assert.equal(await store.get(key), 'third');
      });

      it('set nx with ttlMs applies the TTL only when it wins', async () => {
        const key = k('nx');
        assert.equal(await store.set(key, 'a', { nx: true, ttlMs: 60_000 }), true);
        const ttl = await store.pttl(key);
        assert.ok(ttl > 0 && ttl <= 60_000);
        const plain = k('nx');
        await store.set(plain, 'x');
        assert.equal(await store.set(plain, 'y', { nx: true, ttlMs: 60_000 }), false);
        assert.equal(await store.pttl(plain), -1, 'a losing nx set leaves the TTL alone');
      });

      it('set nx is refused when the key holds another type', async () => {
        const key = k('nx');
        await store.hSet(key, { f: 'v' });
        assert.equal(await store.set(key, 'x', { nx: true }), false);
        assert.deepEqual(await store.hGetAll(key), { f: 'v' });
      });
    });

    describe('getDel (single use)', () => {
      it('returns the value once, then null, and the key is gone', async () => {
        const key = k('once');
        await store.set(key, 'token', { ttlMs: 60_000 });
        assert.equal(await store.getDel(key), 'token');
        assert.equal(await store.getDel(key), null);
        assert.equal(await store.get(key), null);
        assert.equal(await store.pttl(key), -2);
      });

      it('is null for a missing key', async () => {
        assert.equal(await store.getDel(k('missing')), null);
      });

      it('concurrent getDel: exactly one caller wins', async () => {
        const key = k('race');
        await store.set(key, 'prize');
        const results = await Promise.all(Array.from({ length: 20 }, () => store.getDel(key)));
        assert.deepEqual(
          results.filter((r) => r !== null),
          ['prize'],
        );
        assert.equal(results.filter((r) => r === null).length, 19);
      });
    });

    describe('del', () => {
      it('counts only keys that existed, of any type', async () => {
        const [a, b, h, s, l, missing] = ['a', 'b', 'h', 's', 'l', 'missing'].map(k) as [string, string, string, string, string, string];
        await store.set(a, '1');
        await store.set(b, '2');
        await store.hSet(h, { f: 'v' });
        await store.sAdd(s, 'm');
        await store.pushCapped(l, 'x', 10);
        assert.equal(await store.del(a, b, h, s, l, missing), 5);
        for (const key of [a, b, h, s, l]) assert.equal(await store.pttl(key), -2, `${key} is gone`);
        assert.equal(await store.del(a, b), 0, 'deleting again counts nothing');
      });

      it('one key, a missing key, a repeated key, and no keys at all', async () => {
        const key = k('one');
        await store.set(key, 'v');
        assert.equal(await store.del(k('missing')), 0);
        assert.equal(await store.del(key, key), 1, 'a key named twice is deleted once');
        assert.equal(await store.get(key), null);
        assert.equal(await store.del(), 0);
      });
    });

    describe('pttl and expire', () => {
      it('pttl is -2 for a missing key, -1 without TTL, positive with one', async () => {
        const key = k('pttl');
        assert.equal(await store.pttl(key), -2);
        await store.set(key, 'v');
        assert.equal(await store.pttl(key), -1);
        await store.set(key, 'v', { ttlMs: 10_000 });
        const ttl = await store.pttl(key);
        assert.ok(Number.isInteger(ttl) && ttl > 0 && ttl <= 10_000, `pttl ${ttl} is within (0, 10000]`);
      });

      it('expire: false on a missing key, true on an existing one, and the key then expires', async () => {
        const key = k('expire');
        assert.equal(await store.expire(key, 60_000), false);
        assert.equal(await store.pttl(key), -2, 'expire does not create a key');
        await store.set(key, 'v');
        assert.equal(await store.expire(key, 60_000), true);
        const long = await store.pttl(key);
        assert.ok(long > 0 && long <= 60_000);
        assert.equal(await store.expire(key, 80), true, 'expire replaces the TTL');
        const short = await store.pttl(key);
        assert.ok(short > 0 && short <= 80, `pttl ${short} is within (0, 80]`);
        await sleep(200);
        assert.equal(await store.get(key), null);
        assert.equal(await store.pttl(key), -2);
      });

      it('expire works on hashes, sets and lists too', async () => {
        const h = k('h');
        const s = k('s');
        const l = k('l');
        await store.hSet(h, { f: 'v' });
        await store.sAdd(s, 'm');
        await store.pushCapped(l, 'x', 10);
        for (const key of [h, s, l]) {
          assert.equal(await store.pttl(key), -1);
          assert.equal(await store.expire(key, 30_000), true);
          const ttl = await store.pttl(key);
          assert.ok(ttl > 0 && ttl <= 30_000);
        }
        assert.equal(await store.sIsMember(s, 'm'), true, 'expire keeps the value');
      });
    });

    describe('compare-and-renew, compare-and-delete (the lease of a lock)', () => {
      it('expireIfEquals renews only the expected value, never creates a key', async () => {
        const key = k('lease');
        assert.equal(await store.expireIfEquals(key, 'token-a', 60_000), false, 'no key: nothing to renew');
        assert.equal(await store.pttl(key), -2, 'and none created');
        await store.set(key, 'token-a', { ttlMs: 80 });
        assert.equal(await store.expireIfEquals(key, 'token-b', 60_000), false, 'another holder');
        const still = await store.pttl(key);
        assert.ok(still > 0 && still <= 80, `another holder's renewal left the TTL alone (${still})`);
        assert.equal(await store.expireIfEquals(key, 'token-a', 60_000), true);
        const renewed = await store.pttl(key);
        assert.ok(renewed > 80 && renewed <= 60_000, `renewed to ${renewed}`);
        assert.equal(await store.get(key), 'token-a', 'the value is kept');
        assert.equal(await store.expireIfEquals(key, 'token', 60_000), false, 'a prefix is not the value');
      });

      it('an expired lease cannot be renewed', async () => {
        const key = k('lease');
        await store.set(key, 'token-a', { ttlMs: 50 });
        await sleep(150);
        assert.equal(await store.expireIfEquals(key, 'token-a', 60_000), false);
        assert.equal(await store.get(key), null);
      });

      it('delIfEquals deletes only the expected value', async () => {
        const key = k('lease');
        assert.equal(await store.delIfEquals(key, 'token-a'), false);
        await store.set(key, 'token-a', { ttlMs: 60_000 });
        assert.equal(await store.delIfEquals(key, 'token-b'), false);
        assert.equal(await store.get(key), 'token-a', "another holder's value stays");
        assert.equal(await store.delIfEquals(key, 'token-a'), true);
        assert.equal(await store.pttl(key), -2);
        assert.equal(await store.delIfEquals(key, 'token-a'), false, 'once');
      });

      it('on a key of another type: WRONGTYPE, not "store unavailable"', async () => {
        const key = k('lease');
        await store.hSet(key, { f: 'v' });
        await assert.rejects(store.expireIfEquals(key, 'v', 1000), isWrongType);
        await assert.rejects(store.delIfEquals(key, 'v'), isWrongType);
      });
    });

    describe('hashes', () => {
      it('hSet / hGet / hGetAll, with overwrite and merge', async () => {
        const key = k('hash');
        assert.equal(await store.hGet(key, 'a'), null);
        assert.deepEqual(await store.hGetAll(key), {});
        await store.hSet(key, { a: '1', b: '2' });
        assert.equal(await store.hGet(key, 'a'), '1');
        assert.equal(await store.hGet(key, 'zz'), null);
        await store.hSet(key, { b: 'two', c: '3' });
        assert.deepEqual(await store.hGetAll(key), { a: '1', b: 'two', c: '3' });
      });

      it('hSet with no fields writes nothing', async () => {
        const key = k('hash');
        await store.hSet(key, {});
        assert.deepEqual(await store.hGetAll(key), {});
        assert.equal(await store.pttl(key), -2, 'no empty hash is left behind');
        assert.equal(await store.set(key, 'v', { nx: true }), true, 'the key is still free');
      });

      it('hSetNx sets a field only when absent', async () => {
        const key = k('hash');
        assert.equal(await store.hSetNx(key, 'f', 'first'), true, 'creates the hash');
        assert.equal(await store.hSetNx(key, 'f', 'second'), false);
        assert.equal(await store.hGet(key, 'f'), 'first');
        assert.equal(await store.hSetNx(key, 'g', 'other'), true);
        assert.deepEqual(await store.hGetAll(key), { f: 'first', g: 'other' });
      });

      it('concurrent hSetNx on one field: exactly one caller wins', async () => {
        const key = k('hash');
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => store.hSetNx(key, 'owner', `c${i}`)));
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal(await store.hGet(key, 'owner'), `c${results.indexOf(true)}`);
      });

      it('hDel counts removed fields; the emptied hash disappears', async () => {
        const key = k('hash');
        await store.hSet(key, { a: '1', b: '2', c: '3' });
        assert.equal(await store.hDel(key, 'a', 'missing'), 1);
        assert.deepEqual(await store.hGetAll(key), { b: '2', c: '3' });
        assert.equal(await store.hDel(key, 'b', 'c'), 2);
        assert.deepEqual(await store.hGetAll(key), {});
        assert.equal(await store.pttl(key), -2, 'an empty hash does not exist');
        assert.equal(await store.hDel(key, 'a'), 0);
        assert.equal(await store.set(key, 'now a string', { nx: true }), true, 'the key is free for another type');
      });
    });

    describe('sets', () => {
      it('sAdd counts only new members, sMembers lists them, sIsMember checks', async () => {
        const key = k('set');
        assert.deepEqual(await store.sMembers(key), []);
        assert.equal(await store.sIsMember(key, 'a'), false);
        assert.equal(await store.sAdd(key, 'a', 'b', 'a'), 2, 'a repeated member counts once');
        assert.equal(await store.sAdd(key, 'b', 'c'), 1);
        assert.deepEqual((await store.sMembers(key)).sort(), ['a', 'b', 'c']);
        assert.equal(await store.sIsMember(key, 'c'), true);
        assert.equal(await store.sIsMember(key, 'z'), false);
      });

      it('sRem counts removed members; the emptied set disappears', async () => {
        const key = k('set');
        await store.sAdd(key, 'a', 'b', 'c');
        assert.equal(await store.sRem(key, 'a', 'missing'), 1);
        assert.deepEqual((await store.sMembers(key)).sort(), ['b', 'c']);
        assert.equal(await store.sIsMember(key, 'a'), false);
        assert.equal(await store.sRem(key, 'b', 'c'), 2);
        assert.deepEqual(await store.sMembers(key), []);
        assert.equal(await store.pttl(key), -2, 'an empty set does not exist');
        assert.equal(await store.sRem(key, 'a'), 0);
      });
    });

    describe('lexicographic sorted sets (score 0: the member search index)', () => {
      it('zAdd counts only new members; zRangeByLex returns them in UTF-8 byte order', async () => {
        const key = k('zset');
        assert.deepEqual(await store.zRangeByLex(key, '-', '+', 10), [], 'a missing key is empty');
        assert.equal(await store.zCard(key), 0);
        // \uE000 sorts below any code point past U+FFFF in UTF-8 (not in UTF-16); \0 below every other character.
        const members = ['b', 'a', 'ab', 'a\u0000z', 'é', '\uE000', '😀', 'A', 'a'];
        assert.equal(await store.zAdd(key, ...members), 8, 'a repeated member counts once');
        assert.equal(await store.zAdd(key, 'ab', 'c'), 1);
        assert.equal(await store.zCard(key), 9);
        assert.deepEqual(await store.zRangeByLex(key, '-', '+', 100), ['A', 'a', 'a\u0000z', 'ab', 'b', 'c', 'é', '\uE000', '😀']);
      });

      it('zRangeByLex honours inclusive and exclusive bounds and the limit', async () => {
        const key = k('zset');
        await store.zAdd(key, 'ann\u0000m1', 'anna\u0000m2', 'bob\u0000m3', 'carl\u0000m4');
        assert.deepEqual(await store.zRangeByLex(key, { value: 'ann' }, '+', 2), ['ann\u0000m1', 'anna\u0000m2']);
        assert.deepEqual(await store.zRangeByLex(key, { value: 'ann\u0000m1', exclusive: true }, '+', 10), ['anna\u0000m2', 'bob\u0000m3', 'carl\u0000m4']);
        assert.deepEqual(await store.zRangeByLex(key, { value: 'ann\u0000m1' }, { value: 'bob\u0000m3', exclusive: true }, 10), ['ann\u0000m1', 'anna\u0000m2']);
        assert.deepEqual(await store.zRangeByLex(key, { value: 'b' }, { value: 'bob\u0000m3' }, 10), ['bob\u0000m3']);
        assert.deepEqual(await store.zRangeByLex(key, { value: 'zz' }, '+', 10), []);
        assert.deepEqual(await store.zRangeByLex(key, '-', '+', 0), [], 'limit 0 returns nothing');
      });

      it('zRem counts removed members; the emptied index disappears', async () => {
        const key = k('zset');
        await store.zAdd(key, 'a', 'b');
        assert.equal(await store.zRem(key, 'a', 'missing'), 1);
        assert.deepEqual(await store.zRangeByLex(key, '-', '+', 10), ['b']);
        assert.equal(await store.zRem(key, 'b'), 1);
        assert.equal(await store.pttl(key), -2, 'an empty sorted set does not exist');
        assert.equal(await store.zRem(key, 'b'), 0);
      });

      it('atomic applies zAdd and zRem with the other writes; a sorted set is not a set', async () => {
        const tag = `{contract-${randomBytes(4).toString('hex')}}`;
        const index = `${tag}:index`;
        const record = `${tag}:record`;
        await store.zAdd(index, 'old');
        await store.atomic([
          { op: 'set', key: record, value: 'v' },
          { op: 'zRem', key: index, members: ['old'] },
          { op: 'zAdd', key: index, members: ['new1', 'new2'] },
          { op: 'zAdd', key: index, members: [] },
        ]);
        assert.deepEqual(await store.zRangeByLex(index, '-', '+', 10), ['new1', 'new2']);
        assert.equal(await store.get(record), 'v');
        await assert.rejects(store.sMembers(index), isWrongType);
        await assert.rejects(store.zAdd(record, 'x'), isWrongType);
        await assert.rejects(store.zRangeByLex(record, '-', '+', 10), isWrongType);
      });
    });

    describe('streams (the audit trails)', () => {
      it('xAdd takes the given time as the id, a sequence within one millisecond, and reads back in order', async () => {
        const key = k('stream');
        const t = 1_700_000_000_000;
        assert.equal(await store.xAdd(key, 'a', { atMs: t }), `${t}-0`);
        assert.equal(await store.xAdd(key, 'b', { atMs: t }), `${t}-1`);
        assert.equal(await store.xAdd(key, 'c', { atMs: t + 5 }), `${t + 5}-0`);
        assert.equal(await store.xLen(key), 3);
        assert.deepEqual(await store.xRange(key, '-', '+', 10), [
          { id: `${t}-0`, value: 'a' },
          { id: `${t}-1`, value: 'b' },
          { id: `${t + 5}-0`, value: 'c' },
        ]);
        assert.deepEqual((await store.xRevRange(key, '+', '-', 2)).map((e) => e.value), ['c', 'b']);
        // Exclusive and millisecond bounds: a cursor walk and a time range.
        assert.deepEqual((await store.xRevRange(key, { id: `${t}-1`, exclusive: true }, '-', 10)).map((e) => e.value), ['a']);
        assert.deepEqual((await store.xRevRange(key, { id: String(t) }, { id: String(t) }, 10)).map((e) => e.value), ['b', 'a']);
        assert.deepEqual((await store.xRange(key, { id: `${t}-1` }, { id: `${t}-1` }, 1)).map((e) => e.value), ['b']);
        assert.deepEqual(await store.xRange(key, { id: `${t}-2` }, { id: `${t}-2` }, 1), []);
        assert.deepEqual(await store.xRevRange(k('none'), '+', '-', 10), []);
      });

      it('xAdd with a time older than the newest entry still appends, after it', async () => {
        const key = k('stream');
        const t = Date.now() + 3_600_000;
        await store.xAdd(key, 'late', { atMs: t });
        const id = await store.xAdd(key, 'early', { atMs: t - 1000 });
        const [ms, seq] = id.split('-').map(Number);
        assert.ok(ms! > t || (ms === t && seq! > 0), id);
        assert.deepEqual((await store.xRevRange(key, '+', '-', 10)).map((e) => e.value), ['early', 'late']);
      });

      it('xAdd with minIdMs keeps every entry from that time on', async () => {
        const key = k('stream');
        for (let i = 0; i < 20; i++) await store.xAdd(key, `v${i}`, { atMs: 1000 + i });
        await store.xAdd(key, 'last', { atMs: 5000, minIdMs: 1015 });
        const kept = (await store.xRange(key, '-', '+', 100)).map((e) => e.value);
        // MINID ~ may keep older entries; never drops newer ones.
        assert.deepEqual(kept.slice(-6), ['v15', 'v16', 'v17', 'v18', 'v19', 'last']);
        assert.ok(kept.length <= 21);
      });

      it('atomic expire sets the time to live of an existing key', async () => {
        const key = k('hash');
        await store.atomic([
          { op: 'hIncrBy', key, field: 'n', by: 2 },
          { op: 'expire', key, ttlMs: 60_000 },
        ]);
        const ttl = await store.pttl(key);
        assert.ok(ttl > 0 && ttl <= 60_000, String(ttl));
        assert.equal(await store.hGet(key, 'n'), '2');
      });
    });

    describe('capped lists', () => {
      it('pushCapped keeps the newest first and caps the length', async () => {
        const key = k('list');
        for (const v of ['1', '2', '3', '4', '5']) await store.pushCapped(key, v, 3);
        assert.deepEqual(await store.lRange(key, 0, -1), ['5', '4', '3']);
        await store.pushCapped(key, '6', 3);
        assert.deepEqual(await store.lRange(key, 0, -1), ['6', '5', '4']);
      });

      it('pushCapped below the cap keeps everything, a cap of 1 keeps only the newest', async () => {
        const key = k('list');
        await store.pushCapped(key, 'a', 10);
        await store.pushCapped(key, 'b', 10);
        assert.deepEqual(await store.lRange(key, 0, -1), ['b', 'a']);
        await store.pushCapped(key, 'c', 1);
        assert.deepEqual(await store.lRange(key, 0, -1), ['c']);
      });

      it('lRange: inclusive stop, negative indexes, ranges past the ends', async () => {
        const key = k('list');
        assert.deepEqual(await store.lRange(key, 0, -1), [], 'a missing list is empty');
        for (const v of ['e', 'd', 'c', 'b', 'a']) await store.pushCapped(key, v, 100);
        assert.deepEqual(await store.lRange(key, 0, -1), ['a', 'b', 'c', 'd', 'e']);
        assert.deepEqual(await store.lRange(key, 0, 0), ['a'], 'stop is inclusive');
        assert.deepEqual(await store.lRange(key, 0, 1), ['a', 'b']);
        assert.deepEqual(await store.lRange(key, 1, 3), ['b', 'c', 'd']);
        assert.deepEqual(await store.lRange(key, 0, -2), ['a', 'b', 'c', 'd']);
        assert.deepEqual(await store.lRange(key, 1, -2), ['b', 'c', 'd']);
        assert.deepEqual(await store.lRange(key, -2, -1), ['d', 'e']);
        assert.deepEqual(await store.lRange(key, -100, 1), ['a', 'b'], 'a start before the head is clamped');
        assert.deepEqual(await store.lRange(key, 0, 100), ['a', 'b', 'c', 'd', 'e'], 'a stop past the tail is clamped');
        assert.deepEqual(await store.lRange(key, 3, 1), [], 'start after stop');
        assert.deepEqual(await store.lRange(key, 10, 20), [], 'start past the tail');
        assert.deepEqual(await store.lRange(key, 0, -5), ['a']);
        assert.deepEqual(await store.lRange(key, 0, -6), [], 'a stop before the head is empty');
        assert.deepEqual(await store.lRange(key, 0, -7), [], 'a stop further before the head is empty');
      });
    });

    describe('incr', () => {
      it('starts at 1 and counts up', async () => {
        const key = k('ctr');
        assert.equal(await store.incr(key, 60_000), 1);
        assert.equal(await store.incr(key, 60_000), 2);
        assert.equal(await store.incr(key, 60_000), 3);
        assert.equal(await store.get(key), '3');
      });

      it('sets the TTL once, on creation; later increments do not extend it', async () => {
        const key = k('ctr');
        assert.equal(await store.incr(key, 5_000), 1);
        const first = await store.pttl(key);
        assert.ok(first > 0 && first <= 5_000, `pttl ${first} is within (0, 5000]`);
        assert.equal(await store.incr(key, 600_000), 2);
        const second = await store.pttl(key);
        assert.ok(second > 0 && second <= first, `pttl did not grow: ${second} <= ${first}`);
        assert.equal(await store.incr(key, 600_000), 3);
        assert.ok((await store.pttl(key)) <= first);
      });

      it('starts again at 1 after the counter expired', async () => {
        const key = k('ctr');
        assert.equal(await store.incr(key, 80), 1);
        assert.equal(await store.incr(key, 80), 2);
        await sleep(200);
        assert.equal(await store.pttl(key), -2);
        assert.equal(await store.incr(key, 60_000), 1);
      });

      it('increments an existing integer string and leaves its TTL alone', async () => {
        const key = k('ctr');
        await store.set(key, '41');
        assert.equal(await store.incr(key, 60_000), 42);
        assert.equal(await store.pttl(key), -1);
      });

      it('rejects on a value that is not an integer', async () => {
        const key = k('ctr');
        await store.set(key, 'abc');
        await assert.rejects(store.incr(key, 60_000));
        assert.equal(await store.get(key), 'abc');
      });

      it('concurrent increments are not lost', async () => {
        const key = k('ctr');
        const results = await Promise.all(Array.from({ length: 25 }, () => store.incr(key, 60_000)));
        assert.deepEqual(
          [...results].sort((x, y) => x - y),
          Array.from({ length: 25 }, (_, i) => i + 1),
        );
      });
    });

    describe('misuse of a key of another type (WRONGTYPE) rejects, and is not "store unavailable"', () => {
      it('hGet on a string key', async () => {
        const key = k('str');
        await store.set(key, 'v');
        await assert.rejects(store.hGet(key, 'f'), isWrongType);
        assert.equal(await store.get(key), 'v', 'the value is untouched');
      });

      it('every read and write of the wrong type', async () => {
        const str = k('str');
        const hash = k('hash');
        const set = k('set');
        const list = k('list');
        await store.set(str, 'v');
        await store.hSet(hash, { f: 'v' });
        await store.sAdd(set, 'm');
        await store.pushCapped(list, 'x', 10);
        const misuses: Array<[string, () => Promise<unknown>]> = [
          ['get on a hash', () => store.get(hash)],
          ['getDel on a set', () => store.getDel(set)],
          ['hGetAll on a string', () => store.hGetAll(str)],
          ['hSet on a set', () => store.hSet(set, { f: 'v' })],
          ['hSetNx on a list', () => store.hSetNx(list, 'f', 'v')],
          ['hDel on a string', () => store.hDel(str, 'f')],
          ['sAdd on a hash', () => store.sAdd(hash, 'm')],
          ['sRem on a string', () => store.sRem(str, 'm')],
          ['sMembers on a list', () => store.sMembers(list)],
          ['sIsMember on a hash', () => store.sIsMember(hash, 'm')],
          ['lRange on a string', () => store.lRange(str, 0, -1)],
          ['incr on a hash', () => store.incr(hash, 60_000)],
          ['pushCapped on a string', () => store.pushCapped(str, 'x', 10)],
          ['pushCapped on a hash', () => store.pushCapped(hash, 'x', 10)],
        ];
        const resolved: string[] = [];
        for (const [label, op] of misuses) {
          try {
            await op();
            resolved.push(label);
          } catch (err) {
            assert.ok(isWrongType(err), `${label}: ${String(err)}`);
          }
        }
        assert.deepEqual(resolved, [], 'every misuse rejects with WRONGTYPE');
        assert.equal(await store.get(str), 'v');
        assert.deepEqual(await store.hGetAll(hash), { f: 'v' });
        assert.deepEqual(await store.sMembers(set), ['m']);
        assert.deepEqual(await store.lRange(list, 0, -1), ['x']);
      });
    });

    describe('batch reads, scans and atomic writes (the SSO switch and imports rely on these)', () => {
      // One hash tag, as the callers use them: on Redis Cluster these keys share a slot.
      const tagged = (label: string): string => `contract:{t-${label}}:${randomBytes(6).toString('hex')}`;

      it('mGet returns values in order with null for missing keys', async () => {
        const [a, b, c] = [tagged('m'), tagged('m'), tagged('m')];
        await store.set(a, '1');
        await store.set(c, '3');
        assert.deepEqual(await store.mGet([a, b, c]), ['1', null, '3']);
        assert.deepEqual(await store.mGet([]), []);
      });

      it('sUnion merges sets and ignores missing ones', async () => {
        const [a, b, c] = [tagged('u'), tagged('u'), tagged('u')];
        await store.sAdd(a, 'x', 'y');
        await store.sAdd(b, 'y', 'z');
        assert.deepEqual((await store.sUnion([a, b, c])).sort(), ['x', 'y', 'z']);
        assert.deepEqual(await store.sUnion([]), []);
      });

      it('sScan visits every member once overall even when members are removed mid-scan', async () => {
        const key = k('scan');
        const all = Array.from({ length: 1200 }, (_, i) => `m${String(i).padStart(5, '0')}`);
        await store.sAdd(key, ...all);
        const seen = new Set<string>();
        const removed = new Set<string>();
        let cursor = '0';
        let rounds = 0;
        do {
          const [next, batch] = await store.sScan(key, cursor, 100);
          for (const m of batch) seen.add(m);
          // Remove some of what was just visited (as the switch deletes unapproved members).
          const drop = batch.slice(0, 10);
          if (drop.length) await store.sRem(key, ...drop);
          for (const m of drop) removed.add(m);
          cursor = next;
          rounds++;
        } while (cursor !== '0' && rounds < 10_000);
        assert.equal(seen.size, all.length, 'no member skipped');
        assert.equal(await store.sCard(key), all.length - removed.size, 'sCard counts what is left');
      });

      it('hLen and hIncrBy count', async () => {
        const key = k('hinc');
        assert.equal(await store.hLen(key), 0);
        assert.equal(await store.hIncrBy(key, 'n', 5), 5);
        assert.equal(await store.hIncrBy(key, 'n', -2), 3);
        await store.hSet(key, { other: 'x' });
        assert.equal(await store.hLen(key), 2);
      });

      it('mGet, sUnion and atomic refuse keys of different hash tags (as Redis Cluster does), applying nothing', async () => {
        const [a, b] = [tagged('x'), tagged('x')];
        const otherTag = tagged('y');
        const untagged = k('plain');
        await store.set(a, '1');
        await store.sAdd(b, 'm');
        await assert.rejects(store.mGet([a, otherTag]), CrossSlotError);
        await assert.rejects(store.sUnion([b, untagged]), CrossSlotError);
        await assert.rejects(
          store.atomic([
            { op: 'set', key: a, value: '2' },
            { op: 'sAdd', key: b, members: ['n'] },
            { op: 'del', key: untagged },
          ]),
          CrossSlotError,
        );
        assert.equal(await store.get(a), '1', 'a refused batch writes nothing');
        assert.deepEqual(await store.sMembers(b), ['m']);
        assert.deepEqual(await store.mGet([a, a]), ['1', '1'], 'the same key twice is one slot');
      });

      it('del takes keys of any hash tags at once', async () => {
        const keysOfManySlots = Array.from({ length: 12 }, (_, i) => (i % 2 ? tagged(`d${i}`) : k(`d${i}`)));
        for (const key of keysOfManySlots) await store.set(key, 'v');
        assert.equal(await store.del(...keysOfManySlots, k('missing')), keysOfManySlots.length);
        assert.deepEqual(await Promise.all(keysOfManySlots.map((key) => store.get(key))), keysOfManySlots.map(() => null));
      });

      it('atomic applies every kind of write together', async () => {
        const [str, gone, hash, set, counts] = [tagged('a'), tagged('a'), tagged('a'), tagged('a'), tagged('a')];
        await store.set(gone, 'old');
        await store.hSet(hash, { keep: '1', drop: '2' });
        await store.sAdd(set, 'out');
        await store.atomic([
          { op: 'set', key: str, value: 'v', ttlMs: 60_000 },
          { op: 'del', key: gone },
          { op: 'hSet', key: hash, fields: { added: '3' } },
          { op: 'hDel', key: hash, fields: ['drop'] },
          { op: 'hIncrBy', key: counts, field: 'n', by: 7 },
          { op: 'sAdd', key: set, members: ['in'] },
          { op: 'sRem', key: set, members: ['out'] },
        ]);
        assert.equal(await store.get(str), 'v');
        assert.ok((await store.pttl(str)) > 0);
        assert.equal(await store.get(gone), null);
        assert.deepEqual(await store.hGetAll(hash), { keep: '1', added: '3' });
        assert.deepEqual(await store.hGetAll(counts), { n: '7' });
        assert.deepEqual(await store.sMembers(set), ['in']);
        await store.atomic([]);
      });
    });

    it('close resolves', async () => {
      const other = await makeStore();
      await other.store.set(k('close'), 'v');
      await other.cleanup();
    });
  });
}

storeContract('MemoryStore', () => {
  const store = new MemoryStore();
  return Promise.resolve({ store, cleanup: () => store.close() });
});

storeContract('RedisStore', async () => {
  const { store, cleanup } = await createTestRedisStore();
  return { store, cleanup };
});

storeContract('RedisStore on Redis Cluster (3 masters)', async () => {
  const { store, cleanup } = await createTestRedisClusterStore();
  return { store, cleanup };
});
