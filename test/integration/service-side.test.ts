import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type supertest from 'supertest';
import { hashPassword } from '../../src/domain/passwords.js';
import { keys, digestForKey } from '../../src/store/index.js';
import { PUBLIC_URL, createGateway, errorCodeOf, sessionCookieOf, type Gateway } from '../helpers/gateway.js';

const DOMAIN = 'nosso.example';
const MEMBER_PASSWORD = 'Member-pass-123';
const ADMIN_PASSWORD = 'Admin-pass-456';
const NEW_PASSWORD = 'Brand-new-pass-789';
const INVITEE_PASSWORD = 'Invitee-pass-321';

let ipCounter = 0;
const nextIp = (): string => `192.0.2.${++ipCounter}`;

/** Everything secret this file saw: none of it may reach the log. */
const secrets: string[] = [MEMBER_PASSWORD, ADMIN_PASSWORD, NEW_PASSWORD, INVITEE_PASSWORD];

async function setPassword(gw: Gateway, domain: string, id: string, password: string): Promise<void> {
  const m = await gw.services.members.findById(domain, id);
  assert.ok(m);
  await gw.services.members.replace({ ...m, passwordHash: await hashPassword(password) });
}

/** Signs in through the password form; returns the session cookie (`idpb_session=…`). */
async function signIn(gw: Gateway, account: string, password: string, domain = DOMAIN): Promise<string> {
  const ip = nextIp();
  const form = await gw.http.get(`/d/password-login/${domain}`).set('X-Forwarded-For', ip);
  assert.equal(form.status, 200);
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
  const res = await gw.http
    .post(`/d/password-login/${domain}`)
    .type('form')
    .set('X-Forwarded-For', ip)
    .set('Cookie', `idpb_csrf=${csrf}`)
    .send({ account, password, csrf });
  assert.equal(res.status, 303, res.text.slice(0, 300));
  const cookie = sessionCookieOf(res)!;
  secrets.push(cookie.split('=')[1]!);
  return cookie;
}

/** A session made directly (an SSO login of a member of an SSO tenant). */
async function sessionFor(gw: Gateway, domain: string, memberId: string, account: string): Promise<string> {
  const { id } = await gw.services.sessions.create({ memberId, domain, account, authMethod: 'saml', clientKind: 'web' }, 3600_000);
  secrets.push(id);
  return `idpb_session=${id}`;
}

const api = (gw: Gateway, path: string, body: unknown, cookie?: string, ip = nextIp()): supertest.Test => {
  let t = gw.http.post(`/api/v1${path}`).set('X-Forwarded-For', ip).set('Content-Type', 'application/json');
  if (cookie) t = t.set('Cookie', cookie);
  return t.send(JSON.stringify(body));
};

async function setUp(): Promise<Gateway> {
  const gw = await createGateway({ overrides: { trustProxy: true } });
  const tenant = await gw.services.tenants.load(DOMAIN);
  await gw.services.tenants.save({ ...tenant, thirdPartyAppPasswordsAllowed: true });
  await setPassword(gw, DOMAIN, 'm-n', MEMBER_PASSWORD);
  await gw.services.members.save(DOMAIN, { id: 'm-n-admin', account: 'admin@nosso.example', name: 'Admin', role: 'admin', status: 'in_use', passwordHash: await hashPassword(ADMIN_PASSWORD) });
  return gw;
}

const ENDPOINTS: Array<[string, unknown]> = [
  ['/id-lookup', { account: 'n@nosso.example' }],
  ['/me/password', { currentPassword: MEMBER_PASSWORD, newPassword: NEW_PASSWORD }],
  ['/invitations', { account: 'new@nosso.example', name: 'New' }],
  ['/me/app-passwords', { name: 'Mail' }],
];

describe('Service API (/api/v1): authentication, CSRF and S-23', () => {
  let gw: Gateway;
  before(async () => {
    gw = await setUp();
  });
  after(async () => gw.close());

  it('answers 401 not_authenticated without a session, or with an unknown or ended one', async () => {
    for (const [path, body] of ENDPOINTS) {
      for (const cookie of [undefined, 'idpb_session=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'idpb_session=nonsense']) {
        const res = await api(gw, path, body, cookie);
        assert.equal(res.status, 401, `${path} ${cookie}`);
        assert.equal(res.body.error, 'not_authenticated');
      }
    }
  });

  it('answers 401 for a session whose member is no longer in_use', async () => {
    await gw.services.members.save(DOMAIN, { id: 'm-n-gone', account: 'gone@nosso.example', name: 'Gone', role: 'admin', status: 'suspended' });
    const cookie = await sessionFor(gw, DOMAIN, 'm-n-gone', 'gone@nosso.example');
    const res = await api(gw, '/id-lookup', { account: 'n@nosso.example' }, cookie);
    assert.equal(res.status, 401);
  });

  it('refuses writes that are not application/json with 415 (a cross-site form cannot send JSON), and foreign Origins with 403', async () => {
    const cookie = await signIn(gw, 'n@nosso.example', MEMBER_PASSWORD);
    for (const [path] of ENDPOINTS) {
      const form = await gw.http.post(`/api/v1${path}`).set('Cookie', cookie).type('form').send({ account: 'n@nosso.example', name: 'x' });
      assert.equal(form.status, 415, path);
      assert.equal(form.body.error, 'unsupported_media_type');
      const plain = await gw.http.post(`/api/v1${path}`).set('Cookie', cookie).set('Content-Type', 'text/plain').send('{"account":"n@nosso.example"}');
      assert.equal(plain.status, 415, path);
      const none = await gw.http.post(`/api/v1${path}`).set('Cookie', cookie);
      assert.equal(none.status, 415, path);
    }
    const foreign = await api(gw, '/id-lookup', { account: 'n@nosso.example' }, cookie).set('Origin', 'https://evil.example');
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.error, 'forbidden');
    const own = await api(gw, '/id-lookup', { account: 'n@nosso.example' }, cookie).set('Origin', PUBLIC_URL);
    assert.equal(own.status, 200);
    const charset = await gw.http.post('/api/v1/id-lookup').set('Cookie', cookie).set('Content-Type', 'application/json; charset=utf-8').send('{"account":"n@nosso.example"}');
    assert.equal(charset.status, 200);
  });

  it('refuses malformed and oversized JSON', async () => {
    const cookie = await signIn(gw, 'n@nosso.example', MEMBER_PASSWORD);
    const bad = await gw.http.post('/api/v1/id-lookup').set('Cookie', cookie).set('Content-Type', 'application/json').send('{"account":');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'bad_request');
    const big = await api(gw, '/me/app-passwords', { name: 'x'.repeat(10_000) }, cookie);
    assert.equal(big.status, 413);
    const extra = await api(gw, '/id-lookup', { account: 'n@nosso.example', role: 'admin' }, cookie);
    assert.equal(extra.status, 400);
    assert.equal(extra.body.error, 'validation_failed');
  });

  it('refuses every endpoint with 409 sso_enabled for a member of a tenant with SSO on', async () => {
    await gw.services.members.save('a.example', { id: 'm-a-admin', account: 'admin@a.example', name: 'Admin A', externalKey: 'emp-800', role: 'super_admin', status: 'in_use', passwordHash: await hashPassword(ADMIN_PASSWORD) });
    const tenant = await gw.services.tenants.load('a.example');
    await gw.services.tenants.save({ ...tenant, thirdPartyAppPasswordsAllowed: true });
    const member = await sessionFor(gw, 'a.example', 'm-a-active', 'active@a.example');
    const admin = await sessionFor(gw, 'a.example', 'm-a-admin', 'admin@a.example');
    for (const [path, body] of ENDPOINTS) {
      for (const cookie of [member, admin]) {
        const res = await api(gw, path, path === '/me/password' ? { currentPassword: ADMIN_PASSWORD, newPassword: NEW_PASSWORD } : body, cookie);
        assert.equal(res.status, 409, `${path}: ${res.text}`);
        assert.equal(res.body.error, 'sso_enabled', path);
      }
    }
    // Nothing changed.
    assert.equal(await gw.services.members.findByAccount('a.example', 'new@nosso.example'), null);
    assert.equal((await gw.services.members.findById('a.example', 'm-a-admin'))?.appPasswords.length, 0);
  });

  it('the super admin signed in by break-glass is refused too', async () => {
    const cookie = await signIn(gw, 'admin@a.example', ADMIN_PASSWORD, 'a.example');
    const res = await api(gw, '/id-lookup', { account: 'active@a.example' }, cookie);
    assert.equal(res.status, 409);
    assert.equal(res.body.error, 'sso_enabled');
  });
});

describe('Service API (/api/v1): the endpoints while SSO is off', () => {
  let gw: Gateway;
  before(async () => {
    gw = await setUp();
  });
  after(async () => gw.close());

  it('ID lookup answers {exists} within the caller\'s tenant, case-insensitively', async () => {
    const cookie = await signIn(gw, 'n@nosso.example', MEMBER_PASSWORD);
    const ip = nextIp();
    assert.deepEqual((await api(gw, '/id-lookup', { account: 'N@NOSSO.example' }, cookie, ip)).body, { exists: true });
    assert.deepEqual((await api(gw, '/id-lookup', { account: 'ghost@nosso.example' }, cookie, ip)).body, { exists: false });
    // Another tenant's member is not visible.
    assert.deepEqual((await api(gw, '/id-lookup', { account: 'active@a.example' }, cookie, ip)).body, { exists: false });
  });

  it('ID lookup is rate-limited per IP (an enumeration surface): 429 rate_limited', async () => {
    const cookie = await signIn(gw, 'n@nosso.example', MEMBER_PASSWORD);
    const ip = nextIp();
    let limited: supertest.Response | undefined;
    let passed = 0;
    // 10 per fixed one-minute window; two windows at most if the run straddles a minute boundary.
    for (let i = 0; i < 22 && !limited; i++) {
      const res = await api(gw, '/id-lookup', { account: `probe${i}@nosso.example` }, cookie, ip);
      if (res.status === 429) limited = res;
      else {
        assert.equal(res.status, 200);
        passed++;
      }
    }
    assert.ok(limited);
    assert.equal(limited.body.error, 'rate_limited');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.ok(passed >= 10);
    assert.equal((await api(gw, '/id-lookup', { account: 'n@nosso.example' }, cookie, nextIp())).status, 200, 'another client is not affected');
  });

  it('password change: checks the current password and the policy; ends the other sessions, keeps this browser signed in', async () => {
    const here = await signIn(gw, 'n@nosso.example', MEMBER_PASSWORD);
    const elsewhere = await signIn(gw, 'n@nosso.example', MEMBER_PASSWORD);

    const wrong = await api(gw, '/me/password', { currentPassword: 'Not-my-password-1', newPassword: NEW_PASSWORD }, here);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'invalid_credentials');
    const weak = await api(gw, '/me/password', { currentPassword: MEMBER_PASSWORD, newPassword: 'short' }, here);
    assert.equal(weak.status, 400);
    assert.equal(weak.body.error, 'password_policy_violation');
    assert.equal((await gw.http.get('/session').set('Cookie', elsewhere)).status, 200, 'refusals end nothing');

    const ok = await api(gw, '/me/password', { currentPassword: MEMBER_PASSWORD, newPassword: NEW_PASSWORD }, here);
    assert.equal(ok.status, 204, ok.text);
    const rotated = sessionCookieOf(ok);
    assert.ok(rotated, 'this browser gets a fresh session id');
    secrets.push(rotated.split('=')[1]!);
    const mine = await gw.http.get('/session').set('Cookie', rotated);
    assert.equal(mine.status, 200, 'this browser stays signed in');
    assert.equal(mine.body.member.id, 'm-n');
    assert.equal((await gw.http.get('/session').set('Cookie', elsewhere)).status, 401, 'the other session ended');
    assert.equal((await gw.http.get('/session').set('Cookie', here)).status, 401, 'the old id of this browser is void');

    const [latest] = await gw.services.audit.list(DOMAIN, 1);
    assert.equal(latest?.type, 'member.password_changed');
    assert.equal(latest?.actor, 'member:m-n');
    // The new password signs in; the old one does not.
    await signIn(gw, 'n@nosso.example', NEW_PASSWORD);
    const ip = nextIp();
    const form = await gw.http.get(`/d/password-login/${DOMAIN}`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
    const old = await gw.http.post(`/d/password-login/${DOMAIN}`).type('form').set('X-Forwarded-For', ip).set('Cookie', `idpb_csrf=${csrf}`).send({ account: 'n@nosso.example', password: MEMBER_PASSWORD, csrf });
    assert.equal(old.status, 401);
  });

  it('password change counts wrong current passwords toward the account lockout', async () => {
    await gw.services.members.save(DOMAIN, { id: 'm-n-lock', account: 'lock@nosso.example', name: 'Lock', role: 'member', status: 'in_use', passwordHash: await hashPassword(MEMBER_PASSWORD) });
    const cookie = await signIn(gw, 'lock@nosso.example', MEMBER_PASSWORD);
    for (let i = 0; i < 5; i++) assert.equal((await api(gw, '/me/password', { currentPassword: `Wrong-${i}-password`, newPassword: NEW_PASSWORD }, cookie)).status, 401);
    const locked = await api(gw, '/me/password', { currentPassword: MEMBER_PASSWORD, newPassword: NEW_PASSWORD }, cookie);
    assert.equal(locked.status, 429);
    assert.equal(locked.body.error, 'account_locked');
    gw.clock.advance(15 * 60_000 + 1000);
    assert.equal((await api(gw, '/me/password', { currentPassword: MEMBER_PASSWORD, newPassword: NEW_PASSWORD }, cookie)).status, 204);
  });

  it('inviting: 403 forbidden for a normal member', async () => {
    await gw.services.members.save(DOMAIN, { id: 'm-n-plain', account: 'plain@nosso.example', name: 'Plain', role: 'member', status: 'in_use', passwordHash: await hashPassword(MEMBER_PASSWORD) });
    const plain = await signIn(gw, 'plain@nosso.example', MEMBER_PASSWORD);
    const res = await api(gw, '/invitations', { account: 'someone@nosso.example', name: 'Someone' }, plain);
    assert.equal(res.status, 403);
    assert.equal(res.body.error, 'forbidden');
    assert.equal(await gw.services.members.findByAccount(DOMAIN, 'someone@nosso.example'), null);
  });

  it('inviting and accepting: a pending member, a link shown once, a form, single use', async () => {
    const admin = await signIn(gw, 'admin@nosso.example', ADMIN_PASSWORD);
    const res = await api(gw, '/invitations', { account: 'Invitee@nosso.example', name: 'Invitee' }, admin);
    assert.equal(res.status, 201, res.text);
    const url = new URL(res.body.invitation.url as string);
    assert.equal(url.origin, PUBLIC_URL);
    const token = url.pathname.split('/').pop()!;
    secrets.push(token);
    const member = await gw.services.members.findById(DOMAIN, res.body.memberId as string);
    assert.equal(member?.status, 'pending');
    assert.equal(member?.account, 'invitee@nosso.example');
    assert.equal(member?.passwordHash, undefined);
    // The link is stored only as a digest.
    assert.equal(await gw.countKeys(`idpb:invitation:${token}`), 0);
    assert.equal(await gw.countKeys(`idpb:invitation:${digestForKey(token)}`), 1);
    const audit = await gw.services.audit.list(DOMAIN, 2);
    assert.deepEqual(audit.map((e) => e.type).sort(), ['invitation.created', 'member.created']);
    assert.ok(audit.every((e) => e.actor === 'member:m-n-admin'));
    const conflict = await api(gw, '/invitations', { account: 'invitee@nosso.example', name: 'Again' }, admin);
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error, 'account_conflict');

    const page = await gw.http.get(url.pathname);
    assert.equal(page.status, 200);
    assert.match(page.text, /invitee@nosso\.example/);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
    const post = (body: Record<string, string>, cookie = `idpb_csrf=${csrf}`): supertest.Test =>
      gw.http.post(url.pathname).type('form').set('X-Forwarded-For', nextIp()).set('Cookie', cookie).send(body);

    const noCsrf = await gw.http.post(url.pathname).type('form').send({ password: INVITEE_PASSWORD });
    assert.equal(noCsrf.status, 403);
    assert.equal(errorCodeOf(noCsrf), 'csrf_token_invalid');
    const weak = await post({ csrf, password: 'weak' });
    assert.equal(weak.status, 400);
    assert.equal(errorCodeOf(weak), 'password_policy_violation');
    assert.equal((await gw.services.members.findById(DOMAIN, member.id))?.status, 'pending', 'a refused password does not use the link up');

    const ok = await post({ csrf, password: INVITEE_PASSWORD });
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    const accepted = await gw.services.members.findById(DOMAIN, member.id);
    assert.equal(accepted?.status, 'in_use');
    assert.ok(accepted?.passwordHash);
    assert.equal((await gw.services.audit.list(DOMAIN, 1))[0]?.type, 'invitation.accepted');
    await signIn(gw, 'invitee@nosso.example', INVITEE_PASSWORD);

    const again = await post({ csrf, password: 'Another-pass-999' });
    assert.equal(again.status, 400);
    assert.equal(errorCodeOf(again), 'invitation_invalid');
    const reopen = await gw.http.get(url.pathname);
    assert.equal(reopen.status, 400);
    assert.equal(errorCodeOf(reopen), 'invitation_invalid');
    assert.equal(await gw.services.store.hLen(keys.invitations(DOMAIN)), 0);
  });

  it('an unknown, malformed or expired invitation link answers 400 invitation_invalid', async () => {
    for (const path of ['/d/invite/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '/d/invite/short', `/d/invite/${'%2F'.repeat(5)}`]) {
      const res = await gw.http.get(path);
      assert.equal(res.status, 400, path);
      assert.equal(errorCodeOf(res), 'invitation_invalid', path);
    }
    const admin = await signIn(gw, 'admin@nosso.example', ADMIN_PASSWORD);
    const res = await api(gw, '/invitations', { account: 'late@nosso.example', name: 'Late' }, admin);
    assert.equal(res.status, 201);
    const path = new URL(res.body.invitation.url as string).pathname;
    secrets.push(path.split('/').pop()!);
    assert.equal((await gw.http.get(path)).status, 200);
    gw.clock.advance(7 * 24 * 3600_000 + 1000);
    const expired = await gw.http.get(path);
    assert.equal(expired.status, 400);
    assert.equal(errorCodeOf(expired), 'invitation_invalid');
  });

  it('app passwords: created and shown once (stored hashed); 403 when the tenant switched them off', async () => {
    const cookie = await signIn(gw, 'admin@nosso.example', ADMIN_PASSWORD);
    const res = await api(gw, '/me/app-passwords', { name: 'Mail client' }, cookie);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.name, 'Mail client');
    assert.equal(typeof res.body.password, 'string');
    assert.ok((res.body.password as string).length >= 20);
    secrets.push(res.body.password as string);
    const member = await gw.services.members.findById(DOMAIN, 'm-n-admin');
    assert.equal(member?.appPasswords.length, 1);
    assert.ok(!JSON.stringify(member).includes(res.body.password as string));
    assert.equal((await gw.services.audit.list(DOMAIN, 1))[0]?.type, 'app_password.created');

    const tenant = await gw.services.tenants.load(DOMAIN);
    await gw.services.tenants.save({ ...tenant, thirdPartyAppPasswordsAllowed: false });
    const off = await api(gw, '/me/app-passwords', { name: 'Another' }, cookie);
    assert.equal(off.status, 403);
    assert.equal(off.body.error, 'forbidden');
    await gw.services.tenants.save(tenant);
  });

  it('while SSO is on, the same member is refused on every endpoint and invitation links are refused', async () => {
    const admin = await signIn(gw, 'admin@nosso.example', ADMIN_PASSWORD);
    const res = await api(gw, '/invitations', { account: 'pending2@nosso.example', name: 'Pending' }, admin);
    assert.equal(res.status, 201);
    const path = new URL(res.body.invitation.url as string).pathname;
    secrets.push(path.split('/').pop()!);
    const page = await gw.http.get(path);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;

    const tenant = await gw.services.tenants.load(DOMAIN);
    await gw.services.tenants.save({ ...tenant, sso: { ...tenant.sso, enabled: true } });
    try {
      for (const [endpoint, body] of ENDPOINTS) {
        const r = await api(gw, endpoint, endpoint === '/me/password' ? { currentPassword: ADMIN_PASSWORD, newPassword: NEW_PASSWORD } : body, admin);
        assert.equal(r.status, 409, endpoint);
        assert.equal(r.body.error, 'sso_enabled', endpoint);
      }
      const get = await gw.http.get(path);
      assert.equal(get.status, 409);
      assert.equal(errorCodeOf(get), 'sso_enabled');
      const post = await gw.http.post(path).type('form').set('X-Forwarded-For', nextIp()).set('Cookie', `idpb_csrf=${csrf}`).send({ csrf, password: INVITEE_PASSWORD });
      assert.equal(post.status, 409);
      assert.equal(errorCodeOf(post), 'sso_enabled');
      assert.equal((await gw.services.members.findByAccount(DOMAIN, 'pending2@nosso.example'))?.status, 'pending');
    } finally {
      await gw.services.tenants.save(tenant);
    }
  });

  it('an invitation withdrawn by switching SSO on (S-21) stays invalid after switching it off again', async () => {
    const admin = await signIn(gw, 'admin@nosso.example', ADMIN_PASSWORD);
    const res = await api(gw, '/invitations', { account: 'withdrawn@nosso.example', name: 'Withdrawn' }, admin);
    assert.equal(res.status, 201);
    const path = new URL(res.body.invitation.url as string).pathname;
    secrets.push(path.split('/').pop()!);
    const tenant = await gw.services.tenants.load(DOMAIN);
    await gw.services.ssoSwitch.apply(tenant, { ...tenant.sso, enabled: true });
    assert.equal(errorCodeOf(await gw.http.get(path)), 'sso_enabled');
    await gw.services.ssoSwitch.apply(await gw.services.tenants.load(DOMAIN), { ...tenant.sso, enabled: false });
    const after = await gw.http.get(path);
    assert.equal(after.status, 400);
    assert.equal(errorCodeOf(after), 'invitation_invalid');
  });

  it('never logs a password, a session id, an invitation token or an app password', () => {
    const text = gw.logText();
    for (const secret of secrets) assert.ok(!text.includes(secret), `a secret reached the log (${secret.slice(0, 4)}…)`);
  });
});
