/**
 * The console's SCIM provisioning screen (issue 16), end to end, in a real browser: Debian's Chromium
 * (playwright-core) against the gateway built and started as the README starts it (`node dist/main.js`,
 * WORKERS=2 on Redis).
 *
 * A super admin opens the screen, reads the SCIM base URL to paste into Entra ID or Okta, issues a token and
 * copies it from the page (shown once); the directory — played here over real HTTP — creates a user with it
 * at `POST /scim/v2/{domain}/Users`. Rotating shows a new token once: the old one is refused (401) and the new
 * one works. Revoking refuses it too. An admin who is not a super admin sees the screen read-only and the API
 * refuses the change (403). Every screen is checked with axe-core, every page's console must stay free of
 * errors, and the pictures go to test-artifacts/console-scim/ (copied to docs/screenshots/console/ with
 * UPDATE_SCREENSHOTS=1, prefix scim-).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';
import { browserMissing, buildIfStale, launchChromium, newPerson, PageChecks, startGateway, type GatewayProcess } from './harness.js';

const missing = browserMissing();
const inCi = Boolean(process.env.CI);
if (missing && !inCi) process.stderr.write(`console SCIM browser tests skipped: ${missing}\n`);

const DOMAIN = 'acme.example';
const OPERATOR_KEY = `op_${'s'.repeat(40)}`;
const SHOTS = 'test-artifacts/console-scim';
const USER_URN = 'urn:ietf:params:scim:schemas:core:2.0:User';

const people = {
  alice: { account: `alice@${DOMAIN}`, password: 'Alice-console-pass-1', name: 'Alice Admin' },
  bob: { account: `bob@${DOMAIN}`, password: 'Bob-console-pass-1', name: 'Bob Helper' },
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
        ],
      },
    ],
  });
}

describe('the console SCIM screen in a real browser: node dist/main.js, WORKERS=2 on Redis', { skip: missing && !inCi ? missing : false, timeout: 300_000 }, () => {
  let gw: GatewayProcess | undefined;
  let browser: Browser | undefined;
  let cleanupRedis: (() => Promise<void>) | undefined;
  let dir: string | undefined;
  const checks = new PageChecks(SHOTS);
  const contexts: BrowserContext[] = [];
  const consoleErrors: string[] = [];
  /** Console errors a test provokes on purpose (a request the API must refuse): each is allowed once. */
  let expectedErrors: RegExp[] = [];
  let admin: { context: BrowserContext; page: Page } | undefined;
  /** The token the super admin copied from the page, and the SCIM user created with it. */
  let copied = '';
  let userId = '';

  before(async () => {
    if (missing) assert.fail(`CI: ${missing}. .ci/run installs Debian's chromium.`);
    await buildIfStale();
    const url = await redisUrl();
    const owned = await createTestRedisStore();
    cleanupRedis = owned.cleanup;
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'idpb-console-scim-'));
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

  afterEach(() => {
    const seen = consoleErrors.splice(0);
    const unexpected = seen.filter((line) => {
      const i = expectedErrors.findIndex((re) => re.test(line));
      if (i < 0) return true;
      expectedErrors.splice(i, 1);
      return false;
    });
    assert.deepEqual(unexpected, [], 'errors in the pages’ consoles');
    assert.deepEqual(expectedErrors, [], 'the refused request was seen');
    expectedErrors = [];
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await gw?.stop();
    mkdirSync('test-artifacts', { recursive: true });
    if (gw) writeFileSync('test-artifacts/console-scim-gateway.log', gw.output());
    await cleanupRedis?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
    writeFileSync('test-artifacts/console-scim-axe-findings.json', JSON.stringify(checks.findings, null, 2));
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      mkdirSync('docs/screenshots/console', { recursive: true });
      for (const f of readdirSync(SHOTS)) copyFileSync(join(SHOTS, f), join('docs/screenshots/console', f.replace(/^\d+-/, '')));
    }
  });

  /** A new browser profile whose pages report their console errors (CSP violations are console errors in Chromium). */
  const person = async (): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await newPerson(browser!);
    contexts.push(context);
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const where = msg.location().url || page.url();
      // Before sign-in the console's "who is signed in" answers 401, which Chromium logs; that one is expected.
      if (/Failed to load resource: the server responded with a status of 401/.test(msg.text()) && /\/admin\/v1\/session$/.test(where)) return;
      consoleErrors.push(`${page.url()}: ${msg.text()} (${where})`);
    });
    page.on('pageerror', (err) => consoleErrors.push(`${page.url()}: uncaught ${err.message}`));
    return { context, page };
  };

  /** The admin API as the operator (to check what the console did, or to set the scene — never to do the step under test). */
  async function operator(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${gw!.base}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** The directory (Entra ID, Okta): SCIM over real HTTP with the bearer token. */
  async function scim(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${gw!.base}/scim/v2/${DOMAIN}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/scim+json', ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async function signIn(page: Page, who: { account: string; password: string }): Promise<void> {
    await page.goto(`${gw!.base}/console/`);
    await page.getByLabel('Your company domain').fill(DOMAIN);
    await page.getByTestId('sign-in-password').click();
    await page.getByLabel('Account').fill(who.account);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${gw!.base}/console/**`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  }

  async function openScim(page: Page): Promise<void> {
    await page.getByTestId('nav-scim-tokens').click();
    await page.getByRole('heading', { level: 1, name: 'SCIM provisioning' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/console/scim-tokens');
  }

  it('a super admin sees the SCIM base URL, issues a token and copies it from the page (shown once)', async () => {
    admin = await person();
    const { page, context } = admin;
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gw!.base });
    await signIn(page, people.alice);
    await openScim(page);
    assert.equal(await page.getByTestId('scim-base-url').innerText(), `${gw!.base}/scim/v2/${DOMAIN}`);
    await page.getByText('No SCIM tokens').waitFor();

    // A name is required, checked before anything is sent.
    await page.getByTestId('scim-token-issue').click();
    assert.match(await page.getByTestId('field-error').first().innerText(), /Enter a name/);
    assert.deepEqual((await operator('GET', `/domains/${DOMAIN}/scim-tokens`)).body.tokens, []);

    await page.getByTestId('scim-token-name').fill('Entra ID');
    await page.getByTestId('scim-token-issue').click();
    await page.getByTestId('scim-token-shown').waitFor();
    const shown = await page.getByTestId('scim-token-value').innerText();
    assert.match(shown, /^scim_[A-Za-z0-9_-]{43}$/);
    await page.getByTestId('scim-token-copy').click();
    copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, shown, 'the copy button put the token on the clipboard');
    await page.getByTestId('scim-token-row').filter({ hasText: 'Entra ID' }).waitFor();
    await checks.check(page, 'scim-tokens');

    // Shown once: after "I have copied it", and after a reload, the secret is nowhere on the page.
    await page.getByTestId('scim-token-dismiss').click();
    assert.equal(await page.getByTestId('scim-token-value').count(), 0);
    await page.reload();
    await page.getByTestId('scim-token-row').first().waitFor();
    assert.equal((await page.content()).includes(copied), false, 'the token is not shown again');
    const listed = (await operator('GET', `/domains/${DOMAIN}/scim-tokens`)).body.tokens as Array<{ name: string; rotatedAt: string | null }>;
    assert.deepEqual(
      listed.map((t) => [t.name, t.rotatedAt]),
      [['Entra ID', null]],
    );
  });

  it('the directory creates a user over SCIM with the copied token', async () => {
    const created = await scim(copied, 'POST', '/Users', {
      schemas: [USER_URN],
      userName: `ada@${DOMAIN}`,
      name: { givenName: 'Ada', familyName: 'Lovelace' },
      emails: [{ value: `ada@${DOMAIN}`, type: 'work', primary: true }],
      externalId: 'entra-0001',
      active: true,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.userName, `ada@${DOMAIN}`);
    userId = String(created.body.id);
    const read = await scim(copied, 'GET', `/Users/${encodeURIComponent(userId)}`);
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.externalId, 'entra-0001');
    const wrong = await scim(`scim_${'A'.repeat(43)}`, 'GET', `/Users/${encodeURIComponent(userId)}`);
    assert.equal(wrong.status, 401, 'an unknown token is refused');
  });

  it('rotating shows the new token once: the old one is refused (401), the new one works', async () => {
    const { page } = admin!;
    await page.getByTestId('scim-token-row').filter({ hasText: 'Entra ID' }).getByTestId('scim-token-rotate').click();
    const dialog = page.getByTestId('scim-token-dialog');
    await dialog.getByRole('heading', { name: 'Rotate this SCIM token?' }).waitFor();
    assert.match(await dialog.innerText(), /Entra ID gets a new secret and the current one stops working at once/);
    await checks.check(page, 'scim-rotate-confirm');
    await dialog.getByTestId('confirm-button').click();
    await page.getByTestId('scim-token-shown').filter({ hasText: 'The old token no longer works' }).waitFor();
    const fresh = await page.getByTestId('scim-token-value').innerText();
    assert.match(fresh, /^scim_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(fresh, copied);
    await page.getByTestId('scim-token-row').filter({ hasText: 'Entra ID' }).getByRole('cell', { name: 'Never', exact: true }).waitFor({ state: 'detached' });
    await checks.check(page, 'scim-rotated');

    const old = await scim(copied, 'GET', `/Users/${encodeURIComponent(userId)}`);
    assert.equal(old.status, 401, 'the old token is refused at once');
    const now = await scim(fresh, 'GET', `/Users/${encodeURIComponent(userId)}`);
    assert.equal(now.status, 200, JSON.stringify(now.body));
    const patched = await scim(fresh, 'PATCH', `/Users/${encodeURIComponent(userId)}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.active, false);
    copied = fresh;
  });

  it('revoking refuses the token (401) and empties the list', async () => {
    const { page } = admin!;
    await page.getByTestId('scim-token-row').filter({ hasText: 'Entra ID' }).getByTestId('scim-token-revoke').click();
    const dialog = page.getByTestId('scim-token-dialog');
    await dialog.getByRole('heading', { name: 'Revoke this SCIM token?' }).waitFor();
    await dialog.getByTestId('confirm-button').click();
    await page.getByText('No SCIM tokens').waitFor();
    assert.equal(await page.getByTestId('scim-token-value').count(), 0, 'the revoked secret is no longer on the page');
    const refused = await scim(copied, 'GET', `/Users/${encodeURIComponent(userId)}`);
    assert.equal(refused.status, 401);
    assert.deepEqual((await operator('GET', `/domains/${DOMAIN}/scim-tokens`)).body.tokens, []);
  });

  it('an admin who is not a super admin sees the tokens read-only, and the API refuses to issue (403)', async () => {
    const issued = await operator('POST', `/domains/${DOMAIN}/scim-tokens`, { name: 'Okta' });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const { page } = await person();
    await signIn(page, people.bob);
    await openScim(page);
    await page.getByTestId('scim-token-row').filter({ hasText: 'Okta' }).waitFor();
    assert.equal(await page.getByTestId('scim-base-url').innerText(), `${gw!.base}/scim/v2/${DOMAIN}`);
    assert.equal(await page.getByTestId('scim-token-issue').isDisabled(), true);
    assert.equal(await page.getByTestId('scim-token-name').isDisabled(), true);
    assert.equal(await page.getByTestId('scim-token-rotate').isDisabled(), true);
    assert.equal(await page.getByTestId('scim-token-revoke').isDisabled(), true);
    await page.getByTestId('permission-note-super').waitFor();
    await checks.check(page, 'scim-admin-read-only');

    expectedErrors = [/status of 403 .*\/admin\/v1\/domains\/acme\.example\/scim-tokens\)$/];
    const refused = await page.evaluate(async (domain) => {
      const session = (await (await fetch('/admin/v1/session')).json()) as { csrfToken: string };
      const res = await fetch(`/admin/v1/domains/${domain}/scim-tokens`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken }, body: JSON.stringify({ name: 'sneaky' }) });
      return { status: res.status, body: (await res.json()) as { error: string } };
    }, DOMAIN);
    assert.deepEqual([refused.status, refused.body.error], [403, 'forbidden']);
    const tokens = (await operator('GET', `/domains/${DOMAIN}/scim-tokens`)).body.tokens as Array<{ name: string }>;
    assert.deepEqual(
      tokens.map((t) => t.name),
      ['Okta'],
    );
  });
});
