import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/index.js';
import { buildRedisStoreOptions, hashedPartOf, keys, RedisStore } from '../../../src/store/index.js';

/** Loads the config with these store settings (as a config file would give them). */
const storeConfig = (store: Record<string, unknown>) => loadConfig({ env: { NODE_ENV: 'test' }, overrides: { store } }).config.store;

describe('store configuration: one server, Sentinel or Cluster (docs/redis.md)', () => {
  it('reads Cluster seed nodes and Sentinel settings as host:port lists', () => {
    const cluster = storeConfig({ redisClusterNodes: ['10.0.0.1:7000', ' redis-1.redis.svc:7001', '[::1]:7002'] });
    assert.deepEqual(cluster.redisClusterNodes, [
      { host: '10.0.0.1', port: 7000 },
      { host: 'redis-1.redis.svc', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    const sentinel = storeConfig({ redisSentinels: ['s1:26379', 's2:26379'], redisSentinelName: 'main', redisPassword: 'p4ss', redisTls: true });
    assert.deepEqual(sentinel.redisSentinels, [
      { host: 's1', port: 26379 },
      { host: 's2', port: 26379 },
    ]);
    assert.equal(sentinel.redisSentinelName, 'main');
  });

  it('builds the RedisStore options of each mode, and none for the in-process store', () => {
    const common = { keyPrefix: 'p:', commandTimeoutMs: 500 };
    assert.deepEqual(buildRedisStoreOptions(storeConfig({ ...common, redisUrl: 'redis://r:6379/2' })), { ...common, url: 'redis://r:6379/2' });
    assert.deepEqual(buildRedisStoreOptions(storeConfig({ ...common, redisClusterNodes: ['c:7000'], redisUsername: 'gw', redisPassword: 'pw' })), {
      ...common,
      clusterNodes: [{ host: 'c', port: 7000 }],
      username: 'gw',
      password: 'pw',
      tls: false,
    });
    assert.deepEqual(buildRedisStoreOptions(storeConfig({ ...common, redisSentinels: ['s:26379'], redisSentinelName: 'main', redisSentinelPassword: 'spw', redisTls: true })), {
      ...common,
      sentinels: [{ host: 's', port: 26379 }],
      sentinelName: 'main',
      sentinelPassword: 'spw',
      username: undefined,
      password: undefined,
      tls: true,
    });
    assert.equal(buildRedisStoreOptions(storeConfig({})), null);
  });

  it('refuses contradictory or incomplete settings with a message naming the key', () => {
    const refusals: Array<[Record<string, unknown>, RegExp]> = [
      [{ redisUrl: 'redis://r:6379', redisClusterNodes: ['c:7000'] }, /store: set only one of redisUrl \(REDIS_URL\), redisClusterNodes \(REDIS_CLUSTER_NODES\)/],
      [{ redisSentinels: ['s:26379'], redisClusterNodes: ['c:7000'], redisSentinelName: 'm' }, /store: set only one of redisSentinels/],
      [{ redisSentinels: ['s:26379'] }, /store\.redisSentinelName: required with redisSentinels/],
      [{ redisSentinelName: 'main' }, /store\.redisSentinelName: only with redisSentinels/],
      [{ redisClusterNodes: ['c:7000'], redisSentinelPassword: 'x' }, /store\.redisSentinelPassword: only with redisSentinels/],
      [{ redisClusterNodes: [] }, /store\.redisClusterNodes/],
      [{ redisClusterNodes: ['c'] }, /store\.redisClusterNodes\.0: "c" is not host:port/],
      [{ redisClusterNodes: ['c:0'] }, /store\.redisClusterNodes\.0/],
      [{ redisClusterNodes: ['c:7000', 'c:65536'] }, /store\.redisClusterNodes\.1/],
      [{ redisClusterNodes: ['redis://c:7000'] }, /store\.redisClusterNodes\.0/],
      [{ redisUrl: 'redis://r:6379', redisPassword: 'pw' }, /store\.redisPassword: with redisUrl, put them in the URL/],
      [{ redisUrl: 'redis://r:6379', redisTls: true }, /store\.redisTls: with redisUrl/],
      [{ redisUsername: 'gw' }, /store\.redisUsername: only with redisSentinels or redisClusterNodes/],
      [{ keyPrefix: 'a{b}:' }, /store\.keyPrefix/],
    ];
    for (const [store, message] of refusals) assert.throws(() => storeConfig(store), message, JSON.stringify(store));
  });

  it('a key prefix with braces is refused by the store too', () => {
    assert.throws(() => new RedisStore({ url: 'redis://127.0.0.1:1', keyPrefix: '{x}:', commandTimeoutMs: 100 }), /braces/);
  });
});

describe('slot audit of src/store/keys.ts', () => {
  const DOMAIN = 'tenant.example';
  /** Parameter names of a key builder, from its source (`(domain, id) => …` or `domain => …`). */
  const paramsOf = (fn: (...args: never[]) => string): string[] => {
    const m = /^(?:\(([^)]*)\)|(\w+))\s*=>/.exec(fn.toString());
    assert.ok(m, `not an arrow function: ${fn.toString()}`);
    return (m[1] ?? m[2]!)
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
  };

  it("every key of a tenant hashes on the tenant's domain; every other key carries no hash tag", () => {
    const builders = Object.entries(keys) as Array<[string, (...args: unknown[]) => string]>;
    assert.ok(builders.length > 40);
    for (const [name, build] of builders) {
      const params = paramsOf(build);
      // Ids an attacker may choose, with braces of their own: they must not move a key to another slot.
      const key = build(...params.map((p, i) => (p === 'domain' ? DOMAIN : p === 'n' ? i : `{evil-${i}}`)));
      if (params[0] === 'domain') assert.equal(hashedPartOf(key), DOMAIN, `${name}: ${key}`);
      else assert.ok(!params.includes('domain'), `${name}: the domain comes first so its tag comes first`);
      if (params[0] !== 'domain') assert.ok(!key.split(/\{evil-\d+\}/).join('').includes('{'), `${name} has no tag of its own: ${key}`);
    }
  });
});
