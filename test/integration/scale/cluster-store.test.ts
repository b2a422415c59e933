import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { loadConfig } from '../../../src/config/index.js';
import { StoreUnavailableError } from '../../../src/errors/index.js';
import { createStoreFromConfig, keys, RedisStore, type KeyValueStore } from '../../../src/store/index.js';
import { SERVICE_ORIGIN, capturedLogger, createGateway, errorCodeOf, seedStandardTenants, type Gateway } from '../../helpers/gateway.js';
import { deleteClusterKeys, eventually, redisClusterNodes, startRedisCluster, type StartedRedisCluster } from '../../helpers/redis-cluster.js';

const clusterNodesConfig = async (): Promise<string[]> => (await redisClusterNodes()).map((n) => `${n.host}:${n.port}`);

describe('the store on Redis Cluster, from the config', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  let store: KeyValueStore;
  let raw: Cluster;

  before(async () => {
    const { config } = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { store: { redisClusterNodes: await clusterNodesConfig(), keyPrefix: prefix } } });
    store = await createStoreFromConfig(config, capturedLogger().logger);
    raw = new Cluster(await redisClusterNodes());
  });
  after(async () => {
    await store?.close();
    raw?.disconnect();
    await deleteClusterKeys(await redisClusterNodes(), prefix);
  });

  it('createStoreFromConfig connects a Cluster store that works', async () => {
    assert.ok(store instanceof RedisStore);
    assert.equal(store.mode, 'cluster');
    assert.equal(store.kind, 'redis');
    await store.ping();
    await store.atomic([
      { op: 'set', key: keys.tenant('a.example'), value: '{}' },
      { op: 'sAdd', key: keys.memberIds('a.example'), members: ['m1'] },
    ]);
    assert.deepEqual(await store.mGet([keys.tenant('a.example'), keys.member('a.example', 'm1')]), ['{}', null]);
  });

  it("the key prefix goes in front and the tenant's hash tag still picks the slot", async () => {
    const tenantKeys = [keys.tenant('a.example'), keys.member('a.example', 'x{y}'), keys.loginTransaction('a.example', 't'), keys.audit('a.example')];
    const slotOfTag = await raw.cluster('KEYSLOT', 'a.example');
    for (const key of tenantKeys) assert.equal(await raw.cluster('KEYSLOT', `${prefix}${key}`), slotOfTag, key);
    // And the data really is there: written through the prefixed store, found under the prefixed name.
    assert.equal(await raw.get(`${prefix}${keys.tenant('a.example')}`), '{}');
  });
});

describe('the whole Redis Cluster goes away and comes back (503, never 500 or a hang; recovers by itself)', () => {
  let cluster: StartedRedisCluster;
  let store: RedisStore;
  let gw: Gateway;
  const readyz = async (): Promise<number> => (await gw.http.get('/readyz')).status;

  before(async () => {
    cluster = await startRedisCluster();
    store = new RedisStore({ clusterNodes: cluster.nodes, commandTimeoutMs: 1000 });
    await store.connect();
    gw = await createGateway({ store });
    await seedStandardTenants(gw.services);
  });
  after(async () => {
    await store?.close();
    cluster?.stop();
  });

  it('answers 503 store_unavailable while every node is down; /healthz stays 200', { timeout: 30_000 }, async () => {
    assert.equal(await readyz(), 200);
    const cookieBefore = await gw.services.sessions.create({ memberId: 'm-a-active', domain: 'a.example', account: 'active@a.example', authMethod: 'saml', clientKind: 'web' }, 3600_000);
    assert.equal((await gw.http.get('/session').set('Cookie', `idpb_session=${cookieBefore.id}`)).status, 200);

    cluster.kill();
    // Until the client has seen the connections close, a command may still be in flight: wait for it.
    await eventually('the client sees the nodes gone', () =>
      store.ping().then(
        () => undefined,
        () => true,
      ),
    );
    await assert.rejects(store.get(keys.tenant('a.example')), StoreUnavailableError);
    const ready = await gw.http.get('/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.body.error, 'store_unavailable');
    const login = await gw.http.get('/d/login/a.example').query({ accessUrl: `${SERVICE_ORIGIN}/x` });
    assert.equal(login.status, 503);
    assert.equal(errorCodeOf(login), 'store_unavailable');
    assert.equal((await gw.http.get('/healthz')).status, 200);

    await cluster.restart();
    await eventually('/readyz 200 again without restarting the gateway', async () => ((await readyz()) === 200 ? true : undefined));
    // Without persistence the cluster came back empty (docs/redis.md): the session is gone, the tenant too.
    assert.equal((await gw.http.get('/session').set('Cookie', `idpb_session=${cookieBefore.id}`)).status, 401);
    assert.equal((await gw.http.get('/d/login/a.example').query({ accessUrl: `${SERVICE_ORIGIN}/x` })).status, 404);
    await seedStandardTenants(gw.services);
    assert.equal((await gw.http.get('/d/login/a.example').query({ accessUrl: `${SERVICE_ORIGIN}/x` })).status, 302);
  });
});
