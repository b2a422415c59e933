/**
 * The console's Mobile security › third-party MDM screen, end to end, in a real browser: Debian's
 * Chromium (playwright-core) against the gateway built and started as the README starts it
 * (`node dist/main.js`, WORKERS=2 on Redis).
 *
 * A super admin turns third-party MDM sync on through the precautions dialog and copies the key value
 * (clipboard); the mobile app — played here over real HTTP, as test/integration/provider/op-flow.test.ts
 * plays it — signs a member in through the gateway's OpenID Provider with that key (X-MDM-Auth-Code,
 * X-Device-Id) and refreshes; the key list shows the live session; the super admin adds a second key with a
 * future effective date and revokes the first, naming the second as its replacement: the mobile session
 * ends (its refresh is refused). An admin who is not a super admin sees the screen read-only and the API
 * refuses the change (403); a tenant on the Free plan sees the screen as unavailable with the reason. Every
 * screen is checked with axe-core and photographed (test-artifacts/console-mdm/, copied to
 * docs/screenshots/console/ with UPDATE_SCREENSHOTS=1, prefix mdm-).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';
import { browserMissing, buildIfStale, launchChromium, newPerson, PageChecks, startGateway, type GatewayProcess } from './harness.js';

const missing = browserMissing();
const inCi = Boolean(process.env.CI);
if (missing && !inCi) process.stderr.write(`console MDM browser tests skipped: ${missing}\n`);

const DOMAIN = 'acme.example';
const FREE = 'small.example';
const OPERATOR_KEY = `op_${'m'.repeat(40)}`;
const SHOTS = 'test-artifacts/console-mdm';
const MOBILE_REDIRECT = 'idpbridge.mobile:/oauth2redirect';
const DEVICE = 'e2e-managed-device-1';

const people = {
  alice: { account: `alice@${DOMAIN}`, password: 'Alice-console-pass-1', name: 'Alice Admin' },
  bob: { account: `bob@${DOMAIN}`, password: 'Bob-console-pass-1', name: 'Bob Helper' },
  carol: { account: `carol@${DOMAIN}`, password: 'Carol-mobile-pass-1', name: 'Carol Field' },
  dave: { account: `dave@${FREE}`, password: 'Dave-console-pass-1', name: 'Dave Small' },
};

function seed(): string {
  return JSON.stringify({
    tenants: [
      {
        domain: DOMAIN,
        name: 'Acme Corporation',
        plan: 'standard',
        members: [
          { id: 'm-alice', account: people.alice.account, name: people.alice.name, role: 'super_admin', status: 'in_use', password: people.alice.password },
          { id: 'm-bob', account: people.bob.account, name: people.bob.name, role: 'admin', status: 'in_use', password: people.bob.password },
          { id: 'm-carol', account: people.carol.account, name: people.carol.name, status: 'in_use', password: people.carol.password },
        ],
      },
      { domain: FREE, name: 'Small Company', plan: 'free', members: [{ id: 'm-dave', account: people.dave.account, name: people.dave.name, role: 'super_admin', status: 'in_use', password: people.dave.password }] },
    ],
  });
}

/** The mobile app's browser tab for the OP's login: a cookie jar, redirects followed by hand while on the gateway. */
class AppBrowser {
  private readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}
  async request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
    const headers = { ...init.headers, ...(this.jar.size ? { cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {}) };
    const res = await fetch(url, { method: init.method ?? 'GET', headers, body: init.body, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair!.indexOf('=');
      if (pair!.slice(i + 1) === '' || /max-age=0/i.test(line)) this.jar.delete(pair!.slice(0, i));
      else this.jar.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
    return res;
  }
  /** Follows redirects on the gateway; returns the first URL elsewhere (the app's redirect URI), or the last response. */
  async follow(res: Response, from: string): Promise<{ url: string; res: Response }> {
    let current = from;
    for (let hops = 0; hops < 20 && res.status >= 300 && res.status < 400; hops++) {
      current = new URL(res.headers.get('location')!, current).href;
      if (!current.startsWith(this.base)) return { url: current, res };
      res = await this.request(current);
    }
    return { url: current, res };
  }
}

describe('the console MDM screen in a real browser: node dist/main.js, WORKERS=2 on Redis', { skip: missing && !inCi ? missing : false, timeout: 300_000 }, () => {
  let gw: GatewayProcess | undefined;
  let browser: Browser | undefined;
  let cleanupRedis: (() => Promise<void>) | undefined;
  let dir: string | undefined;
  const checks = new PageChecks(SHOTS);
  const contexts: BrowserContext[] = [];
  let admin: { context: BrowserContext; page: Page } | undefined;
  /** What the mobile app holds after signing in. */
  let mobile: { refreshToken: string; key: string } | undefined;

  before(async () => {
    if (missing) assert.fail(`CI: ${missing}. .ci/run installs Debian's chromium.`);
    await buildIfStale();
    const url = await redisUrl();
    const owned = await createTestRedisStore();
    cleanupRedis = owned.cleanup;
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'idpb-console-mdm-'));
    writeFileSync(join(dir, 'seed.json'), seed());
    gw = await startGateway(port, {
      NODE_ENV: 'development',
      WORKERS: '2',
      REDIS_URL: url,
      REDIS_KEY_PREFIX: owned.prefix,
      PUBLIC_URL: `http://localhost:${port}`,
      ADMIN_API_KEY: OPERATOR_KEY,
      SEED_FILE: join(dir, 'seed.json'),
      LOG_LEVEL: 'info',
    });
    browser = await launchChromium();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await gw?.stop();
    mkdirSync('test-artifacts', { recursive: true });
    if (gw) writeFileSync('test-artifacts/console-mdm-gateway.log', gw.output());
    await cleanupRedis?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
    writeFileSync('test-artifacts/console-mdm-axe-findings.json', JSON.stringify(checks.findings, null, 2));
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      mkdirSync('docs/screenshots/console', { recursive: true });
      for (const f of readdirSync(SHOTS)) copyFileSync(join(SHOTS, f), join('docs/screenshots/console', f.replace(/^\d+-/, '')));
    }
  });

  const person = async (): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await newPerson(browser!);
    contexts.push(context);
    return { context, page: await context.newPage() };
  };

  async function operator(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${gw!.base}/admin/v1${path}`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } });
    assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  }

  async function signIn(page: Page, domain: string, who: { account: string; password: string }): Promise<void> {
    await page.goto(`${gw!.base}/console/`);
    await page.getByLabel('Your company domain').fill(domain);
    await page.getByTestId('sign-in-password').click();
    await page.getByLabel('Account').fill(who.account);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${gw!.base}/console/**`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  }

  async function openMdm(page: Page): Promise<void> {
    await page.getByTestId('nav-mdm').click();
    await page.getByRole('heading', { level: 1, name: 'Third-party MDM sync' }).waitFor();
  }

  /** The mobile app: OP authorization (domain=, PKCE) → the gateway's password page → the code → tokens, with the MDM headers. */
  async function mobileSignIn(key: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const base = gw!.base;
    const app = new AppBrowser(base);
    const verifier = randomBytes(32).toString('base64url');
    const auth = new URL(`${base}/oidc/auth`);
    auth.search = new URLSearchParams({
      client_id: 'mobile',
      response_type: 'code',
      redirect_uri: MOBILE_REDIRECT,
      scope: 'openid',
      state: 'st',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      domain: DOMAIN,
    }).toString();
    const toForm = await app.follow(await app.request(auth.href), auth.href);
    assert.equal(toForm.res.status, 200, `the gateway's password page: ${toForm.url}`);
    const html = await toForm.res.text();
    const field = (name: string): string => /value="([^"]*)"/.exec(html.slice(html.indexOf(`name="${name}"`)))![1]!.replace(/&#(\d+);/g, (_m, c: string) => String.fromCharCode(Number(c)));
    const action = `${base}/d/password-login/${DOMAIN}`;
    const posted = await app.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ csrf: field('csrf'), accessUrl: field('accessUrl'), account: people.carol.account, password: people.carol.password }).toString(),
    });
    const back = await app.follow(posted, action);
    assert.ok(back.url.startsWith(MOBILE_REDIRECT), `back to the app: ${back.url} (${back.res.status})`);
    const code = new URL(back.url).searchParams.get('code')!;
    return token({ grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: MOBILE_REDIRECT, client_id: 'mobile' }, key);
  }

  async function token(form: Record<string, string>, key: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${gw!.base}/oidc/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-mdm-auth-code': key, 'x-device-id': DEVICE },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('a super admin turns MDM sync on through the precautions dialog and copies the key value', async () => {
    admin = await person();
    const { page, context } = admin;
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw!.base });
    await signIn(page, DOMAIN, people.alice);
    await openMdm(page);
    assert.match(await page.getByTestId('mdm-excludes-builtin').innerText(), /never run together/);
    assert.equal(await page.getByTestId('mdm-sync-state').innerText(), 'Off');
    // A custom value is checked as it is typed.
    await page.getByTestId('mdm-enable-custom').check();
    await page.getByTestId('mdm-enable-value').fill('too short');
    assert.match(await page.getByTestId('field-error').first().innerText(), /Too short: at least 16 characters/);
    assert.equal(await page.getByTestId('mdm-enable').isDisabled(), true);
    await checks.check(page, 'mdm-custom-value-check');
    await page.getByTestId('mdm-enable-auto').check();
    await checks.check(page, 'mdm-off');

    await page.getByTestId('mdm-enable').click();
    const dialog = page.getByTestId('mdm-precautions-dialog');
    await dialog.getByRole('heading', { name: 'Before you turn on third-party MDM sync' }).waitFor();
    const precautions = await dialog.getByTestId('mdm-precautions').innerText();
    assert.match(precautions, /0 mobile sessions of your members end at once/);
    assert.match(precautions, /0 built-in MDM exception settings are deleted/);
    await checks.check(page, 'mdm-precautions');
    await dialog.getByTestId('confirm-button').click();
    await page.getByTestId('mdm-managed-config').waitFor();
    assert.equal(await page.getByTestId('mdm-sync-state').innerText(), 'On');
    assert.equal(await page.getByTestId('mdm-config-key').innerText(), 'LineworksAuthCode');
    assert.equal(await page.getByTestId('mdm-config-type').innerText(), 'String');
    const shown = await page.getByTestId('mdm-config-value').innerText();
    await page.getByTestId('mdm-copy-value').click();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, shown, 'the copy button put the value on the clipboard');
    assert.match(copied, /^[A-Za-z0-9_-]{43}$/);
    await checks.check(page, 'mdm-on');
    mobile = { key: copied, refreshToken: '' };
    assert.equal((await operator(`/domains/${DOMAIN}/mdm`)).mode, 'external');
  });

  it('the mobile app signs in through the OP with the copied key; the key list shows its live session', async () => {
    const refused = await mobileSignIn('not-the-key-0000000000000');
    assert.equal(refused.status, 400);
    assert.match(String(refused.body.error_description), /^mdm_code_mismatch/);
    const signedIn = await mobileSignIn(mobile!.key);
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: String(signedIn.body.refresh_token), client_id: 'mobile' }, mobile!.key);
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    mobile!.refreshToken = String(refreshed.body.refresh_token);

    const { page } = admin!;
    await page.reload();
    await page.getByTestId('mdm-keys-table').waitFor();
    const row = page.getByTestId('mdm-key-row').first();
    assert.equal(await row.getByTestId('mdm-key-sessions').innerText(), '1');
    assert.doesNotMatch(await row.innerText(), /Never/, 'last presented is set');
  });

  it('adds a second key effective later, revokes the first naming the second as replacement, and the mobile session ends', async () => {
    const { page } = admin!;
    const [first] = (await operator(`/domains/${DOMAIN}/mdm/keys`)).keys as Array<{ id: string }>;
    const later = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
    await page.getByTestId('mdm-new-effective').fill(later);
    await page.getByTestId('mdm-key-add').click();
    const dialog = page.getByTestId('mdm-key-dialog');
    assert.match(await dialog.getByTestId('mdm-confirm-body').innerText(), /admits devices from .*Nobody is signed out/);
    await checks.check(page, 'mdm-add-key');
    await dialog.getByTestId('confirm-button').click();
    await page.getByTestId('mdm-key-row').nth(1).waitFor();
    const keys = (await operator(`/domains/${DOMAIN}/mdm/keys`)).keys as Array<{ id: string; admitting: boolean; effectiveFrom: string }>;
    const second = keys.find((k) => k.id !== first!.id)!;
    assert.equal(second.admitting, false, 'scheduled');
    await page.getByRole('cell', { name: 'Scheduled' }).waitFor();
    await checks.check(page, 'mdm-keys');

    await page.locator(`[data-key-id="${first!.id}"]`).getByTestId('mdm-key-revoke').click();
    assert.match(await dialog.getByTestId('mdm-confirm-body').innerText(), /1 mobile sessions on key .* end at once/);
    await dialog.getByText('No other key admits devices now').waitFor();
    await dialog.getByTestId(`mdm-replacement-${second.id}`).check();
    await checks.check(page, 'mdm-revoke-last-key');
    await dialog.getByTestId('confirm-button').click();
    await page.getByTestId('live-status').filter({ hasText: 'Key revoked; 1 mobile sessions ended.' }).waitFor();
    await page.locator(`[data-key-id="${first!.id}"]`).getByText('Revoked').waitFor();
    await checks.check(page, 'mdm-revoked');

    const refresh = await token({ grant_type: 'refresh_token', refresh_token: mobile!.refreshToken, client_id: 'mobile' }, mobile!.key);
    assert.equal(refresh.status, 400, 'the mobile session ended');
    assert.equal(refresh.body.error, 'invalid_grant');
    const after = (await operator(`/domains/${DOMAIN}/mdm/keys`)).keys as Array<{ id: string; admitting: boolean }>;
    assert.equal(after.find((k) => k.id === second.id)?.admitting, true, 'the named replacement admits from now on');
  });

  it('an admin who is not a super admin sees the screen read-only, and the API refuses the change (403)', async () => {
    const { page } = await person();
    await signIn(page, DOMAIN, people.bob);
    await openMdm(page);
    assert.match(await page.getByTestId('mdm-read-only').innerText(), /Only a super admin can change MDM settings/);
    assert.equal(await page.getByTestId('mdm-disable').isDisabled(), true);
    assert.equal(await page.getByTestId('mdm-key-add').isDisabled(), true);
    assert.equal(await page.getByTestId('mdm-key-revoke').first().isDisabled(), true);
    await checks.check(page, 'mdm-admin-read-only');
    const refused = await page.evaluate(async (domain) => {
      const session = (await (await fetch('/admin/v1/session')).json()) as { csrfToken: string };
      const res = await fetch(`/admin/v1/domains/${domain}/mdm`, { method: 'PUT', headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken }, body: JSON.stringify({ mode: 'none' }) });
      return { status: res.status, body: (await res.json()) as { error: string } };
    }, DOMAIN);
    assert.deepEqual([refused.status, refused.body.error], [403, 'forbidden']);
    assert.equal((await operator(`/domains/${DOMAIN}/mdm`)).mode, 'external');
  });

  it('below the Standard plan the screen says third-party MDM sync is unavailable, and why', async () => {
    const { page } = await person();
    await signIn(page, FREE, people.dave);
    await openMdm(page);
    assert.match(await page.getByTestId('mdm-unavailable').innerText(), /Free plan\. Third-party MDM sync needs the Standard or Advanced plan/);
    assert.equal(await page.getByTestId('mdm-enable').count(), 0);
    await checks.check(page, 'mdm-unavailable');
  });
});
