import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keys } from '../../../src/store/index.js';
import { createGateway, type Gateway } from '../../helpers/gateway.js';
import { freshDevice, mdmAdmin, tenant } from './helpers.js';

/**
 * What the console's third-party MDM screen needs from the admin API (docs/spec.md §8, §9, §11): the plan
 * gate in GET …/mdm, the precautions preview (POST …/mdm/preview), deleting a built-in MDM exception,
 * revoking the last admitting key only with a named replacement, lastPresentedAt kept to the minute,
 * live sessions counting only grants the OpenID Provider still holds, and every change refused (403) to
 * an admin who is not a super admin. Real Redis, real HTTP (supertest), the gateway's FakeClock.
 */
describe('MDM admin API for the console screen', () => {
  let gw: Gateway;
  let api: ReturnType<typeof mdmAdmin>;
  const COOKIE = '__Host-idpb_console';

  /** A mobile (or web) OP grant of the tenant, as the OpenID Provider's store adapter writes it. */
  const grant = async (domain: string, grantId: string, clientId = 'mobile'): Promise<void> => {
    await gw.store.set(keys.opModel('Grant', grantId), JSON.stringify({ clientId, accountId: `${domain}:m-x` }));
    await gw.store.sAdd(keys.opTenantGrants(domain), grantId);
  };
  const grantExists = async (grantId: string): Promise<boolean> => (await gw.store.get(keys.opModel('Grant', grantId))) !== null;
  const enable = async (domain: string): Promise<{ id: string; value: string }> => {
    const res = await api.put(domain, { mode: 'external' });
    assert.equal(res.status, 200, res.text);
    return res.body.key as { id: string; value: string };
  };
  const passes = async (domain: string, code: string): Promise<boolean> => (await gw.services.mdmCheck.check({ domain, presentedCode: code, deviceId: freshDevice() })).ok;

  /** A console session of a member (as /console/auth/complete creates it): cookie and CSRF token. */
  async function consoleOf(domain: string, memberId: string): Promise<{ cookie: string; csrf: string }> {
    const { cookieValue, session } = await gw.services.consoleSessions.create({ domain, memberId, method: 'password' });
    return { cookie: `${COOKIE}=${cookieValue}`, csrf: session.csrfToken };
  }
  const asConsole = (who: { cookie: string; csrf: string }, method: 'get' | 'post' | 'put' | 'delete', path: string, body?: unknown) => {
    const req = gw.http[method](`/admin/v1${path}`).set('Cookie', who.cookie).set('Sec-Fetch-Site', 'same-origin');
    if (method !== 'get') req.set('X-CSRF-Token', who.csrf);
    return body === undefined ? req : req.send(body as object);
  };

  before(async () => {
    gw = await createGateway();
    api = mdmAdmin(gw);
    for (const t of [
      tenant('gate-free.example', 'free'),
      tenant('gate-std.example', 'standard'),
      tenant('pre.example', 'standard'),
      tenant('exc.example', 'advanced'),
      tenant('succ.example', 'standard'),
      tenant('seen.example', 'standard'),
      tenant('roles.example', 'standard'),
    ]) {
      await gw.services.tenants.save(t);
    }
    const m = gw.services.members;
    await m.save('roles.example', { id: 'm-super', account: 'super@roles.example', name: 'Super', role: 'super_admin', status: 'in_use' });
    await m.save('roles.example', { id: 'm-admin', account: 'admin@roles.example', name: 'Admin', role: 'admin', status: 'in_use' });
  });
  after(async () => gw.close());

  it('GET …/mdm: below Standard 3rd-party sync is unavailable with the reason; the rules for values and keys come along', async () => {
    const free = await api.get('gate-free.example');
    assert.equal(free.status, 200);
    assert.deepEqual([free.body.plan, free.body.available, free.body.unavailableReason], ['free', false, 'plan_required']);
    const std = await api.get('gate-std.example');
    assert.deepEqual([std.body.plan, std.body.available, std.body.unavailableReason, std.body.builtinExceptions], ['standard', true, null, 0]);
    assert.deepEqual(std.body.rules.customValue.minLength, 16);
    assert.deepEqual(std.body.rules.customValue.maxLength, 256);
    assert.ok(new RegExp(std.body.rules.customValue.pattern).test('0123456789abcdef'));
    assert.ok(!new RegExp(std.body.rules.customValue.pattern).test('has a space 0123456'));
    assert.equal(std.body.rules.maxActiveKeys, 5);
    assert.equal(std.body.configKey, 'LineworksAuthCode');
    assert.equal(std.body.valueType, 'String');
  });

  it('POST …/mdm/preview: the counts of what switching on would do (mobile sessions ending, built-in exceptions deleted), changing nothing; the PUT then does exactly that', async () => {
    assert.equal((await api.put('pre.example', { mode: 'builtin' })).status, 200);
    for (const account of ['a@pre.example', 'b@pre.example']) assert.equal((await api.addException('pre.example', { account })).status, 201);
    for (const g of ['pre-m1', 'pre-m2', 'pre-m3']) await grant('pre.example', g);
    await grant('pre.example', 'pre-web', 'board');

    const preview = await api.preview('pre.example', { mode: 'external' });
    assert.equal(preview.status, 200, preview.text);
    assert.equal(preview.body.refusal, null);
    assert.deepEqual(preview.body.problems, []);
    assert.equal(preview.body.previousMode, 'builtin');
    assert.equal(preview.body.issuesKey, true);
    assert.equal(preview.body.builtinExceptionsDeleted, 2);
    assert.equal(preview.body.mobileSessionsEnded, 3, 'mobile grants only; the web grant is not MDM business');
    assert.ok(preview.body.warnings.length >= 2);
    // Nothing changed.
    assert.equal((await api.get('pre.example')).body.mode, 'builtin');
    assert.equal((await api.exceptions('pre.example')).body.exceptions.length, 2);
    assert.equal(await grantExists('pre-m1'), true);

    const refused = await api.preview('gate-free.example', { mode: 'external' });
    assert.equal(refused.status, 200);
    assert.equal(refused.body.refusal, 'plan_required');
    const bad = await api.preview('pre.example', { mode: 'external', customKey: 'too short' });
    assert.equal(bad.status, 400, 'the body schema refuses a malformed custom value, as the PUT does');

    const put = await api.put('pre.example', { mode: 'external' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.builtinExceptionsDeleted, 2);
    assert.equal(put.body.mobileSessionsEnded, 3);
    assert.equal(await grantExists('pre-m1'), false);
    assert.equal(await grantExists('pre-web'), true);

    const off = await api.preview('pre.example', { mode: 'none' });
    assert.deepEqual([off.body.issuesKey, off.body.keysDeactivated, off.body.mobileSessionsEnded, off.body.builtinExceptionsDeleted], [false, 1, 0, 0]);
    const mutual = await api.preview('pre.example', { mode: 'builtin', restrictOtherDomains: true });
    assert.deepEqual(
      mutual.body.problems.map((p: { path: string }) => p.path),
      ['restrictOtherDomains'],
    );
  });

  it('DELETE …/mdm/builtin-exceptions/{id}: deletes one (audited); an unknown id is 404 mdm_builtin_exception_not_found; none can be added while sync is on (mdm_builtin_excluded)', async () => {
    assert.equal((await api.put('exc.example', { mode: 'builtin' })).status, 200);
    const one = await api.addException('exc.example', { account: 'one@exc.example', note: 'travels' });
    const two = await api.addException('exc.example', { account: 'two@exc.example' });
    const del = await api.deleteException('exc.example', one.body.id);
    assert.equal(del.status, 204, del.text);
    assert.deepEqual(
      (await api.exceptions('exc.example')).body.exceptions.map((e: { id: string }) => e.id),
      [two.body.id],
    );
    const again = await api.deleteException('exc.example', one.body.id);
    assert.equal(again.status, 404);
    assert.equal(again.body.error, 'mdm_builtin_exception_not_found');
    assert.equal((await api.deleteException('exc.example', 'not-an-id')).status, 404);
    const trail = await gw.services.audit.list('exc.example', 20);
    assert.equal(trail.find((e) => e.type === 'mdm_builtin_exception.deleted')?.data?.id, one.body.id);

    await enable('exc.example');
    const refused = await api.addException('exc.example', { account: 'three@exc.example' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'mdm_builtin_excluded');
  });

  it('revoking the only admitting key while a later key is scheduled: refused (mdm_last_key) unless that key is named, which then admits from now on', async () => {
    const first = await enable('succ.example');
    const later = new Date(gw.clock.now() + 7 * 86_400_000).toISOString();
    const added = await api.add('succ.example', { effectiveFrom: later });
    assert.equal(added.status, 201, added.text);
    assert.equal(await passes('succ.example', added.body.value), false, 'scheduled: not yet');

    const refused = await api.revoke('succ.example', first.id);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'mdm_last_key');
    assert.match(refused.body.message, /replacement/);
    const bad = await api.revoke('succ.example', first.id, 'mk_AAAAAAAAAAAAAAAA');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].path, 'replacement');
    assert.equal((await api.revoke('succ.example', first.id, first.id)).status, 400, 'the key itself is no replacement');

    const res = await api.revoke('succ.example', first.id, added.body.id);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.takenOverBy, { id: added.body.id, effectiveFrom: new Date(gw.clock.now()).toISOString() });
    assert.equal(res.body.replacement, undefined);
    assert.equal(await passes('succ.example', first.value), false);
    assert.equal(await passes('succ.example', added.body.value), true, 'brought forward');
    const audit = (await gw.services.audit.list('succ.example', 20)).find((e) => e.type === 'mdm_key.revoked');
    assert.deepEqual([audit?.data?.replacementKeyId, audit?.data?.replacement], [added.body.id, 'existing']);
  });

  it('lastPresentedAt is written at most once a minute per key; live sessions count only grants the OpenID Provider still holds', async () => {
    const key = await enable('seen.example');
    const t0 = gw.clock.now();
    assert.equal(await passes('seen.example', key.value), true);
    gw.clock.advance(30_000);
    assert.equal(await passes('seen.example', key.value), true);
    const row = async () => (await api.list('seen.example')).body.keys[0] as { lastPresentedAt: string | null; liveSessions: number; createdAt: string; effectiveFrom: string };
    assert.equal((await row()).lastPresentedAt, new Date(t0).toISOString(), 'not rewritten within the minute');
    gw.clock.advance(30_000);
    assert.equal(await passes('seen.example', key.value), true);
    assert.equal((await row()).lastPresentedAt, new Date(t0 + 60_000).toISOString());

    for (const g of ['seen-1', 'seen-2']) {
      await grant('seen.example', g);
      await gw.services.mdmKeys.recordAdmission('seen.example', key.id, { deviceId: `dev-${g}`, grantId: g });
    }
    assert.equal((await row()).liveSessions, 2);
    // The grant ends elsewhere (a sign-out, the SSO switch): the key's count follows.
    await gw.services.opRevocation.revokeGrant('seen-1');
    assert.equal((await row()).liveSessions, 1);
    assert.equal((await row()).createdAt, new Date(t0).toISOString());
    assert.equal((await row()).effectiveFrom, new Date(t0).toISOString());
  });

  it('an admin who is not a super admin reads the MDM screen but every change is refused 403; a super admin may change it', async () => {
    const admin = await consoleOf('roles.example', 'm-admin');
    const superAdmin = await consoleOf('roles.example', 'm-super');
    const base = '/domains/roles.example/mdm';
    for (const path of [base, `${base}/keys`, `${base}/builtin-exceptions`]) assert.equal((await asConsole(admin, 'get', path)).status, 200, path);
    assert.equal((await asConsole(admin, 'post', `${base}/preview`, { mode: 'external' })).status, 200, 'the preview only reads');

    const put = await asConsole(admin, 'put', base, { mode: 'external' });
    assert.equal(put.status, 403);
    assert.equal(put.body.error, 'forbidden');
    assert.equal((await api.get('roles.example')).body.mode, 'none');
    assert.equal((await asConsole(admin, 'post', `${base}/builtin-exceptions`, { account: 'x@roles.example' })).status, 403);

    const on = await asConsole(superAdmin, 'put', base, { mode: 'external' });
    assert.equal(on.status, 200, on.text);
    const keyId = on.body.key.id as string;
    for (const [method, path, body] of [
      ['post', `${base}/keys`, {}],
      ['post', `${base}/keys:reissue`, {}],
      ['delete', `${base}/keys/${keyId}?replacement=new`, undefined],
      ['get', `${base}/keys/${keyId}/value`, undefined],
      ['delete', `${base}/builtin-exceptions/mx_AAAAAAAAAAAA`, undefined],
      ['put', base, { mode: 'none' }],
    ] as const) {
      const res = await asConsole(admin, method, path, body);
      assert.equal(res.status, 403, `${method} ${path}: ${res.status}`);
      assert.equal(res.body.error, 'forbidden');
    }
    assert.equal(await passes('roles.example', on.body.key.value), true, 'nothing changed');
    const added = await asConsole(superAdmin, 'post', `${base}/keys`, {});
    assert.equal(added.status, 201, added.text);
    assert.equal((await asConsole(superAdmin, 'delete', `${base}/keys/${keyId}`)).status, 200, 'another key admits: no replacement needed');
  });
});
