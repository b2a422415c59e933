import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashPassword } from '../../../src/domain/passwords.js';
import type { TenantEvent } from '../../../src/observability/events.js';
import { LOOPBACK_IDPS, OPERATOR_AUTH, SERVICE_ORIGIN, beginLogin, createGateway, postAcs, tenantKeyAuth, validResponse, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { Receiver, eventsOf, verified } from '../../helpers/webhook-receiver.js';

describe('Events out: sign-in and audit events, pull API, signed webhooks (docs/spec.md §11)', () => {
  let gw: Gateway;
  let receiver: Receiver;

  before(async () => {
    gw = await createGateway({ overrides: { ...LOOPBACK_IDPS, trustProxy: true } });
    receiver = new Receiver();
    await receiver.start();
  });
  after(async () => {
    await gw.services.webhooks.stop();
    await receiver.stop();
    await gw.close();
  });

  const admin = (method: 'get' | 'put' | 'post' | 'delete', domain: string, path: string, auth = OPERATOR_AUTH) => gw.http[method](`/admin/v1/domains/${domain}${path}`).set('Authorization', auth);

  /** A full SAML login (or a refusal, for an unknown NameID) of `domain`; returns the ACS answer's status. */
  async function login(domain: string, nameId = 'emp-001'): Promise<number> {
    const started = await beginLogin(gw, domain);
    const res = await postAcs(gw, domain, validResponse(gw, domain, idps.a, started, nameId), started.relayState).set('User-Agent', `TestBrowser/1.0 ${'x'.repeat(400)}`).set('X-Forwarded-For', '203.0.113.9');
    gw.clock.advance(1);
    return res.status;
  }

  async function pullAll(domain: string, limit: number, auth = OPERATOR_AUTH, start: string | null = null): Promise<TenantEvent[]> {
    const seen: TenantEvent[] = [];
    let after: string | null = start;
    for (let pages = 0; pages < 1000; pages++) {
      const res = await admin('get', domain, '/events', auth).query({ limit, ...(after ? { after } : {}) });
      assert.equal(res.status, 200, res.text);
      const page = res.body as { events: TenantEvent[]; next: string | null };
      if (page.events.length === 0) {
        assert.equal(page.next, after, 'an empty page keeps the cursor');
        return seen;
      }
      seen.push(...page.events);
      after = page.next;
    }
    throw new Error('paging did not end');
  }

  /** Delivery rounds, moving the clock `stepMs` after each, until the tenant has nothing left (bounded). */
  async function drain(domain: string, stepMs: number): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const outcome = await gw.services.webhooks.deliverTenant(domain);
      if (outcome === 'idle') return;
      gw.clock.advance(stepMs);
    }
    throw new Error('delivery did not drain');
  }

  it('records sign-in successes and refusals as events with protocol, member, code, address and a bounded user agent; no secret', async () => {
    const D = 'a.example';
    assert.equal(await login(D), 303);
    assert.equal(await login(D, 'emp-999'), 403);
    const events = await pullAll(D, 100);
    const ok = events.find((e) => e.type === 'sign_in.succeeded');
    const refused = events.find((e) => e.type === 'sign_in.refused');
    assert.ok(ok && refused, JSON.stringify(events.map((e) => e.type)));
    assert.equal(ok.memberId, 'm-a-active');
    assert.equal(ok.protocol, 'saml');
    assert.equal(ok.ip, '203.0.113.9');
    assert.equal(ok.userAgent!.length, 256);
    assert.ok(ok.userAgent!.startsWith('TestBrowser/1.0'));
    assert.equal(refused.code, 'member_not_found');
    assert.equal(refused.protocol, 'saml');
    assert.equal(refused.memberId, undefined);
    // Audit entries are events too, in the same stream.
    assert.ok(events.some((e) => e.type === 'audit.login.succeeded' && e.actor === 'member:m-a-active'));
    const text = JSON.stringify(events);
    for (const secret of ['SAMLResponse', 'idpb_session', 'idpb_login', 'PHNhbWxw']) assert.ok(!text.includes(secret), secret);
  });

  it('password sign-ins are events too (protocol password), the password never in them', async () => {
    const D = 'nosso.example';
    const member = await gw.services.members.findById(D, 'm-n');
    await gw.services.members.replace({ ...member!, passwordHash: await hashPassword('Correct-horse-42') });
    const attempt = async (password: string): Promise<number> => {
      const form = await gw.http.get(`/d/password-login/${D}`).query({ accessUrl: `${SERVICE_ORIGIN}/board` }).set('X-Forwarded-For', '198.51.100.77');
      const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
      const cookie = ((form.headers['set-cookie'] as unknown as string[]) ?? []).find((c) => c.startsWith('idpb_csrf='))!.split(';')[0]!;
      const res = await gw.http
        .post(`/d/password-login/${D}`)
        .type('form')
        .set('X-Forwarded-For', '198.51.100.77')
        .set('Cookie', cookie)
        .send({ account: 'n@nosso.example', password, accessUrl: `${SERVICE_ORIGIN}/board`, csrf });
      return res.status;
    };
    assert.equal(await attempt('Wrong-password-00'), 401);
    assert.equal(await attempt('Correct-horse-42'), 303);
    const signIns = (await pullAll(D, 100)).filter((e) => e.type.startsWith('sign_in.'));
    assert.deepEqual(
      signIns.map((e) => [e.type, e.protocol, e.memberId, e.ip]),
      [
        ['sign_in.refused', 'password', 'm-n', '198.51.100.77'],
        ['sign_in.succeeded', 'password', 'm-n', '198.51.100.77'],
      ],
    );
    assert.ok(signIns[0]!.code);
    const text = JSON.stringify(await pullAll(D, 100));
    assert.ok(!text.includes('Wrong-password-00') && !text.includes('Correct-horse-42'));
  });

  it('the pull API pages every event once, in order, for any page size; tenant-scoped; a bad cursor is 400', async () => {
    const D = 'b.example';
    for (let i = 0; i < 230; i++) {
      await gw.services.audit.record({ type: 'bulk.event', domain: D, actor: 'operator', data: { i } });
      if (i % 3 === 0) gw.clock.advance(1);
    }
    const all = await pullAll(D, 1000);
    const bulk = all.filter((e) => e.type === 'audit.bulk.event').map((e) => e.data!.i);
    assert.deepEqual(bulk, [...Array(230).keys()]);
    for (const size of [1, 7, 100]) {
      const paged = await pullAll(D, size);
      assert.deepEqual(paged.map((e) => e.id), all.map((e) => e.id), `page size ${size}`);
    }
    const ids = all.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
    const [ms0, seq0] = ids[0]!.split('-').map(Number);
    let prev: [number, number] = [ms0!, seq0!];
    for (const id of ids.slice(1)) {
      const [ms, seq] = id.split('-').map(Number) as [number, number];
      assert.ok(ms > prev[0] || (ms === prev[0] && seq > prev[1]), `${id} after ${prev.join('-')}`);
      prev = [ms, seq];
    }
    // Another tenant's key sees nothing of this tenant.
    const otherKey = await tenantKeyAuth(gw, 'a.example', 'events-a');
    assert.equal((await admin('get', D, '/events', otherKey)).status, 404);
    const ownKey = await tenantKeyAuth(gw, D, 'events-b');
    assert.equal((await pullAll(D, 50, ownKey)).length, all.length + 2 /* the keys' audit entries */ - 1 /* a.example's key is audited there */);
    assert.equal((await admin('get', D, '/events').query({ after: 'x' })).status, 400);
  });

  it('webhook URLs follow the outbound policy: private, metadata, credentials and non-http(s) are refused', async () => {
    for (const url of ['http://10.0.0.1/hook', 'http://169.254.169.254/latest', 'ftp://127.0.0.1/x', `http://u:p@127.0.0.1:1/hook`, 'not a url']) {
      const res = await admin('put', 'sha1.example', '/webhook').send({ url });
      assert.equal(res.status, 400, url);
      assert.equal(res.body.error, 'webhook_url_refused', url);
    }
    assert.equal((await admin('get', 'sha1.example', '/webhook')).status, 404);
    // Loopback only where the operator admits it (this test's LOOPBACK_IDPS): a gateway without it refuses.
    const strict = await createGateway({ store: gw.store, clock: gw.clock });
    const refused = await strict.http.put('/admin/v1/domains/sha1.example/webhook').set('Authorization', OPERATOR_AUTH).send({ url: receiver.url });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'webhook_url_refused');
    // A query string (a receiver's own token) stays out of the audit trail.
    const withToken = await admin('put', 'sha1.example', '/webhook').send({ url: `${receiver.url}?token=s3cr3t-value` });
    assert.equal(withToken.status, 200);
    const audited = await gw.services.audit.list('sha1.example', 1);
    assert.equal(audited[0]!.type, 'webhook.set');
    assert.ok(!JSON.stringify(audited).includes('s3cr3t-value'));
    assert.equal((await admin('delete', 'sha1.example', '/webhook')).status, 204);
  });

  it('a receiver failing twice then recovering gets every event, signed, once after de-duplication by id, in order', async () => {
    const D = 'sha1.example';
    const from = await gw.services.events.newestId(D);
    const set = await admin('put', D, '/webhook').send({ url: receiver.url });
    assert.equal(set.status, 200, set.text);
    const secret = set.body.secret as string;
    assert.match(secret, /^whsec_[A-Za-z0-9+/=]{32}$/);
    assert.ok(!JSON.stringify((await admin('get', D, '/webhook')).body).includes(secret.slice(6)), 'the secret is shown once');
    const startFrom = receiver.requests.length;
    for (let i = 0; i < 3; i++) assert.equal(await login(D), 303);
    assert.equal(await login(D, 'emp-999'), 403);
    receiver.mode = 'fail';
    receiver.failures = 2;
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'retrying');
    // Not before the backoff is over.
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'waiting');
    gw.clock.advance(1000);
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'retrying');
    gw.clock.advance(1999);
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'waiting');
    gw.clock.advance(1);
    await drain(D, 1000);
    receiver.mode = 'ok';

    const got = receiver.requests.slice(startFrom);
    assert.equal(got.length, 3, 'two failures and one success');
    for (const r of got) assert.ok(verified(secret, r), 'signature verifies');
    assert.ok(!verified(`whsec_${Buffer.alloc(24).toString('base64')}`, got[0]!), 'another secret does not verify');
    assert.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, 1, 'retries keep the webhook-id');
    const unique = new Map<string, TenantEvent>();
    for (const r of got) for (const e of eventsOf(r)) unique.set(e.id, e);
    const expected = await pullAll(D, 1000, OPERATOR_AUTH, from);
    assert.equal(expected[0]!.type, 'audit.webhook.set');
    assert.deepEqual([...unique.keys()], expected.map((e) => e.id));
    assert.equal([...unique.values()].filter((e) => e.type === 'sign_in.succeeded').length, 3);
    assert.equal([...unique.values()].filter((e) => e.type === 'sign_in.refused').length, 1);
    assert.equal((await admin('get', D, '/webhook')).body.cursor, expected.at(-1)!.id);
    assert.equal((await admin('delete', D, '/webhook')).status, 204);
  });

  it('with the receiver down for a minute no event is lost: delivered in order once it is back', async () => {
    const D = 'rollover.example';
    const set = await admin('put', D, '/webhook').send({ url: receiver.url });
    const secret = set.body.secret as string;
    const startFrom = receiver.requests.length;
    receiver.mode = 'down';
    // A minute of the gateway's clock: logins keep coming, each delivery round fails.
    for (let s = 0; s < 60; s += 5) {
      assert.equal(await login(D), 303);
      await gw.services.webhooks.deliverTenant(D);
      gw.clock.advance(5000);
    }
    const view = (await admin('get', D, '/webhook')).body as { attempts: number; lastError: string };
    assert.ok(view.attempts >= 3, JSON.stringify(view));
    assert.ok(view.lastError);
    receiver.mode = 'ok';
    await drain(D, 10_000);
    const got = receiver.requests.slice(startFrom).filter((r) => verified(secret, r));
    const delivered = new Map<string, TenantEvent>();
    for (const r of got) for (const e of eventsOf(r)) delivered.set(e.id, e);
    const expected = (await pullAll(D, 1000));
    assert.deepEqual([...delivered.keys()], expected.map((e) => e.id));
    assert.equal([...delivered.values()].filter((e) => e.type === 'sign_in.succeeded').length, 12);
    assert.equal((await admin('get', D, '/webhook/deliveries').query({ status: 'failed' })).body.deliveries.length, 0);
    assert.equal((await admin('delete', D, '/webhook')).status, 204);
  });

  it('logins never wait for the webhook: with the receiver hanging, a login completes while a delivery is stuck', async () => {
    const D = 'unsolicited.example';
    await admin('put', D, '/webhook').send({ url: receiver.url });
    receiver.mode = 'hang';
    const before = receiver.requests.length;
    assert.equal(await login(D), 303);
    assert.equal(receiver.requests.length, before, 'the login itself called no webhook');
    const arrived = receiver.nextRequest();
    const delivery = gw.services.webhooks.deliverTenant(D);
    await arrived;
    // The delivery is now stuck at the receiver; a login completes meanwhile.
    let deliveryDone = false;
    void delivery.then(() => (deliveryDone = true));
    assert.equal(await login(D), 303);
    assert.equal(deliveryDone, false, 'the login finished before the stuck delivery');
    // Another round while one holds the tenant's lease does not deliver out of order.
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'busy');
    receiver.mode = 'ok';
    receiver.release();
    await delivery;
    await drain(D, 1000);
    const all = (await pullAll(D, 1000)).map((e) => e.id);
    const delivered = new Set(receiver.requests.slice(before).flatMap((r) => eventsOf(r).map((e) => e.id)));
    assert.deepEqual([...delivered], all);
    assert.equal((await admin('delete', D, '/webhook')).status, 204);
  });
});
