import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { StoreUnavailableError } from '../../../src/errors/index.js';
import { createStoreFromConfig, keys, RedisStore, type KeyValueStore } from '../../../src/store/index.js';
import { beginLogin, capturedLogger, createGateway, postAcs, seedStandardTenants, sessionCookieOf, validResponse, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { eventually, sentinelMasterPort, startRedisSentinel, withNode, type StartedRedisSentinel } from '../../helpers/redis-cluster.js';

describe('the store through Redis Sentinel (one master, one replica, one sentinel)', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  let sentinel: StartedRedisSentinel;
  let store: KeyValueStore;
  let gw: Gateway;
  let cookie: string;

  before(async () => {
    sentinel = await startRedisSentinel({ replica: true });
    const { config } = loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: { store: { redisSentinels: sentinel.sentinels.map((s) => `${s.host}:${s.port}`), redisSentinelName: sentinel.name, keyPrefix: prefix } },
    });
    store = await createStoreFromConfig(config, capturedLogger().logger);
    gw = await createGateway({ store });
    await seedStandardTenants(gw.services);
  });
  after(async () => {
    await store?.close();
    sentinel?.stop();
  });

  it('connects to the master the sentinel names, and a login works on it', async () => {
    assert.ok(store instanceof RedisStore);
    assert.equal(store.mode, 'sentinel');
    const login = await beginLogin(gw, 'a.example');
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 303, res.text);
    cookie = sessionCookieOf(res)!;
    assert.equal((await gw.http.get('/session').set('Cookie', cookie)).status, 200);
    assert.equal(await withNode(sentinel.master, (c) => c.exists(`${prefix}${keys.tenant('a.example')}`)), 1, 'the data is on the master');
  });

  it('follows a failover to the promoted replica: the session survives, and writes go to the new master', { timeout: 60_000 }, async () => {
    assert.ok(store instanceof RedisStore);
    // The session is on the replica before the master changes (replication is asynchronous).
    assert.equal(await store.client.call('WAIT', '1', '5000'), 1);
    const replica = sentinel.replicas[0]!;
    await eventually('SENTINEL FAILOVER', () => withNode(sentinel.sentinels[0]!, async (c) => ((await c.call('SENTINEL', 'FAILOVER', sentinel.name)) === 'OK' ? true : undefined)));
    await eventually('the sentinel names the replica as master', async () => ((await sentinelMasterPort(sentinel)) === replica.port ? true : undefined));

    // Until the store has moved, a write may answer 503 store_unavailable (never anything else), or
    // — in the moment before the sentinel demotes the old master — land there and be lost (docs/redis.md).
    const key = keys.tenant('failover.example');
    const unexpected: unknown[] = [];
    await eventually('a write through the store reaching the promoted replica', async () => {
      try {
        await store.set(key, '{}');
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) unexpected.push(err);
        throw err;
      }
      return (await withNode(replica, (c) => c.get(`${prefix}${key}`))) === '{}' ? true : undefined;
    });
    assert.deepEqual(unexpected, [], 'nothing but store_unavailable while the master moves');
    assert.equal(await store.get(key), '{}');
    assert.equal((await gw.http.get('/session').set('Cookie', cookie)).status, 200, 'the session replicated before the failover is still there');
  });
});
