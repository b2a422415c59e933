import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type supertest from 'supertest';
import { hashPassword } from '../../src/domain/passwords.js';
import { esc } from '../../src/http/views.js';
import { OPEN_REDIRECT_SHAPES } from '../fixtures/open-redirect-shapes.js';
import { PUBLIC_URL, SERVICE_ORIGIN, createGateway, errorCodeOf, sessionCookieOf, type Gateway } from '../helpers/gateway.js';

const DOMAIN = 'nosso.example';
const TARGET = `${SERVICE_ORIGIN}/board`;
const PASSWORD = 'Correct-horse-42';
const SUSPENDED_PASSWORD = 'Suspended-pass-77';
const SUPER_PASSWORD = 'Break-glass-secret-9';
const NORMAL_SSO_PASSWORD = 'Sso-member-pass-31';
const WRONG = 'Wrong-password-00';
const FIFTEEN_MIN = 15 * 60_000;

let ipCounter = 0;
/** A fresh client IP per scenario (the gateway trusts X-Forwarded-For in these tests), so per-IP limits do not mix. */
const nextIp = (): string => `198.51.100.${++ipCounter}`;

interface Form {
  csrf: string;
  cookie: string;
  html: string;
}

async function openForm(gw: Gateway, ip: string, domain = DOMAIN, accessUrl = TARGET): Promise<Form> {
  const res = await gw.http.get(`/d/password-login/${domain}`).query({ accessUrl }).set('X-Forwarded-For', ip);
  assert.equal(res.status, 200, res.text.slice(0, 300));
  const csrf = /name="csrf" value="([^"]+)"/.exec(res.text)?.[1];
  const setCookie = ((res.headers['set-cookie'] as string[] | undefined) ?? []).find((c) => c.startsWith('idpb_csrf='));
  assert.ok(csrf && setCookie, 'the form carries a token in a hidden field and a cookie');
  return { csrf, cookie: setCookie.split(';')[0]!, html: res.text };
}

interface PostOptions {
  account: string;
  password: string;
  accessUrl?: string;
  form?: Form | null;
  ip: string;
  domain?: string;
  extraCookie?: string;
  origin?: string;
}

async function postLogin(gw: Gateway, o: PostOptions): Promise<supertest.Response> {
  const domain = o.domain ?? DOMAIN;
  const form = o.form === undefined ? await openForm(gw, o.ip, domain) : o.form;
  const fields: Record<string, string> = { account: o.account, password: o.password, accessUrl: o.accessUrl ?? TARGET };
  if (form) fields.csrf = form.csrf;
  let req = gw.http.post(`/d/password-login/${domain}`).type('form').set('X-Forwarded-For', o.ip);
  const cookies = [form?.cookie, o.extraCookie].filter(Boolean);
  if (cookies.length) req = req.set('Cookie', cookies.join('; '));
  if (o.origin) req = req.set('Origin', o.origin);
  return req.send(fields);
}

/** The page without its per-request parts (support reference), to compare two refusals. */
const normalised = (html: string): string => html.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'REQ');

async function setPassword(gw: Gateway, domain: string, id: string, password: string): Promise<void> {
  const m = await gw.services.members.findById(domain, id);
  assert.ok(m);
  await gw.services.members.replace({ ...m, passwordHash: await hashPassword(password) });
}

async function createGw(): Promise<Gateway> {
  const gw = await createGateway({ overrides: { trustProxy: true } });
  await setPassword(gw, DOMAIN, 'm-n', PASSWORD);
  await gw.services.members.save(DOMAIN, { id: 'm-n-suspended', account: 'off@nosso.example', name: 'Off', role: 'member', status: 'suspended', passwordHash: await hashPassword(SUSPENDED_PASSWORD) });
  await gw.services.members.save('a.example', { id: 'm-a-super', account: 'boss@a.example', name: 'Boss A', externalKey: 'emp-900', role: 'super_admin', status: 'in_use', passwordHash: await hashPassword(SUPER_PASSWORD) });
  await setPassword(gw, 'a.example', 'm-a-active', NORMAL_SSO_PASSWORD);
  return gw;
}

describe('Password sign-in (S-4, S-23)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGw();
  });
  after(async () => gw.close());

  it('GET renders the form with a double-submit token and the checked accessUrl', async () => {
    const res = await gw.http.get(`/d/password-login/${DOMAIN}`).query({ accessUrl: TARGET });
    assert.equal(res.status, 200);
    assert.match(res.text, /<form method="post" action="\/d\/password-login\/nosso.example">/);
    assert.match(res.text, /name="account"/);
    assert.match(res.text, /type="password"/);
    assert.ok(res.text.includes(`name="accessUrl" value="${esc(TARGET)}"`), 'accessUrl travels in a hidden field');
    const setCookie = ((res.headers['set-cookie'] as string[] | undefined) ?? []).find((c) => c.startsWith('idpb_csrf='));
    assert.ok(setCookie);
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Strict/i);
    assert.match(setCookie, /Secure/i);
    assert.match(setCookie, /Path=\/d\//);
    const token = /name="csrf" value="([^"]+)"/.exec(res.text)?.[1];
    assert.equal(setCookie.split(';')[0], `idpb_csrf=${token}`);
  });

  it('GET answers 404 tenant_not_found for an unknown tenant', async () => {
    const res = await gw.http.get('/d/password-login/nobody.example');
    assert.equal(res.status, 404);
    assert.equal(errorCodeOf(res), 'tenant_not_found');
  });

  it('signs in: session (authMethod password, tenant retention), cookie, audit, 303 to exactly the accessUrl', async () => {
    const tenant = await gw.services.tenants.load(DOMAIN);
    await gw.services.tenants.save({ ...tenant, loginRetentionDays: 3 });
    const res = await postLogin(gw, { account: 'N@NOSSO.example', password: PASSWORD, ip: nextIp() });
    assert.equal(res.status, 303, res.text.slice(0, 300));
    assert.equal(res.headers.location, TARGET);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie);
    const setCookie = ((res.headers['set-cookie'] as string[] | undefined) ?? []).find((c) => c.startsWith('idpb_session=') && !c.startsWith('idpb_session=;'))!;
    assert.match(setCookie, /Max-Age=259200/);
    const session = await gw.http.get('/session').set('Cookie', cookie);
    assert.equal(session.status, 200);
    assert.equal(session.body.member.id, 'm-n');
    assert.equal(session.body.session.authMethod, 'password');
    assert.equal(Date.parse(session.body.session.expiresAt) - Date.parse(session.body.session.createdAt), 3 * 86_400_000);
    const [latest] = await gw.services.audit.list(DOMAIN, 1);
    assert.equal(latest?.type, 'login.succeeded');
    assert.equal(latest?.actor, 'member:m-n');
    assert.equal(latest?.data?.method, 'password');
    await gw.services.tenants.save({ ...tenant, loginRetentionDays: 1 });
  });

  it('a path accessUrl lands on the default service origin; a missing one on the default service URL', async () => {
    const ip = nextIp();
    const path = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, accessUrl: '/inbox?x=1', ip });
    assert.equal(path.status, 303);
    assert.equal(path.headers.location, `${SERVICE_ORIGIN}/inbox?x=1`);
    const none = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, accessUrl: '', ip });
    assert.equal(none.status, 303);
    assert.equal(none.headers.location, `${SERVICE_ORIGIN}/home`);
  });

  it('a new sign-in replaces the previous session of the browser', async () => {
    const ip = nextIp();
    const first = sessionCookieOf(await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip }))!;
    const second = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip, extraCookie: first });
    assert.equal(second.status, 303);
    assert.notEqual(sessionCookieOf(second), first);
    assert.equal((await gw.http.get('/session').set('Cookie', first)).status, 401);
  });

  it('wrong password and unknown account look the same: 401 invalid_credentials, no session, distinct audit reasons', async () => {
    const ip = nextIp();
    const wrong = await postLogin(gw, { account: 'n@nosso.example', password: WRONG, ip });
    const unknown = await postLogin(gw, { account: 'ghost@nosso.example', password: WRONG, ip });
    for (const res of [wrong, unknown]) {
      assert.equal(res.status, 401);
      assert.equal(errorCodeOf(res), 'invalid_credentials');
      assert.equal(sessionCookieOf(res), undefined);
      assert.equal(res.headers.location, undefined);
    }
    assert.equal(normalised(wrong.text), normalised(unknown.text), 'the pages are identical but for the support reference');
    const audit = await gw.services.audit.list(DOMAIN, 2);
    const reasons = audit.filter((e) => e.type === 'login.failed').map((e) => e.reason);
    assert.ok(reasons.includes('bad_password'));
    assert.ok(reasons.includes('unknown_account'));
    const byMember = audit.find((e) => e.reason === 'bad_password');
    assert.equal(byMember?.actor, 'member:m-n');
    assert.equal(audit.find((e) => e.reason === 'unknown_account')?.actor, 'anonymous');
  });

  it('a member with no password set is refused like a wrong password', async () => {
    await gw.services.members.save(DOMAIN, { id: 'm-n-nopw', account: 'nopw2@nosso.example', name: 'No pw', role: 'member', status: 'in_use' });
    const res = await postLogin(gw, { account: 'nopw2@nosso.example', password: '', ip: nextIp() });
    assert.equal(res.status, 400, 'an empty password is a bad request');
    const res2 = await postLogin(gw, { account: 'nopw2@nosso.example', password: 'anything-1234', ip: nextIp() });
    assert.equal(res2.status, 401);
    assert.equal(errorCodeOf(res2), 'invalid_credentials');
    assert.equal((await gw.services.audit.list(DOMAIN, 1))[0]?.reason, 'no_password');
  });

  it('member_not_active only after the right password (a wrong one reveals nothing about status)', async () => {
    const ip = nextIp();
    const wrong = await postLogin(gw, { account: 'off@nosso.example', password: WRONG, ip });
    assert.equal(wrong.status, 401);
    assert.equal(errorCodeOf(wrong), 'invalid_credentials');
    const right = await postLogin(gw, { account: 'off@nosso.example', password: SUSPENDED_PASSWORD, ip });
    assert.equal(right.status, 403);
    assert.equal(errorCodeOf(right), 'member_not_active');
    assert.equal(sessionCookieOf(right), undefined);
    const [latest] = await gw.services.audit.list(DOMAIN, 1);
    assert.equal(latest?.type, 'login.failed');
    assert.equal(latest?.reason, 'member_not_active');
  });

  it('refuses a missing, wrong or foreign-origin CSRF token with 403 csrf_token_invalid', async () => {
    const ip = nextIp();
    const form = await openForm(gw, ip);
    const other = await openForm(gw, nextIp());
    const cases: Array<[string, supertest.Test]> = [
      ['no token at all', gw.http.post(`/d/password-login/${DOMAIN}`).type('form').set('X-Forwarded-For', ip).send({ account: 'n@nosso.example', password: PASSWORD, accessUrl: TARGET })],
      ['cookie but no field', gw.http.post(`/d/password-login/${DOMAIN}`).type('form').set('X-Forwarded-For', ip).set('Cookie', form.cookie).send({ account: 'n@nosso.example', password: PASSWORD, accessUrl: TARGET })],
      ['field but no cookie', gw.http.post(`/d/password-login/${DOMAIN}`).type('form').set('X-Forwarded-For', ip).send({ account: 'n@nosso.example', password: PASSWORD, accessUrl: TARGET, csrf: form.csrf })],
      ['field of another browser', gw.http.post(`/d/password-login/${DOMAIN}`).type('form').set('X-Forwarded-For', ip).set('Cookie', form.cookie).send({ account: 'n@nosso.example', password: PASSWORD, accessUrl: TARGET, csrf: other.csrf })],
      ['malformed field', gw.http.post(`/d/password-login/${DOMAIN}`).type('form').set('X-Forwarded-For', ip).set('Cookie', form.cookie).send({ account: 'n@nosso.example', password: PASSWORD, accessUrl: TARGET, csrf: 'x' })],
      ['repeated field', gw.http.post(`/d/password-login/${DOMAIN}`).type('form').set('X-Forwarded-For', ip).set('Cookie', form.cookie).send(`account=n%40nosso.example&password=${PASSWORD}&csrf=${form.csrf}&csrf=${form.csrf}`)],
    ];
    for (const [name, t] of cases) {
      const res = await t;
      assert.equal(res.status, 403, name);
      assert.equal(errorCodeOf(res), 'csrf_token_invalid', name);
      assert.equal(sessionCookieOf(res), undefined, name);
    }
    const foreign = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip, form, origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.equal(errorCodeOf(foreign), 'csrf_token_invalid');
    const own = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip, form, origin: PUBLIC_URL });
    assert.equal(own.status, 303, 'the gateway\'s own Origin passes');
  });

  it('says Referrer-Policy same-origin, and takes `Origin: null` only from the same origin (Sec-Fetch-Site), with a valid token', async () => {
    const ip = nextIp();
    const form = await openForm(gw, ip);
    const post = (headers: Record<string, string>, csrf = form.csrf) => {
      let req = gw.http.post(`/d/password-login/${DOMAIN}`).type('form').set('X-Forwarded-For', ip).set('Cookie', form.cookie);
      for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
      return req.send({ account: 'n@nosso.example', password: PASSWORD, accessUrl: TARGET, csrf });
    };
    // What Chromium sends for a same-origin form post from a page served with `Referrer-Policy: no-referrer`.
    const chromiumNoReferrer = await post({ Origin: 'null', 'Sec-Fetch-Site': 'same-origin' });
    assert.equal(chromiumNoReferrer.status, 303, chromiumNoReferrer.text.slice(0, 300));
    const noFetchMetadata = await post({ Origin: 'null' });
    assert.equal(noFetchMetadata.status, 303, 'a browser without Sec-Fetch-Site: the token decides');
    const refused: Array<[string, Record<string, string>, string?]> = [
      ['Origin null without the token', { Origin: 'null', 'Sec-Fetch-Site': 'same-origin' }, 'A'.repeat(43)],
      ['Origin null from another site', { Origin: 'null', 'Sec-Fetch-Site': 'cross-site' }],
      ['Origin null from a sibling subdomain', { Origin: 'null', 'Sec-Fetch-Site': 'same-site' }],
      ['a sibling subdomain that planted the cookie', { 'Sec-Fetch-Site': 'same-site' }],
      ['our Origin but another site says Sec-Fetch-Site', { Origin: PUBLIC_URL, 'Sec-Fetch-Site': 'cross-site' }],
    ];
    for (const [name, headers, csrf] of refused) {
      const res = await post(headers, csrf);
      assert.equal(res.status, 403, name);
      assert.equal(errorCodeOf(res), 'csrf_token_invalid', name);
      assert.equal(sessionCookieOf(res), undefined, name);
    }
    const page = await gw.http.get(`/d/password-login/${DOMAIN}`).set('X-Forwarded-For', ip);
    assert.equal(page.headers['referrer-policy'], 'same-origin');
  });

  it('refuses every open-redirect shape on GET and POST (400 invalid_access_url, no session)', async () => {
    let ip = nextIp();
    let n = 0;
    const form = await openForm(gw, ip);
    for (const [name, shape] of OPEN_REDIRECT_SHAPES) {
      // Stay under the per-IP limit of the POST.
      if (++n % 20 === 0) ip = nextIp();
      const get = await gw.http.get(`/d/password-login/${DOMAIN}?accessUrl=${encodeURIComponent(shape)}`);
      assert.equal(get.status, 400, `GET ${name}`);
      assert.equal(errorCodeOf(get), 'invalid_access_url', `GET ${name}`);
      const post = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, accessUrl: shape, ip, form });
      assert.equal(post.status, 400, `POST ${name}`);
      assert.equal(errorCodeOf(post), 'invalid_access_url', `POST ${name}`);
      assert.equal(post.headers.location, undefined, `POST ${name}`);
      assert.equal(sessionCookieOf(post), undefined, `POST ${name}`);
    }
    const repeated = await gw.http.get(`/d/password-login/${DOMAIN}?accessUrl=${encodeURIComponent(TARGET)}&accessUrl=${encodeURIComponent('https://evil.example/')}`);
    assert.equal(repeated.status, 400);
    assert.equal(errorCodeOf(repeated), 'invalid_access_url');
    const repeatedPost = await gw.http
      .post(`/d/password-login/${DOMAIN}`)
      .type('form')
      .set('X-Forwarded-For', nextIp())
      .set('Cookie', form.cookie)
      .send(`account=n%40nosso.example&password=${PASSWORD}&csrf=${form.csrf}&accessUrl=${encodeURIComponent(TARGET)}&accessUrl=${encodeURIComponent('https://evil.example/')}`);
    assert.equal(repeatedPost.status, 400);
    assert.equal(errorCodeOf(repeatedPost), 'invalid_access_url');
  });

  it("accepts the tenant's own serviceOrigins only for that tenant", async () => {
    const tenant = await gw.services.tenants.load(DOMAIN);
    await gw.services.tenants.save({ ...tenant, serviceOrigins: ['https://intranet.nosso.example'] });
    const ok = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, accessUrl: 'https://intranet.nosso.example/x', ip: nextIp() });
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.location, 'https://intranet.nosso.example/x');
    const other = await gw.http.get('/d/password-login/nosso.example').query({ accessUrl: 'https://intranet.a.example/x' });
    assert.equal(other.status, 400);
    await gw.services.tenants.save(tenant);
  });
});

describe('Password sign-in lockout and rate limit', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGw();
  });
  after(async () => gw.close());

  it('locks an account after 5 failures in 15 minutes, even for the right password, until the window passes (injected clock)', async () => {
    const ip = nextIp();
    for (let i = 1; i <= 5; i++) {
      const res = await postLogin(gw, { account: 'n@nosso.example', password: `${WRONG}${i}`, ip });
      assert.equal(res.status, 401, `failure ${i}`);
      assert.equal(errorCodeOf(res), 'invalid_credentials');
      gw.clock.advance(10_000);
    }
    const locked = await postLogin(gw, { account: 'N@nosso.example', password: PASSWORD, ip: nextIp() });
    assert.equal(locked.status, 429);
    assert.equal(errorCodeOf(locked), 'account_locked');
    assert.equal(sessionCookieOf(locked), undefined);
    const audit = await gw.services.audit.list(DOMAIN, 10);
    assert.ok(audit.some((e) => e.type === 'login.locked' && e.actor === 'member:m-n'), 'the lock is audited');
    assert.equal(audit[0]?.reason, 'account_locked');

    // Still locked just before the oldest failure leaves the window …
    gw.clock.advance(FIFTEEN_MIN - 50_000 - 1_000);
    const stillLocked = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip: nextIp() });
    assert.equal(stillLocked.status, 429);
    // … and open once it has.
    gw.clock.advance(2_000);
    const open = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip: nextIp() });
    assert.equal(open.status, 303, open.text.slice(0, 300));
  });

  it('a success resets the count: only consecutive failures lock', async () => {
    const ip = nextIp();
    for (let i = 0; i < 4; i++) assert.equal((await postLogin(gw, { account: 'n@nosso.example', password: WRONG, ip })).status, 401);
    assert.equal((await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip })).status, 303);
    for (let i = 0; i < 4; i++) assert.equal((await postLogin(gw, { account: 'n@nosso.example', password: WRONG, ip })).status, 401);
    assert.equal((await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip })).status, 303);
  });

  it('failures spread over more than 15 minutes do not lock', async () => {
    const ip = nextIp();
    for (let i = 0; i < 6; i++) {
      assert.equal((await postLogin(gw, { account: 'n@nosso.example', password: WRONG, ip })).status, 401, `failure ${i + 1}`);
      gw.clock.advance(4 * 60_000);
    }
    assert.equal((await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip })).status, 303);
  });

  it('an unknown account locks exactly like a real one (the lockout reveals no account)', async () => {
    const ip = nextIp();
    for (let i = 0; i < 5; i++) assert.equal((await postLogin(gw, { account: 'ghost@nosso.example', password: WRONG, ip })).status, 401);
    const res = await postLogin(gw, { account: 'ghost@nosso.example', password: WRONG, ip });
    assert.equal(res.status, 429);
    assert.equal(errorCodeOf(res), 'account_locked');
    gw.clock.advance(FIFTEEN_MIN + 1_000);
  });

  it('limits POSTs per client IP: 429 rate_limited with Retry-After', async () => {
    const ip = nextIp();
    const form = await openForm(gw, ip);
    let limited: supertest.Response | undefined;
    let passed = 0;
    // 30 per fixed one-minute window; two windows at most if the run straddles a minute boundary.
    for (let i = 0; i < 62 && !limited; i++) {
      // Distinct accounts, so the account lockout does not answer first. A missing password is refused
      // at once (400) after the limiter has counted the request.
      const res = await gw.http
        .post(`/d/password-login/${DOMAIN}`)
        .type('form')
        .set('X-Forwarded-For', ip)
        .set('Cookie', form.cookie)
        .send({ account: `probe${i}@nosso.example`, csrf: form.csrf, accessUrl: TARGET });
      if (res.status === 429) limited = res;
      else passed++;
    }
    assert.ok(limited, 'the limit answered');
    assert.equal(errorCodeOf(limited), 'rate_limited');
    assert.ok(Number(limited.headers['retry-after']) > 0);
    assert.ok(passed >= 30, `${passed} passed before the limit`);
    // Another client is not affected.
    const other = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip: nextIp() });
    assert.equal(other.status, 303);
  });
});

describe('Password sign-in while SSO is on (S-23 break-glass)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGw();
  });
  after(async () => gw.close());

  it('refuses a normal member with 409 sso_enabled, also with the right password', async () => {
    for (const password of [NORMAL_SSO_PASSWORD, WRONG]) {
      const res = await postLogin(gw, { account: 'active@a.example', password, ip: nextIp(), domain: 'a.example' });
      assert.equal(res.status, 409, password);
      assert.equal(errorCodeOf(res), 'sso_enabled');
      assert.equal(sessionCookieOf(res), undefined);
    }
  });

  it('answers 409 sso_enabled alike for an unknown account and a wrong super-admin password (nothing to enumerate)', async () => {
    const unknown = await postLogin(gw, { account: 'ghost@a.example', password: WRONG, ip: nextIp(), domain: 'a.example' });
    const wrongSuper = await postLogin(gw, { account: 'boss@a.example', password: WRONG, ip: nextIp(), domain: 'a.example' });
    for (const res of [unknown, wrongSuper]) {
      assert.equal(res.status, 409);
      assert.equal(errorCodeOf(res), 'sso_enabled');
    }
    assert.equal(normalised(unknown.text), normalised(wrongSuper.text));
  });

  it('lets the super admin in with the right password, audited as login.break_glass with a warn log line', async () => {
    const form = await openForm(gw, nextIp(), 'a.example');
    assert.match(form.html, /emergency sign-in/);
    const res = await postLogin(gw, { account: 'boss@a.example', password: SUPER_PASSWORD, ip: nextIp(), domain: 'a.example', form });
    assert.equal(res.status, 303, res.text.slice(0, 300));
    assert.equal(res.headers.location, TARGET);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie);
    const session = await gw.http.get('/session').set('Cookie', cookie);
    assert.equal(session.body.member.id, 'm-a-super');
    assert.equal(session.body.session.authMethod, 'password');
    const [latest] = await gw.services.audit.list('a.example', 1);
    assert.equal(latest?.type, 'login.break_glass');
    assert.equal(latest?.actor, 'member:m-a-super');
    assert.equal(latest?.data?.method, 'password');
    assert.ok(gw.logs.some((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.includes('break-glass')), 'a warn line is logged');
  });

  it('refuses the super admin too once the tenant switched break-glass off', async () => {
    const tenant = await gw.services.tenants.load('a.example');
    await gw.services.tenants.save({ ...tenant, superAdminBreakGlass: false });
    const form = await gw.http.get('/d/password-login/a.example').query({ accessUrl: TARGET });
    assert.equal(form.status, 409);
    assert.equal(errorCodeOf(form), 'sso_enabled');
    // A form page opened before the switch.
    const earlier = await openForm(gw, nextIp(), DOMAIN);
    const res = await postLogin(gw, { account: 'boss@a.example', password: SUPER_PASSWORD, ip: nextIp(), domain: 'a.example', form: earlier });
    assert.equal(res.status, 409);
    assert.equal(errorCodeOf(res), 'sso_enabled');
    assert.equal(sessionCookieOf(res), undefined);
    const [latest] = await gw.services.audit.list('a.example', 1);
    assert.equal(latest?.type, 'login.failed');
    assert.equal(latest?.reason, 'break_glass_disabled');
    await gw.services.tenants.save(tenant);
  });

  it('never logs a password', () => {
    const text = gw.logText();
    for (const secret of [SUPER_PASSWORD, NORMAL_SSO_PASSWORD, WRONG]) assert.ok(!text.includes(secret), 'password in the log');
  });
});

describe('Password sign-in logs', () => {
  it('never log a password, a session cookie or a form token', async () => {
    const gw = await createGw();
    try {
      const ip = nextIp();
      const form = await openForm(gw, ip);
      const ok = await postLogin(gw, { account: 'n@nosso.example', password: PASSWORD, ip, form });
      await postLogin(gw, { account: 'n@nosso.example', password: WRONG, ip });
      await postLogin(gw, { account: 'off@nosso.example', password: SUSPENDED_PASSWORD, ip });
      const cookie = sessionCookieOf(ok)!.split('=')[1]!;
      const text = gw.logText();
      for (const secret of [PASSWORD, WRONG, SUSPENDED_PASSWORD, cookie, form.csrf]) assert.ok(!text.includes(secret), 'secret in the log');
    } finally {
      await gw.close();
    }
  });
});
