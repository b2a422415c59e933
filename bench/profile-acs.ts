/**
 * Profiles `POST /acs/{domain}` (S-8) in-process: where does the time of one SAML login go?
 *
 *   node --import tsx bench/profile-acs.ts              (REDIS_URL, else redis://127.0.0.1:6379)
 *   N=2000 ROUNDS=3 CONCURRENCY=8 node --import tsx bench/profile-acs.ts
 *   MODE=prepare N=300 OUT=/tmp/acs.json node --import tsx bench/profile-acs.ts
 *   MODE=replay IN=/tmp/acs.json LIMIT=0 KEEP=1 valgrind --tool=callgrind node --import tsx bench/profile-acs.ts
 *   MODE=replay IN=/tmp/acs.json valgrind --tool=callgrind node --import tsx bench/profile-acs.ts
 *
 * createApp() behind a real loopback listener (keep-alive), a RedisStore under a fresh key prefix
 * (deleted at the end), one SAML tenant with the test IdP key pair (test/fixtures/keys/idp-a) and one
 * member. For every login it GETs /d/login/{domain} (its own transaction: RelayState, AuthnRequest ID)
 * and signs a distinct response (its own assertion ID, InResponseTo = that request) with xml-crypto,
 * on both levels, as most IdPs do. Preparing is not measured.
 *
 * Then, with the responses prepared up front:
 *  1. warm-up (WARMUP logins);
 *  2. ROUNDS rounds of N logins at CONCURRENCY: logins/s per round and the median;
 *  3. one profiled round (the inspector's CPU profiler, 200 µs samples): self time by package
 *     (xpath, xmldom, xml-crypto, node-saml, express, ioredis, crypto, GC …), the bench client's own
 *     share shown apart; TOP=n also lists the n functions with the most self time;
 *  4. STEP_SAMPLES logins one at a time with every named ACS check timed (the table in acs.ts):
 *     median µs per check, and the rest of the request (HTTP, member lookup, session, audit);
 *  5. the floor of docs/spec.md §13 on the same kind of responses: raw node-saml validatePostResponseAsync,
 *     in-process, one at a time (no HTTP, no Redis).
 * Every login must answer 303; anything else stops the run with the first failure.
 *
 * Instruction counts (callgrind: immune to other load on the machine, unlike wall time). MODE=prepare
 * sets up the tenant and N logins under a fresh prefix and writes them to OUT without measuring;
 * MODE=replay (under valgrind) starts the app on that prefix, posts LIMIT (default all) of them at
 * CONCURRENCY and deletes the prefix (KEEP=1 keeps it). Instructions per login = (replay of all −
 * replay with LIMIT=0) / N: the start-up cancels out.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request, type Server } from 'node:http';
import { Session, type Profiler } from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { systemClock } from '../src/domain/clock.js';
import { buildSamlResponseXml, signSamlResponse } from '../src/demo/saml-response.js';
import { LOGIN_BINDING_COOKIE } from '../src/http/cookies.js';
import { createLogger } from '../src/observability/logger.js';
import { RedisStore } from '../src/store/index.js';
import { BENCH_RATE_LIMITS } from './lib/gateway.js';
import { deletePrefix } from './lib/redis.js';

const N = Number(process.env.N ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 8);
const WARMUP = Number(process.env.WARMUP ?? 300);
const TOP = Number(process.env.TOP ?? 0);
const STEP_SAMPLES = Number(process.env.STEP_SAMPLES ?? 300);
const FLOOR_SAMPLES = Number(process.env.FLOOR_SAMPLES ?? 500);
const MODE = process.env.MODE === 'prepare' || process.env.MODE === 'replay' ? process.env.MODE : 'full';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const replayed = MODE === 'replay' ? (JSON.parse(readFileSync(process.env.IN ?? '/tmp/acs.json', 'utf8')) as { prefix: string; logins: Prepared[] }) : undefined;
const PREFIX = replayed?.prefix ?? `bench:profile-acs:${randomBytes(4).toString('hex')}:`;
const KEEP = MODE === 'prepare' || process.env.KEEP === '1';

const PUBLIC_URL = 'https://sso.bench.test';
const DOMAIN = 'acs-bench.example';
const ACS = `${PUBLIC_URL}/acs/${DOMAIN}`;
const SP_ENTITY_ID = `${PUBLIC_URL}/saml/metadata`;
const TARGET = `${PUBLIC_URL}/welcome`;
const keyDir = fileURLToPath(new URL('../test/fixtures/keys/', import.meta.url));
const IDP = {
  entityId: 'https://idp.bench.test/saml',
  ssoUrl: 'https://idp.bench.test/sso',
  privateKey: readFileSync(`${keyDir}idp-a.key.pem`, 'utf8'),
  certificate: readFileSync(`${keyDir}idp-a.crt.pem`, 'utf8'),
};

interface Prepared {
  relayState: string;
  samlResponse: string;
  /** `idpb_login=…`: the login binding cookie GET /d/login set; the ACS refuses the login without it. */
  cookie: string;
  /** The form body, encoded once before it is posted (the bench client's work is not the gateway's). */
  body?: Buffer;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : Number.NaN;
};
const round1 = (x: number): number => Math.round(x * 10) / 10;

const agent = new Agent({ keepAlive: true, maxSockets: Math.max(1, CONCURRENCY) });

function httpCall(port: number, method: 'GET' | 'POST', path: string, body?: Buffer, cookie?: string): Promise<{ status: number; location?: string; setCookie: string[]; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) }),
          ...(cookie === undefined ? {} : { cookie }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, setCookie: res.headers['set-cookie'] ?? [], text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** One login transaction through GET /d/login and a signed response answering it. */
async function prepare(port: number, i: number): Promise<Prepared> {
  const start = await httpCall(port, 'GET', `/d/login/${DOMAIN}?accessUrl=${encodeURIComponent(TARGET)}`);
  if (start.status !== 302 || !start.location) throw new Error(`GET /d/login answered ${start.status}: ${start.text.slice(0, 200)}`);
  const redirect = new URL(start.location);
  const relayState = redirect.searchParams.get('RelayState');
  const { inflateRawSync } = await import('node:zlib');
  const authnRequest = inflateRawSync(Buffer.from(redirect.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
  const requestId = /\sID="([^"]+)"/.exec(authnRequest)?.[1];
  if (!relayState || !requestId) throw new Error('no RelayState or AuthnRequest ID in the IdP redirect');
  const cookie = start.setCookie.find((c) => c.startsWith(`${LOGIN_BINDING_COOKIE}=`))?.split(';')[0];
  if (!cookie) throw new Error('GET /d/login set no login binding cookie');
  const xml = buildSamlResponseXml({
    issuer: IDP.entityId,
    destination: ACS,
    inResponseTo: requestId,
    recipient: ACS,
    audience: SP_ENTITY_ID,
    nameId: 'emp-bench-001',
    now: Date.now(),
    validForMs: 25 * 60_000,
    assertionId: `_bench_${i}_${randomBytes(12).toString('hex')}`,
    sessionIndex: `_s${i}`,
    attributes: { email: 'bench@acs-bench.example', displayName: 'Bench User' },
  });
  const signed = signSamlResponse(xml, { privateKey: IDP.privateKey, certificate: IDP.certificate, sign: 'both' });
  return { relayState, cookie, samlResponse: Buffer.from(signed, 'utf8').toString('base64') };
}

async function prepareMany(port: number, count: number, offset: number): Promise<Prepared[]> {
  const out: Prepared[] = new Array<Prepared>(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      out[i] = await prepare(port, offset + i);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return out;
}

const formBody = (p: Prepared): Buffer => Buffer.from(new URLSearchParams({ SAMLResponse: p.samlResponse, RelayState: p.relayState }).toString());

async function postAcs(port: number, p: Prepared): Promise<void> {
  const res = await httpCall(port, 'POST', `/acs/${DOMAIN}`, p.body ?? formBody(p), p.cookie);
  if (res.status !== 303 || res.location !== TARGET) {
    const code = /idpb-error-code" content="([^"]+)"/.exec(res.text)?.[1];
    throw new Error(`ACS answered ${res.status} ${code ?? ''} (location ${String(res.location)}); every bench login must succeed`);
  }
}

/** Posts every prepared response, `concurrency` in flight; returns the wall time in ms. */
async function drive(port: number, batch: Prepared[], concurrency: number): Promise<number> {
  for (const p of batch) p.body ??= formBody(p);
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < batch.length) await postAcs(port, batch[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return performance.now() - started;
}

/** Which package (or part of the runtime) a profile frame belongs to. */
function categoryOf(url: string, functionName: string): string | null {
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle (waiting for I/O)';
    if (functionName === '(program)') return 'V8/runtime (program)';
    if (functionName === '(root)') return 'V8/runtime (program)';
    return null; // a native function: counted where it was called from
  }
  // The innermost package: xml-crypto's own copy of xpath counts as xpath.
  const pkg = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
  if (pkg) {
    if (['express', 'router', 'body-parser', 'raw-body', 'qs', 'iconv-lite', 'finalhandler', 'send', 'content-type', 'type-is', 'mime-types', 'on-finished', 'cookie', 'depd', 'http-errors', 'encodeurl', 'statuses', 'media-typer', 'negotiator', 'accepts', 'parseurl', 'path-to-regexp', 'debug', 'ms', 'unpipe', 'bytes', 'content-disposition', 'vary', 'etag', 'fresh', 'range-parser', 'ee-first'].includes(pkg)) return 'express (+ body parsing)';
    if (['ioredis', 'redis-parser', 'denque', 'cluster-key-slot', 'standard-as-callback', 'redis-errors', 'lodash.defaults', 'lodash.isarguments'].includes(pkg)) return 'ioredis';
    if (['pino', 'sonic-boom', 'fast-redact', 'quick-format-unescaped', 'on-exit-leak-free', 'thread-stream', 'atomic-sleep', 'safe-stable-stringify', 'pino-std-serializers'].includes(pkg)) return 'pino (logging)';
    if (['xml2js', 'sax', 'xmlbuilder'].includes(pkg)) return 'xml2js/sax';
    if (pkg === '@node-saml/passport-saml' || pkg === 'passport' || pkg === 'passport-strategy') return 'passport';
    if (pkg === 'tsx' || pkg === 'get-tsconfig' || pkg === 'esbuild') return 'tsx loader';
    return pkg;
  }
  if (url.includes('/bench/')) return 'bench client (not the gateway)';
  const own = /\/src\/(.+)$/.exec(url)?.[1];
  if (own) return own.startsWith('sso/saml/') ? `src/${own}` : `src/${own.split('/')[0]}/…`;
  if (url.startsWith('node:')) {
    if (url.includes('crypto')) return 'node:crypto (RSA, SHA)';
    if (/_http_client|_http_agent/.test(url)) return 'bench client (not the gateway)';
    if (/http|net|stream|timers|async_hooks|buffer|events|url|querystring|string_decoder|zlib|dns|util/.test(url)) return 'node core (http, net, streams …)';
    return 'node core (other)';
  }
  return 'other';
}

function breakdown(profile: Profiler.Profile): Array<{ what: string; pct: number; ms: number }> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const cat = new Map<number, string>();
  const categorize = (id: number): string => {
    const cached = cat.get(id);
    if (cached) return cached;
    const node = byId.get(id)!;
    let c = categoryOf(node.callFrame.url, node.callFrame.functionName);
    if (c === null) {
      const p = parent.get(id);
      c = p === undefined ? 'other' : categorize(p);
    }
    cat.set(id, c);
    return c;
  };
  const totals = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    const c = categorize(samples[i]!);
    totals.set(c, (totals.get(c) ?? 0) + dt);
    total += dt;
  }
  return [...totals.entries()]
    .map(([what, ms]) => ({ what, ms: Math.round(ms), pct: round1((100 * ms) / total) }))
    .sort((a, b) => b.ms - a.ms);
}

/** The functions with the most self time (TOP=n): to see inside a package. */
function topFunctions(profile: Profiler.Profile, n: number): Array<{ what: string; pct: number }> {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const f = byId.get(samples[i]!)!.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/src\//, 'src/')}:${f.lineNumber + 1}`;
    const dt = deltas[i + 1] ?? deltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([what, us]) => ({ what, pct: round1((100 * us) / total) }));
}

/** Replaces every check of the ACS table by a timed wrapper (the table is data: see acs.ts). */
function timeSteps(acs: object): Map<string, number[]> {
  const table = (acs as { steps?: Array<[string, (ctx: unknown) => unknown]> }).steps;
  const times = new Map<string, number[]>();
  if (!Array.isArray(table)) return times;
  for (let i = 0; i < table.length; i++) {
    const [name, fn] = table[i]!;
    times.set(name, []);
    table[i] = [
      name,
      async (ctx: unknown) => {
        const t = performance.now();
        try {
          return await fn(ctx);
        } finally {
          times.get(name)!.push((performance.now() - t) * 1000);
        }
      },
    ];
  }
  return times;
}

/** docs/spec.md §13's floor: node-saml's own validatePostResponseAsync, in-process, on the same kind of response. */
async function floor(batch: Prepared[]): Promise<number> {
  const saml = new SAML({
    issuer: SP_ENTITY_ID,
    callbackUrl: ACS,
    idpCert: IDP.certificate,
    idpIssuer: IDP.entityId,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    audience: SP_ENTITY_ID,
    validateInResponseTo: ValidateInResponseTo.never,
    acceptedClockSkewMs: 180_000,
  });
  for (const p of batch.slice(0, 20)) await saml.validatePostResponseAsync({ SAMLResponse: p.samlResponse });
  const started = performance.now();
  for (const p of batch) {
    const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: p.samlResponse });
    if (!profile) throw new Error('node-saml floor: no profile');
  }
  return (batch.length * 1000) / (performance.now() - started);
}

async function main(): Promise<void> {
  const { config } = loadConfig({
    env: { NODE_ENV: 'test' },
    overrides: { publicUrl: PUBLIC_URL, serviceOrigins: [PUBLIC_URL], seedFile: undefined, demo: { enabled: false }, logLevel: 'info', rateLimits: BENCH_RATE_LIMITS },
  });
  const store = new RedisStore({ url: REDIS_URL, keyPrefix: PREFIX, commandTimeoutMs: 10_000 });
  // The request log line is part of the real cost of a login: keep it at info, into a sink.
  const logger = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  let server: Server | undefined;
  try {
    await store.connect();
    const { app, services } = createApp({ config, store, logger, clock: systemClock });
    if (!replayed) {
      await services.tenants.save({
        domain: DOMAIN,
        name: 'ACS bench',
        plan: 'standard',
        sso: {
          enabled: true,
          type: 'saml',
          userKey: 'externalKey',
          setExpireTime: false,
          webLoginUrl: IDP.ssoUrl,
          saml: { idpEntityId: IDP.entityId, idpCertificates: [IDP.certificate], allowUnsolicited: false, signAuthnRequests: false, allowSha1: false },
        },
      });
      await services.members.save(DOMAIN, { id: 'm-bench', account: 'bench@acs-bench.example', name: 'Bench', externalKey: 'emp-bench-001', role: 'member', status: 'in_use' });
    }
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server!.once('listening', r));
    const port = (server.address() as AddressInfo).port;

    if (MODE === 'prepare') {
      const out = process.env.OUT ?? '/tmp/acs.json';
      writeFileSync(out, JSON.stringify({ prefix: PREFIX, logins: await prepareMany(port, N, 0) }));
      console.log(`prepared ${N} logins under ${PREFIX} in ${out}`);
      return;
    }
    if (replayed) {
      const batch = replayed.logins.slice(0, Number(process.env.LIMIT ?? replayed.logins.length));
      const ms = await drive(port, batch, CONCURRENCY);
      console.log(JSON.stringify({ scenario: 'acs-profile', mode: 'replay', logins: batch.length, concurrency: CONCURRENCY, ms: Math.round(ms) }));
      return;
    }

    const total = WARMUP + ROUNDS * N + N + STEP_SAMPLES;
    const t0 = performance.now();
    const all = await prepareMany(port, total, 0);
    console.log(`prepared ${total} logins (GET /d/login + a signed response each) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    let at = 0;
    const take = (n: number): Prepared[] => all.slice(at, (at += n));

    await drive(port, take(WARMUP), CONCURRENCY);
    const rates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const ms = await drive(port, take(N), CONCURRENCY);
      rates.push((N * 1000) / ms);
      console.log(`round ${r + 1}: ${N} logins in ${Math.round(ms)} ms = ${Math.round(rates[r]!)} logins/s`);
    }

    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
    const profiledMs = await drive(port, take(N), CONCURRENCY);
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    const parts = breakdown(profile);
    console.log(`\nprofiled round: ${N} logins in ${Math.round(profiledMs)} ms; self time by package (native calls count where they were called from):`);
    for (const p of parts.filter((x) => x.pct >= 0.3)) console.log(`  ${p.pct.toFixed(1).padStart(5)} %  ${String(p.ms).padStart(6)} ms  ${p.what}`);
    if (TOP > 0) {
      console.log(`\ntop ${TOP} functions by self time:`);
      for (const f of topFunctions(profile, TOP)) console.log(`  ${f.pct.toFixed(1).padStart(5)} %  ${f.what}`);
    }

    const steps = timeSteps(services.acs);
    const stepBatch = take(STEP_SAMPLES);
    const perRequest: number[] = [];
    for (const p of stepBatch) {
      const t = performance.now();
      await postAcs(port, p);
      perRequest.push((performance.now() - t) * 1000);
    }
    const stepMedians = [...steps.entries()].map(([name, xs]) => ({ name, us: Math.round(median(xs)) }));
    const inSteps = stepMedians.reduce((s, x) => s + x.us, 0);
    const requestUs = Math.round(median(perRequest));
    console.log(`\none login at a time (${STEP_SAMPLES}): median ${requestUs} µs per request; median µs per ACS check:`);
    for (const s of stepMedians) console.log(`  ${String(s.us).padStart(6)} µs  ${s.name}`);
    console.log(`  ${String(Math.max(0, requestUs - inSteps)).padStart(6)} µs  (rest: HTTP client+server, body parsing, member lookup, session, audit)`);

    const floorRate = FLOOR_SAMPLES > 0 ? await floor(all.slice(0, FLOOR_SAMPLES)) : Number.NaN;
    if (FLOOR_SAMPLES > 0) console.log(`\nfloor (docs/spec.md §13): node-saml validatePostResponseAsync alone, in-process, one at a time: ${Math.round(floorRate)} responses/s`);

    console.log(
      JSON.stringify({
        scenario: 'acs-profile',
        logins: N,
        rounds: ROUNDS,
        concurrency: CONCURRENCY,
        loginsPerSecond: rates.map(Math.round),
        medianLoginsPerSecond: Math.round(median(rates)),
        medianRequestUs: requestUs,
        stepsUs: Object.fromEntries(stepMedians.map((s) => [s.name, s.us])),
        breakdownPct: Object.fromEntries(parts.filter((x) => x.pct >= 0.3).map((p) => [p.what, p.pct])),
        nodeSamlFloorPerSecond: Math.round(floorRate),
      }),
    );
  } finally {
    agent.destroy();
    if (server) await new Promise((r) => server!.close(r));
    await store.close();
    if (!KEEP) console.error(`cleaned up ${await deletePrefix(REDIS_URL, PREFIX)} keys under ${PREFIX}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
