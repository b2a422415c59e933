import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { toAccountId } from '../../../src/provider/account-id.js';
import type { RedisStore } from '../../../src/store/index.js';
import { FakeClock } from '../../helpers/clock.js';
import { idps } from '../../helpers/keys.js';
import { redisDeployments } from '../../helpers/redis-cluster.js';
import {
  OPERATOR_AUTH,
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

/** Logs emp-001 of a.example in: the login starts on `starts` and finishes on `finishes`; returns the session cookie. */
async function loginAcross(starts: Gateway, finishes: Gateway): Promise<string> {
  const login = await beginLogin(starts, 'a.example');
  const res = await postAcs(finishes, 'a.example', validResponse(finishes, 'a.example', idps.a, login, 'emp-001'), login.relayState);
  assert.equal(res.status, 303, res.text);
  return sessionCookieOf(res)!;
}

const sessionStatus = async (gw: Gateway, cookie: string): Promise<number> => (await gw.http.get('/session').set('Cookie', cookie)).status;

/** oidc-provider's Client and AccessToken models, which src/types/oidc-provider.d.ts does not declare. */
interface OpTokenModels {
  Client: { find(id: string): Promise<object | undefined> };
  AccessToken: (new (properties: { accountId: string; client: object; grantId: string; scope: string; gty: string }) => { save(): Promise<string> }) & {
    find(token: string): Promise<object | undefined>;
  };
}
const opModels = (gw: Gateway): OpTokenModels => gw.services.provider as unknown as OpTokenModels;

/** An OP grant and access token for a member, issued through one instance's OpenID Provider. */
async function issueAccessToken(gw: Gateway, domain: string, memberId: string): Promise<string> {
  const accountId = toAccountId(domain, memberId);
  const client = await opModels(gw).Client.find('mobile');
  assert.ok(client, 'the mobile client is configured');
  const grant = new gw.services.provider.Grant({ accountId, clientId: 'mobile' });
  grant.addOIDCScope('openid');
  const grantId = await grant.save();
  return new (opModels(gw).AccessToken)({ accountId, client, grantId, scope: 'openid', gty: 'authorization_code' }).save();
}

const findAccessToken = (gw: Gateway, token: string): Promise<object | undefined> => opModels(gw).AccessToken.find(token);

/**
 * Two gateway processes' worth of apps, each with its own Redis connection, on one shared Redis — a
 * standalone server and a three-master Redis Cluster: nothing a process does lives only in that process.
 */
for (const deployment of redisDeployments) {
  describe(`two instances on one ${deployment.name}`, () => {
    let one: Gateway;
    let two: Gateway;
    let secondStore: RedisStore;
    let cleanup: () => Promise<void>;

    before(async () => {
      const shared = await deployment.createStore();
      cleanup = shared.cleanup;
      secondStore = await deployment.connectStore(shared.prefix);
      const clock = new FakeClock();
      one = await createGateway({ store: shared.store, clock });
      two = await createGateway({ store: secondStore, clock });
      await seedStandardTenants(one.services);
    });
    after(async () => {
      await secondStore?.close();
      await cleanup?.();
    });

    it('a login started on one instance finishes on the other, and its session is seen by both', async () => {
      const cookie = await loginAcross(one, two);
      assert.equal(await sessionStatus(one, cookie), 200);
      assert.equal(await sessionStatus(two, cookie), 200);
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

    it('a web session ended on one instance is refused by the other at once', async () => {
      const cookie = await loginAcross(two, one);
      const other = await loginAcross(one, two);
      assert.equal(await sessionStatus(two, cookie), 200);
      const logout = await one.http.get('/d/logout').set('Cookie', cookie);
      assert.ok(logout.status < 400, `logout answered ${logout.status}`);
      assert.equal(await sessionStatus(two, cookie), 401);
      assert.equal(await sessionStatus(one, cookie), 401);
      assert.equal(await sessionStatus(two, other), 200, "the member's other session is untouched");
    });

    it('SSO switched off on one instance: the other refuses the sessions, the login in flight and the OP tokens at once', async () => {
      const cookies = [await loginAcross(one, two), await loginAcross(two, one)];
      const inFlight = await beginLogin(two, 'a.example');
      const token = await issueAccessToken(one, 'a.example', 'm-a-active');
      assert.ok(await findAccessToken(two, token), 'the other instance finds the token before the switch');
      for (const cookie of cookies) assert.equal(await sessionStatus(two, cookie), 200);

      const off = await one.http.put('/admin/v1/domains/a.example/sso').set('Authorization', OPERATOR_AUTH).send({ enabled: false });
      assert.equal(off.status, 200, off.text);
      assert.equal(off.body.switched, true);
      assert.ok(off.body.effects.sessionsEnded >= cookies.length, JSON.stringify(off.body.effects));

      for (const cookie of cookies) assert.equal(await sessionStatus(two, cookie), 401);
      assert.equal(await findAccessToken(two, token), undefined, 'the token is gone for every instance');
      const late = await postAcs(two, 'a.example', validResponse(two, 'a.example', idps.a, inFlight, 'emp-001'), inFlight.relayState);
      assert.equal(late.status, 400, 'the login in flight is refused');
      assert.equal(errorCodeOf(late), 'sso_not_enabled');
      assert.equal(sessionCookieOf(late), undefined);
      const fresh = await two.http.get('/d/login/a.example');
      assert.equal(fresh.status, 302);
      assert.match(String(fresh.headers.location), /\/d\/password-login\/a\.example/, 'new logins follow the new mode on the other instance');
    });
  });
}
