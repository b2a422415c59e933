/**
 * S-28 benchmark: a 100,000-row external-key CSV imported through the real HTTP stack.
 *
 *   node --import tsx bench/csv-import.ts            (REDIS_URL, else redis://127.0.0.1:6379)
 *   ROWS=20000 node --import tsx bench/csv-import.ts
 *
 * Seeds ROWS members (a quarter already holding their key) with pipelined raw writes in the
 * repository's layout, then PUTs a CSV assigning every member a key — streamed from a generator, so the
 * client side holds no file — to createApp() behind a real listener. Reports wall time and peak RSS
 * growth (sampled every 50 ms against a post-GC baseline), then a second PUT of the same file (all
 * rows unchanged: validation only). Targets: < 10 s and < 150 MB RSS growth for 100,000 rows.
 * Everything lives under a dedicated key prefix, deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { request, type Server } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { measurePeakMemory } from './lib/peak-memory.js';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { systemClock } from '../src/domain/clock.js';
import { createLogger } from '../src/observability/logger.js';
import { keys, RedisStore } from '../src/store/index.js';

const ROWS = Number(process.env.ROWS ?? 100_000);
const DOMAIN = 'bench-csv.example';
const OPERATOR = 'Bearer DEV-ONLY-admin-api-key-change-me-000000000000000';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bench:csv-import:${randomBytes(4).toString('hex')}:`;
const TARGET_MS = 10_000;
const TARGET_RSS_MB = 150;

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const memberId = (i: number): string => `bm-${String(i).padStart(6, '0')}`;
const account = (i: number): string => `user${i}@${DOMAIN}`;
const key = (i: number): string => `emp-${String(i).padStart(6, '0')}`;

/** Members written exactly as MemberRepository.save would (JSON shape and the three indexes). */
async function seed(raw: Redis): Promise<void> {
  const now = Date.now();
  for (let start = 0; start < ROWS; start += 5000) {
    const p = raw.pipeline();
    const ids: string[] = [];
    const byAccount: Record<string, string> = {};
    const byKey: Record<string, string> = {};
    for (let i = start; i < Math.min(ROWS, start + 5000); i++) {
      const id = memberId(i);
      const held = i % 4 === 0;
      const member = { id, domain: DOMAIN, account: account(i), ...(held ? { externalKey: key(i) } : {}), name: `Member ${i}, Bench`, role: 'member', status: 'in_use', appPasswords: [], createdAt: now };
      p.set(keys.member(DOMAIN, id), JSON.stringify(member));
      ids.push(id);
      byAccount[account(i)] = id;
      if (held) byKey[key(i)] = id;
    }
    p.sadd(keys.memberIds(DOMAIN), ...ids);
    p.hset(keys.memberByAccount(DOMAIN), byAccount);
    if (Object.keys(byKey).length) p.hset(keys.memberByExternalKey(DOMAIN), byKey);
    await p.exec();
  }
}

/** The CSV, generated lazily in chunks of 1,000 rows (the client holds no file in memory). */
function* csvChunks(): Generator<Buffer> {
  yield Buffer.from('\uFEFFaccount,name,externalKey\r\n');
  for (let start = 0; start < ROWS; start += 1000) {
    let chunk = '';
    for (let i = start; i < Math.min(ROWS, start + 1000); i++) chunk += `${account(i)},"Member ${i}, Bench",${key(i)}\r\n`;
    yield Buffer.from(chunk);
  }
}

async function put(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'PUT', path: `/admin/v1/domains/${DOMAIN}/external-keys.csv`, headers: { Authorization: OPERATOR, 'Content-Type': 'text/csv; charset=utf-8' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    Readable.from(csvChunks(), { objectMode: false }).pipe(req);
  });
}

interface Measured {
  ms: number;
  rssGrowthMb: number;
  heapGrowthMb: number;
  status: number;
  body: string;
}

function measure(port: number): Promise<Measured> {
  return measurePeakMemory(gc, () => put(port));
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
    console.log(`seeded ${ROWS} members in ${Date.now() - seedStart} ms (prefix ${PREFIX})`);

    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => server!.once('listening', () => r()));
    const port = (server.address() as { port: number }).port;

    const first = await measure(port);
    if (first.status !== 200) throw new Error(`import answered ${first.status}: ${first.body.slice(0, 500)}`);
    console.log(`import  ${ROWS} rows: ${first.ms} ms, peak RSS growth ${first.rssGrowthMb} MB (heap ${first.heapGrowthMb} MB) → ${first.body}`);

    // Check the result: every member holds its key, and the index agrees.
    const indexSize = await raw.hlen(keys.memberByExternalKey(DOMAIN));
    const probe = [0, 1, Math.floor(ROWS / 2), ROWS - 1];
    for (const i of probe) {
      const m = await services.members.findByExternalKey(DOMAIN, key(i));
      if (m?.id !== memberId(i)) throw new Error(`member ${i} does not hold ${key(i)}`);
    }
    if (indexSize !== ROWS) throw new Error(`index holds ${indexSize} keys, expected ${ROWS}`);

    const second = await measure(port);
    if (second.status !== 200) throw new Error(`re-import answered ${second.status}: ${second.body.slice(0, 500)}`);
    console.log(`re-import (all unchanged): ${second.ms} ms, peak RSS growth ${second.rssGrowthMb} MB (heap ${second.heapGrowthMb} MB) → ${second.body}`);

    const ok = first.ms < TARGET_MS && first.rssGrowthMb < TARGET_RSS_MB;
    console.log(
      JSON.stringify({
        bench: 'csv-import',
        rows: ROWS,
        import: { ms: first.ms, rssGrowthMb: first.rssGrowthMb, heapGrowthMb: first.heapGrowthMb, result: JSON.parse(first.body) as unknown },
        reimport: { ms: second.ms, rssGrowthMb: second.rssGrowthMb, heapGrowthMb: second.heapGrowthMb, result: JSON.parse(second.body) as unknown },
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
