/**
 * Audit export benchmark (docs/spec.md §13): a tenant trail of 100,000 events exported as CSV through the
 * real HTTP stack (`GET /admin/v1/domains/{domain}/audit.csv`).
 *
 *   node --import tsx bench/audit-export.ts            (REDIS_URL, else redis://127.0.0.1:6379)
 *   EVENTS=20000 node --import tsx bench/audit-export.ts
 *
 * Seeds EVENTS audit events into the tenant's stream with pipelined raw XADDs in the repository's layout
 * (the JSON AuditLog.record writes), then downloads the CSV from createApp() behind a real listener,
 * counting rows as they arrive (the client holds no file). Reports wall time and peak RSS growth of the
 * process (server and client; sampled every 50 ms against a post-GC baseline). Targets: < 10 s and
 * < 150 MB RSS growth for 100,000 events. Everything lives under a dedicated key prefix, deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { request, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { measurePeakMemory } from './lib/peak-memory.js';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { systemClock } from '../src/domain/clock.js';
import { createLogger } from '../src/observability/logger.js';
import { keys, RedisStore } from '../src/store/index.js';

const EVENTS = Number(process.env.EVENTS ?? 100_000);
const DOMAIN = 'bench-audit.example';
const OPERATOR = 'Bearer DEV-ONLY-admin-api-key-change-me-000000000000000';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bench:audit-export:${randomBytes(4).toString('hex')}:`;
const TARGET_MS = 10_000;
const TARGET_RSS_MB = 150;

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const TYPES = ['login.succeeded', 'login.failed', 'member.updated', 'api_key.created', 'saml_logout.rejected'];

/** Events spread over the last 30 days, oldest first, written as AuditLog.record writes them. */
async function seed(raw: Redis): Promise<void> {
  const end = Date.now() - 60_000;
  const step = Math.max(1, Math.floor((30 * 24 * 3600_000) / EVENTS));
  const start = end - step * EVENTS;
  for (let from = 0; from < EVENTS; from += 5000) {
    const p = raw.pipeline();
    for (let i = from; i < Math.min(EVENTS, from + 5000); i++) {
      const at = start + i * step;
      const type = TYPES[i % TYPES.length]!;
      const failed = type.endsWith('failed') || type.endsWith('rejected');
      const event = {
        at: new Date(at).toISOString(),
        type,
        domain: DOMAIN,
        actor: `member:m-${String(i % 5000).padStart(5, '0')}`,
        requestId: randomBytes(16).toString('hex'),
        ip: `198.51.100.${i % 250}`,
        ...(failed ? { reason: 'signature_invalid' } : {}),
        data: { method: 'saml', n: i },
      };
      p.xadd(keys.auditStream(DOMAIN), `${at}-0`, 'v', JSON.stringify(event));
    }
    await p.exec();
  }
}

/** Downloads the CSV, counting rows and bytes as they arrive. */
async function download(port: number): Promise<{ status: number; rows: number; bytes: number; head: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path: `/admin/v1/domains/${DOMAIN}/audit.csv`, headers: { Authorization: OPERATOR } }, (res) => {
      let rows = 0;
      let bytes = 0;
      let head = '';
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (head.length < 300) head += c.toString('utf8').slice(0, 300);
        for (const b of c) if (b === 0x0a) rows++;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, rows: rows - 1, bytes, head }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface Measured {
  ms: number;
  rssGrowthMb: number;
  heapGrowthMb: number;
  status: number;
  rows: number;
  bytes: number;
  head: string;
}

function measure(port: number): Promise<Measured> {
  return measurePeakMemory(gc, () => download(port));
}

async function cleanup(raw: Redis): Promise<void> {
  let cursor = '0';
  do {
    // SCAN's MATCH sees full key names: keyPrefix is not applied to it.
    const [next, batch] = await raw.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 5000);
    cursor = next;
    if (batch.length) await raw.pipeline(batch.map((k) => ['unlink', k.slice(PREFIX.length)])).exec();
  } while (cursor !== '0');
}

async function main(): Promise<void> {
  const store = new RedisStore({ url: REDIS_URL, keyPrefix: PREFIX, commandTimeoutMs: 10_000 });
  await store.connect();
  const raw = new Redis(REDIS_URL, { keyPrefix: PREFIX });
  const { config } = loadConfig({
    env: { NODE_ENV: 'test' },
    overrides: { publicUrl: 'https://sso.bench.test', logLevel: 'warn', seedFile: undefined, demo: { enabled: false }, admin: { rateLimitPerMinute: 100_000 } },
  });
  const logger = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const { app, services } = createApp({ config, store, logger, clock: systemClock });
  let server: Server | undefined;
  try {
    await services.tenants.save({
      domain: DOMAIN,
      name: 'Bench',
      plan: 'free',
      sso: { enabled: false, type: 'saml', userKey: 'account', setExpireTime: false },
      serviceOrigins: [],
      logoutRedirectDomains: [],
      thirdPartyAppPasswordsAllowed: false,
    });
    const seedStart = Date.now();
    await seed(raw);
    console.log(`seeded ${EVENTS} audit events in ${Date.now() - seedStart} ms (prefix ${PREFIX})`);

    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server!.once('listening', () => r()));
    const port = (server.address() as { port: number }).port;

    const run = await measure(port);
    if (run.status !== 200) throw new Error(`export answered ${run.status}: ${run.head}`);
    if (run.rows !== EVENTS) throw new Error(`export has ${run.rows} rows, expected ${EVENTS}`);
    console.log(`export ${run.rows} rows (${Math.round(run.bytes / 1024 / 1024)} MB): ${run.ms} ms, peak RSS growth ${run.rssGrowthMb} MB (heap ${run.heapGrowthMb} MB)`);

    const ok = run.ms < TARGET_MS && run.rssGrowthMb < TARGET_RSS_MB;
    console.log(
      JSON.stringify({
        bench: 'audit-export',
        events: EVENTS,
        export: { ms: run.ms, rssGrowthMb: run.rssGrowthMb, heapGrowthMb: run.heapGrowthMb, rows: run.rows, bytes: run.bytes },
        targets: { ms: TARGET_MS, rssGrowthMb: TARGET_RSS_MB },
        ok,
        node: process.version,
      }),
    );
    if (!ok) process.exitCode = 1;
  } finally {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    await cleanup(raw);
    raw.disconnect();
    await store.close();
  }
}

await main();
