/**
 * End-to-end, in a real browser: Debian's Chromium (playwright-core) against the gateway built and
 * started as the README starts it (`node dist/main.js`), with WORKERS=2 on Redis, the demo on and its
 * tenants seeded, on http://localhost (browsers treat localhost as a secure origin, so the
 * `SameSite=None; Secure` login binding cookie works over http). A service of the suite runs on
 * another site (http://127.0.0.1:<port>, in SERVICE_ORIGINS and an OP client of the config).
 *
 * Every flow asserts what the person sees (headings, sentences, the URL they land on), and every page
 * visited is checked with axe-core (no serious or critical violation) and photographed into
 * test-artifacts/screenshots/.
 *
 * Without /usr/bin/chromium the suite skips, saying so — except in CI, where that is a failure.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';
import { browserMissing, buildIfStale, launchChromium, newPerson, PageChecks, startGateway, startService, type GatewayProcess, type ServiceSite } from './harness.js';

const missing = browserMissing();
const inCi = Boolean(process.env.CI);
if (missing && !inCi) process.stderr.write(`browser tests skipped: ${missing}\n`);

/** The demo seed (config/demo-tenants.json) plus one SAML tenant whose IdP the browser reaches on another site. */
function seedWithCrossSiteIdp(gatewayPort: number): string {
  const seed = JSON.parse(readFileSync('config/demo-tenants.json', 'utf8')) as { tenants: Array<Record<string, unknown>> };
  const demo = seed.tenants.find((t) => t.domain === 'demo.example') as { sso: { saml: unknown } };
  seed.tenants.push({
    domain: 'xsite.example',
    name: 'Cross-site IdP Company (SAML)',
    plan: 'standard',
    sso: {
      enabled: true,
      type: 'saml',
      userKey: 'externalKey',
      // The demo IdP, reached as http://127.0.0.1:<port>: another site than http://localhost:<port>,
      // so its answer reaches the ACS as a cross-site POST, as from a real company IdP.
      webLoginUrl: `http://127.0.0.1:${gatewayPort}/demo-idp/saml/sso`,
      saml: demo.sso.saml,
    },
    logoutRedirectDomains: ['localhost'],
    members: [{ id: 'm-xbob', account: 'bob@xsite.example', name: 'Bob Cross', externalKey: 'bob', status: 'in_use' }],
  });
  return JSON.stringify(seed);
}

describe('in a real browser: the gateway as `node dist/main.js`, WORKERS=2 on Redis', { skip: missing && !inCi ? missing : false, timeout: 240_000 }, () => {
  let gw: GatewayProcess | undefined;
  let service: ServiceSite | undefined;
  let browser: Browser | undefined;
  let cleanupRedis: (() => Promise<void>) | undefined;
  let dir: string | undefined;
  const checks = new PageChecks();
  const contexts: BrowserContext[] = [];

  before(async () => {
    if (missing) assert.fail(`CI: ${missing}. .ci/run installs Debian's chromium.`);
    await buildIfStale();
    const url = await redisUrl();
    const owned = await createTestRedisStore();
    cleanupRedis = owned.cleanup;
    service = await startService();
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'idpb-e2e-'));
    writeFileSync(join(dir, 'seed.json'), seedWithCrossSiteIdp(port));
    const defaults = JSON.parse(readFileSync('config/default.json', 'utf8')) as { oidc: { clients: unknown[] } };
    // The demo config plus this service as a confidential OP client.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ oidc: { clients: [...defaults.oidc.clients, service.client] } }));
    gw = await startGateway(port, {
      NODE_ENV: 'development',
      WORKERS: '2',
      REDIS_URL: url,
      REDIS_KEY_PREFIX: owned.prefix,
      PUBLIC_URL: `http://localhost:${port}`,
      SERVICE_ORIGINS: service.origin,
      DEMO: 'true',
      SEED_FILE: join(dir, 'seed.json'),
      IDPB_CONFIG: join(dir, 'config.json'),
      LOG_LEVEL: 'info',
    });
    service.useGateway(gw.base);
    browser = await launchChromium();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await gw?.stop();
    // The gateway's own account of the run, for when something above failed.
    if (gw) writeFileSync('test-artifacts/gateway.log', gw.output());
    await service?.close();
    await cleanupRedis?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
    // Every axe finding, the moderate and minor ones too.
    writeFileSync('test-artifacts/axe-findings.json', JSON.stringify(checks.findings, null, 2));
  });

  /** A new person's browser, closed in `after` whatever happens. */
  const person = async (): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await newPerson(browser!);
    contexts.push(context);
    return { context, page: await context.newPage() };
  };
  const base = (): string => gw!.base;

  /** Waits until the browser shows `url`; otherwise fails saying where it is and what it shows. */
  async function landOn(page: Page, url: string | RegExp | ((url: URL) => boolean), timeout = 15_000): Promise<void> {
    try {
      await page.waitForURL(url, { timeout, waitUntil: 'load' });
    } catch {
      const text = await page
        .locator('body')
        .innerText({ timeout: 2_000 })
        .catch(() => '(no page)');
      assert.fail(`expected to land on ${String(url)}, but the browser shows ${page.url()}:\n${text.slice(0, 600)}`);
    }
  }
  const heading = (page: Page): Promise<string> => page.locator('h1').innerText();
  const bodyText = (page: Page): Promise<string> => page.locator('body').innerText();

  /** The gateway's error page, as a person reads it. */
  async function expectErrorPage(page: Page, code: string, sentence: RegExp): Promise<void> {
    assert.equal(await heading(page), 'We could not complete this request', await bodyText(page));
    assert.match(await bodyText(page), sentence);
    assert.equal(await page.locator('[data-error-code]').innerText(), code);
    assert.match(await page.locator('[data-request-id]').innerText(), /^[0-9a-f-]{36}$/, 'a support reference is shown');
  }

  async function signInAtSamlIdp(page: Page, username: string, password: string): Promise<void> {
    assert.equal(await heading(page), 'Demo identity provider');
    await page.getByLabel('User name').fill(username);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  /** The gateway's own demo page says who is signed in in this browser. */
  async function expectSignedInAs(page: Page, account: string, domain: string, method: string): Promise<void> {
    await page.goto(`${base()}/welcome`);
    assert.equal(await heading(page), 'Signed in');
    assert.equal(await bodyText(page).then((t) => /You are .*\n?/.exec(t)?.[0].trim()), `You are ${account} of ${domain}, signed in with ${method}.`);
  }

  it('SAML demo: from a service on another origin, alice signs in at the demo IdP and lands back on that service; sign-out ends it', async () => {
    const { context, page } = await person();
    await page.goto(`${service!.origin}/`);
    await checks.check(page, 'service-home');
    await page.getByRole('link', { name: 'Demo Company (SAML)' }).click();
    await landOn(page, (u) => u.href.startsWith(`${base()}/demo-idp/saml/sso?SAMLRequest=`));
    assert.match(await bodyText(page), new RegExp(`Signing in to ${base()}/saml/metadata\\. This IdP exists only for the demo\\.`));
    await checks.check(page, 'saml-demo-idp-sign-in');

    await signInAtSamlIdp(page, 'alice', 'alice-demo-password');
    // The ACS answers 303 to the service's origin: the demo IdP's auto-post page must allow it (finding 7).
    await landOn(page, `${service!.origin}/app?via=demo.example`);
    assert.equal(await heading(page), 'Welcome to the board service');
    await checks.check(page, 'service-landed-after-saml');

    const cookies = await context.cookies(base());
    const binding = cookies.find((c) => c.name === 'idpb_login');
    assert.ok(binding, 'the login binding cookie is kept');
    assert.deepEqual([binding.sameSite, binding.secure, binding.httpOnly], ['None', true, true]);
    assert.ok(cookies.some((c) => c.name === 'idpb_session' && c.sameSite === 'Lax' && c.httpOnly));

    await expectSignedInAs(page, 'alice@demo.example', 'demo.example', 'saml');
    await checks.check(page, 'gateway-welcome-signed-in');
    await page.getByRole('link', { name: 'Sign out' }).click();
    await landOn(page, `${base()}/d/logout`);
    assert.equal(await heading(page), 'You are signed out');
    assert.match(await bodyText(page), /You can close this window\./);
    await checks.check(page, 'signed-out');
    await page.goto(`${base()}/welcome`);
    assert.equal(await heading(page), 'Not signed in');
    await checks.check(page, 'gateway-welcome-signed-out');
    assert.ok(!(await context.cookies(base())).some((c) => c.name === 'idpb_session'), 'the session cookie is gone');
  });

  it('the README\'s console sign-in: alice (super admin of demo.example) reaches the admin console through the demo IdP', async () => {
    const { page } = await person();
    await page.goto(`${base()}/console/`);
    await page.getByLabel('Your company domain').fill('demo.example');
    await page.getByTestId('sign-in-sso').click();
    await landOn(page, (u) => u.href.startsWith(`${base()}/demo-idp/saml/sso?SAMLRequest=`));
    await signInAtSamlIdp(page, 'alice', 'alice-demo-password');
    await landOn(page, `${base()}/console/`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.match(await page.getByTestId('role-badge').innerText(), /Super admin/);
    assert.equal(await page.getByTestId('tenant-domain').innerText(), 'demo.example');
    await checks.check(page, 'console-demo-overview');
  });

  it('SAML with the IdP on another site: the ACS post is cross-site and the SameSite=None login binding cookie goes with it', async () => {
    const { page } = await person();
    // The ACS post's headers as the browser sent them (cookies included).
    const acsPosts: Array<Promise<Record<string, string>>> = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url() === `${base()}/acs/xsite.example`) acsPosts.push(r.allHeaders());
    });
    await page.goto(`${service!.origin}/`);
    await page.getByRole('link', { name: 'Cross-site IdP Company (SAML)' }).click();
    await landOn(page, (u) => u.href.startsWith(`http://127.0.0.1:${gw!.port}/demo-idp/saml/sso?`));
    await checks.check(page, 'saml-cross-site-idp-sign-in');
    await signInAtSamlIdp(page, 'bob', 'bob-demo-password');
    await landOn(page, `${service!.origin}/app?via=xsite.example`);
    assert.equal(await heading(page), 'Welcome to the board service');
    assert.equal(acsPosts.length, 1);
    const acs = await acsPosts[0]!;
    assert.equal(acs['sec-fetch-site'], 'cross-site', 'the IdP page posted to the ACS from another site');
    assert.match(acs.cookie ?? '', /(^|; )idpb_login=[A-Za-z0-9_-]{43}(;|$)/, 'the binding cookie went with the cross-site POST');
    await expectSignedInAs(page, 'bob@xsite.example', 'xsite.example', 'saml');
  });

  it('works OAuth demo: erin signs in 6 times in a row, each in a fresh browser, with both workers serving', async (t) => {
    const logsBefore = gw!.logs().length;
    for (let i = 0; i < 6; i++) {
      const { context, page } = await person();
      await page.goto(`${service!.origin}/`);
      await page.getByRole('link', { name: 'OAuth Company (works)' }).click();
      await landOn(page, (u) => u.href.startsWith(`${base()}/demo-idp/oauth/authorize?`));
      assert.equal(await heading(page), 'Demo OAuth identity provider');
      if (i === 0) await checks.check(page, 'oauth-demo-idp-sign-in');
      await page.getByLabel('User name').fill('erin');
      await page.getByLabel('Password').fill('erin-demo-password');
      await page.getByRole('button', { name: 'Sign in' }).click();
      // The gateway redeems the code at the demo IdP's token API, which may be served by the other worker (finding 3).
      await landOn(page, `${service!.origin}/app?via=oauth.example`);
      await expectSignedInAs(page, 'erin@oauth.example', 'oauth.example', 'oauth');
      await context.close();
    }
    const served = gw!
      .logs()
      .slice(logsBefore)
      .filter((l) => l.msg === 'request');
    const workersOf = (method: string, route: string): unknown[] => served.filter((l) => l.method === method && l.route === route).map((l) => l.worker);
    const issuedBy = workersOf('POST', '/demo-idp/oauth/authorize');
    const redeemedBy = workersOf('POST', '/demo-idp/oauth/token');
    assert.equal(redeemedBy.length, 6, 'six codes redeemed');
    assert.deepEqual(new Set([...issuedBy, ...redeemedBy, ...workersOf('GET', '/oauth/callback/:domain')]), new Set([1, 2]), 'both workers served these logins');
    // Which worker gets a connection is the cluster primary's choice; the run says how often a code
    // crossed (with codes in process memory, each crossing was an invalid_grant).
    t.diagnostic(`codes redeemed by another worker than the one that issued them: ${redeemedBy.filter((w, i) => w !== issuedBy[i]).length} of 6`);
  });

  it('password sign-in (password.example): a wrong password shows why; dave then signs in on the gateway\'s form and lands on the service', async () => {
    const { page } = await person();
    const posts: Array<Promise<Record<string, string>>> = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url() === `${base()}/d/password-login/password.example`) posts.push(r.allHeaders());
    });
    await page.goto(`${service!.origin}/`);
    await page.getByRole('link', { name: 'Password Company' }).click();
    await landOn(page, (u) => u.pathname === '/d/password-login/password.example' && u.searchParams.get('accessUrl') === `${service!.origin}/app?via=password.example`);
    assert.equal(await heading(page), 'Sign in to Password Company (no SSO)');
    assert.match(await bodyText(page), new RegExp(`After sign-in you continue to ${service!.origin}/app\\?via=password\\.example`));
    await checks.check(page, 'password-sign-in');

    await page.getByLabel('Account').fill('dave@password.example');
    await page.getByLabel('Password').fill('not-daves-password1');
    await page.getByRole('button', { name: 'Sign in' }).click();
    // Finding 1: with `Referrer-Policy: no-referrer` Chromium posts `Origin: null`, which was refused as csrf_token_invalid.
    await landOn(page, `${base()}/d/password-login/password.example`);
    await expectErrorPage(page, 'invalid_credentials', /The account or password is not correct\./);
    await checks.check(page, 'error-wrong-password');

    await page.getByRole('link', { name: 'Try again' }).click();
    assert.equal(await heading(page), 'Sign in to Password Company (no SSO)');
    await page.getByLabel('Account').fill('dave@password.example');
    await page.getByLabel('Password').fill('dave-demo-password1');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await landOn(page, `${service!.origin}/app?via=password.example`);
    await expectSignedInAs(page, 'dave@password.example', 'password.example', 'password');
    // Under the gateway's `Referrer-Policy: same-origin` Chromium names the real origin of its own form posts.
    const sent = await Promise.all(posts);
    assert.equal(sent.length, 2);
    for (const h of sent) assert.deepEqual([h.origin, h['sec-fetch-site']], [base(), 'same-origin']);
  });

  it('invitation: dave invites frank; frank sets a password on the invitation page and signs in; the link then no longer works', async () => {
    const admin = await person();
    await admin.page.goto(`${base()}/d/password-login/password.example`);
    await admin.page.getByLabel('Account').fill('dave@password.example');
    await admin.page.getByLabel('Password').fill('dave-demo-password1');
    await admin.page.getByRole('button', { name: 'Sign in' }).click();
    await landOn(admin.page, `${base()}/welcome`);
    // What the suite's admin screen does with dave's session: the service API (JSON, same cookie).
    const created = await admin.context.request.post(`${base()}/api/v1/invitations`, { data: { account: 'frank@password.example', name: 'Frank Example' }, timeout: 10_000 });
    assert.equal(created.status(), 201, await created.text());
    const link = ((await created.json()) as { invitation: { url: string } }).invitation.url;

    const { page } = await person();
    await page.goto(link);
    assert.equal(await heading(page), 'Welcome to Password Company (no SSO)');
    assert.match(await bodyText(page), /Choose a password for frank@password\.example\./);
    await checks.check(page, 'invitation');
    await page.getByLabel('New password').fill('frank-demo-password7');
    await page.getByRole('button', { name: 'Set password' }).click();
    await landOn(page, link);
    assert.equal(await heading(page), 'Your password is set', await bodyText(page));
    await checks.check(page, 'invitation-accepted');
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByLabel('Account').fill('frank@password.example');
    await page.getByLabel('Password').fill('frank-demo-password7');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await landOn(page, `${base()}/welcome`);
    await expectSignedInAs(page, 'frank@password.example', 'password.example', 'password');

    await page.goto(link);
    await expectErrorPage(page, 'invitation_invalid', /This invitation link is not valid: it was already used/);
    await checks.check(page, 'error-invitation-used');
  });

  it('OP login started by a service (OIDC code flow, confidential client): through the demo IdP back to its redirect URI; a second login reuses the gateway session', async () => {
    const { page } = await person();
    await page.goto(`${service!.origin}/`);
    await page.getByRole('link', { name: 'Demo Company, with OpenID Connect' }).click();
    await landOn(page, (u) => u.href.startsWith(`${base()}/demo-idp/saml/sso?`));
    await signInAtSamlIdp(page, 'alice', 'alice-demo-password');
    // ACS → the OP's interaction → the client's redirect URI on another origin (finding 7).
    await landOn(page, (u) => u.origin === service!.origin && u.pathname === '/callback' && u.searchParams.has('code'));
    assert.equal(await heading(page), 'Welcome to the board service');
    assert.match(await bodyText(page), /Signed in with OpenID Connect as alice@demo\.example of demo\.example\./);
    await checks.check(page, 'service-signed-in-with-oidc');

    const idpPages: string[] = [];
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame() && f.url().includes('/demo-idp/')) idpPages.push(f.url());
    });
    await page.goto(`${service!.origin}/`);
    await page.getByRole('link', { name: 'Demo Company, with OpenID Connect' }).click();
    await landOn(page, (u) => u.pathname === '/callback' && u.searchParams.has('code'));
    assert.match(await bodyText(page), /Signed in with OpenID Connect as alice@demo\.example/);
    assert.deepEqual(idpPages, [], 'no IdP page: the gateway session was reused');

    // A tenant the gateway does not know (in a browser with no session yet): the OP sends the browser
    // back to the service with an error.
    const stranger = await person();
    await stranger.page.goto(`${service!.origin}/oidc/start?domain=nope.example`);
    await landOn(stranger.page, (u) => u.pathname === '/callback' && u.searchParams.get('error') === 'login_required');
    assert.match(await bodyText(stranger.page), /The gateway answered login_required\./);
    await checks.check(stranger.page, 'service-oidc-error');

    // An authorization request the OP cannot send back anywhere (unknown client): its own error page.
    await page.goto(`${base()}/oidc/auth?client_id=no-such-client&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`${service!.origin}/callback`)}`);
    assert.equal(await heading(page), 'We could not complete this request');
    assert.match(await bodyText(page), /invalid_client/);
    await checks.check(page, 'error-op-unknown-client');
  });

  it('error pages: unknown tenant, a bad accessUrl, a wrong password at the IdP, a suspended and an unknown member, the password page of an SSO tenant', async () => {
    const { page } = await person();
    await page.goto(`${base()}/d/login/nope.example?accessUrl=${encodeURIComponent(`${service!.origin}/app`)}`);
    await expectErrorPage(page, 'tenant_not_found', /This organisation is not registered for sign-in here\./);
    await checks.check(page, 'error-unknown-tenant');

    await page.goto(`${base()}/d/login/demo.example?accessUrl=${encodeURIComponent('https://evil.example/steal')}`);
    await expectErrorPage(page, 'invalid_access_url', /The address to return to after sign-in is not allowed\./);
    await checks.check(page, 'error-bad-access-url');

    await page.goto(`${base()}/d/login/demo.example?accessUrl=${encodeURIComponent(`${service!.origin}/app?via=demo.example`)}`);
    await signInAtSamlIdp(page, 'alice', 'wrong-password');
    assert.equal(await page.getByRole('alert').innerText(), 'Unknown user name or wrong password.');
    await checks.check(page, 'saml-demo-idp-wrong-password');

    await signInAtSamlIdp(page, 'carol', 'carol-demo-password');
    await landOn(page, `${base()}/acs/demo.example`);
    await expectErrorPage(page, 'member_not_active', /Your account is not active\. Please contact your administrator\./);
    await checks.check(page, 'error-member-not-active');

    await page.getByRole('link', { name: 'Try again' }).click();
    await signInAtSamlIdp(page, 'mallory', 'mallory-demo-password');
    await landOn(page, `${base()}/acs/demo.example`);
    await expectErrorPage(page, 'member_not_found', /Your account is not registered in this organisation\./);

    await page.goto(`${base()}/d/password-login/demo.example`);
    assert.equal(await heading(page), 'Sign in to Demo Company (SAML)');
    assert.match(await bodyText(page), /This page is only the super administrator's emergency sign-in/);
    await checks.check(page, 'password-break-glass');
    await page.getByRole('link', { name: 'sign in with single sign-on' }).click();
    await landOn(page, (u) => u.pathname === '/demo-idp/saml/sso');
  });

  it('reload, Back and resubmit: reloading the IdP page is harmless; going Back after signing in and signing in again is "expired or already used"', async () => {
    const { page } = await person();
    await page.goto(`${service!.origin}/`);
    await page.getByRole('link', { name: 'Demo Company (SAML)' }).click();
    await landOn(page, (u) => u.pathname === '/demo-idp/saml/sso');
    await page.reload();
    assert.equal(await heading(page), 'Demo identity provider');
    await signInAtSamlIdp(page, 'alice', 'alice-demo-password');
    await landOn(page, `${service!.origin}/app?via=demo.example`);
    await page.reload();
    assert.equal(await heading(page), 'Welcome to the board service');

    // Back returns to the IdP's sign-in page of the login just finished; signing in there again posts
    // an answer to a login transaction that is already used.
    await page.goBack();
    await landOn(page, (u) => u.pathname === '/demo-idp/saml/sso');
    await signInAtSamlIdp(page, 'alice', 'alice-demo-password');
    await landOn(page, `${base()}/acs/demo.example`);
    await expectErrorPage(page, 'login_transaction_invalid', /This sign-in attempt has expired or was already used\. Please start signing in again\./);
    await checks.check(page, 'error-login-used');
    // The way out the page offers: a fresh start (it lands on the tenant's default service URL).
    await page.getByRole('link', { name: 'Try again' }).click();
    await signInAtSamlIdp(page, 'alice', 'alice-demo-password');
    await landOn(page, `${base()}/welcome`);
    assert.equal(await heading(page), 'Signed in');
  });

  it('the IdP\'s answer posted from another browser (no login binding cookie): "started in another browser", no session', async () => {
    const starter = await person();
    await starter.page.goto(`${base()}/d/login/demo.example`);
    await landOn(starter.page, (u) => u.pathname === '/demo-idp/saml/sso');
    const other = await person();
    // Someone else's browser opens the same IdP page (a forwarded link, a login CSRF attempt).
    await other.page.goto(starter.page.url());
    await signInAtSamlIdp(other.page, 'alice', 'alice-demo-password');
    await landOn(other.page, `${base()}/acs/demo.example`);
    await expectErrorPage(other.page, 'login_not_bound', /This sign-in was started in another browser, or your browser blocked a cookie that sign-in needs/);
    await checks.check(other.page, 'error-login-not-bound');
    assert.ok(!(await other.context.cookies(base())).some((c) => c.name === 'idpb_session'), 'no session in the other browser');
  });

  it('two tabs sign in at the same time (SAML in one, works OAuth in the other): both finish', async () => {
    const { context } = await person();
    const [one, two] = [await context.newPage(), await context.newPage()];
    for (const [page, link] of [
      [one, 'Demo Company (SAML)'],
      [two, 'OAuth Company (works)'],
    ] as const) {
      await page.goto(`${service!.origin}/`);
      await page.getByRole('link', { name: link }).click();
      await landOn(page, (u) => u.pathname.startsWith('/demo-idp/'));
    }
    // The second start reused the browser's binding cookie: both transactions belong to this browser.
    await two.getByLabel('User name').fill('erin');
    await two.getByLabel('Password').fill('erin-demo-password');
    await two.getByRole('button', { name: 'Sign in' }).click();
    await signInAtSamlIdp(one, 'alice', 'alice-demo-password');
    await landOn(two, `${service!.origin}/app?via=oauth.example`);
    await landOn(one, `${service!.origin}/app?via=demo.example`);
  });

  it('the demo IdP\'s "Continue" page (what a person sees while the answer is posted, and the way on without script); sign-out with a redirect_uri', async () => {
    const { page } = await person();
    // Hold the auto-posted answer once, to look at the page that posts it.
    let held = false;
    await page.route(`${base()}/acs/demo.example`, async (route) => {
      if (held) return route.continue();
      held = true;
      await route.abort('aborted');
    });
    await page.goto(`${base()}/d/login/demo.example`);
    await signInAtSamlIdp(page, 'bob', 'bob-demo-password');
    await page.waitForFunction(() => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText.includes('Taking you back to the service.'));
    assert.ok(held);
    await checks.check(page, 'saml-demo-idp-continue', { waitForLoad: false });
    await page.getByRole('button', { name: 'Continue' }).click();
    await landOn(page, `${base()}/welcome`);
    assert.match(await bodyText(page), /You are bob@demo\.example of demo\.example/);
    await page.unroute(`${base()}/acs/demo.example`);

    assert.equal(await heading(page), 'Signed in');

    // logoutRedirectDomains names hosts on the default port only: a redirect_uri with a port (as every
    // loopback one has) is not followed, and the person reads the gateway's own signed-out page.
    await page.goto(`${base()}/d/logout?redirect_uri=${encodeURIComponent(`${base()}/welcome`)}`);
    assert.equal(await heading(page), 'You are signed out');
    await page.goto(`${base()}/welcome`);
    assert.equal(await heading(page), 'Not signed in');
  });
});
