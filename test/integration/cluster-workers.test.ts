/**
 * `workers` (node:cluster) on a real Redis: the gateway as a process with WORKERS=2 runs a primary and two
 * workers sharing the port and the store; a login's steps land on both workers and still succeed; the
 * public-route rate limits count across the workers; /metrics answers from either worker with every
 * worker's counters summed; a worker that dies is replaced; SIGTERM drains the workers and the primary
 * exits 0. (With the in-process store the gateway runs one process: see the "npm start" test in demo.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';
import { call } from '../helpers/one-connection.js';

/** The per-client login-start budget (rateLimits.loginStartPerMinute) the gateway runs with here. */
const LOGIN_START_LIMIT = 10;

/** The sum of every sample of `name` whose labels include `labels` (exposition text). */
function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length, line.lastIndexOf(' '));
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const field = (html: string, name: string): string => {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} in page`);
  return m[1]!.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)));
};

describe('WORKERS=2 on Redis (node:cluster)', () => {
  let child: ChildProcess;
  let base: string;
  let output = '';
  let cleanup: () => Promise<void>;
  let exited: Promise<number | null>;
  let configDir: string;
  /** What the rate-limit burst did: login starts sent and refused (the metrics test checks the counters). */
  const burst = { sent: 0, refused: 0 };

  /** The JSON log lines written so far (the process also prints a few plain lines). */
  const logs = (): Array<Record<string, unknown>> =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const listening = (): Array<Record<string, unknown>> => logs().filter((l) => l.msg === 'idp-bridge listening');
  const waitFor = async (what: string, ok: () => boolean, ms = 60_000): Promise<void> => {
    for (const end = Date.now() + ms; Date.now() < end; ) {
      if (ok()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`timed out waiting for ${what}:\n${output.slice(-3000)}`);
  };

  before(async () => {
    const url = await redisUrl();
    const owned = await createTestRedisStore();
    cleanup = owned.cleanup;
    const port = await freePort();
    base = `http://localhost:${port}`;
    configDir = mkdtempSync(join(tmpdir(), 'idpb-cluster-'));
    const configFile = join(configDir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ rateLimits: { loginStartPerMinute: LOGIN_START_LIMIT } }));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(port),
      WORKERS: '2',
      REDIS_URL: url,
      REDIS_KEY_PREFIX: owned.prefix,
      LOG_LEVEL: 'info',
      IDPB_CONFIG: configFile,
    };
    delete env.METRICS_TOKEN;
    delete env.NODE_ENV;
    delete env.PUBLIC_URL;
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor('two listening workers', () => listening().length >= 2);
  });

  after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(configDir, { recursive: true, force: true });
    await cleanup();
  });

  it('starts a primary and two workers on one port, seeding the shared store once', () => {
    const primary = logs().find((l) => l.msg === 'idp-bridge primary started');
    assert.equal(primary?.workers, 2);
    assert.deepEqual(new Set(listening().map((l) => l.worker)), new Set([1, 2]));
    assert.equal(logs().filter((l) => l.msg === 'seed applied').length, 1, 'the seed is applied by the primary only');
    assert.ok(!output.includes('Running ONE process'), 'no single-process fallback on Redis');
  });

  it('serves from both workers: SAML logins whose steps land on either worker succeed (state in Redis)', async () => {
    for (let i = 0; i < 3; i++) {
      const start = await call(base, 'GET', `/d/login/demo.example?accessUrl=${encodeURIComponent(`${base}/welcome`)}`);
      assert.equal(start.status, 302);
      // The browser keeps the login binding cookie and sends it with the IdP's answer to the ACS.
      const binding = start.setCookie.find((c) => c.startsWith('idpb_login='))?.split(';')[0];
      assert.ok(binding, 'the login start sets the login binding cookie');
      const idp = new URL(start.location!);
      const form = await call(base, 'GET', idp.pathname + idp.search);
      assert.equal(form.status, 200);
      const posted = await call(base, 'POST', '/demo-idp/saml/sso', {
        form: { SAMLRequest: field(form.text, 'SAMLRequest'), RelayState: field(form.text, 'RelayState'), username: 'alice', password: 'alice-demo-password' },
      });
      assert.equal(posted.status, 200);
      const acs = await call(base, 'POST', '/acs/demo.example', { form: { SAMLResponse: field(posted.text, 'SAMLResponse'), RelayState: field(posted.text, 'RelayState') }, cookie: binding });
      assert.equal(acs.status, 303, acs.text);
      assert.equal(acs.location, `${base}/welcome`);
      const cookie = acs.setCookie.find((c) => c.startsWith('idpb_session=') && !c.startsWith('idpb_session=;'))!.split(';')[0]!;
      const session = await call(base, 'GET', '/session', { cookie });
      assert.equal(session.status, 200);
    }
    const served = logs().filter((l) => l.msg === 'request');
    const byWorker = new Set(served.map((l) => l.worker));
    assert.deepEqual(byWorker, new Set([1, 2]), 'both workers answered requests');
    // The i-th login started where the i-th /d/login was served and finished where the i-th ACS post was.
    const starts = served.filter((l) => l.route === '/d/login/:domain').map((l) => l.worker);
    const finishes = served.filter((l) => l.route === '/acs/:domain').map((l) => l.worker);
    assert.equal(starts.length, 3);
    assert.ok(
      starts.some((w, i) => w !== finishes[i]),
      `a login started on one worker finished on the other (starts ${starts.join()}, finishes ${finishes.join()})`,
    );
  });

  it('counts the public-route rate limits across both workers: over the limit is 429 whichever worker answers', async () => {
    // The limits use fixed one-minute windows: start the burst with time to spare in the current one.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 5_000) await new Promise((r) => setTimeout(r, left + 100));
    // 127.0.0.1 explicitly: the limit counts per client address, and "localhost" may be ::1 or 127.0.0.1.
    const local = base.replace('localhost', '127.0.0.1');
    const statuses: number[] = [];
    for (let i = 0; i < 2 * LOGIN_START_LIMIT; i++) {
      statuses.push((await call(local, 'GET', `/d/login/demo.example?accessUrl=${encodeURIComponent(`${base}/welcome`)}`)).status);
    }
    const allowed = statuses.filter((s) => s === 302).length;
    const limited = statuses.filter((s) => s === 429).length;
    assert.equal(allowed + limited, statuses.length, `only 302 or 429: ${statuses.join()}`);
    assert.ok(allowed <= LOGIN_START_LIMIT, `at most ${LOGIN_START_LIMIT} login starts a minute in all, not per worker (${statuses.join()})`);
    assert.ok(limited >= LOGIN_START_LIMIT, `the rest are refused (${statuses.join()})`);
    assert.deepEqual(statuses.slice(statuses.indexOf(429)), Array<number>(limited).fill(429), 'once over the limit, every later start is refused');
    Object.assign(burst, { sent: statuses.length, refused: limited });
    const refusals = (): Array<Record<string, unknown>> => logs().filter((l) => l.msg === 'request' && l.route === '/d/login/:domain' && l.status === 429);
    await waitFor('every refusal to be logged', () => refusals().length === limited, 5_000);
    const refusedBy = new Set(refusals().map((l) => l.worker));
    assert.deepEqual(refusedBy, new Set([1, 2]), 'both workers refused starts over the shared limit');
  });

  it('answers GET /metrics from either worker, 200, with every worker\'s counters summed', async () => {
    // So far: three SAML logins (each step on either worker), then the burst of login starts, spread over both workers.
    assert.ok(burst.sent > 0, 'runs after the rate-limit burst');
    const loginStarts = 3 + burst.sent;
    for (let i = 0; i < 8; i++) {
      const res = await call(base, 'GET', '/metrics');
      assert.equal(res.status, 200, res.text);
      assert.equal(sampleSum(res.text, 'idpb_logins_total', { domain: 'demo.example', type: 'saml', result: 'success' }), 3, 'logins finished on either worker');
      assert.equal(sampleSum(res.text, 'idpb_rate_limited_total', { bucket: 'login-start' }), burst.refused, 'refusals from both workers');
      assert.equal(sampleSum(res.text, 'idpb_http_request_duration_seconds_count', { route: '/d/login/:domain' }), loginStarts, 'login starts served by both workers');
      assert.ok(sampleSum(res.text, 'idpb_process_cpu_user_seconds_total') > 0, 'default process metrics are there too');
    }
    const scrapedBy = new Set(logs().filter((l) => l.msg === 'request' && l.route === '/metrics').map((l) => l.worker));
    assert.deepEqual(scrapedBy, new Set([1, 2]), 'both workers answered scrapes');
  });

  it('replaces a worker that dies, and keeps serving', async () => {
    const victim = listening()[0]!;
    process.kill(Number(victim.pid), 'SIGKILL');
    await waitFor('the dead worker to be replaced', () => listening().length >= 3);
    const died = logs().find((l) => l.msg === 'worker died unexpectedly; starting a new one');
    assert.equal(died?.pid, victim.pid);
    assert.equal(died?.signal, 'SIGKILL');
    for (let i = 0; i < 4; i++) assert.equal((await call(base, 'GET', '/healthz')).status, 200);
  });

  it('drains every worker on SIGTERM and the primary exits 0', async () => {
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output.slice(-2000));
    assert.equal(logs().filter((l) => l.msg === 'stopped').length, 2, 'both live workers drained');
    assert.ok(logs().some((l) => l.msg === 'all workers stopped'));
  });
});
