/**
 * The operator's view of the console, end to end, in a real browser: Debian's Chromium
 * (playwright-core) against `node dist/main.js`, WORKERS=2 on Redis, with ADMIN_API_KEY set.
 *
 * A member of a seeded domain signs in first (so the domain has a last sign-in). The operator opens
 * /console/, follows the operator sign-in link, types the operator key and lands on the domain table
 * (plan, SSO, MDM, members, last sign-in of every seeded domain); the health screen shows the store,
 * both workers serving (their heartbeats), the seeded IdP certificate that ends within 30 days and the
 * seeded SSO switch waiting to resume. The operator adds a domain with its first super admin and a
 * password through the dialog (a bad account is refused inline first), changes its plan to Standard,
 * and adds an OP service client whose secret, read from the page, the token endpoint accepts. In a
 * fresh browser that super admin signs in with the password and sees their overview as Super admin.
 *
 * Every screen is checked with axe-core (no serious or critical violation) and photographed
 * (test-artifacts/console-operator/; the operator-* and health-* pictures are copied to
 * docs/screenshots/console/ with UPDATE_SCREENSHOTS=1). Errors in a page's console (script errors,
 * CSP violations, failed requests) fail the step they happen in.
 *
 * Without Chromium the suite skips, saying so — except in CI, where that is a failure.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { keys } from '../../src/store/index.js';
import type { RedisStore } from '../../src/store/redis-store.js';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';
import { browserMissing, buildIfStale, launchChromium, newPerson, PageChecks, startGateway, type GatewayProcess } from './harness.js';

const missing = browserMissing();
const inCi = Boolean(process.env.CI);
if (missing && !inCi) process.stderr.write(`console operator browser tests skipped: ${missing}\n`);

const OPERATOR_KEY = `op_${'o'.repeat(40)}`;
const SHOTS = 'test-artifacts/console-operator';
const ACME = 'acme.example';
const SOON = 'soon.example';
const NEW = 'newco.example';
const CLIENT_REDIRECT = 'https://wiki.example.net/callback';

const people = {
  alice: { account: `alice@${ACME}`, password: 'Alice-operator-pass-1', name: 'Alice Admin' },
  carol: { account: `carol@${NEW}`, password: 'Carol-newco-pass-2', name: 'Carol Founder' },
};

/**
 * acme.example: SSO off, a super admin with a password and 4 members; soon.example: SAML on, its IdP
 * certificate (`soonCert`) ending within 30 days, 2 members.
 */
function seed(soonCert: string): string {
  const acme: Array<Record<string, unknown>> = [{ id: 'm-alice', account: people.alice.account, name: people.alice.name, role: 'super_admin', status: 'in_use', password: people.alice.password }];
  for (let i = 1; i <= 4; i++) acme.push({ id: `m-${i}`, account: `user${i}@${ACME}`, name: `Member ${i}`, status: 'in_use' });
  return JSON.stringify({
    tenants: [
      { domain: ACME, name: 'Acme Corporation', plan: 'standard', members: acme },
      {
        domain: SOON,
        name: 'Soon Expiring Ltd',
        plan: 'advanced',
        sso: { enabled: true, type: 'saml', userKey: 'externalKey', webLoginUrl: 'https://idp.soon.test/sso', saml: { idpEntityId: 'https://idp.soon.test/saml', idpCertificates: [soonCert] } },
        members: [
          { id: 's-1', account: `dora@${SOON}`, name: 'Dora', externalKey: 'dora', role: 'super_admin', status: 'in_use' },
          { id: 's-2', account: `eve@${SOON}`, name: 'Eve', externalKey: 'eve', status: 'in_use' },
        ],
      },
    ],
  });
}

describe('the operator view of the console in a real browser: node dist/main.js, WORKERS=2 on Redis', { skip: missing && !inCi ? missing : false, timeout: 300_000 }, () => {
  let gw: GatewayProcess | undefined;
  let browser: Browser | undefined;
  let cleanupRedis: (() => Promise<void>) | undefined;
  let store: RedisStore | undefined;
  let dir: string | undefined;
  const checks = new PageChecks(SHOTS);
  const contexts: BrowserContext[] = [];
  /** What the pages wrote to their console as errors (and uncaught exceptions), since the last step. */
  const consoleErrors: string[] = [];
  /** The operator's browser, kept across the steps. */
  let op: { context: BrowserContext; page: Page } | undefined;
  let clientSecret = '';

  before(async () => {
    if (missing) assert.fail(`CI: ${missing}. .ci/run installs Debian's chromium.`);
    await buildIfStale();
    const url = await redisUrl();
    const owned = await createTestRedisStore();
    cleanupRedis = owned.cleanup;
    store = owned.store;
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'idpb-console-operator-'));
    // An IdP certificate that ends in 10 days (node:crypto reads certificates but does not make them).
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'soon.key'), '-out', join(dir, 'soon.crt'), '-days', '10', '-subj', '/CN=idp.soon.test'], { stdio: 'ignore' });
    writeFileSync(join(dir, 'seed.json'), seed(readFileSync(join(dir, 'soon.crt'), 'utf8')));
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
    // soon.example uses the built-in MDM (through the API), and an SSO switch of it was interrupted:
    // its job record is in the store with no process holding its lock.
    const mdm = await fetch(`${gw.base}/admin/v1/domains/${SOON}/mdm`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mode: 'builtin' }),
    });
    assert.equal(mdm.status, 200, await mdm.text());
    await store.set(keys.ssoSwitchJob(SOON), JSON.stringify({ id: 'j-interrupted', target: false, cursor: '0', membersDone: 1, membersTotal: 2, tenantWideDone: false, ssoEpoch: 1, startedAt: Date.now() - 3_600_000 }));
    browser = await launchChromium();
  });

  afterEach(() => {
    const seen = consoleErrors.splice(0);
    assert.deepEqual(seen, [], 'errors in the pages’ consoles');
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await gw?.stop();
    if (gw) writeFileSync('test-artifacts/console-operator-gateway.log', gw.output());
    await cleanupRedis?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
    writeFileSync('test-artifacts/console-operator-axe-findings.json', JSON.stringify(checks.findings, null, 2));
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      mkdirSync('docs/screenshots/console', { recursive: true });
      for (const f of readdirSync(SHOTS)) {
        const name = f.replace(/^\d+-/, '');
        if (/^(operator|health)[-.]/.test(name)) copyFileSync(join(SHOTS, f), join('docs/screenshots/console', name));
      }
    }
  });

  /** A new browser profile whose pages report their console errors (CSP violations are console errors in Chromium). */
  const person = async (): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await newPerson(browser!);
    contexts.push(context);
    context.on('page', (p) => watch(p));
    const page = await context.newPage();
    watch(page);
    return { context, page };
  };
  const watched = new WeakSet<Page>();
  function watch(page: Page): void {
    if (watched.has(page)) return;
    watched.add(page);
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const where = msg.location().url || page.url();
      // The console asks who is signed in when it loads: before sign-in the answer is a 401, which
      // Chromium logs as a failed resource. That one is expected; every other error is not.
      if (/Failed to load resource: the server responded with a status of 401/.test(msg.text()) && /\/admin\/v1\/session$/.test(where)) return;
      consoleErrors.push(`${page.url()}: ${msg.text()} (${where})`);
    });
    page.on('pageerror', (err) => consoleErrors.push(`${page.url()}: uncaught ${err.message}`));
  }

  /** The admin API as the operator (to check what the console did, never to do it). */
  async function operator(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${gw!.base}/admin/v1${path}`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } });
    assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  }

  async function passwordSignIn(page: Page, domain: string, account: string, password: string): Promise<void> {
    await page.goto(`${gw!.base}/console/`);
    await page.getByLabel('Your company domain').fill(domain);
    await page.getByTestId('sign-in-password').click();
    await page.getByLabel('Account').fill(account);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${gw!.base}/console/**`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  }

  async function openScreen(page: Page, nav: string, heading: string): Promise<void> {
    await page.getByTestId(`nav-${nav}`).click();
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  }

  /** The cells of a domain's row, in column order (domain and name, plan, SSO, MDM, members, last sign-in, actions). */
  async function domainRow(page: Page, domain: string): Promise<string[]> {
    return page
      .getByTestId(`domain-row-${domain}`)
      .locator('th, td')
      .evaluateAll((cells) => cells.map((c) => (c as HTMLElement).innerText.replace(/\s+/g, ' ').trim()));
  }

  it('a member of acme.example signs in (so the domain has a last sign-in)', async () => {
    const { context, page } = await person();
    await passwordSignIn(page, ACME, people.alice.account, people.alice.password);
    await context.close();
  });

  it('the operator follows the operator sign-in link from /console/, types the key and sees every domain', async () => {
    op = await person();
    const { page } = op;
    await page.goto(`${gw!.base}/console/`);
    await page.getByTestId('sign-in-operator').waitFor();
    await checks.check(page, 'operator-sign-in-link');
    await page.getByTestId('sign-in-operator').click();
    await page.waitForURL(`${gw!.base}/console/auth/operator`);
    await page.getByRole('heading', { level: 1, name: 'Operator sign-in' }).waitFor();
    await page.getByLabel('Operator key').fill(OPERATOR_KEY);
    await checks.check(page, 'operator-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${gw!.base}/console/operator`);
    await page.getByRole('heading', { level: 1, name: 'Domains' }).waitFor();
    assert.equal(await page.getByTestId('role-badge').innerText(), 'Operator');
    assert.equal(await page.getByTestId('signed-in-as').innerText(), 'Operator', 'the operator is not shown as an API key');
    assert.equal(await page.getByTestId('tenant-domain').innerText(), 'No domain chosen');

    const table = page.getByTestId('domains-table');
    await table.waitFor();
    assert.deepEqual(await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-testid'))), [`domain-row-${ACME}`, `domain-row-${SOON}`]);
    const acme = await domainRow(page, ACME);
    assert.deepEqual(acme.slice(0, 5), [`${ACME} Acme Corporation`, 'Standard', 'SSO off SAML', 'Off', '5']);
    assert.notEqual(acme[5], 'Never', 'alice signed in a moment ago');
    assert.match(acme[5]!, /\d/);
    const soon = await domainRow(page, SOON);
    assert.deepEqual(soon.slice(0, 6), [`${SOON} Soon Expiring Ltd`, 'Advanced', 'SSO on SAML', 'Built-in', '2', 'Never']);
    assert.match(await page.getByText(/domains in all\./).innerText(), /^2 domains in all\.$/);
    await checks.check(page, 'operator-domains');
  });

  it('the health screen shows the store, both workers serving, the certificate about to expire and the interrupted switch', async () => {
    const { page } = op!;
    await openScreen(page, 'health', 'Health');
    // Both workers write a heartbeat when they start; wait until the screen counts both.
    for (const end = Date.now() + 20_000; ; ) {
      await page.getByTestId('health-workers-serving').waitFor();
      if ((await page.getByTestId('health-workers-serving').innerText()).trim() === '2') break;
      assert.ok(Date.now() < end, `workers serving: ${await page.getByTestId('health-workers-serving').innerText()}`);
      await new Promise((r) => setTimeout(r, 1_000));
      await page.reload();
      await page.getByRole('heading', { level: 1, name: 'Health' }).waitFor();
    }
    const text = async (testId: string): Promise<string> => (await page.getByTestId(testId).innerText()).replace(/\s+/g, ' ').trim();
    assert.match(await text('health-store'), /^Store Reachable Mode Redis, one server Response time [\d.]+ ms$/);
    assert.match(await text('health-workers'), /^Workers serving 2 Each process reports every \d+ seconds\.$/);
    // The seeded certificate ends in 10 days: 9 full days and some hours left.
    assert.match(await text('health-certs'), new RegExp(`^IdP certificates expiring 1 ${SOON.replace('.', '\\.')} (9|10) days left \\S`));
    assert.match(await text('health-runs'), new RegExp(`^Runs waiting to resume 1 ${SOON.replace('.', '\\.')} SSO switch \\S`));
    // An SSO-on certificate about to end and an interrupted run: the gateway needs attention.
    assert.match(await text('health-status'), /^Needs attention Checked /);
    const health = (await operator('/health')) as { workers: { serving: number }; certificates: { expiring: Array<{ domain: string; subject: string }> } };
    assert.equal(health.workers.serving, 2);
    assert.match(health.certificates.expiring[0]!.subject, /idp\.soon\.test/);
    await checks.check(page, 'health');
  });

  it('the operator adds a domain with its first super admin (a bad account refused inline first), then changes its plan', async () => {
    const { page } = op!;
    await openScreen(page, 'operator', 'Domains');
    await page.getByTestId('domain-create-open').click();
    const dialog = page.getByTestId('domain-create-dialog');
    await dialog.getByRole('heading', { name: 'Add a domain and its first super admin' }).waitFor();
    await dialog.getByTestId('new-domain').fill(NEW);
    await dialog.getByTestId('new-domain-name').fill('NewCo');
    await dialog.getByTestId('new-domain-plan').selectOption('free');
    await dialog.getByTestId('new-admin-account').fill('carol at newco');
    await dialog.getByTestId('new-admin-name').fill(people.carol.name);
    await dialog.getByTestId('new-admin-password').fill(people.carol.password);
    await dialog.getByTestId('domain-create-submit').click();

    const account = dialog.getByTestId('new-admin-account');
    await dialog.getByTestId('field-error').first().waitFor();
    assert.deepEqual(await dialog.getByTestId('field-error').allInnerTexts(), ['Enter an account such as admin@example.com.']);
    assert.equal(await account.getAttribute('aria-invalid'), 'true');
    assert.equal(await account.evaluate((el) => el === document.activeElement), true, 'focus moves to the field to fix');
    const describedBy = (await account.getAttribute('aria-describedby'))!.split(' ');
    assert.ok(describedBy.some((id) => id.endsWith('-error')), 'the error is read with the field');
    await checks.check(page, 'operator-create-invalid');
    assert.equal(((await operator('/domains')) as { total: number }).total, 2, 'nothing was created');

    await account.fill(people.carol.account);
    await dialog.getByTestId('domain-create-submit').click();
    const created = dialog.getByTestId('domain-created');
    await created.waitFor();
    assert.match(await created.innerText(), new RegExp(`${NEW.replace('.', '\\.')} has been added\\.\\s+${people.carol.account} can sign in to the console now with the password you set\\.`));
    await checks.check(page, 'operator-created');
    await dialog.getByTestId('domain-create-done').click();
    await dialog.waitFor({ state: 'hidden' });

    await page.getByTestId(`domain-row-${NEW}`).waitFor();
    assert.deepEqual(await domainRow(page, NEW), [`${NEW} NewCo`, 'Free', 'SSO off SAML', 'Off', '1', 'Never', 'Change plan']);

    await page.getByRole('button', { name: `Change plan for ${NEW}` }).click();
    const planDialog = page.getByTestId('plan-dialog');
    await planDialog.getByTestId('plan-select').waitFor();
    assert.equal(await planDialog.getByTestId('plan-select').inputValue(), 'free');
    await planDialog.getByTestId('plan-select').selectOption('standard');
    await checks.check(page, 'operator-plan');
    await planDialog.getByTestId('confirm-button').click();
    await planDialog.waitFor({ state: 'hidden' });
    await page.getByTestId(`domain-row-${NEW}`).getByTestId('domain-plan').filter({ hasText: 'Standard' }).waitFor();
    assert.equal(((await operator(`/domains/${NEW}`)) as { plan: string }).plan, 'standard');
    const members = (await operator(`/domains/${NEW}/members`)) as { members: Array<{ account: string; role: string; status: string }> };
    assert.deepEqual(
      members.members.map((m) => [m.account, m.role, m.status]),
      [[people.carol.account, 'super_admin', 'in_use']],
    );
  });

  it('the operator adds an OP service client; its secret, shown once on the page, is the one the token endpoint accepts', async () => {
    const { page } = op!;
    const form = page.getByTestId('client-form');
    await form.scrollIntoViewIfNeeded();
    await form.getByTestId('client-id').fill('wiki');
    await form.getByTestId('client-name').fill('Team wiki');
    await form.getByTestId('client-uris').fill(CLIENT_REDIRECT);
    await form.getByTestId('client-create').click();
    await page.getByTestId('client-created').waitFor();
    clientSecret = (await page.getByTestId('client-secret').innerText()).trim();
    assert.match(clientSecret, /^[A-Za-z0-9_-]{43}$/);
    const row = page.getByTestId('client-row-wiki');
    await row.waitFor();
    assert.match((await row.innerText()).replace(/\s+/g, ' '), new RegExp(`^wiki Team wiki ${CLIENT_REDIRECT.replace(/[.]/g, '\\.')} client_secret_basic Added here \\S.* Edit Delete$`));
    assert.equal(await form.getByTestId('client-id').inputValue(), '', 'the form is emptied');
    await page.getByTestId('client-created').scrollIntoViewIfNeeded();
    await checks.check(page, 'operator-client-created');

    // The secret read from the page authenticates the client (the made-up code is then refused); another does not.
    const token = async (secret: string): Promise<string> => {
      const res = await fetch(`${gw!.base}/oidc/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`wiki:${secret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'no-such-code', redirect_uri: CLIENT_REDIRECT, code_verifier: 'x'.repeat(43) }).toString(),
      });
      return ((await res.json()) as { error: string }).error;
    };
    assert.equal(await token(clientSecret), 'invalid_grant');
    assert.equal(await token(`${clientSecret.slice(0, -1)}${clientSecret.endsWith('A') ? 'B' : 'A'}`), 'invalid_client');
    // Shown once: the list never carries it, and a reload does not bring it back.
    const listed = (await operator('/op-clients')) as { clients: Array<Record<string, unknown>> };
    assert.equal(listed.clients.find((c) => c.clientId === 'wiki')?.clientSecret, undefined);
    await page.reload();
    await page.getByTestId('client-row-wiki').waitFor();
    assert.equal(await page.getByTestId('client-created').count(), 0);
    assert.ok(!(await page.content()).includes(clientSecret));
  });

  it('in a fresh browser the new super admin signs in with the password and sees their overview as Super admin', async () => {
    const { page } = await person();
    await passwordSignIn(page, NEW, people.carol.account, people.carol.password);
    assert.equal(await page.getByTestId('role-badge').innerText(), 'Super admin');
    assert.equal(await page.getByTestId('tenant-domain').innerText(), NEW);
    assert.match(await page.getByTestId('signed-in-as').innerText(), new RegExp(people.carol.name));
    await page.getByTestId('overview-tenant-name').filter({ hasText: 'NewCo' }).waitFor();
    assert.match((await page.locator('main').innerText()).replace(/\s+/g, ' '), /Plan Standard/);
    assert.equal((await page.getByTestId('overview-member-count').innerText()).trim(), '1');
    assert.match(await page.getByTestId('overview-sso-state').innerText(), /SSO off/);
    // Not the operator: no operator screens in the nav.
    assert.equal(await page.getByTestId('nav-operator').count(), 0);
    assert.equal(await page.getByTestId('nav-health').count(), 0);
    await checks.check(page, 'operator-new-admin-overview');
    // The operator's table now has NewCo's last sign-in.
    const { page: opPage } = op!;
    await opPage.reload();
    await opPage.getByTestId(`domain-row-${NEW}`).waitFor();
    assert.notEqual((await domainRow(opPage, NEW))[5], 'Never');
  });
});
