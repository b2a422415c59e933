import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import supertest from 'supertest';
import { errorHandler } from '../../../src/http/error-handler.js';
import { rateLimit } from '../../../src/http/rate-limit.js';
import { requestContext } from '../../../src/http/request-context.js';
import { createLogger } from '../../../src/observability/logger.js';
import { RedisStore } from '../../../src/store/index.js';
import { FakeClock } from '../../helpers/clock.js';
import { OPERATOR_AUTH, createGateway, errorCodeOf, seedStandardTenants, type Gateway } from '../../helpers/gateway.js';
import { createTestRedisStore, redisUrl } from '../../helpers/redis.js';

/**
 * docs/spec.md §12 rate limits are counted in Redis, so every gateway instance on one Redis shares them: the
 * limit is reached by the requests of all instances together. Over it: 429 `rate_limited` with
 * Retry-After. Windows are cut by the injected clock, so a test moves to the next window by moving it.
 */

type Agent = ReturnType<typeof supertest>;

/** Sends `total` requests alternating between the instances; returns the statuses in order. */
async function alternate(instances: Agent[], total: number, send: (agent: Agent) => supertest.Test): Promise<supertest.Response[]> {
  const answers: supertest.Response[] = [];
  for (let i = 0; i < total; i++) answers.push(await send(instances[i % instances.length]!));
  return answers;
}

function assertLimited(res: supertest.Response, what: string): void {
  assert.equal(res.status, 429, `${what}: ${res.text.slice(0, 200)}`);
  assert.equal(errorCodeOf(res), 'rate_limited', what);
  assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/, `${what}: Retry-After in whole seconds`);
}

describe('rate limits: one counter for every instance on the same Redis, windows by the injected clock', () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('counts requests of two instances (two connections) together, answers 429 with Retry-After to the end of the window, and opens again in the next window', async () => {
    const url = await redisUrl();
    const { store: first, prefix, cleanup } = await createTestRedisStore();
    cleanups.push(cleanup);
    const second = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 2000 });
    await second.connect();
    cleanups.push(() => second.close());
    // A minute window; the clock stands 15 s into one.
    const clock = new FakeClock(Math.floor(Date.now() / 60_000) * 60_000 + 15_000);
    const logger = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    const instance = (store: RedisStore): Agent => {
      const app = express();
      app.use(requestContext(logger));
      app.get('/limited', rateLimit({ store, clock }, { bucket: 'resilience-test', limit: 5, windowMs: 60_000 }), (_req, res) => {
        res.json({ ok: true });
      });
      app.use(errorHandler());
      return supertest(app);
    };
    const instances = [instance(first), instance(second)];

    const answers = await alternate(instances, 8, (a) => a.get('/limited'));
    assert.deepEqual(
      answers.map((r) => r.status),
      [200, 200, 200, 200, 200, 429, 429, 429],
      'the sixth request — the third of one instance — is over the shared limit of five',
    );
    for (const r of answers.slice(5)) assertLimited(r, 'over the limit');
    assert.equal(answers[5]!.headers['retry-after'], '45', 'Retry-After: the 45 s left of the window');

    clock.advance(44_000);
    assertLimited(await instances[0]!.get('/limited'), 'one second before the window ends');
    assert.equal((await instances[1]!.get('/limited')).headers['retry-after'], '1');

    clock.advance(1_000);
    const next = await alternate(instances, 6, (a) => a.get('/limited'));
    assert.deepEqual(
      next.map((r) => r.status),
      [200, 200, 200, 200, 200, 429],
      'the next window starts from zero, again for both',
    );
  });

  describe('on the gateway routes, through two gateways on one Redis', () => {
    let one: Gateway;
    let two: Gateway;

    before(async () => {
      const { store, cleanup } = await createTestRedisStore();
      cleanups.push(cleanup);
      const clock = new FakeClock();
      const overrides = { admin: { rateLimitPerMinute: 10 } };
      one = await createGateway({ store, clock, overrides });
      two = await createGateway({ store, clock, overrides });
      await seedStandardTenants(one.services);
    });

    it('the session-check API (S-18): 30 a minute per client, counted across both', async () => {
      const answers = await alternate([one.http, two.http], 32, (a) => a.post('/login/check/no-such-session-key').type('form').send({ ssoType: 'SAML' }));
      assert.deepEqual(answers.slice(0, 30).map((r): [number, string] => [r.status, String(r.body.code)]), Array.from({ length: 30 }, () => [403, '12']));
      for (const r of answers.slice(30)) assertLimited(r, 'session check 31+');
    });

    it('the admin API: the per-key limit (10 a minute here) is reached by both gateways together', async () => {
      const answers = await alternate([one.http, two.http], 12, (a) => a.get('/admin/v1/domains/a.example').set('Authorization', OPERATOR_AUTH));
      assert.deepEqual(answers.slice(0, 10).map((r) => r.status), Array.from({ length: 10 }, () => 200));
      for (const r of answers.slice(10)) assertLimited(r, 'admin 11+');
      assert.equal(answers[11]!.headers['content-type']?.includes('json'), true);
    });

    it('password sign-in: 30 POSTs a minute per client IP, across both', async () => {
      // Without the form token each POST is refused before any password work; the limiter counts it first.
      const answers = await alternate([one.http, two.http], 31, (a) => a.post('/d/password-login/nosso.example').type('form').send({ account: 'n@nosso.example', password: 'x' }));
      assert.ok(answers.slice(0, 30).every((r) => r.status !== 429), answers.map((r) => r.status).join(','));
      assertLimited(answers[30]!, 'password login 31st');
    });

    it('the MDM check: 120 a minute per client, across both', async () => {
      const answers = await alternate([one.http, two.http], 121, (a) => a.post('/mobile/mdm/check').send({ domain: 'a.example' }));
      assert.ok(answers.slice(0, 120).every((r) => r.status !== 429));
      assertLimited(answers[120]!, 'MDM check 121st');
    });
  });
});
