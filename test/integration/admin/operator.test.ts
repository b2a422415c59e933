/* eslint-disable @typescript-eslint/no-explicit-any -- the JSON answers are read field by field, as the assertions check them */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkerHeartbeat } from '../../../src/admin/health.js';
import { keys } from '../../../src/store/index.js';
import { createGateway, type Gateway, OPERATOR_AUTH, PUBLIC_URL } from '../../helpers/gateway.js';

/**
 * The operator's view over real HTTP: the console sign-in with the operator key, the domain list and a
 * domain created with its first super admin, plans, the OP's service clients (seen by a second gateway
 * instance on the same Redis without a restart) and health at a glance (docs/spec.md §11).
 */

const COOKIE = '__Host-idpb_console';
const OPERATOR_KEY = OPERATOR_AUTH.slice('Bearer '.length);

/** One browser: a cookie jar, redirects not followed. */
class Browser {
  readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}
  async request(path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(`${this.base}${path}`, { method: init.method ?? 'GET', headers, body: init.body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (value === '' || /max-age=0/i.test(line)) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return res;
  }
  api(method: string, path: string, options: { body?: unknown; csrf?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = { 'sec-fetch-site': 'same-origin' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.csrf) headers['x-csrf-token'] = options.csrf;
    return this.request(`/admin/v1${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  }
}

async function listen(gw: Gateway): Promise<{ server: Server; base: string }> {
  const server = gw.app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('operator view', () => {
  let gw: Gateway;
  let gw2: Gateway;
  let server: Server;
  let server2: Server;
  let base: string;
  let base2: string;

  before(async () => {
    gw = await createGateway();
    gw2 = await createGateway({ store: gw.store, clock: gw.clock });
    ({ server, base } = await listen(gw));
    ({ server: server2, base: base2 } = await listen(gw2));
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => server2.close(() => resolve()));
    await gw2.close();
    await gw.close();
  });

  const operator = (method: string, path: string, body?: unknown, at = base): Promise<Response> =>
    fetch(`${at}/admin/v1${path}`, {
      method,
      headers: { authorization: OPERATOR_AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  async function operatorForm(browser: Browser): Promise<string> {
    const form = await browser.request('/console/auth/operator');
    assert.equal(form.status, 200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())![1]!;
    assert.match(browser.jar.get('idpb_csrf') ?? '', /^[A-Za-z0-9_-]{43}$/);
    return csrf;
  }

  const postKey = (browser: Browser, csrf: string, key: string, headers: Record<string, string> = {}): Promise<Response> =>
    browser.request('/console/auth/operator', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL, 'sec-fetch-site': 'same-origin', ...headers },
      body: new URLSearchParams({ csrf, operatorKey: key }).toString(),
    });

  describe('console sign-in with the operator key', () => {
    it('refuses a wrong key (audited), a cross-site post and a missing form token; the right key makes an operator console session', async () => {
      const browser = new Browser(base);
      const csrf = await operatorForm(browser);

      const wrong = await postKey(browser, csrf, 'x'.repeat(OPERATOR_KEY.length));
      assert.equal(wrong.status, 401);
      assert.equal(browser.jar.get(COOKIE), undefined);
      const refused = (await gw.services.audit.list(null, 5)).find((e) => e.type === 'console.sign_in_refused');
      assert.equal(refused?.reason, 'operator_key_invalid');
      assert.ok(!JSON.stringify(refused).includes('xxxxxxxx'), 'the presented key is not audited');

      const crossSite = await postKey(browser, csrf, OPERATOR_KEY, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' });
      assert.equal(crossSite.status, 403);
      assert.match(await crossSite.text(), /csrf_token_invalid/);
      const noToken = await postKey(new Browser(base), csrf, OPERATOR_KEY);
      assert.equal(noToken.status, 403, 'the form token cookie is missing in another browser');

      const ok = await postKey(browser, csrf, OPERATOR_KEY);
      assert.equal(ok.status, 303);
      assert.equal(ok.headers.get('location'), '/console/operator');
      assert.match(browser.jar.get(COOKIE) ?? '', /^[A-Za-z0-9_-]{43}\.operator$/);
      assert.equal(await gw.countKeys('idpb:{operator}:console-session:*'), 2, 'the record and its last-use key, in the operator slot');

      const session = await browser.api('GET', '/session');
      assert.equal(session.status, 200);
      const body = (await session.json()) as Record<string, unknown>;
      assert.equal(body.kind, 'operator');
      assert.equal(body.domain, null);
      assert.equal(body.member, null);
      assert.deepEqual(body.permissions, { read: true, write: true, super: true });
      assert.equal(body.signInMethod, 'operator_key');
      assert.match(String(body.csrfToken), /^[A-Za-z0-9_-]{43}$/);
      assert.ok(body.idleExpiresAt && body.absoluteExpiresAt);

      // The operator reaches every tenant and the operator routes; changes need the CSRF token.
      assert.equal((await browser.api('GET', '/domains/a.example')).status, 200);
      assert.equal((await browser.api('GET', '/health')).status, 200);
      const noCsrf = await browser.api('PATCH', '/domains/nosso.example', { body: { plan: 'standard' } });
      assert.equal(noCsrf.status, 403);
      assert.equal(((await noCsrf.json()) as { error: string }).error, 'csrf_failed');
      const withCsrf = await browser.api('PATCH', '/domains/nosso.example', { body: { plan: 'standard' }, csrf: String(body.csrfToken) });
      assert.equal(withCsrf.status, 200);
      assert.equal(((await withCsrf.json()) as { plan: string }).plan, 'standard');

      // Sign out ends it.
      const out = await browser.api('DELETE', '/session', { csrf: String(body.csrfToken) });
      assert.equal(out.status, 204);
      assert.equal((await browser.api('GET', '/session')).status, 401);
      assert.equal(await gw.countKeys('idpb:{operator}:console-session:*'), 0);
    });

    it('times out like a member session, and a member cookie pointed at the operator slot opens nothing', async () => {
      const browser = new Browser(base);
      assert.equal((await postKey(browser, await operatorForm(browser), OPERATOR_KEY)).status, 303);
      const cookie = browser.jar.get(COOKIE)!;
      // The same secret named for a tenant's slot is unknown there.
      const forged = new Browser(base);
      forged.jar.set(COOKIE, cookie.replace(/\.operator$/, '.a.example'));
      assert.equal((await forged.api('GET', '/session')).status, 401);
      gw.clock.advance(gw.services.consoleSessions.idleMs + 1);
      assert.equal((await browser.api('GET', '/session')).status, 401);
    });

    it('is rate limited per client', async () => {
      const browser = new Browser(base);
      const csrf = await operatorForm(browser);
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) statuses.push((await postKey(browser, csrf, 'wrong-key')).status);
      assert.equal(statuses.at(-1), 429);
      gw.clock.advance(60_000);
    });
  });

  describe('domains', () => {
    it('creates a domain with its first super admin (password), who signs in; the list shows plan, SSO, MDM, members and last login', async () => {
      const created = await operator('POST', '/domains', {
        domain: 'fresh.example',
        name: 'Fresh Co',
        plan: 'free',
        superAdmin: { account: 'boss@fresh.example', name: 'Boss', password: 'Fresh-pass-2026' },
      });
      const body = (await created.json()) as Record<string, any>;
      assert.equal(created.status, 201, JSON.stringify(body));
      assert.equal(body.domain, 'fresh.example');
      assert.equal(body.superAdmin.role, 'super_admin');
      assert.equal(body.superAdmin.status, 'in_use');
      assert.equal(body.invitation, null);

      const before = (await (await operator('GET', '/domains')).json()) as { domains: Array<Record<string, any>>; total: number; nextCursor: string | null };
      const row = before.domains.find((d) => d.domain === 'fresh.example')!;
      assert.deepEqual(row, { domain: 'fresh.example', name: 'Fresh Co', plan: 'free', group: null, sso: { enabled: false, type: 'saml' }, mdm: { mode: 'none' }, memberCount: 1, lastLoginAt: null });
      assert.equal(before.domains.find((d) => d.domain === 'a.example')!.sso.enabled, true);

      // The super admin signs in with the password: the tenant's last login is recorded.
      const browser = new Browser(base);
      const form = await browser.request(`/d/password-login/fresh.example?accessUrl=${encodeURIComponent(`${PUBLIC_URL}/console/auth/complete?domain=fresh.example`)}`);
      assert.equal(form.status, 200);
      const html = await form.text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
      const posted = await browser.request('/d/password-login/fresh.example', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL, 'sec-fetch-site': 'same-origin' },
        body: new URLSearchParams({ csrf, accessUrl: `${PUBLIC_URL}/console/auth/complete?domain=fresh.example`, account: 'boss@fresh.example', password: 'Fresh-pass-2026' }).toString(),
      });
      assert.equal(posted.status, 303);
      const complete = await browser.request(posted.headers.get('location')!.slice(PUBLIC_URL.length));
      assert.equal(complete.headers.get('location'), '/console/');
      const me = (await (await browser.api('GET', '/session')).json()) as { kind: string; member: { role: string } };
      assert.equal(me.kind, 'member');
      assert.equal(me.member.role, 'super_admin');

      const afterLogin = (await (await operator('GET', '/domains')).json()) as { domains: Array<Record<string, any>> };
      assert.equal(afterLogin.domains.find((d) => d.domain === 'fresh.example')!.lastLoginAt, new Date(gw.clock.now()).toISOString());

      // The operator changes the plan; the super admin may not.
      assert.equal((await browser.api('PATCH', '/domains/fresh.example', { body: { plan: 'advanced' }, csrf: (await (await browser.api('GET', '/session')).json() as { csrfToken: string }).csrfToken })).status, 403);
      const plan = await operator('PATCH', '/domains/fresh.example', { plan: 'standard' });
      assert.equal(plan.status, 200);
      assert.equal(((await plan.json()) as { plan: string }).plan, 'standard');
    });

    it('creates the super admin pending with an invitation link when no password is given', async () => {
      const created = await operator('POST', '/domains', { domain: 'invited.example', name: 'Invited', superAdmin: { account: 'head@invited.example', name: 'Head' } });
      const body = (await created.json()) as Record<string, any>;
      assert.equal(created.status, 201, JSON.stringify(body));
      assert.equal(body.superAdmin.status, 'pending');
      assert.match(body.invitation.url, new RegExp(`^${PUBLIC_URL}/d/invite/[A-Za-z0-9_-]{43}$`));
      const page = await fetch(`${base}${String(body.invitation.url).slice(PUBLIC_URL.length)}`);
      assert.equal(page.status, 200, 'the invitation link opens');
    });

    it('leaves no half domain when the super admin is refused, and refuses a registered domain', async () => {
      const weak = await operator('POST', '/domains', { domain: 'half.example', name: 'Half', superAdmin: { account: 'x@half.example', name: 'X', password: 'short' } });
      assert.equal(weak.status, 400);
      assert.equal(((await weak.json()) as { error: string }).error, 'password_policy_violation');
      assert.equal(await gw.services.tenants.find('half.example'), null);
      assert.equal(await gw.countKeys('idpb:{half.example}:*'), 0);
      const badAccount = await operator('POST', '/domains', { domain: 'half.example', name: 'Half', superAdmin: { account: '', name: 'X' } });
      assert.equal(badAccount.status, 400);
      assert.equal(await gw.countKeys('idpb:{half.example}:*'), 0);

      const again = await operator('POST', '/domains', { domain: 'a.example', name: 'Again', superAdmin: { account: 'y@a.example', name: 'Y', password: 'Long-enough-2026' } });
      assert.equal(again.status, 409);
      const tenantKey = await gw.services.adminKeys.create('a.example', 'k');
      const byTenant = await fetch(`${base}/admin/v1/domains`, { method: 'POST', headers: { authorization: `Bearer ${tenantKey.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ domain: 'z.example', name: 'Z' }) });
      assert.equal(byTenant.status, 403);
    });

    it('pages through the domains in order', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      let total = 0;
      do {
        const page = (await (await operator('GET', `/domains?count=2${cursor ? `&cursor=${cursor}` : ''}`)).json()) as { domains: Array<{ domain: string }>; nextCursor: string | null; total: number };
        assert.ok(page.domains.length <= 2);
        seen.push(...page.domains.map((d) => d.domain));
        cursor = page.nextCursor;
        total = page.total;
      } while (cursor);
      assert.equal(seen.length, total);
      assert.deepEqual(seen, [...seen].sort());
      assert.equal((await operator('GET', '/domains?count=0')).status, 400);
    });
  });

  describe('OP service clients', () => {
    const REDIRECT = 'https://wiki.example.net/callback';

    const authorize = (at: string, clientId: string): Promise<Response> =>
      fetch(`${at}/oidc/auth?${new URLSearchParams({ client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', state: 's', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString()}`, { redirect: 'manual' });
    const token = (at: string, clientId: string, secret: string): Promise<Response> =>
      fetch(`${at}/oidc/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: REDIRECT, code_verifier: 'x'.repeat(43) }).toString(),
      });

    it('lists config clients read-only, adds one (secret shown once) that every instance serves at once, changes and deletes it', async () => {
      const list0 = (await (await operator('GET', '/op-clients')).json()) as { clients: Array<Record<string, any>> };
      const mobile = list0.clients.find((c) => c.clientId === 'mobile')!;
      assert.equal(mobile.source, 'config');
      assert.equal(mobile.readOnly, true);

      // Unknown to both instances first (an instance that looked it up and missed must not remember the miss).
      assert.notEqual((await authorize(base2, 'wiki')).status, 303);

      const created = await operator('POST', '/op-clients', { clientId: 'wiki', name: 'Wiki', redirectUris: [REDIRECT] });
      const body = (await created.json()) as Record<string, any>;
      assert.equal(created.status, 201, JSON.stringify(body));
      assert.match(body.clientSecret, /^[A-Za-z0-9_-]{43}$/);
      const stored = await gw.store.hGet(keys.opClients(), 'wiki');
      assert.ok(stored && !stored.includes(body.clientSecret), 'the secret is stored sealed');
      const listed = ((await (await operator('GET', '/op-clients')).json()) as { clients: Array<Record<string, any>> }).clients.find((c) => c.clientId === 'wiki')!;
      assert.equal(listed.clientSecret, undefined);
      assert.equal(listed.readOnly, false);

      // The other instance serves it with no restart: the authorization request goes on to the login interaction …
      const auth = await authorize(base2, 'wiki');
      assert.equal(auth.status, 303, await auth.text());
      assert.match(auth.headers.get('location') ?? '', /\/oidc\/interaction\//);
      // … and the token endpoint authenticates it with its secret (the made-up code is then refused), not with another.
      const good = (await (await token(base2, 'wiki', body.clientSecret)).json()) as { error: string };
      assert.equal(good.error, 'invalid_grant');
      const bad = (await (await token(base2, 'wiki', 'not-the-secret-000000000000000')).json()) as { error: string };
      assert.equal(bad.error, 'invalid_client');

      const patched = await operator('PATCH', '/op-clients/wiki', { redirectUris: ['https://wiki.example.net/cb2'] });
      assert.equal(patched.status, 200);
      assert.notEqual((await authorize(base2, 'wiki')).status, 303, 'the old redirect URI is refused at once');

      assert.equal((await operator('PATCH', '/op-clients/mobile', { name: 'x' })).status, 403);
      assert.equal((await operator('DELETE', '/op-clients/mobile')).status, 403);
      assert.equal((await operator('POST', '/op-clients', { clientId: 'mobile', name: 'M', redirectUris: [REDIRECT] })).status, 409);
      assert.equal((await operator('POST', '/op-clients', { clientId: 'wiki', name: 'W', redirectUris: [REDIRECT] })).status, 409);
      const badUri = await operator('POST', '/op-clients', { clientId: 'bad', name: 'B', redirectUris: ['https://x.example/cb#frag'] });
      assert.equal(badUri.status, 400);

      assert.equal((await operator('DELETE', '/op-clients/wiki')).status, 204);
      assert.equal((await operator('DELETE', '/op-clients/wiki')).status, 404);
      assert.equal(((await (await token(base2, 'wiki', body.clientSecret)).json()) as { error: string }).error, 'invalid_client');

      const tenantKey = await gw.services.adminKeys.create('a.example', 'k2');
      assert.equal((await fetch(`${base}/admin/v1/op-clients`, { headers: { authorization: `Bearer ${tenantKey.key}` } })).status, 403);
    });
  });

  describe('health', () => {
    let certDir: string;
    before(() => {
      certDir = mkdtempSync(join(tmpdir(), 'idpb-health-'));
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certDir, 'k.pem'), '-out', join(certDir, 'c.pem'), '-days', '10', '-subj', '/CN=soon.idp.test'], { stdio: 'ignore' });
    });
    after(() => rmSync(certDir, { recursive: true, force: true }));

    it('reports the store, the workers serving, certificates ending within 30 days and runs waiting to resume', async () => {
      const soon = readFileSync(join(certDir, 'c.pem'), 'utf8');
      const a = (await gw.services.tenants.find('a.example'))!;
      await gw.services.tenants.save({ ...a, sso: { ...a.sso, saml: { ...a.sso.saml!, idpCertificates: [a.sso.saml!.idpCertificates[0]!, soon] } } });
      await gw.store.set(keys.ssoSwitchJob('b.example'), JSON.stringify({ id: 'j1', target: false, cursor: '0', membersDone: 3, membersTotal: 10, tenantWideDone: false, ssoEpoch: 1, startedAt: gw.clock.now() }));
      await gw.store.set(keys.externalKeyImportJob('nosso.example'), JSON.stringify({ id: 'i1', state: 'applying', batches: 4, staged: 4, next: 2, counts: {}, startedAt: gw.clock.now() }));
      const one = new WorkerHeartbeat({ store: gw.store, clock: gw.clock }, 'host:1');
      const two = new WorkerHeartbeat({ store: gw.store, clock: gw.clock }, 'host:2');
      await one.beat();
      await two.beat();

      const res = await operator('GET', '/health');
      const health = (await res.json()) as Record<string, any>;
      assert.equal(res.status, 200);
      assert.equal(health.store.status, 'ok');
      assert.equal(health.store.mode, 'standalone');
      assert.equal(health.workers.serving, 2);
      const expiring = health.certificates.expiring as Array<Record<string, any>>;
      assert.equal(expiring.length, 1, JSON.stringify(expiring));
      assert.equal(expiring[0]!.domain, 'a.example');
      assert.equal(expiring[0]!.index, 1);
      assert.ok(expiring[0]!.daysLeft >= 9 && expiring[0]!.daysLeft <= 10);
      assert.match(expiring[0]!.subject, /soon\.idp\.test/);
      assert.deepEqual(
        (health.resumableRuns as Array<{ domain: string; kind: string }>).map((r) => `${r.domain} ${r.kind}`),
        ['b.example sso_switch', 'nosso.example external_key_import'],
      );
      assert.equal(health.status, 'degraded');

      // A run whose lock is held is running, not waiting; a worker silent for 30 s no longer counts.
      await gw.store.set(keys.ssoSwitchLock('b.example'), 'someone', { ttlMs: 30_000 });
      gw.clock.advance(20_000);
      await one.beat();
      gw.clock.advance(15_000);
      const later = (await (await operator('GET', '/health')).json()) as Record<string, any>;
      assert.equal(later.workers.serving, 1);
      assert.deepEqual(later.workers.list.map((w: { id: string }) => w.id), ['host:1']);
      assert.deepEqual((later.resumableRuns as Array<{ kind: string }>).map((r) => r.kind), ['external_key_import']);
      await one.stop();
      await gw.store.del(keys.ssoSwitchJob('b.example'), keys.ssoSwitchLock('b.example'), keys.externalKeyImportJob('nosso.example'));
    });

    it('is for the operator only', async () => {
      const tenantKey = await gw.services.adminKeys.create('a.example', 'k3');
      assert.equal((await fetch(`${base}/admin/v1/health`, { headers: { authorization: `Bearer ${tenantKey.key}` } })).status, 403);
    });
  });
});
