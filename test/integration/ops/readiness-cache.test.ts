import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StoreUnavailableError } from '../../../src/errors/index.js';
import { cachedReadiness, RedisStore } from '../../../src/store/index.js';
import { startRedisServer } from '../../helpers/redis.js';
import { pollUntil } from '../resilience/helpers.js';

/**
 * The readiness cache behind /readyz: a burst of probes costs one check of the store, a repeated probe
 * within READY_CACHE_MS reuses the answer, and a change of the connection's state (Redis gone, Redis
 * back) makes the answer stale at once, so an outage is never hidden behind a cached "ready".
 */
describe('cachedReadiness on a real redis-server that dies and comes back', () => {
  let server: { url: string; port: number; stop: () => void };
  let store: RedisStore;
  let checks = 0;
  let ready: () => Promise<void>;

  before(async () => {
    server = await startRedisServer();
    store = new RedisStore({ url: server.url, commandTimeoutMs: 1000 });
    await store.connect();
    const counting = new Proxy(store, {
      get(target, prop) {
        if (prop === 'ready') {
          return () => {
            checks++;
            return target.ready();
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    // A long cache, so only a connection change can explain a second check.
    ready = cachedReadiness(counting, { cacheMs: 60_000 });
  });
  after(async () => {
    await store?.close();
    server?.stop();
  });

  it('one check for a burst of probes, and the answer reused', async () => {
    await Promise.all(Array.from({ length: 20 }, () => ready()));
    assert.equal(checks, 1);
    await ready();
    assert.equal(checks, 1);
  });

  it('a dead Redis is seen on the next probe after the client notices, not when the cache runs out', { timeout: 20_000 }, async () => {
    const before = store.connectionChanges;
    server.stop();
    assert.ok(await pollUntil(() => store.connectionChanges > before, 100, 50), 'the client notices the connection closing');
    await assert.rejects(ready(), StoreUnavailableError);
    assert.ok(checks >= 2);
    const during = checks;
    // Nothing changes while it stays away: failed answers are reused too (probes stay cheap in an outage).
    const changes = store.connectionChanges;
    await assert.rejects(ready(), StoreUnavailableError);
    if (store.connectionChanges === changes) assert.equal(checks, during);

    server = await startRedisServer({ port: server.port });
    assert.ok(
      await pollUntil(
        () =>
          ready().then(
            () => true,
            () => false,
          ),
        100,
        50,
      ),
      'ready again once the client has reconnected',
    );
  });
});
