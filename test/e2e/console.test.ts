/**
 * The admin console, end to end, in a real browser: Debian's Chromium (playwright-core) against the
 * gateway built and started as the README starts it (`node dist/main.js`, WORKERS=2 on Redis), with a
 * real SAML IdP the project did not write: Debian's SimpleSAMLphp under `php -S`.
 *
 * One administrator's day, in order: a super admin signs in with a password (SSO still off), imports
 * 1,000 external keys from a CSV with one bad row (nothing applied, the report names the row), fixes
 * the row and imports again, configures SAML from SimpleSAMLphp's metadata URL, runs a test sign-in
 * in a new tab, previews and switches SSO on (progress, summary), then signs in again through SAML;
 * an admin without the super admin role is refused the switch. Every screen is checked with axe-core
 * (no serious or critical violation) and photographed (test-artifacts/console/; the README's console
 * section shows these pictures, copied to docs/screenshots/console/ with UPDATE_SCREENSHOTS=1).
 *
 * Without Chromium or SimpleSAMLphp the suite skips, saying so — except in CI, where that is a failure.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';
import { SsoSwitch } from '../../src/admin/sso-switch.js';
import { systemClock } from '../../src/domain/clock.js';
import { SecretBox } from '../../src/domain/secret-box.js';
import { TenantRepository } from '../../src/domain/tenants.js';
import { WebSessions } from '../../src/sso/sessions.js';
import type { RedisStore } from '../../src/store/redis-store.js';
import { simpleSamlPhpMissing, startSimpleSamlPhp, type SimpleSamlPhp } from '../helpers/simplesamlphp.js';
import { browserMissing, buildIfStale, launchChromium, newPerson, PageChecks, startGateway, type GatewayProcess } from './harness.js';

const missing = browserMissing() || simpleSamlPhpMissing();
const inCi = Boolean(process.env.CI);
if (missing && !inCi) process.stderr.write(`console browser tests skipped: ${missing}\n`);

const DOMAIN = 'acme.example';
const OPERATOR_KEY = `op_${'k'.repeat(40)}`;
const SHOTS = 'test-artifacts/console';
const MEMBERS = 1_000;

const people = {
  alice: { account: `alice@${DOMAIN}`, password: 'Alice-console-pass-1', idpUser: 'alice', idpPassword: 'alice-idp-pass', externalKey: 'ext-alice', name: 'Alice Admin' },
  bob: { account: `bob@${DOMAIN}`, password: 'Bob-console-pass-1', idpUser: 'bob', idpPassword: 'bob-idp-pass', externalKey: 'ext-bob', name: 'Bob Helper' },
};
const memberAccount = (i: number): string => `user${String(i).padStart(4, '0')}@${DOMAIN}`;

/** The tenant as the seed file writes it: SSO off, a super admin and an admin with passwords, 1,000 members. */
function seed(): string {
  const members: Array<Record<string, unknown>> = [
    { id: 'm-alice', account: people.alice.account, name: people.alice.name, role: 'super_admin', status: 'in_use', password: people.alice.password },
    { id: 'm-bob', account: people.bob.account, name: people.bob.name, role: 'admin', status: 'in_use', password: people.bob.password },
  ];
  for (let i = 1; i <= MEMBERS - 2; i++) members.push({ id: `m-${i}`, account: memberAccount(i), name: `Member ${i}`, status: i % 10 === 0 ? 'pending' : 'in_use' });
  return JSON.stringify({ tenants: [{ domain: DOMAIN, name: 'Acme Corporation', plan: 'standard', members }] });
}

/** account,name,externalKey for every member; `bad` puts a `/` (refused by S-26) in that data row's key. */
function externalKeysCsv(bad?: number): { csv: string; badLine?: number } {
  const rows = ['account,name,externalKey', `${people.alice.account},${people.alice.name},${people.alice.externalKey}`, `${people.bob.account},${people.bob.name},${people.bob.externalKey}`];
  for (let i = 1; i <= MEMBERS - 2; i++) rows.push(`${memberAccount(i)},Member ${i},${i === bad ? `emp/${i}` : `emp-${i}`}`);
  // The header is line 1, alice line 2, bob line 3: member i is on line i + 3.
  return { csv: `${rows.join('\r\n')}\r\n`, badLine: bad === undefined ? undefined : bad + 3 };
}

describe('the admin console in a real browser: node dist/main.js, WORKERS=2 on Redis, SimpleSAMLphp as the IdP', { skip: missing && !inCi ? missing : false, timeout: 300_000 }, () => {
  let gw: GatewayProcess | undefined;
  let idp: SimpleSamlPhp | undefined;
  let browser: Browser | undefined;
  let cleanupRedis: (() => Promise<void>) | undefined;
  let store: RedisStore | undefined;
  let dir: string | undefined;
  const checks = new PageChecks(SHOTS);
  const contexts: BrowserContext[] = [];
  /** The super admin's browser, kept across the steps. */
  let admin: { context: BrowserContext; page: Page } | undefined;

  before(async () => {
    if (missing) assert.fail(`CI: ${missing}. .ci/run installs Debian's chromium and simplesamlphp.`);
    await buildIfStale();
    const url = await redisUrl();
    const owned = await createTestRedisStore();
    cleanupRedis = owned.cleanup;
    store = owned.store;
    const port = await freePort();
    const base = `http://localhost:${port}`;
    idp = await startSimpleSamlPhp({
      spEntityId: `${base}/saml/metadata`,
      acsUrl: `${base}/acs/${DOMAIN}`,
      users: [
        { username: people.alice.idpUser, password: people.alice.idpPassword, attributes: { uid: people.alice.externalKey, mail: people.alice.account } },
        { username: people.bob.idpUser, password: people.bob.idpPassword, attributes: { uid: people.bob.externalKey, mail: people.bob.account } },
      ],
      nameIdAttribute: 'uid',
      sign: 'both',
    });
    dir = mkdtempSync(join(tmpdir(), 'idpb-console-'));
    writeFileSync(join(dir, 'seed.json'), seed());
    // The IdP's metadata URL is on loopback: the outbound policy admits exactly that host and port.
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ outbound: { allowedHosts: [new URL(idp.baseUrl).host] } }));
    gw = await startGateway(port, {
      NODE_ENV: 'development',
      WORKERS: '2',
      REDIS_URL: url,
      REDIS_KEY_PREFIX: owned.prefix,
      PUBLIC_URL: base,
      ADMIN_API_KEY: OPERATOR_KEY,
      SEED_FILE: join(dir, 'seed.json'),
      IDPB_CONFIG: join(dir, 'config.json'),
      LOG_LEVEL: 'info',
    });
    browser = await launchChromium();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await gw?.stop();
    if (gw) writeFileSync('test-artifacts/console-gateway.log', gw.output());
    if (idp) writeFileSync('test-artifacts/console-simplesamlphp.log', idp.output());
    await idp?.stop();
    await cleanupRedis?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
    writeFileSync('test-artifacts/console-axe-findings.json', JSON.stringify(checks.findings, null, 2));
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      mkdirSync('docs/screenshots/console', { recursive: true });
      for (const f of readdirSync(SHOTS)) copyFileSync(join(SHOTS, f), join('docs/screenshots/console', f.replace(/^\d+-/, '')));
    }
  });

  const person = async (options: { width?: number; locale?: string } = {}): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await newPerson(browser!, options.locale);
    contexts.push(context);
    const page = await context.newPage();
    if (options.width) await page.setViewportSize({ width: options.width, height: 900 });
    return { context, page };
  };

  /** The admin API as the operator (to check what the console did, never to do it). */
  async function operator(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${gw!.base}/admin/v1${path}`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } });
    assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  }

  /** Signs in at SimpleSAMLphp's own login form. */
  async function idpSignIn(page: Page, who: typeof people.alice): Promise<void> {
    try {
      await page.getByLabel('Username').waitFor();
    } catch {
      const text = await page.locator('body').innerText({ timeout: 2_000 }).catch(() => '(no page)');
      assert.fail(`expected SimpleSAMLphp's login form, but the browser shows ${page.url()}:\n${text.slice(0, 800)}`);
    }
    await page.getByLabel('Username').fill(who.idpUser);
    await page.getByLabel('Password').fill(who.idpPassword);
    await page.getByRole('button', { name: /login/i }).click();
  }

  async function openScreen(page: Page, nav: string, heading: string): Promise<void> {
    const menu = page.getByTestId('menu-button');
    if (await menu.isVisible()) await menu.click();
    await page.getByTestId(`nav-${nav}`).click();
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  }

  it('a super admin signs in to the console with a password (SSO is still off)', async () => {
    admin = await person();
    const { page } = admin;
    await page.goto(`${gw!.base}/console/`);
    await page.getByRole('heading', { name: 'Sign in to the admin console' }).waitFor();
    await checks.check(page, 'sign-in');
    await page.getByLabel('Your company domain').fill(DOMAIN);
    await page.getByTestId('sign-in-password').click();
    await page.getByLabel('Account').fill(people.alice.account);
    await page.getByLabel('Password').fill(people.alice.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${gw!.base}/console/**`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.match(await page.getByTestId('signed-in-as').innerText(), /Alice Admin/);
    assert.match(await page.getByTestId('role-badge').innerText(), /Super admin/);
    await checks.check(page, 'overview');
  });

  it('members: search finds one member among 1,000; the add form checks its fields inline', async () => {
    const { page } = admin!;
    await openScreen(page, 'members', 'Members');
    await page.getByTestId('members-table').waitFor();
    assert.match(await page.getByTestId('members-total').innerText(), /1,?000/);
    await checks.check(page, 'members');
    await page.getByTestId('members-search').fill('user0042');
    // The list follows the search box as the admin types: one row left, the one searched for.
    await page.getByTestId('members-table').locator('tbody tr').nth(1).waitFor({ state: 'detached' });
    assert.match(await page.getByTestId('members-table').locator('tbody tr').innerText(), new RegExp(memberAccount(42)));
    await page.getByTestId('member-add').click();
    await page.getByTestId('member-account').fill('not-an-account');
    await page.getByTestId('member-save').click();
    await page.getByText('Enter an account such as name@example.com.').waitFor();
    await checks.check(page, 'member-add');
    await page.keyboard.press('Escape');
    await page.getByTestId('members-csv-open').click();
    await page.getByRole('dialog').waitFor();
    await checks.check(page, 'members-csv');
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
  });

  it('external keys: 1,000 rows with one bad row apply nothing and the report names the row; fixed, they all apply', async () => {
    const { page } = admin!;
    await openScreen(page, 'external-keys', 'External keys');
    await checks.check(page, 'external-keys');
    const bad = externalKeysCsv(500);
    await page.getByLabel('Edited CSV file').setInputFiles({ name: 'keys.csv', mimeType: 'text/csv', buffer: Buffer.from(bad.csv) });
    await page.getByTestId('external-keys-csv-submit').click();
    const errors = page.getByTestId('external-keys-csv-errors');
    await errors.waitFor();
    assert.match(await errors.innerText(), /Nothing was applied/);
    const table = page.getByTestId('external-keys-csv-error-table');
    assert.match(await table.innerText(), new RegExp(`\\b${bad.badLine}\\b[\\s\\S]*externalKey`));
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('external-keys-csv-report').click()]);
    const report = readFileSync((await download.path()), 'utf8');
    assert.match(report, /^\uFEFF?row,column,error/im);
    assert.match(report, new RegExp(`^${bad.badLine},externalKey,`, 'm'));
    await checks.check(page, 'external-keys-rejected');
    // Nothing was applied: alice still has no external key.
    const before = (await operator(`/domains/${DOMAIN}/members/m-alice`)) as { externalKey: string | null };
    assert.equal(before.externalKey, null);

    await page.getByLabel('Edited CSV file').setInputFiles({ name: 'keys.csv', mimeType: 'text/csv', buffer: Buffer.from(externalKeysCsv().csv) });
    await page.getByTestId('external-keys-csv-submit').click();
    await page.getByTestId('external-keys-csv-success').waitFor({ timeout: 30_000 });
    assert.match(await page.getByTestId('external-keys-summary').innerText(), /1,?000 updated/);
    await checks.check(page, 'external-keys-applied');
    const afterImport = (await operator(`/domains/${DOMAIN}/members/m-alice`)) as { externalKey: string | null };
    assert.equal(afterImport.externalKey, people.alice.externalKey);
  });

  it('SSO settings: SAML from SimpleSAMLphp metadata by URL, its certificate shown, the SP details to copy', async () => {
    const { page } = admin!;
    await openScreen(page, 'sso', 'SSO settings');
    await page.getByTestId('protocol-saml').check();
    await page.getByTestId('metadata-source-url').check();
    await page.getByTestId('metadata-url').fill(idp!.metadataUrl);
    await page.getByTestId('metadata-import').click();
    await page.getByTestId('metadata-result').waitFor();
    const certificates = page.getByTestId('certificates');
    await certificates.waitFor();
    assert.match(await certificates.innerText(), /Valid/);
    assert.equal(await page.getByLabel('IdP entity ID').inputValue(), idp!.entityId);
    assert.equal(await page.getByTestId('sp-acs-url').innerText(), `${gw!.base}/acs/${DOMAIN}`);
    assert.equal(await page.getByTestId('sp-direct-login-url').innerText(), `${gw!.base}/d/login/${DOMAIN}`);
    await checks.check(page, 'sso-settings');
    const stored = (await operator(`/domains/${DOMAIN}/sso`)) as { enabled: boolean; saml?: { idpEntityId: string } };
    assert.equal(stored.enabled, false);
    assert.equal(stored.saml?.idpEntityId, idp!.entityId);
  });

  it('test sign-in: in a new tab through SimpleSAMLphp; the console shows the mapped member; no session, SSO still off', async () => {
    const { context, page } = admin!;
    // The console sign-in went through the employee login, so this browser has an employee session: the test must leave it as it is.
    const employeeSession = async (): Promise<unknown> => ((await (await context.request.get(`${gw!.base}/session`)).json()) as { session?: unknown }).session;
    const sessionBefore = await employeeSession();
    const cookiesBefore = (await context.cookies(gw!.base)).map((c) => `${c.name}=${c.value}`).sort();
    const [tab] = await Promise.all([context.waitForEvent('page'), page.getByTestId('test-sign-in').click()]);
    await tab.waitForLoadState('domcontentloaded');
    await idpSignIn(tab, people.alice);
    await tab.getByRole('heading', { name: /Test sign-in finished/ }).waitFor({ timeout: 20_000 });
    await checks.check(tab, 'test-sign-in-finished');
    await tab.close();
    await page.locator('[data-testid=test-sign-in-result][data-status=succeeded]').waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId('test-sign-in-member').innerText(), new RegExp(people.alice.account));
    await checks.check(page, 'test-sign-in-result');
    const stored = (await operator(`/domains/${DOMAIN}/sso`)) as { enabled: boolean };
    assert.equal(stored.enabled, false);
    assert.deepEqual(await employeeSession(), sessionBefore, 'the test sign-in made no new employee session');
    const cookiesAfter = (await context.cookies(gw!.base))
      .map((c) => `${c.name}=${c.value}`)
      .filter((c) => !c.startsWith('idpb_login='))
      .sort();
    assert.deepEqual(cookiesAfter, cookiesBefore.filter((c) => !c.startsWith('idpb_login=')), 'no session cookie was set or changed');
  });

  it('switching SSO on: the preview lists the effects with counts, then progress, then the summary', async () => {
    const { page } = admin!;
    await page.getByTestId('sso-switch').click();
    const dialog = page.getByRole('dialog', { name: 'Turn SSO on' });
    await dialog.waitFor();
    const effects = dialog.getByTestId('switch-preview-effects');
    await effects.waitFor();
    assert.match(await dialog.innerText(), /Nothing has changed yet/);
    // 99 seeded members are pending (every tenth of the 998): all activated.
    assert.match(await effects.locator('[data-effect=pendingActivated]').innerText(), /\b99\b/);
    await checks.check(page, 'sso-switch-preview');
    await dialog.getByTestId('switch-confirm').click();
    await page.getByTestId('switch-summary').waitFor({ timeout: 60_000 });
    assert.match(await page.getByTestId('switch-summary').innerText(), /SSO is on\./);
    assert.match(await page.getByTestId('switch-summary').innerText(), /\b99\b/);
    await checks.check(page, 'sso-switch-done');
    await page.getByTestId('switch-close').click();
    await page.getByTestId('sso-state').filter({ hasText: /^SSO on$/ }).waitFor();
    const stored = (await operator(`/domains/${DOMAIN}/sso`)) as { enabled: boolean; switchInProgress: unknown };
    assert.equal(stored.enabled, true);
    assert.equal(stored.switchInProgress, null);
  });

  it('API keys: the super admin creates a read-only key with an expiry and sees it once', async () => {
    const { page } = admin!;
    await openScreen(page, 'api-keys', 'API keys');
    await page.getByTestId('api-key-name').fill('HR sync');
    await page.getByLabel('Read only').check();
    await page.getByTestId('api-key-create').click();
    await page.getByTestId('api-key-created').waitFor();
    assert.match(await page.getByTestId('api-key-value').innerText(), /^idpb_/);
    await checks.check(page, 'api-keys');
  });

  it('a super admin signs in through SAML (SimpleSAMLphp) once SSO is on', async () => {
    const { page } = await person();
    await page.goto(`${gw!.base}/console/`);
    await page.getByLabel('Your company domain').fill(DOMAIN);
    await page.getByTestId('sign-in-sso').click();
    await idpSignIn(page, people.alice);
    await page.waitForURL(`${gw!.base}/console/**`, { timeout: 20_000 });
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.match(await page.getByTestId('role-badge').innerText(), /Super admin/);
  });

  it('an admin without the super admin role is refused the switch (the button explains; the API says 403)', async () => {
    const { page } = await person();
    await page.goto(`${gw!.base}/console/`);
    await page.getByLabel('Your company domain').fill(DOMAIN);
    await page.getByTestId('sign-in-sso').click();
    await idpSignIn(page, people.bob);
    await page.waitForURL(`${gw!.base}/console/**`, { timeout: 20_000 });
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.match(await page.getByTestId('role-badge').innerText(), /^Admin$/);
    await openScreen(page, 'sso', 'SSO settings');
    assert.equal(await page.getByTestId('sso-switch').isDisabled(), true);
    await page.getByTestId('permission-note-super').first().waitFor();
    assert.match(await page.getByTestId('permission-note-super').first().innerText(), /Only a super admin can do this\./);
    await checks.check(page, 'sso-settings-admin');
    // The server is the real gate: the same request the button would send, from this admin's session.
    const refused = await page.evaluate(async (domain) => {
      const session = (await (await fetch('/admin/v1/session')).json()) as { csrfToken: string };
      const res = await fetch(`/admin/v1/domains/${domain}/sso`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify({ enabled: false }),
      });
      return { status: res.status, body: (await res.json()) as { error: string } };
    }, DOMAIN);
    assert.deepEqual([refused.status, refused.body.error], [403, 'forbidden']);
    const stored = (await operator(`/domains/${DOMAIN}/sso`)) as { enabled: boolean };
    assert.equal(stored.enabled, true);
  });

  it('in Korean and Japanese, and on a narrow window', async () => {
    for (const [locale, heading] of [
      ['ko-KR', /관리/],
      ['ja-JP', /管理/],
    ] as const) {
      const { page } = await person({ locale });
      await page.goto(`${gw!.base}/console/`);
      await page.getByRole('heading', { level: 1 }).filter({ hasText: heading }).waitFor();
      await checks.check(page, `sign-in-${locale.slice(0, 2)}`);
    }
    const { page } = admin!;
    await page.setViewportSize({ width: 400, height: 860 });
    await openScreen(page, 'members', 'Members');
    await checks.check(page, 'members-narrow');
  });

  it('a switch interrupted part way (the power goes) shows as resumable, and the super admin resumes it from the console', async () => {
    // The gateway's own switch code, on the same Redis, turning SSO off in batches of 100, loses its process after
    // the second batch: the job record and the done set stay behind, as after a crash or a restart.
    const secretKeys = (JSON.parse(readFileSync('config/default.json', 'utf8')) as { secretKeys: string[] }).secretKeys;
    const tenants = new TenantRepository(store!, new SecretBox(secretKeys));
    const cut = new SsoSwitch({
      store: store!,
      tenants,
      clock: systemClock,
      sessionEnders: [new WebSessions(store!, systemClock)],
      tokenRevokers: [],
      batchSize: 100,
      afterBatch: (_domain, done) => (done >= 200 ? Promise.reject(new Error('the power goes')) : Promise.resolve()),
    });
    const tenant = await tenants.load(DOMAIN);
    await assert.rejects(cut.apply(tenant, { ...tenant.sso, enabled: false }), /the power goes/);

    const { page } = admin!;
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.reload();
    await openScreen(page, 'sso', 'SSO settings');
    const banner = page.getByTestId('resume-banner');
    await banner.waitFor();
    assert.match(await banner.innerText(), /200 of 1,?000 members/);
    await checks.check(page, 'sso-switch-resume');
    await page.getByTestId('resume-switch').click();
    await page.getByTestId('switch-summary').waitFor({ timeout: 60_000 });
    assert.match(await page.getByTestId('switch-summary').innerText(), /SSO is off\./);
    await page.getByTestId('switch-close').click();
    await page.getByTestId('sso-state').filter({ hasText: /^SSO off$/ }).waitFor();
    assert.equal(await banner.count(), 0);
    const stored = (await operator(`/domains/${DOMAIN}/sso`)) as { enabled: boolean; switchInProgress: unknown };
    assert.deepEqual([stored.enabled, stored.switchInProgress], [false, null]);
  });
});
