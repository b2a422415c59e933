/**
 * The console's audit trail and sign-in activity, end to end, in a real browser: Debian's Chromium
 * (playwright-core) against `node dist/main.js`, WORKERS=2 on Redis (no IdP: password sign-in).
 *
 * A super admin signs in with a password; someone else fails a password sign-in; the super admin
 * creates and revokes an API key in the console, finds the revocation on the audit screen by its
 * action, opens its detail, and exports it as CSV (a browser download); pages beyond the newest 500
 * events with "Load more"; sees the refused sign-in with its private reason, and on the activity
 * screen the chart with the failure and the refusal reason. An admin (not super) reads the audit
 * screen but is refused a super admin's action. Every screen is checked with axe-core (no serious or
 * critical violation) and photographed (test-artifacts/console-audit/; the audit-* and activity-*
 * pictures are copied to docs/screenshots/console/ with UPDATE_SCREENSHOTS=1).
 *
 * Without Chromium the suite skips, saying so — except in CI, where that is a failure.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { systemClock } from '../../src/domain/clock.js';
import { AuditLog } from '../../src/observability/audit.js';
import type { RedisStore } from '../../src/store/redis-store.js';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';
import { browserMissing, buildIfStale, launchChromium, newPerson, PageChecks, startGateway, type GatewayProcess } from './harness.js';

const missing = browserMissing();
const inCi = Boolean(process.env.CI);
if (missing && !inCi) process.stderr.write(`console audit browser tests skipped: ${missing}\n`);

const DOMAIN = 'audit.example';
const OPERATOR_KEY = `op_${'a'.repeat(40)}`;
const SHOTS = 'test-artifacts/console-audit';
/** Events seeded straight into the trail, to page beyond the newest 500. */
const SEEDED = 620;

const people = {
  alice: { account: `alice@${DOMAIN}`, password: 'Alice-audit-pass-1', name: 'Alice Admin' },
  bob: { account: `bob@${DOMAIN}`, password: 'Bob-audit-pass-1', name: 'Bob Helper' },
};

function seed(): string {
  const members: Array<Record<string, unknown>> = [
    { id: 'm-alice', account: people.alice.account, name: people.alice.name, role: 'super_admin', status: 'in_use', password: people.alice.password },
    { id: 'm-bob', account: people.bob.account, name: people.bob.name, role: 'admin', status: 'in_use', password: people.bob.password },
  ];
  for (let i = 1; i <= 20; i++) members.push({ id: `m-${i}`, account: `user${i}@${DOMAIN}`, name: `Member ${i}`, status: 'in_use' });
  return JSON.stringify({ tenants: [{ domain: DOMAIN, name: 'Audit Example', plan: 'standard', members }] });
}

describe('the console audit trail and sign-in activity in a real browser: node dist/main.js, WORKERS=2 on Redis', { skip: missing && !inCi ? missing : false, timeout: 300_000 }, () => {
  let gw: GatewayProcess | undefined;
  let browser: Browser | undefined;
  let cleanupRedis: (() => Promise<void>) | undefined;
  let store: RedisStore | undefined;
  let dir: string | undefined;
  const checks = new PageChecks(SHOTS);
  const contexts: BrowserContext[] = [];
  let admin: { context: BrowserContext; page: Page } | undefined;
  let revokedKeyId = '';

  before(async () => {
    if (missing) assert.fail(`CI: ${missing}. .ci/run installs Debian's chromium.`);
    await buildIfStale();
    const url = await redisUrl();
    const owned = await createTestRedisStore();
    cleanupRedis = owned.cleanup;
    store = owned.store;
    const port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'idpb-console-audit-'));
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
    if (gw) writeFileSync('test-artifacts/console-audit-gateway.log', gw.output());
    await cleanupRedis?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
    writeFileSync('test-artifacts/console-audit-axe-findings.json', JSON.stringify(checks.findings, null, 2));
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      mkdirSync('docs/screenshots/console', { recursive: true });
      for (const f of readdirSync(SHOTS)) {
        const name = f.replace(/^\d+-/, '');
        if (/^(audit|activity)[-.]/.test(name)) copyFileSync(join(SHOTS, f), join('docs/screenshots/console', name));
      }
    }
  });

  const person = async (locale?: string): Promise<{ context: BrowserContext; page: Page }> => {
    const context = await newPerson(browser!, locale);
    contexts.push(context);
    return { context, page: await context.newPage() };
  };

  /** The admin API as the operator (to check what the console did, never to do it). */
  async function operator(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${gw!.base}/admin/v1${path}`, { headers: { authorization: `Bearer ${OPERATOR_KEY}` } });
    assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  }

  async function passwordSignIn(page: Page, account: string, password: string): Promise<void> {
    await page.goto(`${gw!.base}/console/`);
    await page.getByLabel('Your company domain').fill(DOMAIN);
    await page.getByTestId('sign-in-password').click();
    await page.getByLabel('Account').fill(account);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  async function openScreen(page: Page, nav: string, heading: string): Promise<void> {
    await page.getByTestId(`nav-${nav}`).click();
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  }

  /** Filters by action and waits until the table shows only that action (or, `expectRows` false, the empty state). */
  async function filterByType(page: Page, type: string, expectRows = true): Promise<void> {
    await page.getByTestId('audit-type').fill(type);
    await page.getByTestId('audit-apply').click();
    await page.waitForFunction(
      ([prefix, expect]) => {
        if (!expect) return document.querySelector('[data-testid=empty-state]') !== null;
        const rows = [...document.querySelectorAll('[data-testid=audit-table] tbody tr')];
        return rows.length > 0 && rows.every((r) => (r.getAttribute('data-event-type') ?? '').startsWith(prefix));
      },
      [type.replace(/\*$/, ''), expectRows] as const,
    );
  }

  it('a super admin signs in with a password; someone else fails a password sign-in', async () => {
    admin = await person();
    await passwordSignIn(admin.page, people.alice.account, people.alice.password);
    await admin.page.waitForURL(`${gw!.base}/console/**`);
    await admin.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.match(await admin.page.getByTestId('role-badge').innerText(), /Super admin/);

    const { page } = await person();
    await passwordSignIn(page, people.alice.account, 'not-the-password');
    await page.getByText('The account or password is not correct.').first().waitFor();
  });

  it('the super admin creates and revokes an API key in the console', async () => {
    const { page } = admin!;
    await openScreen(page, 'api-keys', 'API keys');
    await page.getByTestId('api-key-name').fill('Nightly export');
    await page.getByTestId('api-key-create').click();
    await page.getByTestId('api-key-created').waitFor();
    const created = (await operator(`/domains/${DOMAIN}/api-keys`)) as { apiKeys: Array<{ id: string; name: string }> };
    revokedKeyId = created.apiKeys.find((k) => k.name === 'Nightly export')!.id;
    await page.getByRole('button', { name: 'Revoke Nightly export' }).click();
    const dialog = page.getByTestId('api-key-revoke-dialog');
    await dialog.getByTestId('confirm-button').click();
    await page.getByText('No API keys').waitFor();
    const left = (await operator(`/domains/${DOMAIN}/api-keys`)) as { apiKeys: unknown[] };
    assert.equal(left.apiKeys.length, 0);
  });

  it('the audit screen finds the revocation by its action, shows every field of it, and exports it as CSV', async () => {
    const { page } = admin!;
    await openScreen(page, 'audit', 'Audit trail');
    await page.getByTestId('audit-table').waitFor();
    await checks.check(page, 'audit-trail');

    await filterByType(page, 'api_key.revoked');
    const rows = page.getByTestId('audit-table').locator('tbody tr');
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.first().getAttribute('data-event-type'), 'api_key.revoked');
    assert.match(await rows.first().innerText(), /member:m-alice/);
    await page.getByTestId('audit-end').waitFor();
    await page.getByTestId('audit-end').scrollIntoViewIfNeeded();
    await checks.check(page, 'audit-filtered');

    await rows.first().getByTestId('audit-details').click();
    const detail = page.getByRole('dialog', { name: 'Audit event' });
    await detail.waitFor();
    assert.equal(await detail.getByTestId('audit-detail-type').innerText(), 'api_key.revoked');
    assert.match(await detail.getByTestId('audit-detail-data').innerText(), new RegExp(`keyId\\s+${revokedKeyId}`));
    const eventId = (await rows.first().getAttribute('data-event-id'))!;
    assert.match(await detail.innerText(), new RegExp(eventId));
    await checks.check(page, 'audit-detail');
    await page.keyboard.press('Escape');
    await detail.waitFor({ state: 'hidden' });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-export').click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert.match(csv, /^\uFEFF?id,at,type,actor,result,reason,ip,requestId,data\r\n/);
    const lines = csv.trim().split('\r\n');
    assert.equal(lines.length, 2, csv);
    assert.ok(lines[1]!.startsWith(`${eventId},`), csv);
    assert.match(lines[1]!, /,api_key\.revoked,member:m-alice,success,/);
    assert.match(lines[1]!, new RegExp(revokedKeyId));
    // The export is itself audited.
    const exported = (await operator(`/domains/${DOMAIN}/audit?type=audit.exported`)) as { events: Array<{ data: { rows: number } }> };
    assert.equal(exported.events[0]?.data.rows, 1);
  });

  it('refused sign-ins show their private reason in plain words; "Load more" pages beyond the newest 500', async () => {
    const { page } = admin!;
    await page.getByTestId('audit-clear').click();
    await page.getByTestId('audit-result').selectOption('failure');
    await page.getByTestId('audit-apply').click();
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid=audit-table] tbody tr')];
      return rows.length > 0 && rows.every((r) => r.querySelector('.badge-bad') !== null);
    });
    const refused = page.getByTestId('audit-table').locator('tbody tr[data-event-type="login.failed"]').first();
    assert.match(await refused.innerText(), /Refused\s+bad_password\s*Wrong password/);
    await refused.scrollIntoViewIfNeeded();
    await checks.check(page, 'audit-refused');

    // 620 events written to the trail by the gateway's own audit code, on the same Redis.
    const audit = new AuditLog(store!, systemClock, pino({ level: 'silent' }));
    for (let i = 0; i < SEEDED; i++) await audit.record({ type: 'test.seeded', domain: DOMAIN, actor: 'operator', data: { n: i } });
    await page.getByTestId('audit-clear').click();
    await filterByType(page, 'test.*');
    const rows = page.getByTestId('audit-table').locator('tbody tr');
    assert.equal(await rows.count(), 100);
    for (let loaded = 100; loaded < SEEDED; loaded += 100) {
      await page.getByTestId('audit-load-more').click();
      await rows.nth(Math.min(loaded + 100, SEEDED) - 1).waitFor();
    }
    assert.equal(await rows.count(), SEEDED);
    await page.getByTestId('audit-end').waitFor();
    assert.equal(await page.getByTestId('audit-load-more').count(), 0);
    assert.match(await page.getByTestId('audit-count').innerText(), /Events shown: 620/);
    // Newest first: the last row is the first event written.
    assert.match(await rows.last().getByRole('button').getAttribute('aria-label').then(String), /test\.seeded/);
    await rows.last().getByTestId('audit-details').click();
    assert.match(await page.getByTestId('audit-detail-data').innerText(), /n\s+0\b/);
    await page.getByTestId('audit-detail-close').click();
  });

  it('the activity screen shows the last 30 days as a chart with the failure, a numbers table and the refusal reason', async () => {
    const { page } = admin!;
    await openScreen(page, 'activity', 'Sign-in activity');
    const chart = page.getByTestId('activity-chart');
    await chart.waitFor();
    assert.equal(await chart.getAttribute('role'), 'img');
    const label = (await chart.getAttribute('aria-label'))!;
    assert.match(label, /signed in 1, refused 1\./);
    const today = new Date().toISOString().slice(0, 10);
    const bars = chart.locator(`g[data-date="${today}"]`);
    assert.equal(await bars.getAttribute('data-failure'), '1');
    assert.equal(await bars.locator('rect.series-password-failure').count(), 1);
    assert.equal(await bars.locator('rect.series-password-success').count(), 1);
    assert.equal(await chart.locator('g[data-date]').count(), 30);
    assert.equal(await page.getByTestId('activity-total-failed').innerText(), '1');
    const reason = page.getByTestId('activity-reasons').locator('li[data-reason="bad_password"]');
    assert.match(await reason.innerText(), /Wrong password\s*bad_password\s*Count: 1/);
    await checks.check(page, 'activity');
    // The numbers behind the chart: SAML, OAuth, password signed in, then refused.
    await page.getByTestId('activity-numbers').locator('summary').click();
    const row = page.getByTestId('activity-table').locator(`tbody tr[data-date="${today}"]`);
    assert.match(await row.innerText(), /0\s+0\s+1\s+0\s+0\s+1/);
    await page.getByTestId('activity-reasons').scrollIntoViewIfNeeded();
    await checks.check(page, 'activity-reasons');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.getByTestId('language-select').selectOption('ko');
    await page.getByRole('heading', { level: 1, name: '로그인 활동' }).waitFor();
    await checks.check(page, 'activity-ko');
    await page.getByTestId('language-select').selectOption('ja');
    await page.getByRole('heading', { level: 1, name: 'サインイン状況' }).waitFor();
    await checks.check(page, 'activity-ja');
    await page.getByTestId('language-select').selectOption('en');
  });

  it('an admin (not super admin) reads the audit screen but is refused a super admin action', async () => {
    const { page } = await person();
    await passwordSignIn(page, people.bob.account, people.bob.password);
    await page.waitForURL(`${gw!.base}/console/**`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.match(await page.getByTestId('role-badge').innerText(), /^Admin$/);
    await openScreen(page, 'audit', 'Audit trail');
    await filterByType(page, 'api_key.*');
    const types = await page.getByTestId('audit-table').locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-event-type')));
    assert.deepEqual(types, ['api_key.revoked', 'api_key.created']);
    await checks.check(page, 'audit-admin');
    await openScreen(page, 'activity', 'Sign-in activity');
    await page.getByTestId('activity-chart').waitFor();

    await openScreen(page, 'api-keys', 'API keys');
    assert.equal(await page.getByTestId('api-key-create').isDisabled(), true);
    assert.match(await page.getByTestId('permission-note-super').first().innerText(), /Only a super admin can do this\./);
    const refused = await page.evaluate(async (domain) => {
      const session = (await (await fetch('/admin/v1/session')).json()) as { csrfToken: string };
      const res = await fetch(`/admin/v1/domains/${domain}/api-keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
        body: JSON.stringify({ name: 'sneaky', scope: 'full' }),
      });
      return { status: res.status, body: (await res.json()) as { error: string } };
    }, DOMAIN);
    assert.deepEqual([refused.status, refused.body.error], [403, 'forbidden']);
    const keys = (await operator(`/domains/${DOMAIN}/api-keys`)) as { apiKeys: unknown[] };
    assert.equal(keys.apiKeys.length, 0);
  });

  it('an empty trail says so (a filter nothing matches)', async () => {
    const { page } = admin!;
    await openScreen(page, 'audit', 'Audit trail');
    await page.getByTestId('audit-table').waitFor();
    await filterByType(page, 'nothing.matches', false);
    await page.getByTestId('empty-state').filter({ hasText: 'No events match these filters' }).waitFor();
    await checks.check(page, 'audit-empty');
  });
});
