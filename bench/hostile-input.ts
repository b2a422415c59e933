/**
 * Hostile input: what the costliest request a stranger can send to each public XML route costs the
 * gateway, against one valid SAML login, on a real gateway process (WORKERS=1) on Redis.
 *
 *   node --import tsx bench/hostile-input.ts          (REDIS_URL, else redis://127.0.0.1:6379)
 *   HOSTILE_N=40 node --import tsx bench/hostile-input.ts
 *
 * Each case is sent HOSTILE_N times, one request at a time, and the gateway's CPU time (user + system,
 * from /proc, the whole process tree) over the batch is divided by the count: CPU per request. Login
 * transactions the cases need are begun before the batch, outside the measurement. The slowest single
 * answer of a batch (wall time on loopback, nothing else running) bounds how long that request can
 * have held the event loop; the gateway's own event-loop delay monitor (its /metrics, reset by each
 * scrape) gives the longest block during the batch. The reference is one valid SAML login: its start
 * (GET /d/login) plus its ACS request (a distinct signed response answering its own transaction); the
 * ratio to the ACS request alone is printed too. Target: every case ≤ 3× a login, no block > 50 ms.
 * Prints a table and one JSON line (`"bench":"hostile-input"`) that `npm run bench` folds in.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { buildSamlResponseXml, signSamlResponse } from '../src/demo/saml-response.js';
import { HOSTILE_FILLERS, hostileLogoutRequest, hostileResponse, injectIntoAssertion } from '../test/helpers/hostile-xml.js';
import { ACS_DOMAIN, BENCH_IDP, memberKey, startGateway, writeGatewayFiles } from './lib/gateway.js';
import { freePort, killAllChildren } from './lib/processes.js';
import { deletePrefix } from './lib/redis.js';
import { parseIdpRedirect } from './lib/saml-pool.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const N = Number(process.env.HOSTILE_N ?? 20);
const PREFIX = `bench:hostile:${randomBytes(4).toString('hex')}:`;
const TARGET = { ratio: 3, maxMs: 50 };
const TICK_MS = 10; // USER_HZ = 100 on Linux

const privateKey = readFileSync(join(REPO, BENCH_IDP.privateKeyFile), 'utf8');
const certificate = readFileSync(join(REPO, BENCH_IDP.certificateFile), 'utf8');

/** utime + stime of a process and all its descendants, in ms. */
function treeCpuMs(root: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(entry), { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      /* gone */
    }
  }
  let ticks = 0;
  const walk = (pid: number): void => {
    ticks += stats.get(pid)?.ticks ?? 0;
    for (const [child, s] of stats) if (s.ppid === pid) walk(child);
  };
  walk(root);
  return ticks * TICK_MS;
}

interface Prepared {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  cookie?: string;
}

interface CaseResult {
  route: string;
  shape: string;
  cpuMsPerRequest: number;
  /** The longest the gateway's event loop was held during the batch (prom-client's monitorEventLoopDelay max). */
  maxLoopDelayMs: number | null;
  maxWallMs: number;
  statuses: Record<number, number>;
  ratio?: number;
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'idpb-hostile-'));
  const port = await freePort();
  const files = writeGatewayFiles({ dir, port, redisUrl: REDIS_URL, keyPrefix: PREFIX, logLevel: 'warn' });
  const gw = await startGateway({ repo: REPO, dir, files, port, mode: 'per-core', useDist: process.env.BENCH_GATEWAY === 'dist' });
  const base = gw.base;
  const acsUrl = `${base}/acs/${ACS_DOMAIN}`;
  const form = (values: Record<string, string>): string => new URLSearchParams(values).toString();
  const b64 = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64');

  /** A live login transaction and the cookies /d/login set (the browser binding among them). */
  const beginLogin = async (): Promise<{ relayState: string; requestId: string; cookie: string }> => {
    const res = await fetch(`${base}/d/login/${ACS_DOMAIN}`, { redirect: 'manual' });
    await res.text();
    const location = res.headers.get('location');
    if (res.status !== 302 || !location) throw new Error(`/d/login answered ${res.status}`);
    const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    return { ...parseIdpRedirect(location), cookie };
  };
  const signedResponse = (requestId: string, i: number): string =>
    signSamlResponse(
      buildSamlResponseXml({ issuer: BENCH_IDP.entityId, destination: acsUrl, inResponseTo: requestId, recipient: acsUrl, audience: `${base}/saml/metadata`, nameId: memberKey(i % 500), now: Date.now() }),
      { privateKey, certificate, sign: 'assertion' },
    );

  const send = async (p: Prepared): Promise<{ status: number; ms: number }> => {
    const t0 = performance.now();
    const res = await fetch(`${base}${p.path}`, {
      method: p.method,
      redirect: 'manual',
      headers: { ...(p.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...(p.cookie ? { cookie: p.cookie } : {}) },
      body: p.body,
    });
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - t0 };
  };

  /** Scrapes /metrics: the event-loop delay histogram is reset by each scrape, so this is the max since the last one. */
  const loopDelayMaxMs = async (): Promise<number | null> => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const m = /^idpb_nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? ([0-9.e+-]+)$/m.exec(text);
    return m ? Number(m[1]) * 1000 : null;
  };

  const measure = async (route: string, shape: string, prepare: (i: number) => Prepared | Promise<Prepared>): Promise<CaseResult> => {
    const prepared: Prepared[] = [];
    for (let i = 0; i < N; i++) prepared.push(await prepare(i));
    await send(prepared[0]!); // warm the route's code path (not counted; its transaction is then used)
    const batch = prepared.slice(1);
    const statuses: Record<number, number> = {};
    let maxWallMs = 0;
    await loopDelayMaxMs();
    const cpu0 = treeCpuMs(gw.child.pid);
    for (const p of batch) {
      const r = await send(p);
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      maxWallMs = Math.max(maxWallMs, r.ms);
    }
    const cpuMsPerRequest = (treeCpuMs(gw.child.pid) - cpu0) / batch.length;
    const maxLoopDelayMs = await loopDelayMaxMs();
    return { route, shape, cpuMsPerRequest, maxLoopDelayMs, maxWallMs, statuses };
  };

  const results: CaseResult[] = [];
  try {
    // The reference: the ACS request of a valid login.
    const reference = await measure('POST /acs (valid login)', 'distinct signed response', async (i) => {
      const login = await beginLogin();
      return { method: 'POST', path: `/acs/${ACS_DOMAIN}`, body: form({ SAMLResponse: b64(signedResponse(login.requestId, i)), RelayState: login.relayState }), cookie: login.cookie };
    });
    results.push(reference);
    results.push(await measure('GET /d/login', 'ordinary', () => ({ method: 'GET', path: `/d/login/${ACS_DOMAIN}` })));

    for (const [shape, filler] of Object.entries(HOSTILE_FILLERS)) {
      const big = filler(150_000);
      const withTxn = filler(120_000);
      const slo = filler(60_000);
      results.push(await measure('POST /acs, no transaction', shape, () => ({ method: 'POST', path: `/acs/${ACS_DOMAIN}`, body: form({ SAMLResponse: b64(hostileResponse(big)), RelayState: 'A'.repeat(32) }) })));
      results.push(
        await measure('POST /acs, live transaction, in the signed assertion', shape, async (i) => {
          const login = await beginLogin();
          return { method: 'POST', path: `/acs/${ACS_DOMAIN}`, body: form({ SAMLResponse: b64(injectIntoAssertion(signedResponse(login.requestId, i), withTxn)), RelayState: login.relayState }), cookie: login.cookie };
        }),
      );
      results.push(await measure('POST /saml2/sp/slo (registered Issuer)', shape, () => ({ method: 'POST', path: '/saml2/sp/slo', body: form({ SAMLRequest: b64(hostileLogoutRequest(slo, BENCH_IDP.entityId)) }) })));
      // The redirect binding: as much filler as fits a 14 KB query once deflated.
      let size = 95_000;
      let q = '';
      for (;;) {
        q = encodeURIComponent(deflateRawSync(Buffer.from(hostileLogoutRequest(filler(size), BENCH_IDP.entityId))).toString('base64'));
        if (q.length < 14_000 || size < 2000) break;
        size = Math.floor(size * 0.8);
      }
      results.push(await measure('GET /saml2/sp/slo (registered Issuer)', shape, () => ({ method: 'GET', path: `/saml2/sp/slo?SAMLRequest=${q}` })));
      results.push(await measure('POST /saml2/sp/slo/callback', shape, () => ({ method: 'POST', path: '/saml2/sp/slo/callback', body: form({ SAMLResponse: b64(hostileResponse(slo)), RelayState: 'A'.repeat(32) }) })));
    }
  } finally {
    await gw.child.stop();
    killAllChildren();
    await deletePrefix(REDIS_URL, PREFIX).catch(() => 0);
    rmSync(dir, { recursive: true, force: true });
  }

  // One valid SAML login costs the gateway its two requests: the start (GET /d/login) and the ACS.
  const acsCpu = results[0]!.cpuMsPerRequest;
  const loginCpu = Math.max(acsCpu + results[1]!.cpuMsPerRequest, 0.1);
  for (const r of results) r.ratio = r.cpuMsPerRequest / loginCpu;
  const hostile = results.slice(2);
  const worst = hostile.reduce((a, b) => (b.cpuMsPerRequest > a.cpuMsPerRequest ? b : a));
  const loopOf = (r: CaseResult): number => r.maxLoopDelayMs ?? r.maxWallMs;
  const slowest = hostile.reduce((a, b) => (loopOf(b) > loopOf(a) ? b : a));
  const fmt = (n: number, d = 1): string => n.toFixed(d);
  const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
  process.stdout.write(
    `\nhostile input: CPU per request (mean of ${N - 1}, gateway process tree) vs one valid SAML login (GET /d/login + POST /acs = ${fmt(loginCpu)} ms; the ACS request alone ${fmt(acsCpu)} ms),\nthe longest event-loop block in the batch (monitorEventLoopDelay) and the slowest answer\n`,
  );
  process.stdout.write(`${pad('route', 52)} ${pad('shape', 24)} ${pad('CPU ms', 8)} ${pad('× login', 8)} ${pad('× ACS', 8)} ${pad('loop ms', 8)} ${pad('max ms', 8)} statuses\n`);
  for (const r of results) {
    process.stdout.write(
      `${pad(r.route, 52)} ${pad(r.shape, 24)} ${pad(fmt(r.cpuMsPerRequest), 8)} ${pad(fmt(r.ratio!, 2), 8)} ${pad(fmt(r.cpuMsPerRequest / acsCpu, 2), 8)} ${pad(r.maxLoopDelayMs === null ? '—' : fmt(r.maxLoopDelayMs), 8)} ${pad(fmt(r.maxWallMs), 8)} ${JSON.stringify(r.statuses)}\n`,
    );
  }
  const met = worst.ratio! <= TARGET.ratio && loopOf(slowest) <= TARGET.maxMs;
  const referenceOk = (results[0]!.statuses[303] ?? 0) === N - 1;
  process.stdout.write(
    `worst: ${worst.route} / ${worst.shape}: ${fmt(worst.cpuMsPerRequest)} ms CPU = ${fmt(worst.ratio!, 2)}× a login (${fmt(worst.cpuMsPerRequest / acsCpu, 2)}× its ACS request; target ≤ ${TARGET.ratio}× a login); longest event-loop block ${fmt(loopOf(slowest))} ms at ${slowest.route} / ${slowest.shape} (target ≤ ${TARGET.maxMs} ms): ${met ? 'met' : 'NOT met'}${referenceOk ? '' : ' — INVALID: the valid logins did not all answer 303'}\n`,
  );
  process.stdout.write(
    `${JSON.stringify({ bench: 'hostile-input', n: N - 1, loginCpuMs: loginCpu, acsCpuMs: acsCpu, worst: { route: worst.route, shape: worst.shape, cpuMs: worst.cpuMsPerRequest, ratio: worst.ratio }, slowestMs: loopOf(slowest), target: TARGET, met, valid: referenceOk, cases: results })}\n`,
  );
  return referenceOk ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    killAllChildren();
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
