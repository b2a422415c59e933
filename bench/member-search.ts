/**
 * Member search at 100,000 members (GET …/members, src/admin/member-search.ts), measured on real Redis.
 *
 *   node --import tsx bench/member-search.ts        (REDIS_URL, else redis://127.0.0.1:6379; MEMBERS=100000)
 *
 * Seeds MEMBERS members in the repository's layout WITHOUT the search index (pipelined raw writes), times
 * the one-time index build (the first search), then the median and worst of 20 runs of: a first page
 * (count 50) without q, a page of an account prefix, of a name word, and a page filtered to a status that
 * 1% of the members have (which walks the per-request budget). Timings are printed, never asserted; the
 * last line is the JSON result `npm run bench` reads (target, docs/spec.md §13: every case's median page
 * under 50 ms, and the one-time index build under 30 s).
 * Everything lives under a dedicated key prefix, deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { MemberSearch, type MemberSearchQuery } from '../src/admin/member-search.js';
import type { Tenant } from '../src/domain/tenant.js';
import { keys, RedisStore } from '../src/store/index.js';

const N = Number(process.env.MEMBERS ?? 100_000);
const DOMAIN = 'bench-search.example';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bench:member-search:${randomBytes(4).toString('hex')}:`;
const FIRST = ['Kim', 'Lee', 'Park', 'Choi', 'Jung', 'Kang', 'Cho', 'Yoon', 'Jang', 'Lim', 'Tanaka', 'Suzuki'];

async function seed(raw: Redis): Promise<void> {
  for (let start = 0; start < N; start += 2000) {
    const p = raw.pipeline();
    for (let i = start; i < Math.min(N, start + 2000); i++) {
      const id = `m${i}`;
      const account = `user${i}@${DOMAIN}`;
      const member = { id, domain: DOMAIN, account, name: `${FIRST[i % FIRST.length]} Member${i}`, externalKey: `EMP-${i}`, role: i % 50 === 0 ? 'admin' : 'member', status: i % 100 === 42 ? 'suspended' : 'in_use', appPasswords: [], createdAt: 1_700_000_000_000 };
      p.set(PREFIX + keys.member(DOMAIN, id), JSON.stringify(member));
      p.sadd(PREFIX + keys.memberIds(DOMAIN), id);
      p.hset(PREFIX + keys.memberByAccount(DOMAIN), account, id);
      p.hset(PREFIX + keys.memberByExternalKey(DOMAIN), `EMP-${i}`, id);
    }
    await p.exec();
  }
}

const TARGET = { medianMs: 50, indexBuildMs: 30_000 };
const cases: Array<{ label: string; medianMs: number; worstMs: number }> = [];

async function time(label: string, run: () => Promise<{ members: unknown[]; nextCursor: string | null }>, runs = 20): Promise<void> {
  const ms: number[] = [];
  let shown = 0;
  let more = false;
  for (let r = 0; r < runs; r++) {
    const t = process.hrtime.bigint();
    const page = await run();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    shown = page.members.length;
    more = page.nextCursor !== null;
  }
  ms.sort((a, b) => a - b);
  cases.push({ label, medianMs: Math.round(ms[Math.floor(ms.length / 2)]! * 10) / 10, worstMs: Math.round(ms[ms.length - 1]! * 10) / 10 });
  console.log(`${label.padEnd(48)} median ${ms[Math.floor(ms.length / 2)]!.toFixed(1).padStart(7)} ms   worst ${ms[ms.length - 1]!.toFixed(1).padStart(7)} ms   (${shown} members, nextCursor ${more ? 'yes' : 'no'})`);
}

async function main(): Promise<void> {
  const raw = new Redis(REDIS_URL);
  const store = new RedisStore({ url: REDIS_URL, keyPrefix: PREFIX, commandTimeoutMs: 30_000 });
  await store.connect();
  try {
    let t = Date.now();
    await seed(raw);
    console.log(`seeded ${N} members without the index in ${Date.now() - t} ms`);
    const search = new MemberSearch(store);
    const tenant = { domain: DOMAIN } as Tenant;
    const q = (query: Omit<MemberSearchQuery, 'count'>) => () => search.search(tenant, { count: 50, ...query });
    t = Date.now();
    await search.ensureIndex(DOMAIN);
    const indexBuildMs = Date.now() - t;
    console.log(`one-time index build (first search): ${indexBuildMs} ms; index sizes: account ${await store.zCard(keys.memberSearchByAccount(DOMAIN))}, name ${await store.zCard(keys.memberSearchByName(DOMAIN))}, external key ${await store.zCard(keys.memberSearchByExternalKey(DOMAIN))}`);
    await time('first page, no q', q({}));
    const page2 = await search.search(tenant, { count: 50 });
    await time('second page, no q (cursor)', q({ cursor: page2.nextCursor! }));
    await time('q=user4242 (account prefix, 11 matches)', q({ q: 'user4242' }));
    await time('q=user5 (account prefix, 11,111 matches)', q({ q: 'user5' }));
    await time('q=tanaka (name word, 8,333 matches)', q({ q: 'tanaka' }));
    await time('q=member777 (name word, 111 matches)', q({ q: 'member777' }));
    await time('q=emp-9999 (external key prefix, 11 matches)', q({ q: 'emp-9999' }));
    await time('status=suspended (1%): one budgeted request', q({ status: 'suspended' }));
    await time('q=user (every account) + status=suspended', q({ q: 'user', status: 'suspended' }));
    t = Date.now();
    let requests = 0;
    let found = 0;
    let cursor: string | undefined;
    do {
      const page = await search.search(tenant, { count: 50, status: 'suspended', cursor });
      requests++;
      found += page.members.length;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    const everyPageMs = Date.now() - t;
    console.log(`status=suspended, every page: ${found} members in ${requests} requests, ${everyPageMs} ms in all`);
    const slowest = cases.reduce((a, b) => (b.medianMs > a.medianMs ? b : a));
    const ok = slowest.medianMs < TARGET.medianMs && indexBuildMs < TARGET.indexBuildMs;
    console.log(JSON.stringify({ bench: 'member-search', members: N, indexBuildMs, cases, slowest, filteredWalk: { requests, found, ms: everyPageMs }, targets: TARGET, ok, node: process.version }));
    if (!ok) process.exitCode = 1;
  } finally {
    let cursor = '0';
    do {
      const [next, found] = await raw.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
      cursor = next;
      if (found.length) await raw.del(...found);
    } while (cursor !== '0');
    await store.close();
    raw.disconnect();
  }
}

await main();
