/**
 * `npm run bench`: the docs/spec.md §13 benchmarks against the real stack on loopback.
 *
 *   npm run bench                          (Redis at REDIS_URL, else redis://127.0.0.1:6379)
 *   BENCH_DURATION=5 BENCH_ONLY=acs,refresh npm run bench
 *
 * For each gateway mode — `per-core` (WORKERS=1) and `default` (as deployed: all cores once
 * src/main.ts clusters; skipped while it still serves with one process, being then the same run) — a
 * real gateway process (src/main.ts through tsx, or dist/main.js with BENCH_GATEWAY=dist) is started with
 * a generated config and seed on a random Redis key prefix, and each scenario runs a warm-up and a
 * measured autocannon phase, then its floor (and peer) with the same process count:
 *
 *   acs      POST /acs/{domain}, each request a distinct valid signed response answering its own login
 *            transaction (begun in-process through the gateway's LoginTransactions, as /d/login does, or
 *            by GET /d/login with BENCH_ACS_LOGINS=http) with a fresh assertion ID (303 to the accessUrl
 *            expected) — floor: raw node-saml validatePostResponse on the same responses
 *            (bench/hosts/node-saml.ts) — peer: BoxyHQ SAML Jackson's ACS on the same Redis, fed its own
 *            SP-initiated logins (bench/hosts/jackson.ts; beside the per-core gateway unless BENCH_PEER=all)
 *            Two rows: both gates (the default saml.secondGate: true) and the strict gate alone, on a second
 *            gateway process of the same mode with saml.secondGate: false (deployment-wide), which reuses the
 *            first row's floor and peer (BENCH_SECOND_GATE=on / off keeps only one row)
 *   login    GET /d/login/{domain} (302 to the IdP with an AuthnRequest; unsigned, the tenant default) — floor: a bare Express
 *            "hello" route (bench/hosts/hello.ts)
 *   refresh  POST /oidc/token grant_type=refresh_token by the public mobile client with X-MDM-Auth-Code
 *            and X-Device-Id on a tenant with MDM mode external, each token on its own device as a login
 *            through the guard leaves it (admission and device entry recorded) — floor: the same refresh
 *            on a tenant without MDM. Target ≥ 1,000 req/s and ≥ 0.8 of the floor.
 *
 * then bench/sso-switch.ts, bench/csv-import.ts and bench/audit-export.ts (time and peak memory), bench/scim.ts (SCIM first sync and
 * a large group patched in pages), bench/member-search.ts (a search page at 100,000 members), bench/acs-tracing.ts
 * (the ACS with tracing off and on) and bench/hostile-input.ts (the
 * costliest request a stranger can send to each public XML route, as CPU per request against one valid
 * login) and bench/authn-request.ts (the AuthnRequest built by the pure builder or by node-saml: CPU per
 * request, and /d/login against hello with each), folding their JSON lines in.
 * Prints a table and writes bench/results/<timestamp>.json and latest.json (bench/results/README.md).
 * Every key lives under the run's prefix and is deleted at the end; child processes are killed however
 * the run ends. Settings: bench/lib/settings.ts (BENCH_DURATION, BENCH_WARMUP, BENCH_CONNECTIONS,
 * BENCH_ONLY, BENCH_MODES, BENCH_SAML_SIGN, BENCH_LOG_LEVEL, BENCH_GATEWAY, BENCH_PEER …).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ACS_DOMAIN, BENCH_IDP, MDM_DOMAIN, MEMBERS_PER_TENANT, PLAIN_DOMAIN, cleanEnv, memberId, memberKey, operatorAuth, startGateway, writeGatewayFiles, type RunningGateway } from './lib/gateway.js';
import { describePhase, runLoad, type LoadSpec, type PhaseResult, type PoolItem } from './lib/load.js';
import { InProcessGateway } from './lib/in-process.js';
import { ForeignServerError, freePort, killAllChildren, runScript, startNode, waitReady, type Child } from './lib/processes.js';
import { checkRedis, countPrefix, deletePrefix, redactUrl } from './lib/redis.js';
import { renderTable, tableRows, writeResults, type Comparison, type FileBenchRecord, type ScenarioRecord } from './lib/report.js';
import { beginLogins, loginResponsePool, Signer, type ResponseTarget } from './lib/saml-pool.js';
import { readSettings, type BenchSettings, type Mode } from './lib/settings.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = join(REPO, 'bench/results');
/** docs/spec.md §13 / the task's targets; scenarios without one only report their ratio. */
const REFRESH_TARGET = { reqPerSec: 1000, ratio: 0.8 };
const FILE_TARGET = { ms: 10_000, rssGrowthMb: 150 };

const settings: BenchSettings = readSettings();
const runId = randomBytes(4).toString('hex');
const PREFIX = `bench:run:${runId}:`;
const JACKSON_PREFIX = `${PREFIX}jackson:`;
const startedAt = new Date();
const log = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const secondsSince = (t: number): string => `${((performance.now() - t) / 1000).toFixed(1)} s`;

// ---- lifetime: children, temp dir, Redis prefix ---------------------------------------------------
const children = new Set<Child>();
let tmpDir: string | null = null;
let signer: Signer | null = null;
let keepTmp = settings.keepTmp;
let cleanedUp = false;
let redisReachable = false;
let keysDeleted = 0;

async function cleanup(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  await Promise.allSettled([...children].map((c) => c.stop()));
  killAllChildren();
  await signer?.close().catch(() => undefined);
  if (redisReachable) {
    try {
      keysDeleted += await deletePrefix(settings.redisUrl, PREFIX);
      log(`deleted ${keysDeleted} keys under ${PREFIX} in all`);
      const left = await countPrefix(settings.redisUrl, PREFIX);
      if (left) log(`WARNING: ${left} keys are still under ${PREFIX}`);
    } catch (err) {
      log(`WARNING: could not delete the keys under ${PREFIX}: ${(err as Error).message}`);
    }
  }
  if (tmpDir) {
    if (keepTmp) log(`logs and generated files kept in ${tmpDir}`);
    else rmSync(tmpDir, { recursive: true, force: true });
  }
}

process.on('exit', () => killAllChildren());
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping the bench`);
    void cleanup().finally(() => process.exit(130));
  });
}

function track(child: Child): Child {
  children.add(child);
  void child.exited.then(() => children.delete(child));
  return child;
}

async function stopChild(child: Child): Promise<void> {
  await child.stop();
  children.delete(child);
}

// ---- phases ---------------------------------------------------------------------------------------
type PhaseSpec = Omit<LoadSpec, 'durationS' | 'title' | 'pool' | 'connections'>;

async function phase(title: string, spec: PhaseSpec & { pool?: PoolItem[] }, durationS: number, warm = false): Promise<PhaseResult> {
  const r = await runLoad({ ...spec, title, durationS, connections: settings.connections });
  log(`  ${warm ? '(warm-up) ' : ''}${describePhase(r)}`);
  return r;
}

/** Warm-up, then measure; for stateless requests. */
async function warmAndMeasure(title: string, spec: PhaseSpec): Promise<PhaseResult> {
  await phase(title, spec, settings.warmupS, true);
  return phase(title, spec, settings.durationS);
}

interface Pooled {
  measured: PhaseResult;
  warmPool: PoolItem[];
  pool: PoolItem[];
}

/** How much faster than its warm-up a measured phase may run before its pool runs out. */
const POOL_MARGIN = 1.3;
const clampPool = (n: number): number => Math.min(settings.poolMax, Math.max(4 * settings.connections, Math.ceil(n)));

/**
 * Single-use requests: a warm-up pool sized from a guess, then a measured pool sized from the warm-up's
 * busiest second (×POOL_MARGIN, plus the second autocannon takes to stop), so the pool lasts the phase
 * without costing minutes to prepare. A pool that still runs out ends the phase early (noted); the rate
 * is then over the shorter time.
 */
async function pooledPhases(title: string, guessRate: number, what: string, makePool: (n: number) => Promise<PoolItem[]>, spec: PhaseSpec): Promise<Pooled> {
  let t = performance.now();
  const warmN = clampPool(guessRate * (settings.warmupS + 1));
  const warmPool = await makePool(warmN);
  log(`  prepared ${warmN} ${what} in ${secondsSince(t)}`);
  const warm = await phase(title, { ...spec, pool: warmPool }, settings.warmupS, true);
  t = performance.now();
  // The warm-up's busiest second is nearer the warmed-up rate than its average.
  const n = clampPool(Math.max(warm.allReqPerSec, warm.peakPerSec, 50) * (settings.durationS + 1) * POOL_MARGIN + 4 * settings.connections);
  const pool = await makePool(n);
  log(`  prepared ${n} ${what} in ${secondsSince(t)}`);
  const measured = await phase(title, { ...spec, pool }, settings.durationS);
  return { measured, warmPool, pool };
}

function validity(r: PhaseResult, notes: string[], what: string): boolean {
  let ok = true;
  if (r.successRate < settings.minSuccess) {
    notes.push(`${what}: only ${(r.successRate * 100).toFixed(1)} % of responses had the expected status (${JSON.stringify(r.statuses)})`);
    ok = false;
  }
  if (r.sampleFailures.length) {
    notes.push(`${what}: sampled responses failed: ${r.sampleFailures.join(' | ')}`);
    ok = false;
  }
  if (r.reused) {
    notes.push(`${what}: ${r.reused} single-use requests were sent twice`);
    ok = false;
  }
  if (r.errors || r.timeouts) notes.push(`${what}: ${r.errors} connection errors, ${r.timeouts} timeouts`);
  if (r.poolExhausted) notes.push(`${what}: the pool of ${r.pool} ran out after ${r.durationS} s (rate measured over that time)`);
  return ok;
}

interface HostSpec {
  name: string;
  file: string;
  processes: number;
  env: (port: number) => Record<string, string>;
  /** A path that answers `okStatus` once the host serves. */
  readyPath: string;
  okStatus: number;
  timeoutMs?: number;
}

/**
 * Starts a comparison host on a free port and waits until it answers; when another process took the
 * port meanwhile (the machine is shared), tries again on another one.
 */
async function startHost(spec: HostSpec): Promise<{ child: Child; base: string }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const hostId = `${spec.name}:${randomBytes(4).toString('hex')}`;
    const child = track(
      startNode({
        name: spec.name,
        args: ['--import', 'tsx', spec.file],
        cwd: REPO,
        env: cleanEnv({ ...spec.env(port), BENCH_PORT: String(port), BENCH_PROCESSES: String(spec.processes), BENCH_HOST_ID: hostId, DO_NOT_TRACK: '1', BOXYHQ_NO_ANALYTICS: '1' }),
        logFile: join(tmpDir!, `${spec.name.replace(/\W+/g, '-')}.log`),
      }),
    );
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitReady(child, `${base}${spec.readyPath}`, spec.timeoutMs ?? 60_000, spec.okStatus, hostId);
      return { child, base };
    } catch (err) {
      await stopChild(child);
      if (!(err instanceof ForeignServerError) || attempt >= 3) throw err;
      log(`  ${err.message}; trying another port`);
    }
  }
}

// ---- scenarios --------------------------------------------------------------------------------------
const accessUrlOf = (gw: RunningGateway): string => `${gw.base}/welcome`;
const loginUrlOf = (gw: RunningGateway): string => `${gw.base}/d/login/${ACS_DOMAIN}?accessUrl=${encodeURIComponent(accessUrlOf(gw))}`;

async function scenarioLogin(gw: RunningGateway): Promise<ScenarioRecord> {
  log(`\n[login] GET /d/login/{domain} vs a bare Express route — ${gw.processes} process(es)`);
  const url = loginUrlOf(gw);
  const probe = await fetch(url, { redirect: 'manual' });
  await probe.arrayBuffer();
  if (probe.status !== 302 || !probe.headers.get('location')?.startsWith(`${BENCH_IDP.ssoUrl}?SAMLRequest=`)) throw new Error(`GET /d/login answered ${probe.status} ${probe.headers.get('location') ?? ''}`);
  const ours = await warmAndMeasure('GET /d/login/{domain}', { url, expectStatus: 302 });

  const host = await startHost({ name: 'hello host', file: 'bench/hosts/hello.ts', processes: gw.processes, env: () => ({}), readyPath: '/hello', okStatus: 200 });
  let floor: PhaseResult;
  try {
    floor = await warmAndMeasure('Express hello', { url: `${host.base}/hello`, expectStatus: 200 });
  } finally {
    await stopChild(host.child);
  }
  const notes: string[] = [];
  const valid = validity(ours, notes, 'gateway') && validity(floor, notes, 'floor');
  return { id: 'login', label: 'GET /d/login/{domain}', mode: gw.mode, processes: gw.processes, result: ours, floor: { label: 'Express hello', processes: gw.processes, result: floor }, ratio: ratio(ours, floor), peer: null, target: null, valid, notes };
}

const ratio = (a: PhaseResult, b: PhaseResult): number | null => (b.reqPerSec > 0 ? Math.round((a.reqPerSec / b.reqPerSec) * 1000) / 1000 : null);
const NAME_IDS = Array.from({ length: MEMBERS_PER_TENANT }, (_, i) => memberKey(i));

/** The two ACS rows: passport-saml's second gate on (the default) or off (`saml.secondGate: false`). */
const ACS_ROWS = {
  both: { id: 'acs', label: 'ACS, both gates (default)' },
  strict: { id: 'acs-strict', label: 'ACS, strict gate alone (saml.secondGate: false)' },
} as const;

/** The floor and peer of an ACS row measured earlier in the same mode, reused by the next row (same URLs, same responses' shape). */
type AcsComparisons = Pick<ScenarioRecord, 'floor' | 'peer'>;

async function scenarioAcs(gw: RunningGateway, local: InProcessGateway, gates: keyof typeof ACS_ROWS, shared: AcsComparisons | null): Promise<ScenarioRecord> {
  log(`\n[${ACS_ROWS[gates].id}] ${ACS_ROWS[gates].label}: POST /acs/{domain} with distinct signed responses — ${gw.processes} process(es); the IdP signs the ${settings.samlSign === 'both' ? 'response and the assertion' : 'assertion'}; logins begun ${settings.acsLogins === 'http' ? 'by GET /d/login' : 'in-process (LoginTransactions.create)'}`);
  const target: ResponseTarget = { acsUrl: `${gw.base}/acs/${ACS_DOMAIN}`, audience: `${gw.base}/saml/metadata` };
  const accessUrl = accessUrlOf(gw);
  const begin = settings.acsLogins === 'http' ? (n: number) => beginLogins(loginUrlOf(gw), n) : (n: number) => local.beginLogins(ACS_DOMAIN, accessUrl, n);
  const makePool = (n: number): Promise<PoolItem[]> => loginResponsePool({ begin, count: n, target, nameIds: NAME_IDS, signer: signer! });
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const ours = await pooledPhases('POST /acs/{domain}', 400, 'logins + signed responses', makePool, {
    url: target.acsUrl,
    method: 'POST',
    headers: form,
    expectStatus: 303,
    // A successful login: 303 to exactly the accessUrl, with a session cookie.
    check: (_s, _b, h) =>
      h.location !== accessUrl ? `Location ${String(h.location)} is not the accessUrl` : [h['set-cookie'] ?? []].flat().some((c) => c.startsWith('idpb_session=')) ? null : 'no session cookie',
  });

  const notes: string[] = [];
  let valid = validity(ours.measured, notes, 'gateway');
  if (shared?.floor) {
    // Measured with the previous ACS row of this mode, moments ago, on the same kind of responses.
    log(`  floor and peer: as measured for the previous ACS row`);
    const peer = shared.peer ? { ...shared.peer, label: `${shared.peer.label} (as above)`, oursOverPeer: ratio(ours.measured, shared.peer.result) ?? 0 } : null;
    const { id, label } = ACS_ROWS[gates];
    return { id, label, mode: gw.mode, processes: gw.processes, result: ours.measured, floor: shared.floor, ratio: ratio(ours.measured, shared.floor.result), peer, target: null, valid, notes };
  }

  // Floor: raw node-saml on the very same responses (stateless, so the pools may cycle).
  const samlSp = JSON.stringify({ idpCert: readFileSync(join(REPO, BENCH_IDP.certificateFile), 'utf8'), idpIssuer: BENCH_IDP.entityId, spEntityId: target.audience, acsUrl: target.acsUrl });
  const floorHost = await startHost({ name: 'node-saml host', file: 'bench/hosts/node-saml.ts', processes: gw.processes, env: () => ({ BENCH_SAML_SP: samlSp }), readyPath: '/acs', okStatus: 404 });
  let floor: PhaseResult;
  try {
    const spec: PhaseSpec = { url: `${floorHost.base}/acs`, method: 'POST', headers: form, expectStatus: 303, cyclePool: true };
    await phase('node-saml validatePostResponse', { ...spec, pool: ours.warmPool }, settings.warmupS, true);
    floor = await phase('node-saml validatePostResponse', { ...spec, pool: ours.pool }, settings.durationS);
  } finally {
    await stopChild(floorHost.child);
  }

  valid = validity(floor, notes, 'floor') && valid;
  let peer: ScenarioRecord['peer'] = null;
  if (settings.peer === 'all' || (settings.peer === 'per-core' && gw.mode === 'per-core')) {
    try {
      const peerResult = await peerJackson(gw.processes);
      const peerValid = validity(peerResult, notes, 'peer');
      peer = { label: peerValid ? 'saml-jackson ACS' : 'saml-jackson ACS (INVALID)', processes: gw.processes, result: peerResult, oursOverPeer: ratio(ours.measured, peerResult) ?? 0 };
      valid = valid && peerValid;
    } catch (err) {
      // The comparison is part of the scenario: without it the run is not ok.
      notes.push(`peer: saml-jackson failed: ${(err as Error).message}`);
      log(`  peer saml-jackson FAILED: ${(err as Error).message}`);
      valid = false;
    }
  }
  const { id, label } = ACS_ROWS[gates];
  return { id, label, mode: gw.mode, processes: gw.processes, result: ours.measured, floor: { label: 'node-saml', processes: gw.processes, result: floor }, ratio: ratio(ours.measured, floor), peer, target: null, valid, notes };
}

async function peerJackson(processes: number): Promise<PhaseResult> {
  const samlPath = '/api/oauth/saml';
  const settingsOf = (port: number) => ({
    redisUrl: settings.redisUrl,
    keyPrefix: JACKSON_PREFIX,
    externalUrl: `http://127.0.0.1:${port}`,
    samlAudience: 'https://saml.bench.test',
    idpEntityId: BENCH_IDP.entityId,
    idpSsoUrl: BENCH_IDP.ssoUrl,
    idpCertificate: readFileSync(join(REPO, BENCH_IDP.certificateFile), 'utf8'),
    spCertificate: readFileSync(join(REPO, 'config/dev-only/sp-signing.crt.pem'), 'utf8'),
    spPrivateKey: readFileSync(join(REPO, 'config/dev-only/sp-signing.key.pem'), 'utf8'),
    tenant: `bench-${runId}`,
    product: 'idp-bridge-bench',
    appRedirectUrl: 'https://app.bench.test/callback',
  });
  log(`  peer: BoxyHQ SAML Jackson, ${processes} process(es), engine redis (prefix ${JACKSON_PREFIX})`);
  const { child, base: externalUrl } = await startHost({
    name: 'saml-jackson host',
    file: 'bench/hosts/jackson.ts',
    processes,
    env: (port) => ({ BENCH_JACKSON: JSON.stringify(settingsOf(port)) }),
    readyPath: '/login',
    okStatus: 302,
    timeoutMs: 90_000,
  });
  const appRedirectUrl = settingsOf(0).appRedirectUrl;
  try {
    const target: ResponseTarget = { acsUrl: `${externalUrl}${samlPath}`, audience: settingsOf(0).samlAudience };
    const makePool = (n: number): Promise<PoolItem[]> => loginResponsePool({ begin: (k) => beginLogins(`${externalUrl}/login`, k), count: n, target, nameIds: NAME_IDS, signer: signer! });
    const peer = await pooledPhases('saml-jackson ACS', 150 * processes, 'Jackson logins + signed responses', makePool, {
      url: target.acsUrl,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      expectStatus: 302,
      check: (_s, _b, h) => (String(h.location).startsWith(`${appRedirectUrl}?`) && String(h.location).includes('code=') ? null : `Location ${String(h.location)} carries no code`),
    });
    return peer.measured;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n  its log (${child.logFile}):\n${child.logTail(15)}`);
  } finally {
    await stopChild(child);
  }
}

async function enableMdm(gw: RunningGateway): Promise<string> {
  const res = await fetch(`${gw.base}/admin/v1/domains/${MDM_DOMAIN}/mdm`, {
    method: 'PUT',
    headers: { authorization: operatorAuth(REPO), 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'external' }),
  });
  const body = (await res.json()) as { key?: { value?: string } };
  if (res.status !== 200 || !body.key?.value) throw new Error(`enabling MDM answered ${res.status}: ${JSON.stringify(body)}`);
  return body.key.value;
}

async function scenarioRefresh(gw: RunningGateway, local: InProcessGateway): Promise<ScenarioRecord> {
  log(`\n[refresh] POST /oidc/token refresh_token (mobile) with the MDM check vs without — ${gw.processes} process(es)`);
  const mdmKey = await enableMdm(gw);
  let device = 0;
  const members = Array.from({ length: MEMBERS_PER_TENANT }, (_, i) => memberId(i));
  const form = (token: string): string => new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: 'mobile' }).toString();
  const tokenCheck = (_s: number, body: string): string | null => {
    try {
      const parsed = JSON.parse(body) as { access_token?: string; refresh_token?: string };
      return parsed.access_token && parsed.refresh_token ? null : `no access/refresh token in ${body.slice(0, 200)}`;
    } catch {
      return `not JSON: ${body.slice(0, 200)}`;
    }
  };
  const spec: PhaseSpec = { url: `${gw.base}/oidc/token`, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, expectStatus: 200, check: tokenCheck };
  // The floor first: the same refresh on a tenant without MDM (no MDM headers, as an unmanaged app sends).
  const plain = await pooledPhases('refresh, no MDM', 800, 'refresh tokens', async (n) => (await local.mintRefreshTokens(PLAIN_DOMAIN, members, n)).map((t) => ({ body: form(t) })), spec);
  const withMdm = await pooledPhases('refresh + MDM check', 800, 'refresh tokens', async (n) =>
    (await local.mintManagedRefreshTokens(MDM_DOMAIN, members, n, mdmKey, `bench-device-${runId}-${device++}`)).map((t) => ({ body: form(t.token), headers: { 'x-mdm-auth-code': mdmKey, 'x-device-id': t.deviceId } })),
    spec,
  );
  const notes: string[] = [];
  let valid = validity(withMdm.measured, notes, 'with MDM');
  valid = validity(plain.measured, notes, 'floor') && valid;
  const r = ratio(withMdm.measured, plain.measured);
  const met = withMdm.measured.reqPerSec >= REFRESH_TARGET.reqPerSec && (r ?? 0) >= REFRESH_TARGET.ratio;
  return {
    id: 'refresh',
    label: 'mobile refresh + MDM check',
    mode: gw.mode,
    processes: gw.processes,
    result: withMdm.measured,
    floor: { label: 'refresh, no MDM', processes: gw.processes, result: plain.measured } satisfies Comparison,
    ratio: r,
    peer: null,
    target: { text: `≥${REFRESH_TARGET.reqPerSec} req/s, ≥${REFRESH_TARGET.ratio}× floor`, met },
    valid,
    notes,
  };
}

async function fileBench(id: FileBenchRecord['id'], script: string, label: string): Promise<FileBenchRecord> {
  log(`\n[${id}] ${script}`);
  const { code, lines } = await runScript({ args: ['--import', 'tsx', script], cwd: REPO, env: { ...process.env, REDIS_URL: settings.redisUrl }, prefix: '  | ' });
  let result: Record<string, unknown> | null = null;
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (typeof parsed.bench === 'string') result = parsed;
    } catch {
      /* not the result line */
    }
  }
  let ms: number | null = null;
  let rss: number | null = null;
  if (result && id === 'sso-switch') {
    ms = Number(result.wallMs);
    rss = Number(result.peakRssGrowthMb);
  } else if (result && id === 'hostile-input') {
    const met = result.met === true;
    return { id, label, exitCode: code, result, ms: null, rssGrowthMb: null, target: { text: '≤3× login CPU, ≤50 ms', met }, valid: result.valid === true };
  } else if (result && id === 'scim') {
    // Reported, no floor or target (docs/spec.md §14): users/s and peak RSS of the first sync, time of the group patch.
    return { id, label, exitCode: code, result, ms: null, rssGrowthMb: null, target: null, valid: result.consistent === true };
  } else if (result && id === 'acs-tracing') {
    return { id, label, exitCode: code, result, ms: null, rssGrowthMb: null, target: null, valid: typeof result.ratio === 'number' };
  } else if (result && id === 'authn-request') {
    // Issue 14 §1: would /d/login still reach half of hello with node-saml building the AuthnRequest?
    return { id, label, exitCode: code, result, ms: null, rssGrowthMb: null, target: { text: 'node-saml /d/login ≥0.5× hello', met: result.met === true }, valid: result.valid === true };
  } else if (result && id === 'member-search') {
    const met = result.ok === true;
    return { id, label, exitCode: code, result, ms: null, rssGrowthMb: null, target: { text: 'median page <50 ms, index <30 s', met }, valid: true };
  } else if (result && id === 'csv-import') {
    const imp = result.import as { ms?: number; rssGrowthMb?: number } | undefined;
    ms = imp?.ms ?? null;
    rss = imp?.rssGrowthMb ?? null;
  } else if (result && id === 'audit-export') {
    const exp = result.export as { ms?: number; rssGrowthMb?: number } | undefined;
    ms = exp?.ms ?? null;
    rss = exp?.rssGrowthMb ?? null;
  }
  const target = ms === null || rss === null ? null : { text: `<${FILE_TARGET.ms / 1000} s, <${FILE_TARGET.rssGrowthMb} MB`, met: ms < FILE_TARGET.ms && rss < FILE_TARGET.rssGrowthMb };
  // A script that printed its result ran; its exit code then only says a target was missed.
  const valid = result !== null && (id !== 'sso-switch' || result.effectsMatchSeed !== false);
  return { id, label, exitCode: code, result, ms, rssGrowthMb: rss, target, valid };
}

/**
 * The ACS measured both ways in one run (settings.acsGates): on `gw` with both gates (its config, the
 * default `saml.secondGate: true`), then on a second gateway process of the same mode with the strict
 * gate alone (`saml.secondGate` is deployment-wide), started on its own port beside the idle first one
 * and stopped after its row. The strict row reuses the floor and peer measured for the first row.
 */
async function acsRows(gw: RunningGateway, local: InProcessGateway): Promise<ScenarioRecord[]> {
  const rows: ScenarioRecord[] = [];
  if (settings.acsGates.includes('both')) rows.push(await scenarioAcs(gw, local, 'both', null));
  if (!settings.acsGates.includes('strict')) return rows;
  const shared = rows[0] ? { floor: rows[0].floor, peer: rows[0].peer } : null;
  const port = await freePort();
  const files = writeGatewayFiles({ dir: tmpDir!, port, redisUrl: settings.redisUrl, keyPrefix: PREFIX, logLevel: settings.logLevel, secondGate: false, name: 'strict' });
  const t = performance.now();
  const strict = await startGateway({ repo: REPO, dir: tmpDir!, files, port, mode: gw.mode, useDist: settings.useDist, name: 'strict' });
  track(strict.child);
  log(`\n=== second gateway, same mode, saml.secondGate: false: ${strict.processes} serving process(es), ready in ${secondsSince(t)} (log ${strict.child.logFile}, config ${files.configFile})`);
  let strictLocal: InProcessGateway | null = null;
  try {
    strictLocal = await InProcessGateway.open(files.configFile, REPO);
    rows.push(await scenarioAcs(strict, strictLocal, 'strict', shared?.floor ? shared : null));
  } catch (err) {
    if (strict.child.hasExited()) throw new Error(`the strict-gate gateway exited (${await strict.child.exited}); its log:\n${strict.child.logTail()}`);
    throw err;
  } finally {
    await strictLocal?.close();
    await stopChild(strict.child);
  }
  return rows;
}

// ---- main -------------------------------------------------------------------------------------------
async function main(): Promise<number> {
  log(`idp-bridge bench ${runId}: node ${process.version}, ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  log(`phases: ${settings.warmupS} s warm-up + ${settings.durationS} s measured, ${settings.connections} connections; scenarios ${settings.scenarios.join(', ')}; modes ${settings.modes.join(', ')}`);
  const redisVersion = await checkRedis(settings.redisUrl);
  redisReachable = true;
  log(`Redis ${redisVersion} at ${redactUrl(settings.redisUrl)}, key prefix ${PREFIX}`);
  tmpDir = mkdtempSync(join(tmpdir(), 'idpb-bench-'));

  const scenarios: ScenarioRecord[] = [];
  const files: FileBenchRecord[] = [];
  const gateways: Array<{ mode: Mode; processes: number; processesKnown: boolean; skipped?: string }> = [];
  const http = settings.scenarios.filter((s) => s === 'acs' || s === 'login' || s === 'refresh');
  let failures = 0;

  if (http.length) {
    if (settings.scenarios.includes('acs')) signer = new Signer(REPO, settings.signThreads, settings.samlSign);
    const port = await freePort();
    const gatewayFiles = writeGatewayFiles({ dir: tmpDir, port, redisUrl: settings.redisUrl, keyPrefix: PREFIX, logLevel: settings.logLevel });
    let perCoreProcesses: number | null = null;
    for (const mode of settings.modes) {
      const t = performance.now();
      // A fresh key space per gateway run: the second run must not see the first one's MDM settings.
      const gw = await startGateway({ repo: REPO, dir: tmpDir, files: gatewayFiles, port, mode, useDist: settings.useDist });
      track(gw.child);
      log(`\n=== gateway, ${mode === 'per-core' ? 'WORKERS=1' : 'as deployed (WORKERS unset)'}: ${gw.processes} serving process(es)${gw.processesKnown ? '' : ' (assumed: no /proc)'}, ready in ${secondsSince(t)} (log ${gw.child.logFile})`);
      if (mode === 'default' && perCoreProcesses !== null && gw.processes === perCoreProcesses) {
        const why = `the default deployment serves with ${gw.processes} process(es), as the per-core run did (src/main.ts does not cluster yet, or this machine has one core): same measurement, skipped`;
        log(`  ${why}`);
        gateways.push({ mode, processes: gw.processes, processesKnown: gw.processesKnown, skipped: why });
        await stopChild(gw.child);
        continue;
      }
      gateways.push({ mode, processes: gw.processes, processesKnown: gw.processesKnown });
      if (mode === 'per-core') perCoreProcesses = gw.processes;
      let local: InProcessGateway | null = null;
      try {
        local = await InProcessGateway.open(gatewayFiles.configFile, REPO);
        for (const id of http) {
          try {
            if (id === 'login') scenarios.push(await scenarioLogin(gw));
            if (id === 'acs') scenarios.push(...(await acsRows(gw, local)));
            if (id === 'refresh') scenarios.push(await scenarioRefresh(gw, local));
          } catch (err) {
            failures++;
            keepTmp = true;
            log(`  [${id}] FAILED: ${(err as Error).message}`);
            if (gw.child.hasExited()) throw new Error(`the gateway exited (${await gw.child.exited}); its log:\n${gw.child.logTail()}`);
          }
        }
      } finally {
        await local?.close();
        await stopChild(gw.child);
      }
      // Start the next mode on an empty key space (MDM state, tokens, sessions of this run).
      keysDeleted += await deletePrefix(settings.redisUrl, PREFIX);
    }
  }

  if (settings.scenarios.includes('sso-switch')) files.push(await fileBench('sso-switch', 'bench/sso-switch.ts', 'enable SSO: 100k members, 200k sessions'));
  if (settings.scenarios.includes('csv-import')) files.push(await fileBench('csv-import', 'bench/csv-import.ts', 'CSV import: 100k external keys'));
  if (settings.scenarios.includes('audit-export')) files.push(await fileBench('audit-export', 'bench/audit-export.ts', 'audit CSV export: 100k events'));
  if (settings.scenarios.includes('member-search')) files.push(await fileBench('member-search', 'bench/member-search.ts', 'member search: 100k members'));
  if (settings.scenarios.includes('scim')) files.push(await fileBench('scim', 'bench/scim.ts', 'SCIM: 100k users, 50k-member group'));
  if (settings.scenarios.includes('hostile-input')) files.push(await fileBench('hostile-input', 'bench/hostile-input.ts', 'hostile input'));
  if (settings.scenarios.includes('acs-tracing')) files.push(await fileBench('acs-tracing', 'bench/acs-tracing.ts', 'ACS, tracing off vs on'));
  if (settings.scenarios.includes('authn-request')) files.push(await fileBench('authn-request', 'bench/authn-request.ts', 'AuthnRequest builder'));

  const rows = tableRows(scenarios, files);
  log('\n' + renderTable(rows));
  const notes = scenarios.flatMap((s) => s.notes.map((n) => `${s.label} [${s.mode}]: ${n}`));
  if (notes.length) log('\nnotes:\n' + notes.map((n) => `  - ${n}`).join('\n'));
  const invalid = scenarios.filter((s) => !s.valid).length + files.filter((f) => !f.valid).length;
  const ok = failures === 0 && invalid === 0;
  const finishedAt = new Date();
  const file = writeResults(RESULTS_DIR, startedAt, {
    version: 1,
    runId,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    wallS: Math.round((finishedAt.getTime() - startedAt.getTime()) / 100) / 10,
    machine: { node: process.version, platform: `${process.platform}-${process.arch}`, cores: availableParallelism(), cpuModel: cpus()[0]?.model ?? null, loadAverageAtEnd: loadavg() },
    redis: { url: redactUrl(settings.redisUrl), version: redisVersion },
    settings: { ...settings, redisUrl: redactUrl(settings.redisUrl) },
    gateways,
    scenarios,
    fileBenches: files,
    table: rows,
    failures,
    ok,
  });
  log(`\nresults: ${file} (and bench/results/latest.json); ${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(0)} s in all`);
  if (!ok) log(`${failures} scenario(s) failed, ${invalid} invalid: see above`);
  return ok ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  keepTmp = true;
  log(`\nbench failed: ${(err as Error).message}`);
} finally {
  await cleanup();
}
process.exit(code);
