import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MdmCheck } from '../../../src/mdm/mdm-check.js';
import { createGateway, type Gateway } from '../../helpers/gateway.js';
import { freshDevice, mdmAdmin, tenant } from './helpers.js';

/**
 * The MDM check (M-5, M-7 (a), M-10, M-11): the service the OpenID Provider calls on every mobile token
 * request, and `POST /mobile/mdm/check`, which the app calls before it opens the browser.
 */
describe('MDM check (service and POST /mobile/mdm/check)', () => {
  let gw: Gateway;
  let api: ReturnType<typeof mdmAdmin>;
  const issued: string[] = [];
  let mdmKey: { id: string; value: string };
  let restrictedKey: { id: string; value: string };

  const mobileCheck = (body: Record<string, unknown>, headers: { code?: string; device?: string } = {}) => {
    let req = gw.http.post('/mobile/mdm/check');
    if (headers.code !== undefined) req = req.set('X-MDM-Auth-Code', headers.code);
    if (headers.device !== undefined) req = req.set('X-Device-Id', headers.device);
    return req.send(body);
  };
  const failures = async (domain: string) => (await gw.services.audit.list(domain, 500)).filter((e) => e.type === 'mdm_check.failed');

  before(async () => {
    gw = await createGateway();
    api = mdmAdmin(gw);
    for (const t of [
      tenant('mdm.example', 'standard'),
      tenant('plain.example', 'free'),
      tenant('hq.example', 'advanced', 'acme'),
      tenant('branch.example', 'standard', 'acme'),
      tenant('rival.example', 'standard', 'other-group'),
    ]) {
      await gw.services.tenants.save(t);
    }
    const on = await api.put('mdm.example', { mode: 'external' });
    assert.equal(on.status, 200, on.text);
    mdmKey = on.body.key;
    const restricted = await api.put('hq.example', { mode: 'external', restrictOtherDomains: true });
    assert.equal(restricted.status, 200, restricted.text);
    restrictedKey = restricted.body.key;
    issued.push(mdmKey.value, restrictedKey.value);
  });
  after(async () => gw.close());

  it('answers 200 {"ok":true} for a tenant without 3rd-party MDM sync, with or without headers, by domain or account', async () => {
    for (const body of [{ domain: 'plain.example' }, { account: 'someone@plain.example' }, { domain: 'PLAIN.example' }]) {
      const res = await mobileCheck(body);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { ok: true });
    }
    assert.equal((await mobileCheck({ domain: 'plain.example' }, { code: 'some-unrelated-value', device: 'd' })).status, 200);
    assert.equal(await gw.services.mdmCheck.isMdmEnforced('plain.example'), false);
  });

  it('refuses a malformed body (400) and an unknown tenant (404)', async () => {
    assert.equal((await mobileCheck({})).body.error, 'validation_failed');
    assert.equal((await mobileCheck({ domain: 'mdm.example', account: 'a@mdm.example' })).status, 400);
    const unknown = await mobileCheck({ domain: 'nobody.example' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, 'tenant_not_found');
  });

  it('M-5: with MDM sync on, a right code and a device id pass; missing → 403 mdm_code_required; wrong → 403 mdm_code_mismatch', async () => {
    const ok = await mobileCheck({ account: 'user@mdm.example' }, { code: mdmKey.value, device: freshDevice() });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { ok: true });

    const noCode = await mobileCheck({ domain: 'mdm.example' }, { device: freshDevice() });
    assert.deepEqual([noCode.status, noCode.body.error], [403, 'mdm_code_required']);
    const noDevice = await mobileCheck({ domain: 'mdm.example' }, { code: mdmKey.value });
    assert.deepEqual([noDevice.status, noDevice.body.error], [403, 'mdm_code_required']);
    const wrong = await mobileCheck({ domain: 'mdm.example' }, { code: `${mdmKey.value}x`, device: freshDevice() });
    assert.deepEqual([wrong.status, wrong.body.error], [403, 'mdm_code_mismatch']);
    const otherTenantsKey = await mobileCheck({ domain: 'mdm.example' }, { code: restrictedKey.value, device: freshDevice() });
    assert.deepEqual([otherTenantsKey.status, otherTenantsKey.body.error], [403, 'mdm_code_mismatch']);
    assert.ok(!wrong.text.includes(mdmKey.value), 'the answer never echoes a code');

    const trail = await failures('mdm.example');
    assert.deepEqual(
      trail.slice(0, 4).map((e) => [e.reason, e.data?.keyId, e.data?.detail]),
      [
        ['mdm_code_mismatch', null, 'no_key_matched'],
        ['mdm_code_mismatch', null, 'no_key_matched'],
        ['mdm_code_required', null, 'device_id_missing'],
        ['mdm_code_required', null, 'code_missing'],
      ],
    );
    assert.ok(trail[0]?.ip, 'the client IP is audited');
    assert.ok(trail[0]?.requestId, 'the request id is audited');
  });

  it('gives the OP the key that admitted the request, and records lastPresentedAt', async () => {
    const result = await gw.services.mdmCheck.check({ domain: 'mdm.example', presentedCode: mdmKey.value, deviceId: freshDevice() });
    assert.deepEqual(result, { ok: true, enforced: true, keyId: mdmKey.id, restrictedBy: null, endOnDevice: [], onDevice: null });
    const row = ((await api.list('mdm.example')).body.keys as Array<{ id: string; lastPresentedAt: string | null }>).find((k) => k.id === mdmKey.id);
    assert.ok(row?.lastPresentedAt, 'lastPresentedAt is set');
    assert.equal(await gw.services.mdmCheck.isMdmEnforced('mdm.example'), true);
  });

  it('M-10: failures are limited per device (429 rate_limited with Retry-After, even for the right code) until the window passes', async () => {
    const device = freshDevice();
    for (let i = 0; i < 10; i++) {
      const res = await mobileCheck({ domain: 'mdm.example' }, { code: `wrong-code-attempt-${i}`, device });
      assert.equal(res.status, 403, `attempt ${i}`);
    }
    const limited = await mobileCheck({ domain: 'mdm.example' }, { code: mdmKey.value, device });
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error, 'rate_limited');
    assert.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After is set');
    assert.equal((await failures('mdm.example'))[0]?.reason, 'rate_limited');
    assert.equal((await mobileCheck({ domain: 'mdm.example' }, { code: mdmKey.value, device: freshDevice() })).status, 200, 'another device is not limited');

    gw.clock.advance(5 * 60_000);
    assert.equal((await mobileCheck({ domain: 'mdm.example' }, { code: mdmKey.value, device })).status, 200, 'a new window on the injected clock');
  });

  it('M-10: failures are limited per client IP, whatever device ids are sent', async () => {
    const s = gw.services;
    const check = new MdmCheck({ store: s.store, clock: s.clock, tenants: s.tenants, mdmKeys: s.mdmKeys, deviceSessions: s.deviceSessions, audit: s.audit, limits: { perIp: 3 } });
    for (let i = 0; i < 3; i++) {
      const r = await check.check({ domain: 'mdm.example', presentedCode: 'not-the-key-value', deviceId: freshDevice(), clientIp: '203.0.113.7' });
      assert.equal(r.ok ? 'ok' : r.reason, 'mdm_code_mismatch');
    }
    const limited = await check.check({ domain: 'mdm.example', presentedCode: mdmKey.value, deviceId: freshDevice(), clientIp: '203.0.113.7' });
    assert.equal(limited.ok ? 'ok' : limited.reason, 'rate_limited');
    const elsewhere = await check.check({ domain: 'mdm.example', presentedCode: mdmKey.value, deviceId: freshDevice(), clientIp: '198.51.100.1' });
    assert.equal(elsewhere.ok, true);
  });

  it('M-7 (a): a device holding a restricting tenant\'s key is refused for accounts outside its group', async () => {
    const s = gw.services.mdmCheck;
    // The restricting tenant itself, and a tenant of its group without MDM sync: allowed, with the restriction named.
    assert.deepEqual(await s.check({ domain: 'hq.example', presentedCode: restrictedKey.value, deviceId: freshDevice() }), {
      ok: true,
      enforced: true,
      keyId: restrictedKey.id,
      restrictedBy: { domain: 'hq.example', group: 'acme' },
      endOnDevice: [],
      onDevice: null,
    });
    assert.deepEqual(await s.check({ domain: 'branch.example', presentedCode: restrictedKey.value, deviceId: freshDevice() }), {
      ok: true,
      enforced: false,
      keyId: null,
      restrictedBy: { domain: 'hq.example', group: 'acme' },
      endOnDevice: [],
      onDevice: null,
    });
    // Outside the group: refused, through the service and the route.
    const refused = await s.check({ domain: 'rival.example', presentedCode: restrictedKey.value, deviceId: freshDevice() });
    assert.deepEqual(refused, { ok: false, reason: 'mdm_other_domain_restricted', keyId: null });
    const res = await mobileCheck({ account: 'someone@plain.example' }, { code: restrictedKey.value, device: freshDevice() });
    assert.deepEqual([res.status, res.body.error], [403, 'mdm_other_domain_restricted']);
    assert.equal((await failures('plain.example'))[0]?.reason, 'mdm_other_domain_restricted');
    const holderTrail = (await gw.services.audit.list('hq.example', 50)).filter((e) => e.type === 'mdm_check.other_domain_refused');
    assert.equal(holderTrail.length, 2, "the restricting tenant's trail shows the refusals");

    // Once the restriction is lifted, the same device may sign in elsewhere again.
    assert.equal((await api.put('hq.example', { mode: 'external', restrictOtherDomains: false })).status, 200);
    assert.equal((await s.check({ domain: 'rival.example', presentedCode: restrictedKey.value, deviceId: freshDevice() })).ok, true);
  });

  it('M-9: switching MDM sync off stops the checks at once', async () => {
    assert.equal((await api.put('mdm.example', { mode: 'none' })).status, 200);
    const res = await mobileCheck({ domain: 'mdm.example' });
    assert.equal(res.status, 200, res.text);
    assert.equal(await gw.services.mdmCheck.isMdmEnforced('mdm.example'), false);
  });

  it('never writes a code to a log line or the audit trail', async () => {
    const logs = gw.logText();
    assert.ok(logs.includes('mdm_check.failed'), 'failures are logged');
    const trails = JSON.stringify(await Promise.all((await gw.services.tenants.listDomains()).map((d) => gw.services.audit.list(d, 1000))));
    for (const value of issued) {
      assert.ok(!logs.includes(value), `a key value reached the logs: ${value.slice(0, 4)}…`);
      assert.ok(!trails.includes(value), 'a key value reached an audit trail');
    }
    assert.ok(!logs.includes('wrong-code-attempt-'), 'presented codes are not logged either');
  });
});
