import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppError } from '../../../src/errors/index.js';
import { configureLockInstance, keys, LeaseLock, MemoryStore, releaseLocksOfPreviousBoots, type KeyValueStore } from '../../../src/store/index.js';
import { createTestRedisStore } from '../../helpers/redis.js';
import { createTestRedisClusterStore } from '../../helpers/redis-cluster.js';

/**
 * The per-instance lock registry (issue 18, finding 2): with an instance identity, every lock taken is
 * recorded under keys.lockRegistry(instance) and dropped when released; a process that boots again with the
 * same identity releases what its previous boot held (compare-and-delete), and never a lock of another
 * instance or one taken by someone else since. A "boot" here is configureLockInstance() again (a new boot id).
 */

const busy = (retryAfterSeconds: number): AppError => new AppError('conflict', { retryAfterSeconds, detail: 'test lock held' });
const lost = (): AppError => new AppError('conflict', { detail: 'test lock lost' });
const opts = { busy, lost };

for (const [name, make] of [
  ['memory store', () => Promise.resolve({ store: new MemoryStore(), cleanup: () => Promise.resolve() })],
  ['Redis', createTestRedisStore],
  // The registry and the locks are in different slots: per-key operations only.
  ['Redis Cluster', createTestRedisClusterStore],
] as const) {
  describe(`the lock registry on the ${name}`, () => {
    let store: KeyValueStore;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await make());
    });
    after(async () => cleanup());

    it('records a held lock under its instance and drops it on release', async () => {
      configureLockInstance(`reg-a-${name.length}`);
      const lock = await LeaseLock.acquire(store, 'reg:one', opts);
      assert.match(lock.holder, new RegExp(`^reg-a-${name.length}/[0-9a-f]+\\.[0-9a-f]+$`));
      assert.deepEqual(await store.hGetAll(keys.lockRegistry(`reg-a-${name.length}`)), { 'reg:one': lock.holder });
      await lock.release();
      assert.deepEqual(await store.hGetAll(keys.lockRegistry(`reg-a-${name.length}`)), {});
      assert.equal(await store.get('reg:one'), null);
    });

    it("a new boot of the same instance releases its previous boot's locks, not another instance's nor one taken since", async () => {
      const a = `reg-b-${name.length}`;
      const other = `reg-c-${name.length}`;
      // Another instance holds a lock (it is alive: nothing of it is touched).
      configureLockInstance(other);
      const othersLock = await LeaseLock.acquire(store, 'reg:other', opts);
      // Instance a holds two locks and "dies" (never releases).
      configureLockInstance(a);
      const held = await LeaseLock.acquire(store, 'reg:held', opts);
      const since = await LeaseLock.acquire(store, 'reg:since', opts);
      // reg:since ran out and was taken by someone else meanwhile.
      await store.del('reg:since');
      await store.set('reg:since', 'someone-else/1.2', { ttlMs: 5000 });
      // A stray entry naming a lock of another instance (never released by a's boot).
      await store.hSet(keys.lockRegistry(a), { 'reg:other': othersLock.holder });

      configureLockInstance(a); // the restart
      const { released } = await releaseLocksOfPreviousBoots(store);
      assert.deepEqual(released, ['reg:held']);
      assert.equal(await store.get('reg:held'), null, "the previous boot's lock is released");
      assert.equal(await store.get('reg:since'), 'someone-else/1.2', 'a lock taken since is not touched');
      assert.equal(await store.get('reg:other'), othersLock.holder, "another instance's live lock is not touched");
      assert.deepEqual(await store.hGetAll(keys.lockRegistry(a)), {}, 'the registry is cleared');
      assert.deepEqual(await store.hGetAll(keys.lockRegistry(other)), { 'reg:other': othersLock.holder });
      // The next caller takes the released lock at once; the dead boot's holder finds out it lost it.
      const next = await LeaseLock.acquire(store, 'reg:held', opts);
      await assert.rejects(held.assertHeld(), (err) => err instanceof AppError && err.detail === 'test lock lost');
      await next.release();
      await held.release();
      await since.release();
      assert.equal(await store.get('reg:since'), 'someone-else/1.2');
      await store.del('reg:since');
      // The other instance releases normally.
      configureLockInstance(other);
      await othersLock.release();
      assert.equal(await store.get('reg:other'), null);
      assert.deepEqual(await store.hGetAll(keys.lockRegistry(other)), {});
    });
  });
}
