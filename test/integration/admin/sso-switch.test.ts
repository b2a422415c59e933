import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { SsoSwitch, type Effects } from '../../../src/admin/sso-switch.js';
import type { Member } from '../../../src/domain/member.js';
import type { NewMember } from '../../../src/domain/members.js';
import { newBrowserBinding } from '../../../src/sso/transactions.js';
import { digestForKey, keys, RedisStore, type KeyValueStore } from '../../../src/store/index.js';
import {
  SERVICE_ORIGIN,
  beginLogin,
  createGateway,
  errorCodeOf,
  lastAuditReason,
  postAcs,
  recordLoginBinding,
  sessionCookieOf,
  validResponse,
  type Gateway,
  type StartedLogin,
  OPERATOR_AUTH as OPERATOR,
} from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { redisUrl } from '../../helpers/redis.js';

/**
 * PUT /admin/v1/domains/{d}/sso: the side effects of switching SSO on (S-21) and off (S-22) and their
 * counts, idempotency, what SSO on refuses (S-23), allows (S-24) and requires (S-25), validation of the
 * settings, two switches at once, and — the key property — a switch interrupted by a store fault that
 * a later call finishes, ending in exactly the state and counts of an uninterrupted switch.
 */

const PASSWORD = 'Correct-horse-42';
const HOUR = 3600_000;

function admin(gw: Gateway) {
  const p = (path: string): string => `/admin/v1${path}`;
  return {
    get: (path: string) => gw.http.get(p(path)).set('Authorization', OPERATOR),
    post: (path: string, body: object = {}) => gw.http.post(p(path)).set('Authorization', OPERATOR).send(body),
    put: (path: string, body: object) => gw.http.put(p(path)).set('Authorization', OPERATOR).send(body),
    patch: (path: string, body: object) => gw.http.patch(p(path)).set('Authorization', OPERATOR).send(body),
  };
}

/** A complete SAML configuration (idps.a) that enables SSO. */
const samlOn = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  enabled: true,
  type: 'saml',
  userKey: 'externalKey',
  webLoginUrl: idps.a.ssoUrl,
  saml: { idpEntityId: idps.a.entityId, idpCertificates: [idps.a.certificate] },
  ...extra,
});

const noEffects = (over: Partial<Effects> = {}): Effects => ({
  pendingActivated: 0,
  sessionsEnded: 0,
  invitationsInvalidated: 0,
  unapprovedDeleted: 0,
  appPasswordsDeleted: 0,
  tokensRevoked: 0,
  passwordsDeleted: 0,
  ...over,
});

const cookieOf = (sessionId: string): string => `idpb_session=${sessionId}`;

async function sessionStatus(gw: Gateway, cookie: string): Promise<number> {
  return (await gw.http.get('/session').set('Cookie', cookie)).status;
}

async function inChunks<T>(items: readonly T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

/** The switch's own bookkeeping keys: all gone once a switch is complete. */
async function switchKeysLeft(store: KeyValueStore, domain: string): Promise<string[]> {
  const left: string[] = [];
  for (const key of [keys.ssoSwitchJob(domain), keys.ssoSwitchLock(domain), keys.ssoSwitchCounts(domain)]) {
    if ((await store.pttl(key)) !== -2) left.push(key);
  }
  return left;
}

describe('switching SSO on and off through the admin API (S-21 … S-25)', () => {
  const D = 'switch.example';
  let gw: Gateway;
  let api: ReturnType<typeof admin>;
  const id: Record<string, string> = {};
  const account = (k: string): string => `${k}@${D}`;
  /** Cookies of the web sessions created before enabling (members in_use). */
  let beforeEnable: string[] = [];
  let preSwitchLogin: StartedLogin;
  let samlCookie: string;

  before(async () => {
    gw = await createGateway();
    api = admin(gw);
  });
  after(async () => gw.close());

  it('sets up a tenant with members of every status and role, passwords, app passwords, invitations and sessions', { timeout: 30_000 }, async () => {
    const created = await api.post('/domains', { domain: D, name: 'Switch Co', plan: 'standard' });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.body.sso.enabled, false);

    const people: Array<{ k: string; role?: string; status: string; externalKey?: string; password?: boolean }> = [
      { k: 'boss', role: 'super_admin', status: 'in_use', externalKey: 'emp-boss', password: true },
      { k: 'admin', role: 'admin', status: 'in_use', externalKey: 'emp-admin', password: true },
      { k: 'alice', status: 'in_use', externalKey: 'emp-alice', password: true },
      { k: 'bob', status: 'in_use', externalKey: 'emp-bob' },
      { k: 'pen1', status: 'pending', externalKey: 'emp-pen1', password: true },
      { k: 'pen2', status: 'pending' },
      { k: 'una1', status: 'unapproved', externalKey: 'emp-una1', password: true },
      { k: 'una2', status: 'unapproved' },
      { k: 'sus', status: 'suspended', externalKey: 'emp-sus', password: true },
    ];
    for (const m of people) {
      const res = await api.post(`/domains/${D}/members`, {
        account: account(m.k),
        name: m.k,
        status: m.status,
        ...(m.role ? { role: m.role } : {}),
        ...(m.externalKey ? { externalKey: m.externalKey } : {}),
        ...(m.password ? { password: PASSWORD } : {}),
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.status, m.status);
      assert.equal(res.body.hasPassword, Boolean(m.password));
      id[m.k] = res.body.id as string;
    }
    // The other way to set a password while SSO is off.
    const pw = await api.put(`/domains/${D}/members/${id.bob}/password`, { password: PASSWORD });
    assert.equal(pw.status, 204, pw.text);
    assert.equal((await api.get(`/domains/${D}/members/${id.bob}`)).body.hasPassword, true);

    // Switching app passwords on is an SSO-only admin action (S-24): set the flag in the repository.
    const tenant = await gw.services.tenants.load(D);
    await gw.services.tenants.save({ ...tenant, thirdPartyAppPasswordsAllowed: true });
    for (const k of ['alice', 'alice', 'pen1', 'sus', 'boss']) {
      const res = await api.post(`/domains/${D}/members/${id[k]}/app-passwords`, { name: `mail client of ${k}` });
      assert.equal(res.status, 201, res.text);
      assert.ok(res.body.password);
    }
    for (const k of ['pen1', 'pen2', 'pen1']) {
      const res = await api.post(`/domains/${D}/members/${id[k]}/invitations`);
      assert.equal(res.status, 201, res.text);
      assert.match(res.body.url as string, /\/d\/invite\/[A-Za-z0-9_-]{43}$/);
    }
    assert.equal(await gw.store.hLen(keys.invitations(D)), 3);

    beforeEnable = [];
    for (const k of ['boss', 'admin', 'alice', 'alice', 'bob']) {
      const { id: sid } = await gw.services.sessions.create({ memberId: id[k]!, domain: D, account: account(k), authMethod: 'password', clientKind: 'web' }, 8 * HOUR);
      beforeEnable.push(cookieOf(sid));
    }
    for (const c of beforeEnable) assert.equal(await sessionStatus(gw, c), 200);

    // A login in flight under the current mode (ssoEpoch 0): the switch must void it.
    const binding = newBrowserBinding();
    const txn = await gw.services.transactions.create(tenant, { ssoType: 'saml', target: `${SERVICE_ORIGIN}/board`, clientKind: 'web', requestId: '_pre-switch-request' }, binding);
    recordLoginBinding(txn.id, binding);
    preSwitchLogin = { relayState: txn.id, requestId: txn.requestId! } as StartedLogin;
  });

  it('refuses the S-24 settings while SSO is off (409 sso_required)', async () => {
    const origins = await api.put(`/domains/${D}/origins`, { logoutRedirectDomains: ['switch.example'] });
    assert.equal(origins.status, 409, origins.text);
    assert.equal(origins.body.error, 'sso_required');
    const flag = await api.patch(`/domains/${D}`, { thirdPartyAppPasswordsAllowed: false });
    assert.equal(flag.status, 409, flag.text);
    assert.equal(flag.body.error, 'sso_required');
    // Service origins are not an SSO setting.
    const serviceOrigins = await api.put(`/domains/${D}/origins`, { serviceOrigins: ['https://intranet.switch.example'] });
    assert.equal(serviceOrigins.status, 200, serviceOrigins.text);
  });

  it('validates the settings before switching anything', async () => {
    const der = readFileSync(new URL('../../fixtures/keys/idp-a.crt.der', import.meta.url));
    for (const certificate of [der.toString('base64'), der.toString('latin1')]) {
      const res = await api.put(`/domains/${D}/sso`, samlOn({ saml: { idpEntityId: idps.a.entityId, idpCertificates: [certificate] } }));
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error, 'certificate_not_pem');
      assert.match(res.body.message as string, /PEM/);
    }
    const junk = '-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUgYXQgYWxsLCBqdXN0IHRleHQu\n-----END CERTIFICATE-----\n';
    const invalid = await api.put(`/domains/${D}/sso`, samlOn({ saml: { idpEntityId: idps.a.entityId, idpCertificates: [junk] } }));
    assert.equal(invalid.status, 400, invalid.text);
    assert.equal(invalid.body.error, 'certificate_invalid');

    const three = await api.put(`/domains/${D}/sso`, samlOn({ saml: { idpEntityId: idps.a.entityId, idpCertificates: [idps.a.certificate, idps.aNext.certificate, idps.b.certificate] } }));
    assert.equal(three.status, 400, three.text);
    assert.equal(three.body.error, 'validation_failed');
    assert.ok((three.body.details as Array<{ path: string }>).some((d) => d.path.startsWith('saml.idpCertificates')), JSON.stringify(three.body.details));

    const { webLoginUrl: _omitted, ...withoutUrl } = samlOn();
    const incomplete = await api.put(`/domains/${D}/sso`, withoutUrl);
    assert.equal(incomplete.status, 400, incomplete.text);
    assert.equal(incomplete.body.error, 'validation_failed');
    assert.deepEqual(
      (incomplete.body.details as Array<{ path: string }>).map((d) => d.path),
      ['webLoginUrl'],
    );

    // Nothing moved: still off, no job, nobody switched, sessions alive.
    const sso = await api.get(`/domains/${D}/sso`);
    assert.equal(sso.body.enabled, false);
    assert.equal(sso.body.switchInProgress, null);
    assert.equal((await api.get(`/domains/${D}/members/${id.pen1}`)).body.status, 'pending');
    assert.equal((await gw.services.tenants.load(D)).ssoEpoch, 0);
    for (const c of beforeEnable) assert.equal(await sessionStatus(gw, c), 200);
  });

  it('accepts userKey "account" with a warning', async () => {
    const created = await api.post('/domains', { domain: 'userkey.example', name: 'User Key Co' });
    assert.equal(created.status, 201, created.text);
    const res = await api.put('/domains/userkey.example/sso', samlOn({ userKey: 'account' }));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switched, true);
    assert.equal(res.body.sso.userKey, 'account');
    assert.equal((res.body.warnings as string[]).length, 1);
    assert.match((res.body.warnings as string[])[0]!, /account/);
    const keyed = await api.put('/domains/userkey.example/sso', samlOn());
    assert.deepEqual(keyed.body.warnings, [], 'no warning with external keys');
  });

  it('enables SSO with every S-21 effect, counted', { timeout: 30_000 }, async () => {
    const res = await api.put(`/domains/${D}/sso`, samlOn());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switched, true);
    assert.equal(res.body.sso.enabled, true);
    assert.ok('tokensRevoked' in res.body.effects, 'the token revocation count is part of the answer (0 until the OpenID Provider registers)');
    assert.deepEqual(
      res.body.effects,
      noEffects({ pendingActivated: 2, sessionsEnded: 5, invitationsInvalidated: 3, unapprovedDeleted: 2, appPasswordsDeleted: 5 }),
    );

    // pending → in_use
    for (const k of ['pen1', 'pen2']) assert.equal((await api.get(`/domains/${D}/members/${id[k]}`)).body.status, 'in_use', k);
    // every session ended, and the member indexes of sessions with them
    for (const c of beforeEnable) assert.equal(await sessionStatus(gw, c), 401);
    assert.equal(await gw.countKeys(`idpb:{${D}}:member-sessions:*`), 0);
    // invitation links: the tenant's invitations are gone
    assert.equal(await gw.store.hLen(keys.invitations(D)), 0);
    // unapproved members deleted, with their index entries
    for (const k of ['una1', 'una2']) {
      const gone = await api.get(`/domains/${D}/members/${id[k]}`);
      assert.equal(gone.status, 404);
      assert.equal(gone.body.error, 'unknown_member');
      assert.equal(await gw.services.members.findByAccount(D, account(k)), null);
      assert.equal(await gw.store.sIsMember(keys.memberIds(D), id[k]!), false);
    }
    assert.equal(await gw.services.members.findByExternalKey(D, 'emp-una1'), null);
    // app passwords gone; the others keep their state; passwords are kept while SSO is on
    const expected: Record<string, { status: string; hasPassword: boolean }> = {
      boss: { status: 'in_use', hasPassword: true },
      admin: { status: 'in_use', hasPassword: true },
      alice: { status: 'in_use', hasPassword: true },
      bob: { status: 'in_use', hasPassword: true },
      pen1: { status: 'in_use', hasPassword: true },
      pen2: { status: 'in_use', hasPassword: false },
      sus: { status: 'suspended', hasPassword: true },
    };
    for (const [k, want] of Object.entries(expected)) {
      const m = await api.get(`/domains/${D}/members/${id[k]}`);
      assert.equal(m.status, 200);
      assert.deepEqual({ status: m.body.status, hasPassword: m.body.hasPassword, appPasswords: m.body.appPasswords }, { ...want, appPasswords: [] }, k);
    }
    const list = await api.get(`/domains/${D}/members?count=100`);
    assert.equal((list.body.members as unknown[]).length, 7);

    // The switch is complete: no job, lock or counts left; the epoch moved once; it was audited with its counts.
    assert.deepEqual(await switchKeysLeft(gw.store, D), []);
    assert.equal((await api.get(`/domains/${D}/sso`)).body.switchInProgress, null);
    assert.equal((await gw.services.tenants.load(D)).ssoEpoch, 1);
    const [audit] = await gw.services.audit.list(D, 1);
    assert.equal(audit?.type, 'sso.enabled');
    assert.equal(audit?.data?.pendingActivated, 2);
    assert.equal(audit?.data?.sessionsEnded, 5);
  });

  it('refuses a login transaction started before the switch (voided by the ssoEpoch)', async () => {
    const res = await postAcs(gw, D, validResponse(gw, D, idps.a, preSwitchLogin, 'emp-alice'), preSwitchLogin.relayState);
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.equal(errorCodeOf(res), 'login_transaction_invalid');
    assert.equal(sessionCookieOf(res), undefined);
    assert.equal(await lastAuditReason(gw, D), 'transaction_voided_by_sso_switch');
  });

  it('logs in with SAML once SSO is on (the pending member made in_use too)', async () => {
    const login = await beginLogin(gw, D);
    const res = await postAcs(gw, D, validResponse(gw, D, idps.a, login, 'emp-alice'), login.relayState);
    assert.equal(res.status, 303, res.text.slice(0, 300));
    samlCookie = sessionCookieOf(res)!;
    assert.ok(samlCookie);
    const me = await gw.http.get('/session').set('Cookie', samlCookie);
    assert.equal(me.status, 200);
    assert.equal(me.body.session.authMethod, 'saml');

    const pending = await beginLogin(gw, D);
    const activated = await postAcs(gw, D, validResponse(gw, D, idps.a, pending, 'emp-pen1'), pending.relayState);
    assert.equal(activated.status, 303, 'a formerly pending member can sign in');
  });

  it('is idempotent: the same PUT again switches nothing and changes nothing', async () => {
    const before = await api.get(`/domains/${D}/members?count=100`);
    const epoch = (await gw.services.tenants.load(D)).ssoEpoch;
    const res = await api.put(`/domains/${D}/sso`, samlOn());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switched, false);
    assert.deepEqual(res.body.effects, noEffects());
    const afterList = await api.get(`/domains/${D}/members?count=100`);
    const byId = (ms: Array<{ id: string }>) => [...ms].sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(byId(afterList.body.members), byId(before.body.members));
    assert.equal((await gw.services.tenants.load(D)).ssoEpoch, epoch, 'no new epoch: logins in flight stay valid');
    assert.equal(await sessionStatus(gw, samlCookie), 200, 'sessions started under SSO survive');
    assert.deepEqual(await switchKeysLeft(gw.store, D), []);
    const [audit] = await gw.services.audit.list(D, 1);
    assert.equal(audit?.type, 'sso.updated');
  });

  it('refuses the S-23 actions while SSO is on (409 sso_enabled)', async () => {
    const refusals = [
      ['PUT member password', await api.put(`/domains/${D}/members/${id.bob}/password`, { password: PASSWORD })],
      ['POST member with password', await api.post(`/domains/${D}/members`, { account: account('newpw'), name: 'New', externalKey: 'emp-newpw', password: PASSWORD })],
      ['POST invitation', await api.post(`/domains/${D}/members/${id.pen2}/invitations`)],
      ['PUT password-policy', await api.put(`/domains/${D}/password-policy`, { minLength: 12, requireMixedCase: true, requireDigit: true })],
      ['PUT login-retention', await api.put(`/domains/${D}/login-retention`, { loginRetentionDays: 7 })],
      ['POST app password', await api.post(`/domains/${D}/members/${id.alice}/app-passwords`, { name: 'mail' })],
    ] as const;
    for (const [what, res] of refusals) {
      assert.equal(res.status, 409, `${what}: ${res.text}`);
      assert.equal(res.body.error, 'sso_enabled', what);
    }
    assert.equal(await gw.services.members.findByAccount(D, account('newpw')), null, 'nothing was created');
    assert.equal(await gw.store.hLen(keys.invitations(D)), 0);
    assert.deepEqual((await api.get(`/domains/${D}/members/${id.alice}`)).body.appPasswords, []);
    const tenant = await gw.services.tenants.load(D);
    assert.equal(tenant.passwordPolicy.minLength, 10);
    assert.equal(tenant.loginRetentionDays, 1);
  });

  it('allows the S-24 settings while SSO is on', async () => {
    const origins = await api.put(`/domains/${D}/origins`, { logoutRedirectDomains: ['switch.example', '*.portal.switch.example'] });
    assert.equal(origins.status, 200, origins.text);
    assert.deepEqual(origins.body.logoutRedirectDomains, ['switch.example', '*.portal.switch.example']);
    for (const value of [false, true]) {
      const flag = await api.patch(`/domains/${D}`, { thirdPartyAppPasswordsAllowed: value });
      assert.equal(flag.status, 200, flag.text);
      assert.equal(flag.body.thirdPartyAppPasswordsAllowed, value);
    }
  });

  it('requires an external key to add a member while SSO is on (S-25)', async () => {
    const without = await api.post(`/domains/${D}/members`, { account: account('carol'), name: 'Carol', status: 'in_use' });
    assert.equal(without.status, 400, without.text);
    assert.equal(without.body.error, 'external_key_required');
    const withKey = await api.post(`/domains/${D}/members`, { account: account('carol'), name: 'Carol', status: 'in_use', externalKey: 'emp-carol' });
    assert.equal(withKey.status, 201, withKey.text);
    id.carol = withKey.body.id as string;
  });

  it('disables SSO: everyone is logged out, every password but the super admin’s is deleted (S-22)', { timeout: 30_000 }, async () => {
    const cookies = [samlCookie];
    for (const k of ['boss', 'admin', 'bob', 'pen1', 'carol']) {
      const { id: sid } = await gw.services.sessions.create({ memberId: id[k]!, domain: D, account: account(k), authMethod: 'saml', clientKind: 'web' }, 8 * HOUR);
      cookies.push(cookieOf(sid));
    }
    for (const c of cookies) assert.equal(await sessionStatus(gw, c), 200);
    // The earlier SAML login of pen1 is live too.
    const live = await gw.countKeys('idpb:session:*');

    const res = await api.put(`/domains/${D}/sso`, { enabled: false });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switched, true);
    assert.equal(res.body.sso.enabled, false);
    assert.equal(res.body.sso.saml.idpEntityId, idps.a.entityId, 'the IdP configuration is kept for the next time');
    // boss, admin, alice, bob, pen1 and sus hold passwords; all but the super admin's go.
    assert.deepEqual(res.body.effects, noEffects({ sessionsEnded: cookies.length + 1, passwordsDeleted: 5 }));
    assert.equal(live, cookies.length + 1);

    for (const c of cookies) assert.equal(await sessionStatus(gw, c), 401);
    assert.equal(await gw.countKeys('idpb:session:*'), 0);
    assert.equal(await gw.countKeys(`idpb:{${D}}:member-sessions:*`), 0);
    const hasPassword = async (k: string): Promise<boolean> => (await api.get(`/domains/${D}/members/${id[k]}`)).body.hasPassword as boolean;
    assert.equal(await hasPassword('boss'), true, 'the super admin keeps the password');
    for (const k of ['admin', 'alice', 'bob', 'pen1', 'pen2', 'sus', 'carol']) assert.equal(await hasPassword(k), false, k);
    assert.deepEqual(await switchKeysLeft(gw.store, D), []);
    assert.equal((await gw.services.tenants.load(D)).ssoEpoch, 2);
    const [audit] = await gw.services.audit.list(D, 1);
    assert.equal(audit?.type, 'sso.disabled');
    assert.equal(audit?.data?.passwordsDeleted, 5);

    // Password actions are back (S-23 applies only while SSO is on).
    assert.equal((await api.put(`/domains/${D}/members/${id.alice}/password`, { password: PASSWORD })).status, 204);
    // The same PUT again: nothing to do.
    const again = await api.put(`/domains/${D}/sso`, { enabled: false });
    assert.equal(again.body.switched, false);
    assert.deepEqual(again.body.effects, noEffects());
    assert.equal((await api.get(`/domains/${D}/members/${id.alice}`)).body.hasPassword, true);
  });

  it('voids a real login begun before a switch, even when SSO is on again by the time it returns', async () => {
    assert.equal((await api.put(`/domains/${D}/sso`, samlOn())).status, 200);
    const login = await beginLogin(gw, D);
    assert.equal((await api.put(`/domains/${D}/sso`, { enabled: false })).body.switched, true);
    assert.equal((await api.put(`/domains/${D}/sso`, samlOn())).body.switched, true);
    const res = await postAcs(gw, D, validResponse(gw, D, idps.a, login, 'emp-alice'), login.relayState);
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.equal(errorCodeOf(res), 'login_transaction_invalid');
    assert.equal(await lastAuditReason(gw, D), 'transaction_voided_by_sso_switch');
  });
});

// ---------------------------------------------------------------------------------------------------
// Bulk tenants written directly through the repositories (fast), all of one deterministic shape.

interface Shape {
  /** Expected effects of enabling SSO on such a tenant. */
  effects: Effects;
  members: number;
  /** Raw session ids (cookies) created, to check they all end. */
  sessionIds: string[];
}

const FAKE_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** Member i of a bulk tenant: 70% in_use, 15% pending, 10% unapproved, 5% suspended; one super admin. */
function bulkMember(i: number, domain: string): NewMember & { sessions: number; invited: boolean } {
  const r = i % 20;
  const status = r < 14 ? 'in_use' : r < 17 ? 'pending' : r < 19 ? 'unapproved' : 'suspended';
  const appPasswords = i % 7 === 0 ? (i % 14 === 0 ? 2 : 1) : 0;
  return {
    id: `m-${i}`,
    account: `user${i}@${domain}`,
    name: `User ${i}`,
    ...(i % 4 === 3 ? {} : { externalKey: `emp-${i}` }),
    role: i === 0 ? 'super_admin' : i % 50 === 1 ? 'admin' : 'member',
    status,
    ...(i % 3 === 0 ? { passwordHash: FAKE_HASH } : {}),
    appPasswords: Array.from({ length: appPasswords }, (_, n) => ({ id: `app_${i}_${n}`, name: `mail ${n}`, hash: FAKE_HASH, createdAt: 1_700_000_000_000 })),
    createdAt: 1_700_000_000_000,
    sessions: status === 'in_use' ? i % 3 : 0,
    invited: status === 'pending' && i % 2 === 0,
  };
}

async function seedBulkTenant(gw: Gateway, domain: string, n: number): Promise<Shape> {
  const created = await admin(gw).post('/domains', { domain, name: `Bulk ${domain}`, plan: 'standard' });
  assert.equal(created.status, 201, created.text);
  const effects = noEffects();
  const sessionIds: string[] = [];
  const shapes = Array.from({ length: n }, (_, i) => bulkMember(i, domain));
  await inChunks(shapes, 250, async ({ sessions, invited, ...m }) => {
    await gw.services.members.save(domain, m);
    for (let s = 0; s < sessions; s++) {
      const { id } = await gw.services.sessions.create({ memberId: m.id!, domain, account: m.account, authMethod: 'saml', clientKind: 'web' }, 8 * HOUR);
      sessionIds.push(id);
    }
    if (invited) {
      const token = randomBytes(32).toString('base64url');
      const inv = { id: `inv_${m.id}`, memberId: m.id!, createdAt: gw.clock.now(), expiresAt: gw.clock.now() + 7 * 24 * HOUR, tokenDigest: digestForKey(token) };
      await gw.store.hSet(keys.invitations(domain), { [inv.id]: JSON.stringify(inv) });
      await gw.store.set(keys.invitationByToken(digestForKey(token)), `${domain} ${inv.id}`, { ttlMs: 7 * 24 * HOUR });
    }
  });
  for (const m of shapes) {
    if (m.status === 'pending') effects.pendingActivated++;
    if (m.status === 'unapproved') effects.unapprovedDeleted++;
    // App passwords end with their member too (counted whether the member is deleted or kept).
    effects.appPasswordsDeleted += m.appPasswords!.length;
    effects.sessionsEnded += m.sessions;
    if (m.invited) effects.invitationsInvalidated++;
  }
  return { effects, members: n, sessionIds };
}

interface MemberState {
  status: string;
  role: string;
  name: string;
  externalKey: string | null;
  hasPassword: boolean;
  appPasswords: number;
}

/** The tenant's members by the local part of their account (ids and domains differ between tenants). */
async function membersOf(store: KeyValueStore, domain: string): Promise<Map<string, MemberState>> {
  const out = new Map<string, MemberState>();
  let cursor = '0';
  do {
    const [next, ids] = await store.sScan(keys.memberIds(domain), cursor, 500);
    cursor = next;
    for (const raw of await Promise.all(ids.map((i) => store.get(keys.member(domain, i))))) {
      assert.ok(raw !== null, 'every id in the member set has a record');
      const m = JSON.parse(raw) as Member;
      out.set(m.account.split('@')[0]!, {
        status: m.status,
        role: m.role,
        name: m.name,
        externalKey: m.externalKey ?? null,
        hasPassword: Boolean(m.passwordHash),
        appPasswords: m.appPasswords.length,
      });
    }
  } while (cursor !== '0');
  return out;
}

/** The indexes agree with the records: every account and external key points at a live member. */
async function assertIndexesConsistent(store: KeyValueStore, domain: string): Promise<void> {
  const members = await membersOf(store, domain);
  const byAccount = await store.hGetAll(keys.memberByAccount(domain));
  const byExternalKey = await store.hGetAll(keys.memberByExternalKey(domain));
  assert.equal(Object.keys(byAccount).length, members.size, `${domain}: one account index entry per member`);
  assert.equal(Object.keys(byExternalKey).length, [...members.values()].filter((m) => m.externalKey).length, `${domain}: one external-key entry per keyed member`);
  for (const [acct, memberId] of Object.entries(byAccount)) {
    assert.ok(await store.sIsMember(keys.memberIds(domain), memberId), `${domain}: ${acct} points at a live member`);
  }
}

async function liveSessions(gw: Gateway, ids: string[]): Promise<number> {
  let live = 0;
  await inChunks(ids, 500, async (sid) => {
    if (await gw.services.sessions.find(sid)) live++;
  });
  return live;
}

/** Expires the lock of a run that died without releasing it: what its 5 s lease does by itself. */
async function expireDeadRunLock(store: KeyValueStore, domain: string): Promise<void> {
  assert.ok((await store.pttl(keys.ssoSwitchLock(domain))) > 0, 'the dead run still holds the lock');
  await store.expire(keys.ssoSwitchLock(domain), 1);
  await sleep(5);
}

describe('two switches at once', () => {
  const D = 'race.example';
  let gw: Gateway;
  let shape: Shape;

  before(async () => {
    gw = await createGateway();
    shape = await seedBulkTenant(gw, D, 800);
  });
  after(async () => gw.close());

  it('lets exactly one of two concurrent enabling PUTs switch; the other is told or finds nothing to do', { timeout: 60_000 }, async (t) => {
    const api = admin(gw);
    const [a, b] = await Promise.all([api.put(`/domains/${D}/sso`, samlOn()), api.put(`/domains/${D}/sso`, samlOn())]);
    const answers = [a, b];
    const switched = answers.filter((r) => r.status === 200 && r.body.switched === true);
    assert.equal(switched.length, 1, answers.map((r) => `${r.status} ${r.text.slice(0, 200)}`).join(' | '));
    const other = answers.find((r) => r !== switched[0])!;
    t.diagnostic(`the other call answered ${other.status} ${other.status === 200 ? 'switched:false' : String(other.body.error)}`);
    if (other.status === 409) assert.equal(other.body.error, 'sso_switch_in_progress');
    else {
      assert.equal(other.status, 200, other.text);
      assert.deepEqual(other.body.effects, noEffects(), 'the other call found nothing left to do');
    }
    assert.deepEqual(switched[0]!.body.effects, shape.effects);

    const members = await membersOf(gw.store, D);
    assert.equal(members.size, shape.members - shape.effects.unapprovedDeleted);
    for (const [k, m] of members) {
      assert.ok(m.status === 'in_use' || m.status === 'suspended', `${k} is ${m.status}`);
      assert.equal(m.appPasswords, 0);
    }
    assert.equal(await liveSessions(gw, shape.sessionIds), 0);
    assert.equal(await gw.store.hLen(keys.invitations(D)), 0);
    assert.deepEqual(await switchKeysLeft(gw.store, D), []);
    assert.equal((await gw.services.tenants.load(D)).ssoEpoch, 1, 'one switch, one epoch');
    await assertIndexesConsistent(gw.store, D);
  });

  it(
    'leaves a running switch alone when a call the other way is refused',
    {
      timeout: 60_000,
    },
    async () => {
      const T = 'race-back.example';
      const shapeT = await seedBulkTenant(gw, T, 800);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let firstBatch!: () => void;
      const firstBatchDone = new Promise<void>((r) => (firstBatch = r));
      let batches = 0;
      gw.services.ssoSwitch = new SsoSwitch({
        store: gw.store,
        tenants: gw.services.tenants,
        clock: gw.clock,
        sessionEnders: [gw.services.sessions],
        tokenRevokers: [],
        batchSize: 200,
        afterBatch: async () => {
          if (++batches === 1) {
            firstBatch();
            await gate;
          }
        },
      });
      const api = admin(gw);
      const enabling = api.put(`/domains/${T}/sso`, samlOn()).then((r) => r);
      await firstBatchDone;
      const jobBefore = await gw.store.get(keys.ssoSwitchJob(T));
      const countsBefore = await gw.store.hGetAll(keys.ssoSwitchCounts(T));
      let disabling: Awaited<typeof enabling>;
      let jobAfter: string | null;
      let countsAfter: Record<string, string>;
      try {
        disabling = await api.put(`/domains/${T}/sso`, { enabled: false });
        jobAfter = await gw.store.get(keys.ssoSwitchJob(T));
        countsAfter = await gw.store.hGetAll(keys.ssoSwitchCounts(T));
      } finally {
        release();
      }
      const done = await enabling;
      assert.equal(disabling.status, 409, disabling.text);
      assert.equal(disabling.body.error, 'sso_switch_in_progress');
      assert.equal(jobAfter, jobBefore, 'the refused call left the job alone');
      assert.deepEqual(countsAfter, countsBefore, 'and the counts');
      assert.equal(done.status, 200, done.text);
      assert.deepEqual(done.body.effects, shapeT.effects);
    },
  );
});

describe('a switch interrupted by a store fault is finished by calling it again (resumable, S-21)', () => {
  const N = 1500;
  const X = 'steady.example';
  const Y = 'crash.example';
  let gw: Gateway;
  let prefix: string;
  let url: string;
  let shapeX: Shape;
  let shapeY: Shape;
  let effectsX: Effects;
  const extraStores: RedisStore[] = [];

  const storeOnSamePrefix = async (): Promise<RedisStore> => {
    const store = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 2000 });
    await store.connect();
    extraStores.push(store);
    return store;
  };

  before(async () => {
    gw = await createGateway();
    prefix = (gw.store as RedisStore).client.options.keyPrefix!;
    url = await redisUrl();
    shapeX = await seedBulkTenant(gw, X, N);
    shapeY = await seedBulkTenant(gw, Y, N);
    assert.deepEqual(shapeY.effects, shapeX.effects, 'two identical tenants');
  });
  after(async () => {
    for (const s of extraStores) await s.close();
    await gw.close();
  });

  it('switches the first tenant uninterrupted', { timeout: 60_000 }, async () => {
    const res = await admin(gw).put(`/domains/${X}/sso`, samlOn());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switched, true);
    effectsX = res.body.effects as Effects;
    assert.deepEqual(effectsX, shapeX.effects);
    assert.equal(await liveSessions(gw, shapeX.sessionIds), 0);
    assert.deepEqual(await switchKeysLeft(gw.store, X), []);
  });

  it('cuts the store after the first batch of the second: 503, a pending job, counts that match what was done', { timeout: 60_000 }, async () => {
    const before = await membersOf(gw.store, Y);
    const doomed = await storeOnSamePrefix();
    const crashing = await createGateway({ store: doomed, clock: gw.clock });
    const cuts: number[] = [];
    crashing.services.ssoSwitch = new SsoSwitch({
      store: doomed,
      tenants: crashing.services.tenants,
      clock: gw.clock,
      sessionEnders: [crashing.services.sessions],
      tokenRevokers: [],
      batchSize: 200,
      afterBatch: (_domain, done) => {
        cuts.push(done);
        doomed.client.disconnect();
        return Promise.resolve();
      },
    });

    const res = await admin(crashing).put(`/domains/${Y}/sso`, samlOn());
    assert.equal(res.status, 503, res.text);
    assert.equal(res.body.error, 'store_unavailable');
    assert.equal(cuts.length, 1);
    assert.ok(cuts[0]! > 0 && cuts[0]! < N, `cut after the first batch (${cuts[0]} members)`);

    // Seen from a healthy gateway on the same Redis: SSO is already on (new logins follow it), the job is pending.
    const sso = await admin(gw).get(`/domains/${Y}/sso`);
    assert.equal(sso.status, 200);
    assert.equal(sso.body.enabled, true);
    assert.equal(sso.body.switchInProgress?.target, true);
    const job = JSON.parse((await gw.store.get(keys.ssoSwitchJob(Y)))!) as { cursor: string; tenantWideDone: boolean };
    assert.notEqual(job.cursor, '0');
    assert.equal(job.tenantWideDone, true);

    // No member is half-changed, and the counts recorded so far are exactly those of the members changed.
    const now = await membersOf(gw.store, Y);
    const counts = await gw.store.hGetAll(keys.ssoSwitchCounts(Y));
    let activated = 0;
    let deleted = 0;
    let appPasswords = 0;
    let untouchedPending = 0;
    for (const [k, was] of before) {
      const is = now.get(k);
      if (was.status === 'unapproved') {
        if (!is) {
          deleted++;
          appPasswords += was.appPasswords;
        } else assert.deepEqual(is, was, `${k}: an unapproved member is deleted whole or not at all`);
        continue;
      }
      assert.ok(is, `${k} still exists`);
      const changed = was.status === 'pending' ? is.status === 'in_use' : was.appPasswords > 0 && is.appPasswords === 0;
      if (changed) {
        assert.deepEqual(is, { ...was, status: was.status === 'pending' ? 'in_use' : was.status, appPasswords: 0 }, `${k} fully switched`);
        if (was.status === 'pending') activated++;
        appPasswords += was.appPasswords;
      } else {
        assert.deepEqual(is, was, `${k} untouched`);
        if (was.status === 'pending') untouchedPending++;
      }
    }
    assert.ok(untouchedPending > 0, 'the crash left work to do');
    assert.equal(Number(counts.pendingActivated ?? 0), activated);
    assert.equal(Number(counts.unapprovedDeleted ?? 0), deleted);
    assert.equal(Number(counts.appPasswordsDeleted ?? 0), appPasswords);
    assert.equal(Number(counts.invitationsInvalidated), shapeY.effects.invitationsInvalidated, 'tenant-wide effects ran first');
    await assertIndexesConsistent(gw.store, Y);
  });

  it('finishes on the next call from a new connection, ending exactly like the uninterrupted switch', { timeout: 60_000 }, async () => {
    const fresh = await storeOnSamePrefix();
    const resumed = await createGateway({ store: fresh, clock: gw.clock });

    // The dead run could not release its lock (its connection was cut), but its holder has ended in this
    // process: the first retry takes the lock over at once instead of waiting out the lease (issue 18).
    assert.ok((await fresh.pttl(keys.ssoSwitchLock(Y))) > 0, 'the dead run left its lock');

    const res = await admin(resumed).put(`/domains/${Y}/sso`, samlOn());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switched, true, 'a pending job is finished even though SSO already reads as on');
    const effectsY = res.body.effects as Effects;

    // The members' counts are written in the same MULTI as the member's change: never lost, never doubled.
    for (const name of ['pendingActivated', 'unapprovedDeleted', 'appPasswordsDeleted', 'invitationsInvalidated', 'tokensRevoked', 'passwordsDeleted'] as const) {
      assert.equal(effectsY[name], effectsX[name], name);
    }
    // Sessions end before the member's MULTI, so a crash between the two loses that member's session
    // count (never the ending itself): the resumed count can only be lower. This cut fell between
    // batches, after every MULTI of the batch had returned, so here nothing was lost.
    assert.ok(effectsY.sessionsEnded <= effectsX.sessionsEnded);
    assert.equal(effectsY.sessionsEnded, effectsX.sessionsEnded);

    // Same end state as the uninterrupted tenant.
    assert.deepEqual(await membersOf(gw.store, Y), await membersOf(gw.store, X));
    assert.equal(await liveSessions(gw, shapeY.sessionIds), 0);
    assert.equal(await gw.countKeys(`idpb:{${Y}}:member-sessions:*`), 0);
    assert.equal(await gw.countKeys('idpb:session:*'), 0);
    assert.equal(await gw.store.hLen(keys.invitations(Y)), 0);
    assert.deepEqual(await switchKeysLeft(gw.store, Y), []);
    assert.equal((await admin(gw).get(`/domains/${Y}/sso`)).body.switchInProgress, null);
    const [tx, ty] = [await gw.services.tenants.load(X), await gw.services.tenants.load(Y)];
    assert.equal(ty.ssoEpoch, tx.ssoEpoch, 'the resumed run kept the epoch of its job (logins were voided once)');
    assert.equal(ty.sso.enabled, true);
    await assertIndexesConsistent(gw.store, X);
    await assertIndexesConsistent(gw.store, Y);

    const again = await admin(resumed).put(`/domains/${Y}/sso`, samlOn());
    assert.equal(again.body.switched, false);
    assert.deepEqual(again.body.effects, noEffects());
  });
});

// ---------------------------------------------------------------------------------------------------
// The nastiest interruption: Redis executes a batch of member MULTIs but the connection drops before
// their replies arrive. ioredis (autoResendUnfulfilledCommands, on by default, with the store's
// maxRetriesPerRequest: 1) silently re-sends those MULTIs after reconnecting, so each runs twice and
// its HINCRBY counts double. Fix: RedisStore with maxRetriesPerRequest: 0 and
// autoResendUnfulfilledCommands: false (see the report); then the batch fails, the job stays, and the
// resumed switch ends with exact counts.

/** A TCP proxy to Redis that can swallow replies and then cut every connection. */
async function startCuttableProxy(target: URL): Promise<{ url: string; swallowThenCut: (ms: number) => void; close: () => Promise<void> }> {
  let swallow = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    sockets.add(client);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (!swallow) client.write(d);
    });
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`,
    swallowThenCut: (ms) => {
      swallow = true;
      setTimeout(() => {
        for (const s of [...sockets]) s.destroy();
        swallow = false;
      }, ms);
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('a batch whose replies are lost mid-flight (executed by Redis, never acknowledged)', () => {
  const N = 1500;
  const X = 'steady.example';
  const Z = 'lost-replies.example';
  let gw: Gateway;

  before(async () => {
    gw = await createGateway();
  });
  after(async () => gw.close());

  it(
    'still ends with exactly the counts of an uninterrupted switch',
    {
      timeout: 90_000,
    },
    async () => {
      const prefix = (gw.store as RedisStore).client.options.keyPrefix!;
      const shapeX = await seedBulkTenant(gw, X, N);
      await seedBulkTenant(gw, Z, N);
      const steady = await admin(gw).put(`/domains/${X}/sso`, samlOn());
      assert.deepEqual(steady.body.effects, shapeX.effects);

      const proxy = await startCuttableProxy(new URL(await redisUrl()));
      const flaky = new RedisStore({ url: proxy.url, keyPrefix: prefix, commandTimeoutMs: 2000 });
      await flaky.connect();
      try {
        const flakyGw = await createGateway({ store: flaky, clock: gw.clock });
        let firstBatchDone = false;
        let armed = false;
        // Arm on the first member MULTI of the second batch: it and the rest of the batch reach Redis,
        // their replies do not, and 100 ms later the connection drops.
        const store = new Proxy(flaky, {
          get(target, prop) {
            if (prop === 'atomic') {
              return (ops: Parameters<RedisStore['atomic']>[0]) => {
                if (firstBatchDone && !armed) {
                  armed = true;
                  proxy.swallowThenCut(100);
                }
                return target.atomic(ops);
              };
            }
            const value = Reflect.get(target, prop, target) as unknown;
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
        flakyGw.services.ssoSwitch = new SsoSwitch({
          store,
          tenants: flakyGw.services.tenants,
          clock: gw.clock,
          sessionEnders: [flakyGw.services.sessions],
          tokenRevokers: [],
          batchSize: 200,
          afterBatch: () => {
            firstBatchDone = true;
            return Promise.resolve();
          },
        });
        let res = await admin(flakyGw).put(`/domains/${Z}/sso`, samlOn());
        assert.ok(armed, 'the cut happened');
        if (res.status !== 200) {
          // The correct outcome: the batch failed as a whole (503) and the job waits; finish it.
          assert.equal(res.status, 503, res.text);
          await sleep(300);
          if ((await gw.store.pttl(keys.ssoSwitchLock(Z))) > 0) await expireDeadRunLock(gw.store, Z);
          res = await admin(gw).put(`/domains/${Z}/sso`, samlOn());
          assert.equal(res.status, 200, res.text);
        }
        const effects = res.body.effects as Effects;
        for (const name of ['pendingActivated', 'unapprovedDeleted', 'appPasswordsDeleted', 'invitationsInvalidated'] as const) {
          assert.equal(effects[name], shapeX.effects[name], name);
        }
        assert.ok(effects.sessionsEnded <= shapeX.effects.sessionsEnded);
        assert.deepEqual(await membersOf(gw.store, Z), await membersOf(gw.store, X));
        assert.deepEqual(await switchKeysLeft(gw.store, Z), []);
      } finally {
        await flaky.close();
        await proxy.close();
      }
    },
  );
});
