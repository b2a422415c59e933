import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LOOPBACK_IDPS, createGateway, type Gateway } from '../../helpers/gateway.js';
import { Receiver, eventsOf, verified } from '../../helpers/webhook-receiver.js';

describe('Webhook failed deliveries and redelivery', () => {
  let gw: Gateway;
  let receiver: Receiver;

  before(async () => {
    gw = await createGateway({ overrides: { ...LOOPBACK_IDPS, events: { webhook: { maxAttempts: 3, backoffBaseMs: 1000, backoffMaxMs: 5000, batchSize: 2, pollMs: 50 } } } });
    receiver = new Receiver();
    await receiver.start();
  });
  after(async () => {
    await gw.services.webhooks.stop();
    await receiver.stop();
    await gw.close();
  });

  it('two gateway processes on one store deliver a tenant\'s events once each, in order (the lease)', async () => {
    const D = 'rollover.example';
    const auth = 'Bearer DEV-ONLY-admin-api-key-change-me-000000000000000';
    const gw2 = await createGateway({ store: gw.store, clock: gw.clock, overrides: { ...LOOPBACK_IDPS, events: { webhook: { batchSize: 2 } } } });
    assert.equal((await gw.http.put(`/admin/v1/domains/${D}/webhook`).set('Authorization', auth).send({ url: receiver.url })).status, 200);
    for (let i = 0; i < 25; i++) await gw2.services.audit.record({ type: 'shared.event', domain: D, actor: 'operator', data: { i } });
    const before = receiver.requests.length;
    receiver.mode = 'ok';
    const outcomes: string[] = [];
    for (let round = 0; round < 10; round++) {
      const both = await Promise.all([gw.services.webhooks.tick(), gw2.services.webhooks.tick(), gw.services.webhooks.deliverTenant(D), gw2.services.webhooks.deliverTenant(D)]);
      outcomes.push(String(both[2]), String(both[3]));
      if (both[2] === 'idle' && both[3] === 'idle') break;
    }
    const ids = receiver.requests.slice(before).flatMap((r) => eventsOf(r).map((e) => e.id));
    const expected = (await gw.services.events.read(D, undefined, 1000)).events.map((e) => e.id);
    assert.deepEqual(ids, expected, 'each event once, in order, across both workers');
    assert.ok(outcomes.includes('busy'), `one worker found the tenant leased: ${outcomes.join(',')}`);
    assert.equal((await gw.http.delete(`/admin/v1/domains/${D}/webhook`).set('Authorization', auth)).status, 204);
  });

  it('the background loop (started as main.ts does) delivers without anyone calling it, and stops', async () => {
    const D = 'b.example';
    const auth = 'Bearer DEV-ONLY-admin-api-key-change-me-000000000000000';
    assert.equal((await gw.http.put(`/admin/v1/domains/${D}/webhook`).set('Authorization', auth).send({ url: receiver.url })).status, 200);
    const arrived = receiver.nextRequest();
    gw.services.webhooks.start();
    await arrived;
    await gw.services.webhooks.stop();
    const got = receiver.requests.at(-1)!;
    assert.deepEqual(eventsOf(got).map((e) => e.type), ['audit.webhook.set']);
    // Stopped: a new event stays in the stream until a round runs.
    const count = receiver.requests.length;
    await gw.services.audit.record({ type: 'after.stop', domain: D, actor: 'operator' });
    assert.equal((await gw.http.get(`/admin/v1/domains/${D}/webhook`).set('Authorization', auth)).body.cursor, got.headers['webhook-id']!.toString().split('_')[2]);
    assert.equal(receiver.requests.length, count);
    assert.equal((await gw.http.delete(`/admin/v1/domains/${D}/webhook`).set('Authorization', auth)).status, 204);
  });

  it('gives up after maxAttempts, lists the failed delivery, goes on with the next events, and redelivers on request', async () => {
    const D = 'a.example';
    const auth = 'Bearer DEV-ONLY-admin-api-key-change-me-000000000000000';
    const set = await gw.http.put(`/admin/v1/domains/${D}/webhook`).set('Authorization', auth).send({ url: receiver.url });
    const secret = set.body.secret as string;
    // With the audit entry of the PUT, one batch of two.
    await gw.services.audit.record({ type: 'first.batch', domain: D, actor: 'operator' });
    receiver.mode = 'fail';
    receiver.failures = 3;
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'retrying');
    gw.clock.advance(1000);
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'retrying');
    gw.clock.advance(2000);
    // Third attempt fails: given up, recorded; the round goes on (nothing else pending).
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'failed');
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'idle');
    const list = await gw.http.get(`/admin/v1/domains/${D}/webhook/deliveries`).query({ status: 'failed' }).set('Authorization', auth);
    assert.equal(list.status, 200);
    const [failed] = list.body.deliveries as Array<{ id: string; eventIds: string[]; attempts: number; lastError: string }>;
    assert.ok(failed);
    assert.equal(failed.attempts, 3);
    assert.equal(failed.lastError, 'HTTP 500');
    assert.equal(failed.eventIds.length, 2);
    // Later events still go out.
    receiver.mode = 'ok';
    await gw.services.audit.record({ type: 'second.batch', domain: D, actor: 'operator' });
    assert.equal(await gw.services.webhooks.deliverTenant(D), 'delivered');
    assert.deepEqual(eventsOf(receiver.requests.at(-1)!).map((e) => e.type), ['audit.second.batch']);
    // Redeliver: same webhook-id, same events, signed; then off the list.
    const re = await gw.http.post(`/admin/v1/domains/${D}/webhook/deliveries/${failed.id}/redeliver`).set('Authorization', auth);
    assert.equal(re.status, 200, re.text);
    assert.deepEqual(re.body, { delivered: true });
    const last = receiver.requests.at(-1)!;
    assert.equal(last.headers['webhook-id'], failed.id);
    assert.ok(verified(secret, last));
    assert.deepEqual(eventsOf(last).map((e) => e.id), failed.eventIds);
    assert.equal((await gw.http.get(`/admin/v1/domains/${D}/webhook/deliveries`).set('Authorization', auth)).body.deliveries.length, 0);
    assert.equal((await gw.http.post(`/admin/v1/domains/${D}/webhook/deliveries/${failed.id}/redeliver`).set('Authorization', auth)).status, 404);
  });
});
