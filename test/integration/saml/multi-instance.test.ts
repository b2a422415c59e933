import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { RedisStore } from '../../../src/store/index.js';
import { FakeClock } from '../../helpers/clock.js';
import { idps } from '../../helpers/keys.js';
import { createTestRedisStore, redisUrl } from '../../helpers/redis.js';
import {
  b64,
  beginLogin,
  createGateway,
  errorCodeOf,
  lastAuditReason,
  postAcs,
  responseSpec,
  sessionCookieOf,
  signed,
  seedStandardTenants,
  validResponse,
  type Gateway,
} from '../../helpers/gateway.js';

/** Two gateway processes' worth of apps, each with its own Redis connection, on one Redis. */
describe('two instances on one Redis', () => {
  let one: Gateway;
  let two: Gateway;
  let secondStore: RedisStore;
  let cleanup: () => Promise<void>;

  before(async () => {
    const shared = await createTestRedisStore();
    cleanup = shared.cleanup;
    secondStore = new RedisStore({ url: await redisUrl(), keyPrefix: shared.prefix, commandTimeoutMs: 2000 });
    await secondStore.connect();
    const clock = new FakeClock();
    one = await createGateway({ store: shared.store, clock });
    two = await createGateway({ store: secondStore, clock });
    await seedStandardTenants(one.services);
  });
  after(async () => {
    await secondStore.close();
    await cleanup();
  });

  it('a login started on one instance finishes on the other, and its session is seen by both', async () => {
    const login = await beginLogin(one, 'a.example');
    const res = await postAcs(two, 'a.example', validResponse(two, 'a.example', idps.a, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 303, res.text);
    const cookie = sessionCookieOf(res)!;
    assert.equal((await one.http.get('/session').set('Cookie', cookie)).status, 200);
    assert.equal((await two.http.get('/session').set('Cookie', cookie)).status, 200);
  });

  it('a response used on one instance is refused on the other', async () => {
    const login = await beginLogin(one, 'a.example');
    const response = validResponse(one, 'a.example', idps.a, login, 'emp-001');
    assert.equal((await postAcs(one, 'a.example', response, login.relayState)).status, 303);
    const replay = await postAcs(two, 'a.example', response, login.relayState);
    assert.equal(replay.status, 400);
    assert.equal(errorCodeOf(replay), 'login_transaction_invalid');
    assert.equal(sessionCookieOf(replay), undefined);
  });

  it('an assertion used on one instance is refused on the other even without a transaction (replay cache)', async () => {
    const xml = b64(signed(buildSamlResponseXml(responseSpec(one, 'unsolicited.example', idps.a, null, 'emp-001')), idps.a));
    assert.equal((await postAcs(one, 'unsolicited.example', xml, undefined)).status, 303);
    const replay = await postAcs(two, 'unsolicited.example', xml, undefined);
    assert.equal(replay.status, 400);
    assert.equal(errorCodeOf(replay), 'saml_response_invalid');
    assert.equal(await lastAuditReason(two, 'unsolicited.example'), 'assertion_replayed');
  });

  it('the same response posted to both instances at once logs in exactly once', async () => {
    for (let round = 0; round < 5; round++) {
      const xml = b64(signed(buildSamlResponseXml(responseSpec(one, 'unsolicited.example', idps.a, null, 'emp-001')), idps.a));
      const results = await Promise.all([postAcs(one, 'unsolicited.example', xml, undefined), postAcs(two, 'unsolicited.example', xml, undefined)]);
      assert.deepEqual(results.map((r) => r.status).sort(), [303, 400]);
    }
  });
});
