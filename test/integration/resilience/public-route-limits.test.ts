import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type supertest from 'supertest';
import { RedisStore } from '../../../src/store/index.js';
import { FakeClock } from '../../helpers/clock.js';
import { SERVICE_ORIGIN, createGateway, errorCodeOf, seedStandardTenants, type Gateway } from '../../helpers/gateway.js';
import { createTestRedisStore, redisUrl } from '../../helpers/redis.js';

/**
 * The public login and logout routes anyone can call without a session are limited per client IP
 * (config `rateLimits`), counted in the store so two gateway instances on one Redis share the budget,
 * in minutes of the injected clock. Over it: 429 `rate_limited` with Retry-After; another client is
 * unaffected; the next minute opens again; refusals are counted in /metrics by bucket, never by IP.
 * The gateways trust one proxy hop, so the client is the right-most X-Forwarded-For address.
 */

type Agent = ReturnType<typeof supertest>;

const LIMITS = { loginStartPerMinute: 6, acsPerMinute: 4, oauthCallbackPerMinute: 4, samlLogoutPerMinute: 5, logoutPerMinute: 4, opAuthorizePerMinute: 3 };
const TXN_PATTERN = 'idpb:{a.example}:txn:*';

interface Family {
  bucket: string;
  limit: number;
  /** The requests of the family, taken in turn (families that cover several endpoints alternate them). */
  sends: Array<(agent: Agent, ip: string) => supertest.Test>;
}

const FAMILIES: Family[] = [
  {
    bucket: 'login-start',
    limit: LIMITS.loginStartPerMinute,
    sends: [(a, ip) => a.get('/d/login/a.example').query({ accessUrl: `${SERVICE_ORIGIN}/board` }).set('X-Forwarded-For', ip)],
  },
  {
    bucket: 'acs',
    limit: LIMITS.acsPerMinute,
    sends: [(a, ip) => a.post('/acs/a.example').type('form').set('X-Forwarded-For', ip).send({ SAMLResponse: 'bm90IHhtbA==', RelayState: 'x' })],
  },
  {
    bucket: 'oauth-callback',
    limit: LIMITS.oauthCallbackPerMinute,
    sends: [(a, ip) => a.get('/oauth/callback/a.example').query({ state: 'x', code: 'y' }).set('X-Forwarded-For', ip)],
  },
  {
    bucket: 'saml-logout',
    limit: LIMITS.samlLogoutPerMinute,
    sends: [
      (a, ip) => a.get('/saml2/sp/slo').query({ SAMLRequest: 'bm90IHhtbA==' }).set('X-Forwarded-For', ip),
      (a, ip) => a.post('/saml2/sp/slo').type('form').set('X-Forwarded-For', ip).send({ SAMLRequest: 'bm90IHhtbA==' }),
      (a, ip) => a.get('/saml2/sp/slo/callback').query({ SAMLResponse: 'bm90IHhtbA==' }).set('X-Forwarded-For', ip),
      (a, ip) => a.post('/saml2/sp/slo/callback').type('form').set('X-Forwarded-For', ip).send({ SAMLResponse: 'bm90IHhtbA==' }),
    ],
  },
  {
    bucket: 'logout',
    limit: LIMITS.logoutPerMinute,
    sends: [
      (a, ip) => a.get('/d/logout').query({ domain: 'a.example' }).set('X-Forwarded-For', ip),
      (a, ip) => a.get('/view/oauth/sso/logout').query({ domain: 'a.example' }).set('X-Forwarded-For', ip),
    ],
  },
  {
    bucket: 'op-authorize',
    limit: LIMITS.opAuthorizePerMinute,
    sends: [(a, ip) => a.get('/oidc/auth').query({ client_id: 'mobile', response_type: 'code', scope: 'openid', redirect_uri: 'idpbridge.mobile:/oauth2redirect' }).set('X-Forwarded-For', ip)],
  },
];

function assertLimited(res: supertest.Response, what: string): void {
  assert.equal(res.status, 429, `${what}: ${res.status} ${res.text.slice(0, 200)}`);
  assert.equal(errorCodeOf(res), 'rate_limited', what);
  assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/, `${what}: Retry-After in whole seconds`);
}

/** The value of one sample of the exposition text, e.g. sample(text, 'idpb_rate_limited_total', {bucket: 'acs'}). */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length).split(' ')[0]!;
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('public login and logout routes: per-client limits shared by every instance on one Redis', () => {
  const cleanups: Array<() => Promise<void>> = [];
  let one: Gateway;
  let two: Gateway;
  let clock: FakeClock;
  /** Refusals this file caused, per bucket: /metrics of both instances together must show them. */
  const refused = new Map<string, number>();

  before(async () => {
    const { store, prefix, cleanup } = await createTestRedisStore();
    cleanups.push(cleanup);
    // The second instance has a connection of its own to the same Redis and prefix.
    const second = new RedisStore({ url: await redisUrl(), keyPrefix: prefix, commandTimeoutMs: 2000 });
    await second.connect();
    cleanups.push(() => second.close());
    // The clock stands 15 s into a minute.
    clock = new FakeClock(Math.floor(Date.now() / 60_000) * 60_000 + 15_000);
    const overrides = { trustProxy: 1, rateLimits: LIMITS };
    one = await createGateway({ store, clock, overrides });
    two = await createGateway({ store: second, clock, overrides });
    await seedStandardTenants(one.services);
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  FAMILIES.forEach((family, n) => {
    it(`${family.bucket}: ${family.limit} a minute per client across both instances, 429 with Retry-After, another client unaffected, open again next minute`, async () => {
      const client = `203.0.113.${10 + n}`;
      const other = `198.51.100.${10 + n}`;
      const send = (i: number, ip: string): supertest.Test => family.sends[i % family.sends.length]!([one.http, two.http][i % 2]!, ip);

      const answers: supertest.Response[] = [];
      for (let i = 0; i < family.limit + 2; i++) answers.push(await send(i, client));
      assert.deepEqual(
        answers.map((r) => r.status === 429),
        [...Array<boolean>(family.limit).fill(false), true, true],
        `statuses ${answers.map((r) => r.status).join(',')}: the first ${family.limit} pass, whichever instance answers`,
      );
      assert.ok(answers.slice(0, family.limit).every((r) => r.status < 500), 'under the limit the route answers as it always did');
      for (const r of answers.slice(family.limit)) assertLimited(r, `${family.bucket} over the limit`);
      assert.equal(answers[family.limit]!.headers['retry-after'], '45', 'Retry-After: the 45 s left of the minute');
      refused.set(family.bucket, (refused.get(family.bucket) ?? 0) + 2);

      assert.notEqual((await send(0, other)).status, 429, 'another client has its own budget');
      assert.notEqual((await send(1, other)).status, 429, 'on either instance');

      clock.advance(60_000);
      const next = await send(0, client);
      assert.notEqual(next.status, 429, `the next minute opens again: ${next.status} ${next.text.slice(0, 120)}`);
      assert.notEqual((await send(1, client)).status, 429);
    });
  });

  it('counts the client behind the trusted proxy hop: a left-most X-Forwarded-For the client writes itself changes nothing', async () => {
    const client = '203.0.113.77';
    const statuses: number[] = [];
    for (let i = 0; i < LIMITS.loginStartPerMinute + 1; i++) {
      const res = await [one, two][i % 2]!.http.get('/d/login/a.example').set('X-Forwarded-For', `10.9.8.${i}, ${client}`);
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [...Array<number>(LIMITS.loginStartPerMinute).fill(302), 429]);
    refused.set('login-start', (refused.get('login-start') ?? 0) + 1);
  });

  it('counts an IPv6 client by its /64: rotating addresses within it shares one budget, another /64 has its own', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMITS.loginStartPerMinute + 1; i++) {
      statuses.push((await one.http.get('/d/login/a.example').set('X-Forwarded-For', `2001:db8:7:1::${(i + 1).toString(16)}`)).status);
    }
    assert.deepEqual(statuses, [...Array<number>(LIMITS.loginStartPerMinute).fill(302), 429]);
    refused.set('login-start', (refused.get('login-start') ?? 0) + 1);
    assert.equal((await two.http.get('/d/login/a.example').set('X-Forwarded-For', '2001:db8:7:2::1')).status, 302);
  });

  it('refuses an accessUrl longer than 2,048 characters once normalised (400 invalid_access_url) and stores nothing', async () => {
    const before = await one.countKeys(TXN_PATTERN);
    // 1,000 characters as sent; percent-encoded by normalisation (9 per character) they are 9,000.
    const expanding = `${SERVICE_ORIGIN}/${'あ'.repeat(1000)}`;
    const longAscii = `${SERVICE_ORIGIN}/${'a'.repeat(2049)}`;
    for (const accessUrl of [expanding, longAscii, `/${'"'.repeat(1000)}`]) {
      const res = await one.http.get('/d/login/a.example').query({ accessUrl }).set('X-Forwarded-For', '192.0.2.200');
      assert.equal(res.status, 400, `${accessUrl.slice(0, 40)}…: ${res.status}`);
      assert.equal(errorCodeOf(res), 'invalid_access_url');
    }
    assert.equal(await one.countKeys(TXN_PATTERN), before, 'no transaction was stored');
    // The longest accepted one is stored, bounded.
    const longest = `${SERVICE_ORIGIN}/${'a'.repeat(2048 - SERVICE_ORIGIN.length - 1)}`;
    const ok = await one.http.get('/d/login/a.example').query({ accessUrl: longest }).set('X-Forwarded-For', '192.0.2.200');
    assert.equal(ok.status, 302);
    assert.equal(await one.countKeys(TXN_PATTERN), before + 1);
  });

  it('shows the refusals in /metrics by bucket, summed over the instances, never the client IPs', async () => {
    const texts = [(await one.http.get('/metrics')).text, (await two.http.get('/metrics')).text];
    for (const family of FAMILIES) {
      const total = texts.reduce((sum, text) => sum + sample(text, 'idpb_rate_limited_total', { bucket: family.bucket }), 0);
      assert.equal(total, refused.get(family.bucket), `idpb_rate_limited_total{bucket="${family.bucket}"}`);
    }
    assert.ok(texts.every((text) => !/203\.0\.113|198\.51\.100|2001:db8/.test(text)), 'no client address in the metrics');
    const stored = texts.reduce((sum, text) => sum + sample(text, 'idpb_login_transactions_total', { type: 'saml' }), 0);
    assert.ok(stored > 0, 'stored transactions are counted');
  });
});
