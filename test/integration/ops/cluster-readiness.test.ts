import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { keys, RedisStore } from '../../../src/store/index.js';
import { SERVICE_ORIGIN, createGateway, errorCodeOf, seedStandardTenants, type Gateway } from '../../helpers/gateway.js';
import { startRedisCluster, withNode, type StartedRedisCluster } from '../../helpers/redis-cluster.js';

/**
 * Readiness on a three-master Redis Cluster with one master killed (issue 18, finding 1). One node
 * answering PING says nothing then: the others keep answering and keep `cluster_state:ok` until the
 * node timeout (5 s here), while every key of the lost slots fails. /readyz must say 503 as soon as the
 * lost master's keys cannot be served, and 200 again as soon as the cluster is whole; /healthz (liveness)
 * never follows the store.
 *
 * "Within a second" is checked as a bound on polling: at most 20 probes, 50 ms apart.
 */

const POLL_EVERY_MS = 50;
const POLL_MAX = 20;

describe('/readyz on a Redis Cluster with one master killed and restarted', () => {
  let cluster: StartedRedisCluster;
  let store: RedisStore;
  let gw: Gateway;
  /** The index of the master owning a.example's slot. */
  let victim: number;

  before(async () => {
    cluster = await startRedisCluster(3);
    store = new RedisStore({ clusterNodes: cluster.nodes, commandTimeoutMs: 1000 });
    await store.connect();
    gw = await createGateway({ store });
    await seedStandardTenants(gw.services);
    const slot = Number(await withNode(cluster.nodes[0]!, (c) => c.cluster('KEYSLOT', keys.tenant('a.example'))));
    const slots = await withNode(cluster.nodes[0]!, (c) => c.cluster('SLOTS'));
    const owner = slots.find(([start, end]) => slot >= start && slot <= end)![2]!;
    victim = cluster.nodes.findIndex((n) => n.port === Number(owner[1]));
    assert.ok(victim >= 0, 'the owner of a.example is one of the started nodes');
  });
  after(async () => {
    await store?.close();
    cluster?.stop();
  });

  /** Polls /readyz until it answers `status`; returns how many probes it took and the last answer. */
  async function pollReadyz(status: number): Promise<{ probes: number; ms: number; body: Record<string, unknown> }> {
    const start = performance.now();
    for (let probes = 1; probes <= POLL_MAX; probes++) {
      const res = await gw.http.get('/readyz');
      assert.equal((await gw.http.get('/healthz')).status, 200, 'liveness never follows the store');
      if (res.status === status) return { probes, ms: Math.round(performance.now() - start), body: res.body as Record<string, unknown> };
      await sleep(POLL_EVERY_MS);
    }
    assert.fail(`/readyz did not answer ${status} within ${POLL_MAX} probes ${POLL_EVERY_MS} ms apart`);
  }

  it('503 store_unavailable within a second of a master dying, while a node still answers PONG; 200 within a second of the cluster being whole', { timeout: 60_000 }, async (t) => {
    const login = () => gw.http.get('/d/login/a.example').query({ accessUrl: `${SERVICE_ORIGIN}/x` });
    assert.equal((await gw.http.get('/readyz')).status, 200);
    assert.equal((await login()).status, 302);

    cluster.killNode(victim);
    const down = await pollReadyz(503);
    assert.equal(down.body.error, 'store_unavailable');
    t.diagnostic(`503 after ${down.ms} ms (${down.probes} probes)`);
    // What the probe used to ask: a surviving node still answers, and still says the cluster is ok.
    const survivor = cluster.nodes[(victim + 1) % 3]!;
    assert.equal(await withNode(survivor, (c) => c.ping()), 'PONG');
    assert.match(String(await withNode(survivor, (c) => c.cluster('INFO'))), /cluster_state:ok/);
    // And readiness tells the truth: the lost master's keys cannot be served.
    const refused = await login();
    assert.equal(refused.status, 503);
    assert.equal(errorCodeOf(refused), 'store_unavailable');
    // It stays 503 while the master is away (answers from the cache are not a stale "ready").
    for (let i = 0; i < 5; i++) {
      await sleep(100);
      assert.equal((await gw.http.get('/readyz')).status, 503);
    }

    await cluster.restartNode(victim); // resolves once every node says cluster_state:ok
    const up = await pollReadyz(200);
    assert.deepEqual(up.body, { status: 'ready', store: 'redis' });
    t.diagnostic(`200 after ${up.ms} ms (${up.probes} probes) of the cluster being whole`);
    // The restarted master came back empty (no persistence): its tenant is seeded again and logs in.
    await seedStandardTenants(gw.services);
    assert.equal((await login()).status, 302);
  });
});
