import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { RedisStore } from '../../src/store/index.js';
import { SERVICE_ORIGIN, createGateway, errorCodeOf, seedStandardTenants, type Gateway } from '../helpers/gateway.js';
import { startRedisServer } from '../helpers/redis.js';

const LOGIN_PATH = '/d/login/a.example';
const ACCESS_URL = `${SERVICE_ORIGIN}/x`;

describe('the store goes away and comes back (Redis down → 503, never 500 or a hang; recovers by itself)', () => {
  let gw: Gateway;
  let store: RedisStore;
  let port: number;
  let stopFirst: () => void;
  let second: { stop: () => void } | undefined;

  before(async () => {
    const server = await startRedisServer();
    port = server.port;
    stopFirst = server.stop;
    store = new RedisStore({ url: server.url, commandTimeoutMs: 1000 });
    await store.connect();
    gw = await createGateway({ store });
    await seedStandardTenants(gw.services);
  });

  after(async () => {
    await store?.close();
    await gw?.close();
    stopFirst?.();
    second?.stop();
  });

  it('is ready and starts logins while Redis is up', { timeout: 15_000 }, async () => {
    const ready = await gw.http.get('/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready', store: 'redis' });
    const login = await gw.http.get(LOGIN_PATH).query({ accessUrl: ACCESS_URL });
    assert.equal(login.status, 302, login.text.slice(0, 300));
  });

  it('answers 503 store_unavailable while Redis is down; /healthz stays 200', { timeout: 15_000 }, async () => {
    stopFirst();
    // Let the client see the connection close: a single request in the window is still a 503.
    await sleep(100);

    for (let round = 0; round < 3; round++) {
      const ready = await gw.http.get('/readyz');
      assert.equal(ready.status, 503, `readyz round ${round}: ${ready.text.slice(0, 300)}`);
      assert.equal(ready.body.error, 'store_unavailable');

      const login = await gw.http.get(LOGIN_PATH).query({ accessUrl: ACCESS_URL });
      assert.equal(login.status, 503, `login round ${round}: ${login.text.slice(0, 300)}`);
      assert.equal(errorCodeOf(login), 'store_unavailable');
      assert.match(String(login.headers['content-type']), /text\/html/);

      const unknownTenant = await gw.http.get('/d/login/nobody.example').query({ accessUrl: ACCESS_URL });
      assert.equal(unknownTenant.status, 503, 'an unknown tenant cannot be told apart while the store is down: 503, not 404');
      assert.equal(errorCodeOf(unknownTenant), 'store_unavailable');

      const metadata = await gw.http.get('/saml/metadata/a.example');
      assert.equal(metadata.status, 503);
      assert.equal(errorCodeOf(metadata), 'store_unavailable');

      const session = await gw.http.get('/session').set('Cookie', `idpb_session=${'A'.repeat(43)}`);
      assert.equal(session.status, 503, 'a session lookup that cannot reach the store is 503, not 401');
      assert.equal(errorCodeOf(session), 'store_unavailable');

      const health = await gw.http.get('/healthz');
      assert.equal(health.status, 200);
      assert.deepEqual(health.body, { status: 'ok' });
    }

    const failures = gw.logs.filter((l) => l.msg === 'request failed');
    assert.ok(failures.length > 0);
    assert.ok(
      failures.every((l) => l.errorCode === 'store_unavailable'),
      'no request failed with anything but store_unavailable',
    );
  });

  it('recovers by itself when Redis is back on the same address', { timeout: 15_000 }, async () => {
    second = await startRedisServer({ port });
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (await gw.http.get('/readyz')).status;
      if (status !== 200) await sleep(100);
    }
    assert.equal(status, 200, '/readyz is 200 again without restarting the gateway');

    // The new server is empty: the tenant is unknown until it is seeded again.
    const empty = await gw.http.get(LOGIN_PATH).query({ accessUrl: ACCESS_URL });
    assert.equal(empty.status, 404);
    assert.equal(errorCodeOf(empty), 'tenant_not_found');

    await seedStandardTenants(gw.services);
    const login = await gw.http.get(LOGIN_PATH).query({ accessUrl: ACCESS_URL });
    assert.equal(login.status, 302, login.text.slice(0, 300));
    assert.ok(String(login.headers.location).includes('SAMLRequest='));
  });
});
