import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keys } from '../../../src/store/index.js';
import { createGateway, type Gateway } from '../../helpers/gateway.js';
import { freshDevice, mdmAdmin, RecordingEnder, storeKeysHolding, tenant } from './helpers.js';

/**
 * docs/spec.md §8 (M-1 … M-10) and §9 (M-11 … M-14), admin side: PUT …/mdm, …/mdm/keys, …/mdm/keys:reissue,
 * revocation, read-back, the masked list, uniqueness for restrictOtherDomains. Time moves on the
 * gateway's FakeClock.
 */
describe('MDM settings and keys (admin API)', () => {
  let gw: Gateway;
  let api: ReturnType<typeof mdmAdmin>;
  const ender = new RecordingEnder();
  /** Every key value the API handed out: none may reach a log line or the audit trail. */
  const issued: string[] = [];
  const remember = (value: unknown): string => {
    assert.equal(typeof value, 'string');
    issued.push(value as string);
    return value as string;
  };
  /** Does this code pass the check of `domain` right now (a fresh device each time)? */
  const passes = async (domain: string, code: string): Promise<boolean> =>
    (await gw.services.mdmCheck.check({ domain, presentedCode: code, deviceId: freshDevice() })).ok;
  /** Switches external MDM on for a fresh tenant; returns the issued key. */
  const enable = async (domain: string, body: Record<string, unknown> = {}): Promise<{ id: string; value: string }> => {
    const res = await api.put(domain, { mode: 'external', ...body });
    assert.equal(res.status, 200, res.text);
    remember(res.body.key.value);
    return res.body.key as { id: string; value: string };
  };
  const lastAudit = async (domain: string, type: string) => (await gw.services.audit.list(domain, 200)).find((e) => e.type === type);

  before(async () => {
    gw = await createGateway();
    api = mdmAdmin(gw);
    gw.services.mdmKeys.registerSessionEnder(ender);
    for (const t of [
      tenant('free.example', 'free'),
      tenant('builtin.example', 'standard'),
      tenant('seal.example', 'advanced'),
      tenant('custom.example', 'standard'),
      tenant('rotate.example', 'standard'),
      tenant('future.example', 'standard'),
      tenant('reissue.example', 'standard'),
      tenant('grace.example', 'standard'),
      tenant('last.example', 'standard'),
      tenant('limit.example', 'standard'),
      tenant('g1-one.example', 'standard', 'g1'),
      tenant('g1-two.example', 'advanced', 'g1'),
      tenant('stranger.example', 'standard'),
      tenant('toggle.example', 'standard'),
    ]) {
      await gw.services.tenants.save(t);
    }
  });
  after(async () => gw.close());

  it('M-1: external needs plan standard or advanced (403 plan_required); builtin and none need no plan', async () => {
    const refused = await api.put('free.example', { mode: 'external' });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error, 'plan_required');
    assert.equal((await api.get('free.example')).body.mode, 'none');
    assert.equal((await api.put('free.example', { mode: 'builtin' })).status, 200);
    assert.equal((await api.put('free.example', { mode: 'none' })).status, 200);
    assert.equal(await gw.services.mdmCheck.isMdmEnforced('free.example'), false);
  });

  it('M-1, M-2, M-3: switching to external deletes the built-in exceptions (count) and issues a key named for the MDM console', async () => {
    assert.equal((await api.put('builtin.example', { mode: 'builtin' })).status, 200);
    for (const account of ['ceo@builtin.example', 'cfo@builtin.example']) {
      const res = await api.addException('builtin.example', { account, note: 'travels' });
      assert.equal(res.status, 201, res.text);
    }
    assert.equal((await api.exceptions('builtin.example')).body.exceptions.length, 2);

    const res = await api.put('builtin.example', { mode: 'external' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.configKey, 'LineworksAuthCode');
    assert.equal(res.body.valueType, 'String');
    assert.equal(res.body.builtinExceptionsDeleted, 2);
    assert.equal(res.body.mode, 'external');
    const value = remember(res.body.key.value);
    assert.match(value, /^[A-Za-z0-9_-]{22,}$/, 'URL-safe, at least 128 bits');
    assert.ok(Buffer.from(value, 'base64url').length >= 16);
    assert.match(res.body.key.id, /^mk_/);
    assert.deepEqual((await api.exceptions('builtin.example')).body.exceptions, []);
    assert.equal((await lastAudit('builtin.example', 'mdm_builtin_exceptions.deleted'))?.data?.count, 2);
    assert.equal((await lastAudit('builtin.example', 'mdm.enabled'))?.data?.keyId, res.body.key.id);

    // builtin and external never hold at once: no built-in exception while external is on.
    const refused = await api.addException('builtin.example', { account: 'x@builtin.example' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'mdm_builtin_excluded');
    assert.equal(await gw.services.mdmCheck.isMdmEnforced('builtin.example'), true);
    assert.deepEqual(ender.except.at(-1), { domain: 'builtin.example', keep: [res.body.key.id] }, 'M-4: sessions not admitted by the new key end');
    assert.equal(await passes('builtin.example', value), true);
  });

  it('M-2: a custom value must be 16–256 printable ASCII characters without spaces', async () => {
    for (const customKey of ['short-15-chars!', 'has a space in it!!', 'ünïcödé-ünïcödé-ü', 'x'.repeat(257), 'tab\tinside-value-xx']) {
      const res = await api.put('custom.example', { mode: 'external', customKey });
      assert.equal(res.status, 400, `${customKey}: ${res.text}`);
      assert.equal(res.body.error, 'validation_failed');
      assert.ok(!res.text.includes(customKey), 'the refused value is not echoed');
    }
    const onNone = await api.put('custom.example', { mode: 'none', customKey: 'a-valid-custom-key-value' });
    assert.equal(onNone.status, 400);
    assert.equal((await api.get('custom.example')).body.mode, 'none', 'nothing changed');

    const exact16 = remember('0123456789abcdef');
    const res = await api.put('custom.example', { mode: 'external', customKey: exact16 });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.key.value, exact16);
    const long = remember(`~${'Z'.repeat(254)}!`);
    const replaced = await api.put('custom.example', { mode: 'external', customKey: long });
    assert.equal(replaced.status, 200, replaced.text);
    assert.deepEqual(replaced.body.keysReplaced, [res.body.key.id], 'a new custom value replaces the keys');
    assert.equal(await passes('custom.example', long), true);
    assert.equal(await passes('custom.example', exact16), false);
  });

  it('M-2: the store holds the value sealed (enc:v1:), never in plain text, anywhere in Redis', async () => {
    const custom = remember('sealed-custom-value-0001');
    const key = await enable('seal.example', { customKey: custom });
    const raw = await gw.store.hGet(keys.mdmKeys('seal.example'), key.id);
    assert.ok(raw, 'the key record exists');
    assert.ok(raw.includes('enc:v1:'), 'sealed with SecretBox');
    assert.ok(!raw.includes(custom), 'no plain value in the record');
    const added = await api.add('seal.example');
    remember(added.body.value);
    assert.deepEqual(await storeKeysHolding(gw, custom), [], 'the custom value is nowhere in Redis');
    assert.deepEqual(await storeKeysHolding(gw, added.body.value as string), [], 'the auto value is nowhere in Redis');
  });

  it('M-2: the admin reads a value back, and the read is audited without the value', async () => {
    const key = (await api.list('seal.example')).body.keys[0] as { id: string };
    const res = await api.reveal('seal.example', key.id);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.id, key.id);
    assert.equal(res.body.configKey, 'LineworksAuthCode');
    remember(res.body.value);
    const audit = await lastAudit('seal.example', 'mdm_key.revealed');
    assert.equal(audit?.data?.keyId, key.id);
    assert.equal(audit?.actor, 'operator');
    assert.ok(!JSON.stringify(audit).includes(res.body.value as string), 'no value in the audit event');
    const unknown = await api.reveal('seal.example', 'mk_AAAAAAAAAAAAAAAA');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, 'mdm_key_not_found');
  });

  it('M-13: the list masks every key and shows lastPresentedAt and liveSessions', async () => {
    const key = await enable('rotate.example');
    let list = await api.list('rotate.example');
    assert.equal(list.status, 200);
    assert.equal(list.body.configKey, 'LineworksAuthCode');
    assert.ok(!list.text.includes(key.value), 'no value in the list');
    const [row] = list.body.keys;
    assert.equal(row.id, key.id);
    assert.equal(row.masked, `${key.value.slice(0, 4)}…`);
    assert.equal(row.status, 'active');
    assert.equal(row.admitting, true);
    assert.equal(row.source, 'auto');
    assert.equal(row.lastPresentedAt, null);
    assert.equal(row.liveSessions, 0);
    assert.equal(row.createdAt, new Date(gw.clock.now()).toISOString());

    gw.clock.advance(5_000);
    const presentedAt = gw.clock.now();
    assert.equal(await passes('rotate.example', key.value), true);
    const mk = gw.services.mdmKeys;
    // Live sessions count grants the OpenID Provider still holds.
    for (const g of ['grant-1', 'grant-2', 'grant-3']) await gw.store.set(keys.opModel('Grant', g), JSON.stringify({ clientId: 'mobile' }));
    await mk.recordAdmission('rotate.example', key.id, { deviceId: 'd1', grantId: 'grant-1' });
    await mk.recordAdmission('rotate.example', key.id, { deviceId: 'd2', grantId: 'grant-2', expiresAt: gw.clock.now() + 60_000 });
    await mk.recordAdmission('rotate.example', key.id, { deviceId: 'd3', grantId: 'grant-3', expiresAt: gw.clock.now() + 1_000 });
    list = await api.list('rotate.example');
    assert.equal(list.body.keys[0].lastPresentedAt, new Date(presentedAt).toISOString());
    assert.equal(list.body.keys[0].liveSessions, 3);
    gw.clock.advance(2_000);
    await mk.forgetAdmission('rotate.example', 'grant-1');
    list = await api.list('rotate.example');
    assert.equal(list.body.keys[0].liveSessions, 1, 'one forgotten, one expired');
    assert.equal(await mk.admittedKeyOf('rotate.example', 'grant-2'), key.id);
  });

  it('M-12, M-13: rotation — add a second key, both admit, revoke the old one: its sessions end, it stops admitting', async () => {
    const [old] = (await api.list('rotate.example')).body.keys as Array<{ id: string }>;
    const oldValue = remember((await api.reveal('rotate.example', old!.id)).body.value);
    const added = await api.add('rotate.example');
    assert.equal(added.status, 201, added.text);
    const next = { id: added.body.id as string, value: remember(added.body.value) };
    assert.equal(added.body.configKey, 'LineworksAuthCode');
    assert.equal(await passes('rotate.example', oldValue), true);
    assert.equal(await passes('rotate.example', next.value), true);
    // A device re-admitted under the new key moves to it.
    await gw.services.mdmKeys.recordAdmission('rotate.example', next.id, { deviceId: 'd2', grantId: 'grant-2' });
    await gw.services.mdmKeys.recordAdmission('rotate.example', old!.id, { deviceId: 'd9', grantId: 'grant-9' });

    const revoked = await api.revoke('rotate.example', old!.id);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.body.revoked, old!.id);
    assert.equal(revoked.body.replacement, undefined);
    // The OpenID Provider's ender (registered by the services) and this test's recording ender each end it.
    assert.equal(revoked.body.mobileSessionsEnded, 2);
    assert.deepEqual(
      ender.ended.filter((a) => a.keyId === old!.id).map((a) => a.grantId),
      ['grant-9'],
    );
    assert.equal(await passes('rotate.example', oldValue), false);
    assert.equal(await passes('rotate.example', next.value), true);
    const list = (await api.list('rotate.example')).body.keys as Array<{ id: string; status: string; liveSessions: number; endReason: string | null }>;
    assert.deepEqual(
      list.map((k) => [k.id, k.status, k.liveSessions]),
      [
        [next.id, 'active', 1],
        [old!.id, 'revoked', 0],
      ],
    );
    const again = await api.revoke('rotate.example', old!.id);
    assert.equal(again.status, 409);
    const unknown = await api.revoke('rotate.example', 'mk_BBBBBBBBBBBBBBBB');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, 'mdm_key_not_found');
    const audit = await lastAudit('rotate.example', 'mdm_key.revoked');
    assert.equal(audit?.data?.keyId, old!.id);
  });

  it('M-14: a key effective later is listed at once but admits no one until the clock passes effectiveFrom', async () => {
    await enable('future.example');
    const from = new Date(gw.clock.now() + 3_600_000);
    const added = await api.add('future.example', { effectiveFrom: from.toISOString() });
    assert.equal(added.status, 201, added.text);
    const future = remember(added.body.value);
    assert.equal(added.body.effectiveFrom, from.toISOString());
    const row = ((await api.list('future.example')).body.keys as Array<{ id: string; status: string; admitting: boolean; effectiveFrom: string }>).find((k) => k.id === added.body.id);
    assert.deepEqual([row?.status, row?.admitting, row?.effectiveFrom], ['active', false, from.toISOString()]);

    const before = await gw.services.mdmCheck.check({ domain: 'future.example', presentedCode: future, deviceId: freshDevice() });
    assert.deepEqual(before, { ok: false, reason: 'mdm_code_mismatch', keyId: added.body.id });
    const audit = await lastAudit('future.example', 'mdm_check.failed');
    assert.equal(audit?.data?.keyId, added.body.id, 'the failure names the key tried');
    assert.equal(audit?.data?.detail, 'key_not_yet_effective');

    gw.clock.advance(3_599_000);
    assert.equal(await passes('future.example', future), false);
    gw.clock.advance(1_000);
    assert.equal(await passes('future.example', future), true);
    assert.equal((await api.add('future.example', { effectiveFrom: 'tomorrow' })).status, 400);
  });

  it('M-6: reissue without grace — the old code fails at once, the new one passes', async () => {
    const old = await enable('reissue.example');
    const res = await api.reissue('reissue.example');
    assert.equal(res.status, 201, res.text);
    const next = remember(res.body.value);
    assert.equal(res.body.configKey, 'LineworksAuthCode');
    assert.equal(res.body.valueType, 'String');
    assert.deepEqual(res.body.replaced, [old.id]);
    assert.equal(res.body.graceUntil, null);
    assert.notEqual(next, old.value);
    assert.equal(await passes('reissue.example', old.value), false);
    assert.equal(await passes('reissue.example', next), true);
    const failed = await lastAudit('reissue.example', 'mdm_check.failed');
    assert.deepEqual([failed?.data?.keyId, failed?.data?.detail], [old.id, 'key_revoked']);
    assert.deepEqual(ender.except.at(-1), { domain: 'reissue.example', keep: [res.body.id] });
  });

  it('M-6: reissue with graceSeconds — the old code passes until the grace ends on the injected clock, then fails', async () => {
    const old = await enable('grace.example');
    const res = await api.reissue('grace.example', { graceSeconds: 600 });
    assert.equal(res.status, 201, res.text);
    const next = remember(res.body.value);
    assert.equal(res.body.graceUntil, new Date(gw.clock.now() + 600_000).toISOString());
    assert.deepEqual(ender.except.at(-1), { domain: 'grace.example', keep: [res.body.id, old.id] });
    assert.equal(await passes('grace.example', old.value), true);
    assert.equal(await passes('grace.example', next), true);
    type Row = { id: string; status: string; graceUntil: string | null; endReason: string | null };
    let row = ((await api.list('grace.example')).body.keys as Row[]).find((k) => k.id === old.id);
    assert.deepEqual([row?.status, row?.graceUntil], ['active', res.body.graceUntil]);

    gw.clock.advance(599_999);
    assert.equal(await passes('grace.example', old.value), true);
    gw.clock.advance(1);
    assert.equal(await passes('grace.example', old.value), false);
    assert.equal(await passes('grace.example', next), true);
    const failed = await lastAudit('grace.example', 'mdm_check.failed');
    assert.deepEqual([failed?.data?.keyId, failed?.data?.detail], [old.id, 'key_grace_ended']);
    row = ((await api.list('grace.example')).body.keys as Row[]).find((k) => k.id === old.id);
    assert.deepEqual([row?.status, row?.endReason], ['revoked', 'grace_ended']);
    assert.equal((await api.reissue('grace.example', { graceSeconds: -1 })).status, 400);
  });

  it('M-12: revoking the last active key is refused (mdm_last_key) unless a replacement is named; `new` issues one and warns that devices are blocked', async () => {
    const only = await enable('last.example');
    const refused = await api.revoke('last.example', only.id);
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error, 'mdm_last_key');
    assert.equal(await passes('last.example', only.value), true, 'nothing changed');
    const res = await api.revoke('last.example', only.id, 'new');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.revoked, only.id);
    assert.match(res.body.replacement.id, /^mk_/);
    const replacement = remember(res.body.replacement.value);
    assert.equal(res.body.replacement.configKey, 'LineworksAuthCode');
    assert.match(res.body.warning, /blocked/);
    assert.equal(await passes('last.example', only.value), false);
    assert.equal(await passes('last.example', replacement), true);
    const active = ((await api.list('last.example')).body.keys as Array<{ status: string }>).filter((k) => k.status === 'active');
    assert.equal(active.length, 1);
    assert.equal((await lastAudit('last.example', 'mdm_key.revoked'))?.data?.replacementKeyId, res.body.replacement.id);
  });

  it('M-11: at most 5 active keys (409 mdm_key_limit); a grace reissue that would exceed 5 is refused too', async () => {
    await enable('limit.example');
    for (let i = 0; i < 4; i++) {
      const res = await api.add('limit.example');
      assert.equal(res.status, 201, res.text);
      remember(res.body.value);
    }
    const sixth = await api.add('limit.example', { value: 'sixth-key-would-be-too-many' });
    assert.equal(sixth.status, 409);
    assert.equal(sixth.body.error, 'mdm_key_limit');
    const graced = await api.reissue('limit.example', { graceSeconds: 60 });
    assert.equal(graced.status, 409);
    assert.equal(graced.body.error, 'mdm_key_limit');
    const plain = await api.reissue('limit.example');
    assert.equal(plain.status, 201);
    remember(plain.body.value);
    assert.equal(plain.body.replaced.length, 5);
    assert.equal(((await api.list('limit.example')).body.keys as Array<{ status: string }>).filter((k) => k.status === 'active').length, 1);
    const dup = await api.add('limit.example', { value: plain.body.value as string });
    assert.equal(dup.status, 409, 'an own active value is not added twice');
  });

  it('M-7, M-8: tenants of a group may share a custom value; restrictOtherDomains then needs unique keys, and later clashes are refused', async () => {
    const shared = remember('group-shared-value-g1-0001');
    const one = await enable('g1-one.example', { customKey: shared });
    await enable('g1-two.example', { customKey: shared });
    assert.equal(await passes('g1-one.example', shared), true);
    assert.equal(await passes('g1-two.example', shared), true);

    const refused = await api.put('g1-one.example', { mode: 'external', restrictOtherDomains: true });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error, 'mdm_key_not_unique');
    assert.equal((await api.get('g1-one.example')).body.restrictOtherDomains, false, 'nothing changed');
    const refusedNew = await api.put('g1-one.example', { mode: 'external', restrictOtherDomains: true, customKey: shared });
    assert.equal(refusedNew.status, 409, 'a restricting tenant cannot take a value another tenant holds');
    assert.equal(await passes('g1-one.example', shared), true, 'the refused change left the key in place');

    // The sibling moves to its own value: g1-one's key is now unique, and the restriction is allowed.
    const moved = await api.reissue('g1-two.example');
    assert.equal(moved.status, 201);
    remember(moved.body.value);
    const allowed = await api.put('g1-one.example', { mode: 'external', restrictOtherDomains: true });
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(allowed.body.restrictOtherDomains, true);
    assert.equal(allowed.body.key, undefined, 'no new key when only the option changes');
    assert.equal(await passes('g1-one.example', one.value), true);

    // Later attempts by any tenant (same group or not) to set the restricted value are refused.
    for (const attempt of [
      () => api.add('g1-two.example', { value: shared }),
      () => api.reissue('g1-two.example', { value: shared }),
      () => api.put('stranger.example', { mode: 'external', customKey: shared }),
    ]) {
      const res = await attempt();
      assert.equal(res.status, 409, res.text);
      assert.equal(res.body.error, 'mdm_key_not_unique');
    }
    assert.equal((await api.get('stranger.example')).body.mode, 'none', 'the refused switch changed nothing');

    // The restricting tenant cannot take a custom value another tenant holds either.
    const strangerValue = remember('stranger-own-value-0001');
    await enable('stranger.example', { customKey: strangerValue });
    const clash = await api.add('g1-one.example', { value: strangerValue });
    assert.equal(clash.status, 409);
    assert.equal(clash.body.error, 'mdm_key_not_unique');
    // Unrestricted tenants outside the group may share a value (refusing would reveal it is in use).
    const reuse = await api.add('g1-two.example', { value: strangerValue });
    assert.equal(reuse.status, 201, reuse.text);
  });

  it('M-9: disabling stops the checks at once and keeps the keys inactive; re-enabling issues a new key unless one is given', async () => {
    const first = await enable('toggle.example');
    assert.equal(await passes('toggle.example', first.value), true);
    const exceptBefore = ender.except.length;
    const off = await api.put('toggle.example', { mode: 'none' });
    assert.equal(off.status, 200, off.text);
    assert.equal(off.body.keysDeactivated, 1);
    assert.equal(off.body.key, undefined);
    assert.equal(ender.except.length, exceptBefore, 'existing mobile sessions stay');
    assert.equal(await gw.services.mdmCheck.isMdmEnforced('toggle.example'), false);
    assert.deepEqual(await gw.services.mdmCheck.check({ domain: 'toggle.example' }), { ok: true, enforced: false, keyId: null, restrictedBy: null, endOnDevice: [], onDevice: null });
    const listed = (await api.list('toggle.example')).body.keys as Array<{ id: string; status: string; admitting: boolean }>;
    assert.deepEqual(
      listed.map((k) => [k.id, k.status, k.admitting]),
      [[first.id, 'inactive', false]],
    );
    assert.equal((await api.reveal('toggle.example', first.id)).status, 200, 'inactive keys stay readable for audit');
    const add = await api.add('toggle.example');
    assert.equal(add.status, 409);
    assert.equal(add.body.error, 'mdm_external_required');
    assert.equal((await api.reissue('toggle.example')).body.error, 'mdm_external_required');
    assert.equal((await lastAudit('toggle.example', 'mdm.disabled'))?.data?.keysDeactivated, 1);

    const again = await enable('toggle.example');
    assert.notEqual(again.id, first.id);
    assert.notEqual(again.value, first.value);
    assert.equal(await passes('toggle.example', first.value), false);
    assert.equal((await lastAudit('toggle.example', 'mdm_check.failed'))?.data?.detail, 'key_inactive');
    assert.equal(await passes('toggle.example', again.value), true);

    await api.put('toggle.example', { mode: 'none' });
    const given = remember('given-on-re-enable-0001');
    const withCustom = await enable('toggle.example', { customKey: given });
    assert.equal(withCustom.value, given);
    assert.equal(await passes('toggle.example', given), true);
    const restrictOnNone = await api.put('toggle.example', { mode: 'none', restrictOtherDomains: true });
    assert.equal(restrictOnNone.status, 400);
  });

  it('never writes a key value to a log line or the audit trail', async () => {
    assert.ok(issued.length >= 20, `checked ${issued.length} values`);
    const logs = gw.logText();
    assert.ok(logs.includes('mdm_key.revealed'), 'the audit events are logged');
    for (const value of issued) assert.ok(!logs.includes(value), `a key value reached the logs: ${value.slice(0, 4)}…`);
    for (const domain of await gw.services.tenants.listDomains()) {
      const trail = JSON.stringify(await gw.services.audit.list(domain, 1000));
      for (const value of issued) assert.ok(!trail.includes(value), `a key value reached ${domain}'s audit trail`);
    }
  });
});
