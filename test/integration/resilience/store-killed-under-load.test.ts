import assert from 'node:assert/strict';
import { inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { RedisStore } from '../../../src/store/index.js';
import { OPERATOR_AUTH, SERVICE_ORIGIN, createGateway, seedStandardTenants, validResponse, type Gateway, type StartedLogin } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { listen, pollUntil, request, startDurableRedis, watchProcess, type DurableRedis, type Listening, type Outcome } from './helpers.js';

/**
 * docs/spec.md §12 "store down", under load: a stream of concurrent requests of every kind that needs the
 * store (login starts, full SAML logins with ACS posts, session reads, the session-check API, admin
 * API reads, SP metadata, the password page) runs while the gateway's Redis is SIGKILLed and later
 * started again on the same port. Every request must settle (a client-side deadline catches a hang)
 * with its normal answer or 503 `store_unavailable` — never a 500 — while /healthz stays 200; the
 * gateway must find Redis again by itself, and its data (AOF) is there: old sessions work, a full
 * login succeeds. (test/integration/store-down.test.ts covers single requests with Redis stopped.)
 */

const DOMAIN = 'a.example';
const ACCESS_URL = `${SERVICE_ORIGIN}/board`;
/** Far above the store's 1 s command timeout: reaching it means the request hung. */
const DEADLINE_MS = 10_000;
const WORKERS = 8;

type Phase = 'before' | 'down' | 'restarting' | 'after';

interface Result {
  action: string;
  /** When the request was sent. */
  phase: Phase;
  outcome: Outcome;
}

/** What each action answers when the store is there (503 store_unavailable is the only other answer allowed). */
const NORMAL: Record<string, number[]> = {
  'login-start': [302],
  acs: [303],
  'acs-garbage': [400],
  session: [200],
  'session-check': [403, 429],
  'admin-domain': [200],
  'admin-members': [200],
  'admin-sso': [200],
  'sp-metadata': [200],
  'password-page': [200],
  readyz: [200],
  healthz: [200],
};

describe('Redis is killed under a concurrent load and comes back (503 or a normal answer, never 500 or a hang)', () => {
  let redis: DurableRedis;
  let store: RedisStore;
  let gw: Gateway;
  let server: Listening;
  /** A session made before the kill. */
  let cookie: string;

  const url = (path: string): string => `${server.base}${path}`;
  const get = (path: string, headers: Record<string, string> = {}): Promise<Outcome> => request(url(path), { headers, deadlineMs: DEADLINE_MS });

  /** /d/login then the IdP's signed answer to /acs: one or two outcomes (the ACS step only after a 302). */
  async function fullLogin(): Promise<Array<[string, Outcome]>> {
    const start = await get(`/d/login/${DOMAIN}?accessUrl=${encodeURIComponent(ACCESS_URL)}`);
    if (start.kind !== 'answer' || start.status !== 302 || !start.location) return [['login-start', start]];
    const redirect = new URL(start.location);
    const relayState = redirect.searchParams.get('RelayState')!;
    const authn = inflateRawSync(Buffer.from(redirect.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const requestId = /\sID="([^"]+)"/.exec(authn)![1]!;
    const samlResponse = validResponse(gw, DOMAIN, idps.a, { relayState, requestId } as StartedLogin, 'emp-001');
    // The browser that started the login posts the answer, with its login binding cookie.
    const binding = start.setCookie.find((c) => c.startsWith('idpb_login='))?.split(';')[0] ?? '';
    const acs = await request(url(`/acs/${DOMAIN}`), {
      method: 'POST',
      body: new URLSearchParams({ SAMLResponse: samlResponse, RelayState: relayState }),
      headers: { cookie: binding },
      deadlineMs: DEADLINE_MS,
    });
    return [
      ['login-start', start],
      ['acs', acs],
    ];
  }

  const admin = { Authorization: OPERATOR_AUTH };
  const actions: Array<() => Promise<Array<[string, Outcome]>>> = [
    fullLogin,
    async () => [['session', await get('/session', { cookie })]],
    async () => [['admin-domain', await get(`/admin/v1/domains/${DOMAIN}`, admin)]],
    async () => [['acs-garbage', await request(url(`/acs/${DOMAIN}`), { method: 'POST', body: new URLSearchParams({ SAMLResponse: '%%%not base64', RelayState: 'x' }), deadlineMs: DEADLINE_MS })]],
    async () => [['admin-members', await get(`/admin/v1/domains/${DOMAIN}/members?count=10`, admin)]],
    async () => [['session-check', await request(url('/login/check/some-session-key'), { method: 'POST', body: new URLSearchParams({ ssoType: 'SAML' }), deadlineMs: DEADLINE_MS })]],
    async () => [['admin-sso', await get(`/admin/v1/domains/${DOMAIN}/sso`, admin)]],
    async () => [['sp-metadata', await get(`/saml/metadata/${DOMAIN}`)]],
    async () => [['password-page', await get('/d/password-login/nosso.example')]],
    async () => [['readyz', await get('/readyz')]],
    async () => [['healthz', await get('/healthz')]],
  ];

  before(async () => {
    redis = await startDurableRedis();
    store = new RedisStore({ url: redis.url, commandTimeoutMs: 1000 });
    await store.connect();
    gw = await createGateway({ store });
    await seedStandardTenants(gw.services);
    server = await listen(gw.app);
  });

  after(async () => {
    await server?.close();
    await store?.close();
    await gw?.close();
    await redis?.dispose();
  });

  it('signs in before the kill', async () => {
    const [start, acs] = (await fullLogin()).map(([, o]) => o);
    assert.equal(start?.kind === 'answer' && start.status, 302);
    assert.ok(acs?.kind === 'answer' && acs.status === 303, JSON.stringify(acs).slice(0, 300));
    cookie = acs.setCookie.find((c) => c.startsWith('idpb_session='))!.split(';')[0]!;
    const me = await get('/session', { cookie });
    assert.equal(me.kind === 'answer' && me.status, 200);
  });

  it('answers every request of the stream with its normal answer or 503 store_unavailable, and recovers by itself', { timeout: 120_000 }, async (t) => {
    const watch = watchProcess();
    const results: Result[] = [];
    let phase: Phase = 'before';
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const startedIn = phase;
        for (const [action, outcome] of await actions[(w + i) % actions.length]!()) results.push({ action, phase: startedIn, outcome });
      }
    };
    const isNormal = (r: Result): boolean => r.outcome.kind === 'answer' && NORMAL[r.action]!.includes(r.outcome.status);
    const count = (p: (r: Result) => boolean): number => results.filter(p).length;
    let workers: Array<Promise<void>> = [];
    try {
      workers = Array.from({ length: WORKERS }, (_, w) => worker(w));

      assert.ok(await pollUntil(() => count((r) => r.phase === 'before' && isNormal(r)) >= 60, 600, 50), 'the load runs normally first');
      await redis.kill();
      phase = 'down';
      assert.ok(await pollUntil(() => count((r) => r.phase === 'down' && r.action !== 'healthz') >= 80, 600, 50), 'requests keep coming while Redis is down');

      phase = 'restarting';
      await redis.restart();
      const ready = await pollUntil(async () => {
        const r = await get('/readyz');
        return r.kind === 'answer' && r.status === 200;
      }, 150, 100);
      assert.ok(ready, '/readyz answers 200 again without restarting the gateway');
      phase = 'after';
      const recovered = (action: string): boolean => results.some((r) => r.phase === 'after' && r.action === action && isNormal(r));
      assert.ok(await pollUntil(() => Object.keys(NORMAL).every(recovered), 600, 50), `every kind of request succeeds again: missing ${Object.keys(NORMAL).filter((a) => !recovered(a)).join(', ')}`);
    } finally {
      stop = true;
      await Promise.all(workers);
      watch.stop();
    }

    const summary = Object.fromEntries(
      (['before', 'down', 'restarting', 'after'] as const).map((p) => {
        const inPhase = results.filter((r) => r.phase === p);
        return [p, { requests: inPhase.length, normal: inPhase.filter(isNormal).length, unavailable: inPhase.filter((r) => r.outcome.kind === 'answer' && r.outcome.status === 503).length }];
      }),
    );
    t.diagnostic(`requests: ${JSON.stringify(summary)}`);

    const hangs = results.filter((r) => r.outcome.kind === 'hang');
    assert.deepEqual(hangs, [], 'no request hung');
    const broken = results.filter((r) => r.outcome.kind === 'network_error');
    assert.deepEqual(broken, [], 'no connection broke');
    for (const r of results) {
      if (r.outcome.kind !== 'answer') continue;
      const { status, code, text } = r.outcome;
      if (isNormal(r)) continue;
      assert.equal(status, 503, `${r.action} (${r.phase}) answered ${status}: ${text.slice(0, 300)}`);
      assert.equal(code, 'store_unavailable', `${r.action} (${r.phase}): the 503 names store_unavailable`);
      assert.notEqual(r.action, 'healthz', '/healthz does not need the store');
    }
    // While Redis was down (from the kill until the restart began), everything that needs it was 503.
    const whileDown = results.filter((r) => r.phase === 'down' && r.action !== 'healthz');
    assert.ok(whileDown.length >= 80);
    for (const r of whileDown) assert.ok(r.outcome.kind === 'answer' && r.outcome.status === 503, `${r.action} while Redis was down: ${JSON.stringify(r.outcome).slice(0, 200)}`);
    assert.ok(results.some((r) => r.phase === 'down' && r.action === 'healthz' && isNormal(r)), '/healthz stayed 200 while Redis was down');

    // The gateway logged no failure but store_unavailable, and the process saw no stray error.
    const failures = gw.logs.filter((l) => l.msg === 'request failed');
    assert.ok(failures.length > 0);
    assert.deepEqual([...new Set(failures.map((l) => l.errorCode))], ['store_unavailable']);
    assert.deepEqual(watch.failures, [], 'no uncaught exception or unhandled rejection');
  });

  it('is fully usable afterwards: the old session is there (nothing acknowledged was lost) and a full login succeeds', async () => {
    const health = await get('/healthz');
    assert.equal(health.kind === 'answer' && health.status, 200);
    const old = await get('/session', { cookie });
    assert.equal(old.kind === 'answer' && old.status, 200, 'the session made before the kill survived it');
    const [start, acs] = (await fullLogin()).map(([, o]) => o);
    assert.equal(start?.kind === 'answer' && start.status, 302);
    assert.ok(acs?.kind === 'answer' && acs.status === 303, JSON.stringify(acs).slice(0, 300));
    assert.equal(acs.location, ACCESS_URL);
    const fresh = acs.setCookie.find((c) => c.startsWith('idpb_session='))!.split(';')[0]!;
    const me = await get('/session', { cookie: fresh });
    assert.ok(me.kind === 'answer' && me.status === 200);
    assert.equal((JSON.parse(me.text) as { member: { account: string } }).member.account, 'active@a.example');
  });
});
