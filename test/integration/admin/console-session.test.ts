import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { checkAccessUrl } from '../../../src/domain/access-url.js';
import { hashPassword } from '../../../src/domain/passwords.js';
import { AppError } from '../../../src/errors/index.js';
import { b64, createGateway, type Gateway, OPERATOR_AUTH, PUBLIC_URL, responseSpec, signed } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

/**
 * The console's sign-in and its session, over real HTTP with a hand-rolled cookie jar, as a browser
 * would go: /console/auth/start → the tenant's login (SAML IdP or password page) → /console/auth/complete
 * → the console cookie, then the admin API with it (docs/spec.md §11).
 */

const COOKIE = '__Host-idpb_console';
const MINUTE = 60_000;
const PASSWORD = 'Console-pass-2026';

/** One browser: a cookie jar (names only: every cookie goes to every path, as the tests need), no redirects followed by itself. */
class Browser {
  readonly jar = new Map<string, string>();
  /** Every Set-Cookie line seen for a name (the last one last). */
  readonly setCookies = new Map<string, string>();
  constructor(private readonly base: string) {}

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** `path` is a path or a URL on the gateway's public origin (it is sent to the test server). */
  async request(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    const url = path.startsWith(PUBLIC_URL) ? path.slice(PUBLIC_URL.length) : path;
    assert.ok(url.startsWith('/'), `not a gateway URL: ${path}`);
    const headers: Record<string, string> = { ...init.headers };
    if (this.jar.size) headers.cookie = this.cookieHeader();
    const res = await fetch(`${this.base}${url}`, { method: init.method ?? 'GET', headers, body: init.body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      this.setCookies.set(name, line);
      if (value === '' || /max-age=0/i.test(line)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return res;
  }

  /**
   * Follows redirects on the gateway's origin; stops at a redirect elsewhere (the IdP) or to the
   * console's own page (`/console/…`, served by the front end), returning that redirect.
   */
  async follow(res: Response): Promise<Response> {
    for (let hops = 0; hops < 10 && res.status >= 300 && res.status < 400; hops++) {
      const location = res.headers.get('location')!;
      const onGateway = location.startsWith('/') || location.startsWith(`${PUBLIC_URL}/`);
      const path = location.startsWith(PUBLIC_URL) ? location.slice(PUBLIC_URL.length) : location;
      if (!onGateway || (path.startsWith('/console/') && !path.startsWith('/console/auth/'))) return res;
      res = await this.request(path);
    }
    return res;
  }

  /** The admin API with the console cookie, as the console's fetch calls send it. */
  api(method: string, path: string, options: { body?: unknown; csrf?: string | null; site?: string | null } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.csrf) headers['x-csrf-token'] = options.csrf;
    if (options.site !== null) headers['sec-fetch-site'] = options.site ?? 'same-origin';
    return this.request(`/admin/v1${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  }
}

describe('console sign-in and console sessions', () => {
  let gw: Gateway;
  let server: Server;
  let base: string;

  before(async () => {
    gw = await createGateway();
    const passwordHash = await hashPassword(PASSWORD);
    const m = gw.services.members;
    await m.save('a.example', { id: 'm-a-super', account: 'super@a.example', name: 'Super A', externalKey: 'emp-100', role: 'super_admin', status: 'in_use', passwordHash });
    await m.save('a.example', { id: 'm-a-admin', account: 'admin@a.example', name: 'Admin A', externalKey: 'emp-101', role: 'admin', status: 'in_use' });
    await m.save('a.example', { id: 'm-a-admin2', account: 'admin2@a.example', name: 'Admin Two', externalKey: 'emp-102', role: 'admin', status: 'in_use' });
    await m.save('nosso.example', { id: 'm-n-super', account: 'super@nosso.example', name: 'Super N', role: 'super_admin', status: 'in_use', passwordHash });
    server = gw.app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await gw.close();
  });

  const operator = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${base}/admin/v1${path}`, {
      method,
      headers: { authorization: OPERATOR_AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  /** Password sign-in through the console: start → form → post → complete. Returns the last redirect. */
  async function signInByPassword(browser: Browser, domain: string, account: string, method: 'sso' | 'password' = 'password'): Promise<Response> {
    const form = await browser.follow(await browser.request(`/console/auth/start?domain=${domain}&method=${method}`));
    assert.equal(form.status, 200, 'the password form');
    const html = await form.text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    const accessUrl = /name="accessUrl" value="([^"]+)"/.exec(html)![1]!.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
    assert.equal(accessUrl, `${PUBLIC_URL}/console/auth/complete?domain=${domain}`);
    const posted = await browser.request(`/d/password-login/${domain}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ csrf, accessUrl, account, password: PASSWORD }).toString(),
    });
    assert.equal(posted.status, 303, `password login: ${posted.status}`);
    return browser.follow(posted);
  }

  /** SAML sign-in through the console: start → IdP redirect → a signed response to the ACS → complete. */
  async function signInBySaml(browser: Browser, domain: string, nameId: string): Promise<Response> {
    const atIdp = await browser.follow(await browser.request(`/console/auth/start?domain=${domain}`));
    assert.equal(atIdp.status, 302);
    const redirect = new URL(atIdp.headers.get('location')!);
    assert.ok(redirect.href.startsWith(idps.a.ssoUrl), `to the IdP: ${redirect.href}`);
    const relayState = redirect.searchParams.get('RelayState')!;
    const authnRequest = inflateRawSync(Buffer.from(redirect.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const requestId = /\sID="([^"]+)"/.exec(authnRequest)![1]!;
    const samlResponse = b64(signed(buildSamlResponseXml(responseSpec(gw, domain, idps.a, requestId, nameId)), idps.a));
    const acs = await browser.request(`/acs/${domain}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: samlResponse, RelayState: relayState }).toString(),
    });
    assert.equal(acs.status, 303, `ACS: ${acs.status} ${acs.status === 303 ? '' : await acs.text()}`);
    assert.equal(acs.headers.get('location'), `${PUBLIC_URL}/console/auth/complete?domain=${domain}`);
    return browser.follow(acs);
  }

  async function session(browser: Browser): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await browser.api('GET', '/session');
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  async function auditOf(domain: string): Promise<Array<{ type: string; actor: string; reason?: string; data?: Record<string, unknown> }>> {
    const res = await operator('GET', `/domains/${domain}/audit?limit=100`);
    return ((await res.json()) as { events: Array<{ type: string; actor: string; reason?: string; data?: Record<string, unknown> }> }).events;
  }

  it('a super admin signs in by password and gets a Strict, HttpOnly, __Host- console cookie; /session shows role and CSRF token', async () => {
    const browser = new Browser(base);
    const done = await signInByPassword(browser, 'nosso.example', 'super@nosso.example');
    assert.equal(done.status, 303);
    assert.equal(done.headers.get('location'), '/console/');
    const line = browser.setCookies.get(COOKIE)!;
    assert.ok(line, 'the console cookie is set');
    assert.match(line, /HttpOnly/i);
    assert.match(line, /SameSite=Strict/i);
    assert.match(line, /Path=\/(;|$)/);
    assert.match(line, /Secure/i);
    assert.doesNotMatch(line, /Domain=/i);
    assert.ok(browser.jar.has('idpb_session'), 'the employee session made by the login is kept');

    const { status, body } = await session(browser);
    assert.equal(status, 200);
    assert.equal(body.kind, 'member');
    assert.equal(body.domain, 'nosso.example');
    assert.deepEqual(body.member, { id: 'm-n-super', account: 'super@nosso.example', name: 'Super N', role: 'super_admin' });
    assert.match(String(body.csrfToken), /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(body.permissions, { read: true, write: true, super: true });
    assert.equal(body.signInMethod, 'password');
    assert.deepEqual(body.breakGlass, { enabled: true });
    assert.equal(Date.parse(String(body.idleExpiresAt)), gw.clock.now() + 30 * MINUTE);
    assert.equal(Date.parse(String(body.absoluteExpiresAt)), gw.clock.now() + 8 * 60 * MINUTE);
    assert.equal(body.apiKey, null);
  });

  it('a write needs X-CSRF-Token equal to the session token, and Sec-Fetch-Site, when sent, must be same-origin', async () => {
    const browser = new Browser(base);
    await signInByPassword(browser, 'nosso.example', 'super@nosso.example');
    const csrf = String((await session(browser)).body.csrfToken);

    const without = await browser.api('POST', '/domains/nosso.example/api-keys', { body: { name: 'ci' } });
    assert.equal(without.status, 403);
    assert.equal(((await without.json()) as { error: string }).error, 'csrf_failed');
    const wrong = await browser.api('POST', '/domains/nosso.example/api-keys', { body: { name: 'ci' }, csrf: 'A'.repeat(43) });
    assert.equal(wrong.status, 403);
    assert.equal(((await wrong.json()) as { error: string }).error, 'csrf_failed');
    const crossSite = await browser.api('POST', '/domains/nosso.example/api-keys', { body: { name: 'ci' }, csrf, site: 'cross-site' });
    assert.equal(crossSite.status, 403);
    assert.equal(((await crossSite.json()) as { error: string }).error, 'csrf_failed');
    const sameSite = await browser.api('GET', '/session', { site: 'same-site' });
    assert.equal(sameSite.status, 403, 'a sibling subdomain is not the console either');
    assert.equal((await operator('GET', '/domains/nosso.example/api-keys').then((r) => r.json()) as { apiKeys: unknown[] }).apiKeys.length, 0, 'nothing was created');

    const ok = await browser.api('POST', '/domains/nosso.example/api-keys', { body: { name: 'ci' }, csrf });
    assert.equal(ok.status, 201);
    const noHeader = await browser.api('PATCH', '/domains/nosso.example', { body: { name: 'No SSO, renamed' }, csrf, site: null });
    assert.equal(noHeader.status, 200, 'a browser that sends no Sec-Fetch-Site relies on the token');

    // Another tenant is out of reach, as for a tenant key.
    const other = await browser.api('GET', '/domains/a.example');
    assert.equal(other.status, 404);
    assert.equal(((await other.json()) as { error: string }).error, 'tenant_not_found');

    const events = await auditOf('nosso.example');
    const created = events.find((e) => e.type === 'api_key.created');
    assert.equal(created?.actor, 'member:m-n-super');
    assert.equal(events.find((e) => e.type === 'domain.updated')?.actor, 'member:m-n-super');
    const signedIn = events.find((e) => e.type === 'console.signed_in');
    assert.equal(signedIn?.actor, 'member:m-n-super');
    assert.equal(signedIn?.data?.method, 'password');
  });

  it('an Authorization header wins over the cookie: a bad key is 401 even with a live console session', async () => {
    const browser = new Browser(base);
    await signInByPassword(browser, 'nosso.example', 'super@nosso.example');
    const res = await browser.request('/admin/v1/session', { headers: { authorization: 'Bearer nope' } });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: string }).error, 'unauthorized');
    const none = await fetch(`${base}/admin/v1/session`);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: string }).error, 'unauthorized');
  });

  it('an admin signs in through SAML SSO; may write but is refused what needs a super admin', async () => {
    const browser = new Browser(base);
    const done = await signInBySaml(browser, 'a.example', 'emp-101');
    assert.equal(done.headers.get('location'), '/console/');
    const { body } = await session(browser);
    assert.equal((body.member as { role: string }).role, 'admin');
    assert.equal(body.signInMethod, 'saml');
    assert.deepEqual(body.permissions, { read: true, write: true, super: false });
    const csrf = String(body.csrfToken);

    const rename = await browser.api('PATCH', '/domains/a.example/members/m-a-active', { body: { name: 'Active A, renamed' }, csrf });
    assert.equal(rename.status, 200);
    assert.equal(((await rename.json()) as { name: string }).name, 'Active A, renamed');

    const refusals: Array<[string, string, unknown]> = [
      ['POST', '/domains/a.example/api-keys', { name: 'mine' }],
      ['PATCH', '/domains/a.example/members/m-a-active', { role: 'super_admin' }],
      ['PATCH', '/domains/a.example/members/m-a-super', { name: 'Renamed by an admin' }],
      ['PATCH', '/domains/a.example/members/m-a-super', { externalKey: 'emp-101-takeover' }],
      ['DELETE', '/domains/a.example/members/m-a-super', undefined],
      ['POST', '/domains/a.example/members', { account: 'new-super@a.example', name: 'New', externalKey: 'emp-555', role: 'super_admin', status: 'in_use' }],
      ['PUT', '/domains/a.example/mdm', { mode: 'external' }],
      ['PATCH', '/domains/a.example', { superAdminBreakGlass: false }],
      // A super admin's external key is theirs: an admin who set it could sign in as them at the IdP.
      ['POST', '/domains/a.example/external-keys', { users: [{ id: 'super@a.example', externalKey: 'emp-101-takeover' }] }],
    ];
    for (const [method, path, payload] of refusals) {
      const res = await browser.api(method, path, { body: payload, csrf });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(((await res.json()) as { error: string }).error, 'forbidden', `${method} ${path}`);
    }
    const csvFor = async (csv: string): Promise<Response> =>
      browser.request('/admin/v1/domains/a.example/external-keys.csv', { method: 'PUT', headers: { 'content-type': 'text/csv', 'x-csrf-token': csrf, 'sec-fetch-site': 'same-origin' }, body: csv });
    const viaCsv = await csvFor('account,name,externalKey\r\nsuper@a.example,Super A,emp-101-takeover\r\n');
    assert.equal(viaCsv.status, 403, 'external-key CSV touching a super admin');
    assert.equal(((await viaCsv.json()) as { error: string }).error, 'forbidden');
    // The same file without the super admin applies: the admin may map everyone else.
    await gw.services.members.save('a.example', { id: 'm-a-csv', account: 'csv@a.example', name: 'Csv Member', externalKey: 'emp-300', role: 'member', status: 'in_use' });
    const allowed = await csvFor('account,name,externalKey\r\ncsv@a.example,Csv Member,emp-300-new\r\n');
    assert.equal(allowed.status, 200, await allowed.clone().text());
    const superAdmin = await gw.services.members.findById('a.example', 'm-a-super');
    assert.equal(superAdmin?.name, 'Super A');
    assert.equal(superAdmin?.externalKey, 'emp-100');
    assert.equal((await gw.services.tenants.find('a.example'))?.superAdminBreakGlass, true);

    const events = await auditOf('a.example');
    assert.equal(events.find((e) => e.type === 'member.updated')?.actor, 'member:m-a-admin');
    assert.ok(events.some((e) => e.type === 'console.signed_in' && e.actor === 'member:m-a-admin' && e.data?.method === 'saml'));
  });

  it('a super admin signs in through SAML SSO and may do what needs super', async () => {
    const browser = new Browser(base);
    await signInBySaml(browser, 'a.example', 'emp-100');
    const { body } = await session(browser);
    assert.equal((body.member as { role: string }).role, 'super_admin');
    const res = await browser.api('POST', '/domains/a.example/api-keys', { body: { name: 'automation', scope: 'read' }, csrf: String(body.csrfToken) });
    assert.equal(res.status, 201);
    assert.equal(((await res.json()) as { scope: string }).scope, 'read');
  });

  it('break-glass: with SSO on, the super admin signs in to the console by password (method=password)', async () => {
    const browser = new Browser(base);
    const done = await signInByPassword(browser, 'a.example', 'super@a.example');
    assert.equal(done.headers.get('location'), '/console/');
    const { body } = await session(browser);
    assert.equal(body.signInMethod, 'password');
    assert.deepEqual(body.breakGlass, { enabled: true });
    const signedIn = (await auditOf('a.example')).find((e) => e.type === 'console.signed_in');
    assert.equal(signedIn?.data?.breakGlass, true);
  });

  it('a plain member is refused the console (303 not_admin), audited, and gets no console cookie', async () => {
    const browser = new Browser(base);
    const done = await signInBySaml(browser, 'a.example', 'emp-001');
    assert.equal(done.status, 303);
    assert.equal(done.headers.get('location'), '/console/?signInError=not_admin');
    assert.ok(!browser.jar.has(COOKIE));
    const refused = (await auditOf('a.example')).find((e) => e.type === 'console.sign_in_refused');
    assert.equal(refused?.actor, 'member:m-a-active');
    assert.equal(refused?.reason, 'not_admin');
  });

  it('complete without a fresh employee session of that tenant is not_signed_in', async () => {
    const nobody = new Browser(base);
    const res = await nobody.request('/console/auth/complete?domain=a.example');
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/console/?signInError=not_signed_in');

    // An older employee session (here 11 minutes) must not mint console sessions: sign in again.
    const browser = new Browser(base);
    await signInBySaml(browser, 'a.example', 'emp-101');
    browser.jar.delete(COOKIE);
    gw.clock.advance(11 * MINUTE);
    const stale = await browser.request('/console/auth/complete?domain=a.example');
    assert.equal(stale.headers.get('location'), '/console/?signInError=not_signed_in');
    // Another tenant's session is no sign-in to this one.
    const other = await browser.request('/console/auth/complete?domain=b.example');
    assert.equal(other.headers.get('location'), '/console/?signInError=not_signed_in');
  });

  it('start refuses an unknown tenant or method with an HTML error page, and the complete URL is allowed only exactly', async () => {
    const browser = new Browser(base);
    const unknown = await browser.request('/console/auth/start?domain=none.example');
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers.get('content-type') ?? '', /html/);
    const method = await browser.request('/console/auth/start?domain=a.example&method=magic');
    assert.equal(method.status, 400);
    // Outside production the loader adds the gateway's own origin to serviceOrigins (the demo's /welcome);
    // without it — as in production — only the complete URL itself of the gateway's origin passes.
    const policy = gw.services.accessUrlPolicy((await gw.services.tenants.find('a.example'))!);
    const production = { ...policy, allowedOrigins: policy.allowedOrigins.filter((o) => o !== PUBLIC_URL) };
    for (const target of [
      `${PUBLIC_URL}/console/auth/completely`,
      `${PUBLIC_URL}/console/auth/complete/`,
      `${PUBLIC_URL}/console/auth/%63omplete`,
      `${PUBLIC_URL}/console/`,
      `${PUBLIC_URL}/admin/v1/session`,
      `${PUBLIC_URL}:8443/console/auth/complete`,
    ]) {
      assert.throws(() => checkAccessUrl(target, production), (err: unknown) => err instanceof AppError && err.code === 'invalid_access_url', target);
    }
    assert.equal(checkAccessUrl(`${PUBLIC_URL}/console/auth/complete?domain=a.example`, production), `${PUBLIC_URL}/console/auth/complete?domain=a.example`);
    assert.equal(checkAccessUrl(`${PUBLIC_URL}/console/auth/x/../complete?domain=a.example`, production), `${PUBLIC_URL}/console/auth/complete?domain=a.example`);
    const ok = await browser.request(`/d/login/a.example?${new URLSearchParams({ accessUrl: `${PUBLIC_URL}/console/auth/complete?domain=a.example` }).toString()}`);
    assert.equal(ok.status, 302);
  });

  it('the idle timeout slides on use; 30 idle minutes end the session', async () => {
    const browser = new Browser(base);
    await signInBySaml(browser, 'a.example', 'emp-101');
    for (let i = 0; i < 3; i++) {
      gw.clock.advance(29 * MINUTE);
      assert.equal((await session(browser)).status, 200, `use ${i + 1}, 29 minutes after the last`);
    }
    gw.clock.advance(30 * MINUTE);
    const res = await browser.api('GET', '/session');
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: string }).error, 'console_session_expired');
    assert.match(browser.setCookies.get(COOKIE)!, /Max-Age=0/i, 'the cookie is cleared');
  });

  it('the absolute timeout ends the session after 8 hours, however busy', async () => {
    const browser = new Browser(base);
    await signInBySaml(browser, 'a.example', 'emp-101');
    const cookie = browser.jar.get(COOKIE)!;
    for (let elapsed = 0; elapsed < 7 * 60 + 45; elapsed += 25) {
      gw.clock.advance(25 * MINUTE);
      assert.equal((await session(browser)).status, 200, `after ${elapsed + 25} minutes`);
    }
    gw.clock.advance(20 * MINUTE); // 8 h 10 min after sign-in, 20 min after the last use
    const res = await browser.api('GET', '/session');
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: string }).error, 'console_session_expired');
    browser.jar.set(COOKIE, cookie);
    gw.clock.advance(-60 * MINUTE);
    assert.equal((await browser.api('GET', '/session')).status, 401, 'the ended session is deleted, not just hidden');
  });

  it('demoting the admin ends their console access at once', async () => {
    const browser = new Browser(base);
    await signInBySaml(browser, 'a.example', 'emp-102');
    assert.equal((await session(browser)).status, 200);
    assert.equal((await operator('PATCH', '/domains/a.example/members/m-a-admin2', { role: 'member' })).status, 200);
    const res = await browser.api('GET', '/session');
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: string }).error, 'console_session_expired');
    // Promoted again, the old session stays ended.
    const cookie = browser.setCookies.get(COOKIE);
    assert.match(cookie!, /Max-Age=0/i);
    assert.equal((await operator('PATCH', '/domains/a.example/members/m-a-admin2', { role: 'admin' })).status, 200);
    const ended = (await auditOf('a.example')).find((e) => e.type === 'console.session_ended');
    assert.equal(ended?.actor, 'member:m-a-admin2');
    assert.equal(ended?.reason, 'not_admin');
  });

  it('a suspended admin loses console access at once', async () => {
    const browser = new Browser(base);
    await signInBySaml(browser, 'a.example', 'emp-102');
    const cookie = browser.jar.get(COOKIE)!;
    await operator('PATCH', '/domains/a.example/members/m-a-admin2', { status: 'suspended' });
    assert.equal((await browser.api('GET', '/session')).status, 401);
    await operator('PATCH', '/domains/a.example/members/m-a-admin2', { status: 'in_use' });
    browser.jar.set(COOKIE, cookie);
    assert.equal((await browser.api('GET', '/session')).status, 401, 'the session was ended, not paused');
  });

  it('DELETE /admin/v1/session signs out (CSRF-checked), clears the cookie, and is audited', async () => {
    const browser = new Browser(base);
    await signInBySaml(browser, 'a.example', 'emp-101');
    const cookie = browser.jar.get(COOKIE)!;
    const csrf = String((await session(browser)).body.csrfToken);
    assert.equal((await browser.api('DELETE', '/session')).status, 403, 'no token: no sign-out (no logout CSRF)');
    const out = await browser.api('DELETE', '/session', { csrf });
    assert.equal(out.status, 204);
    assert.match(browser.setCookies.get(COOKIE)!, /Max-Age=0/i);
    assert.ok(!browser.jar.has(COOKIE));
    browser.jar.set(COOKIE, cookie);
    const after = await browser.api('GET', '/session');
    assert.equal(after.status, 401);
    assert.equal(((await after.json()) as { error: string }).error, 'console_session_expired');
    const signedOut = (await auditOf('a.example')).find((e) => e.type === 'console.signed_out');
    assert.equal(signedOut?.actor, 'member:m-a-admin');
  });

  it('GET /admin/v1/session answers for keys too: the operator, and a tenant key with its scope', async () => {
    const op = await operator('GET', '/session');
    assert.equal(op.status, 200);
    const body = (await op.json()) as Record<string, unknown>;
    assert.equal(body.kind, 'operator');
    assert.equal(body.domain, null);
    assert.equal(body.member, null);
    assert.equal(body.csrfToken, null);
    assert.deepEqual(body.permissions, { read: true, write: true, super: true });
    const created = (await (await operator('POST', '/domains/a.example/api-keys', { name: 'reader', scope: 'read' })).json()) as { key: string; id: string };
    const res = await fetch(`${base}/admin/v1/session`, { headers: { authorization: `Bearer ${created.key}` } });
    const key = (await res.json()) as Record<string, unknown>;
    assert.equal(key.kind, 'tenant');
    assert.equal(key.domain, 'a.example');
    assert.deepEqual(key.permissions, { read: true, write: false, super: false });
    assert.deepEqual(key.apiKey, { id: created.id, scope: 'read' });
    assert.deepEqual(key.breakGlass, { enabled: true });
    const out = await fetch(`${base}/admin/v1/session`, { method: 'DELETE', headers: { authorization: `Bearer ${created.key}` } });
    assert.equal(out.status, 204, 'signing out is not a write, even for a read-only key');
  });
});
