import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../../src/errors/index.js';
import { keys, LeaseLock, lockMayBeLive, MemoryStore, RedisStore, type KeyValueStore } from '../../../src/store/index.js';
import { OPERATOR_AUTH, createGateway, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { createTestRedisStore } from '../../helpers/redis.js';
import { startDurableRedis, type DurableRedis } from '../resilience/helpers.js';

/**
 * LeaseLock, the lock of the long operations (SSO switch, external-key and members.csv imports, MDM
 * changes): a short lease a live holder renews, released when its holder fails — and, when the store was
 * down then, taken over at once by this process's next caller — and a refusal that says how long
 * (Retry-After). On the memory store and a real Redis; a real redis-server killed for the outage case.
 */

const busy = (retryAfterSeconds: number): AppError => new AppError('conflict', { retryAfterSeconds, detail: 'test lock held' });
const lost = (): AppError => new AppError('conflict', { detail: 'test lock lost' });
const retryAfterOf = async (p: Promise<unknown>): Promise<number> => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AppError && err.code === 'conflict', String(err));
    return err.retryAfterSeconds!;
  }
  assert.fail('expected a refusal');
};

for (const [name, make] of [
  ['memory store', () => Promise.resolve({ store: new MemoryStore(), cleanup: () => Promise.resolve() })],
  ['Redis', createTestRedisStore],
] as const) {
  describe(`LeaseLock on the ${name}`, () => {
    let store: KeyValueStore;
    let cleanup: () => Promise<void>;
    before(async () => {
      ({ store, cleanup } = await make());
    });
    after(async () => cleanup());

    it('a live holder keeps a short lease alive past its TTL; a second caller is refused with the lease left as Retry-After', async () => {
      const lock = await LeaseLock.acquire(store, 'lease:a', { busy, lost, ttlMs: 300, renewEveryMs: 50 });
      await sleep(700);
      assert.equal(await store.get('lease:a'), lock.holder, 'renewed while its holder runs');
      const retryAfter = await retryAfterOf(LeaseLock.acquire(store, 'lease:a', { busy, lost }));
      assert.equal(retryAfter, 1, 'the 300 ms left, rounded up to a whole second');
      await lock.assertHeld();
      await lock.release();
      assert.equal(await store.get('lease:a'), null);
      const next = await LeaseLock.acquire(store, 'lease:a', { busy, lost });
      await next.release();
    });

    it("another process's lock (a live holder or a dead one: nothing here can tell) refuses with its PTTL in seconds", async () => {
      await store.set('lease:b', 'some-other-process.0123', { ttlMs: 4200 });
      assert.equal(lockMayBeLive(await store.get('lease:b')), true);
      const retryAfter = await retryAfterOf(LeaseLock.acquire(store, 'lease:b', { busy, lost }));
      assert.ok(retryAfter === 5 || retryAfter === 4, `Retry-After ${retryAfter}`);
      await store.del('lease:b');
    });

    it('a holder whose lease was lost (stalled past it, then taken) finds out before writing more, and does not release the new holder', async () => {
      const stalled = await LeaseLock.acquire(store, 'lease:c', { busy, lost, ttlMs: 60_000, renewEveryMs: 60_000 });
      await store.del('lease:c');
      const taker = await LeaseLock.acquire(store, 'lease:c', { busy, lost });
      await assert.rejects(stalled.assertHeld(), (err: unknown) => err instanceof AppError && err.detail === 'test lock lost');
      await stalled.release();
      assert.equal(await store.get('lease:c'), taker.holder);
      await taker.release();
    });

    it('waitMs: waits for a lock its holder releases meanwhile', async () => {
      const first = await LeaseLock.acquire(store, 'lease:d', { busy, lost });
      setTimeout(() => void first.release(), 100);
      const second = await LeaseLock.acquire(store, 'lease:d', { busy, lost, waitMs: 3000 });
      assert.equal(await store.get('lease:d'), second.holder);
      await second.release();
    });
  });
}

describe('LeaseLock when Redis dies under its holder', () => {
  let server: DurableRedis;
  let store: RedisStore;
  before(async () => {
    server = await startDurableRedis();
    store = new RedisStore({ url: server.url, commandTimeoutMs: 1000 });
    await store.connect();
  });
  after(async () => {
    await store?.close();
    await server?.dispose();
  });

  it('the failed holder cannot release while Redis is down; once Redis is back the next caller here takes the lock over at once', { timeout: 30_000 }, async () => {
    const key = `lease:dies:${Date.now()}`;
    const holder = await LeaseLock.acquire(store, key, { busy, lost });
    await server.kill();
    await assert.rejects(store.ping());
    await holder.release(); // fails now, retried in the background
    await server.restart();
    for (let i = 0; i < 100; i++) if (await store.ping().then(() => true, () => false)) break; else await sleep(50);
    const left = await store.get(key);
    if (left !== null) {
      assert.equal(left, holder.holder, 'the dead holder’s lock survived the restart (AOF)');
      assert.equal(lockMayBeLive(left), false, 'its holder has ended in this process: certainly stale');
    }
    const next = await LeaseLock.acquire(store, key, { busy, lost });
    assert.equal(await store.get(key), next.holder);
    await next.release();
  });
});

describe('the admin API: a 409 due to a lock says how long (Retry-After)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  after(async () => gw.close());

  it('PUT …/sso refused 409 sso_switch_in_progress with Retry-After while another process holds the switch lock; GET shows no interrupted switch as resumable', async () => {
    const D = 'nosso.example';
    await gw.store.set(keys.ssoSwitchLock(D), 'another-process.abcd', { ttlMs: 3000 });
    const on = { enabled: true, type: 'saml', userKey: 'externalKey', webLoginUrl: idps.a.ssoUrl, saml: { idpEntityId: idps.a.entityId, idpCertificates: [idps.a.certificate] } };
    const res = await gw.http.put(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR_AUTH).send(on);
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.error, 'sso_switch_in_progress');
    assert.ok(['2', '3'].includes(String(res.headers['retry-after'])), `Retry-After ${res.headers['retry-after']}`);
    await gw.store.del(keys.ssoSwitchLock(D));
    const ok = await gw.http.put(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR_AUTH).send(on);
    assert.equal(ok.status, 200, ok.text);
  });

  it('the external-key CSV refused 409 conflict with Retry-After while the tenant lock is held elsewhere', async () => {
    const D = 'a.example';
    await gw.store.set(keys.externalKeysLock(D), 'another-process.ef01', { ttlMs: 5000 });
    const res = await gw.http.put(`/admin/v1/domains/${D}/external-keys.csv`).set('Authorization', OPERATOR_AUTH).type('text/csv').send('account,name,externalKey\nactive@a.example,,emp-009\n');
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.error, 'conflict');
    assert.ok(['4', '5'].includes(String(res.headers['retry-after'])), `Retry-After ${res.headers['retry-after']}`);
    await gw.store.del(keys.externalKeysLock(D));
  });
});
