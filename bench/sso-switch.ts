/**
 * §13 benchmark: enabling SSO (S-21) on a tenant of 100,000 members and 200,000 web sessions.
 *
 *   node --import tsx bench/sso-switch.ts            (REDIS_URL, else redis://127.0.0.1:6379)
 *   MEMBERS=20000 SESSIONS=40000 node --import tsx bench/sso-switch.ts
 *
 * Seeds, with pipelined raw ioredis writes in exactly the layout the repositories write (keys.ts, the
 * JSON of MemberRepository.save and WebSessions.create): members 70% in_use, 15% pending, 10%
 * unapproved, 5% suspended (one super admin), a third with a password, every tenth with an app
 * password, an invitation for every other pending member, and SESSIONS sessions spread over the in_use
 * members. Then times services.ssoSwitch.apply() (the composition root's switch, default batch size)
 * and reports wall time, members/s, the effect counts (checked against the seed) and peak RSS growth
 * (sampled every 50 ms against a post-GC baseline). Targets: < 10 s and < 150 MB RSS growth.
 * Everything lives under a dedicated key prefix, deleted at the end. Prints one JSON line last.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import type { Effects } from '../src/admin/sso-switch.js';
import { loadConfig } from '../src/config/index.js';
import { systemClock } from '../src/domain/clock.js';
import { createLogger } from '../src/observability/logger.js';
import { buildServices } from '../src/services.js';
import { keys, RedisStore } from '../src/store/index.js';
import { deletePrefix } from './lib/redis.js';

const MEMBERS = Number(process.env.MEMBERS ?? 100_000);
const SESSIONS = Number(process.env.SESSIONS ?? 200_000);
const DOMAIN = 'bench-sso.example';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// The seed runs in a child process (same prefix), so the measured process starts without its garbage.
const SEED_CHILD = process.env.BENCH_SSO_SWITCH_SEED === '1';
const PREFIX = process.env.BENCH_SSO_SWITCH_PREFIX ?? `bench:sso-switch:${randomBytes(4).toString('hex')}:`;
const TARGET_MS = 10_000;
const TARGET_RSS_MB = 150;
const CHUNK = 5000;
const SESSION_TTL_MS = 8 * 3600_000;
const FAKE_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const memberId = (i: number): string => `bm-${String(i).padStart(6, '0')}`;
const statusOf = (i: number): 'in_use' | 'pending' | 'unapproved' | 'suspended' => {
  const r = i % 20;
  return r < 14 ? 'in_use' : r < 17 ? 'pending' : r < 19 ? 'unapproved' : 'suspended';
};
const digest = (v: string): string => createHash('sha256').update(v).digest('base64url');

/** Writes the tenant's members, sessions and invitations; returns the effects enabling must report. */
async function seed(raw: Redis): Promise<Effects> {
  const expected: Effects = { pendingActivated: 0, sessionsEnded: 0, invitationsInvalidated: 0, unapprovedDeleted: 0, appPasswordsDeleted: 0, tokensRevoked: 0, passwordsDeleted: 0 };
  const now = Date.now();
  const inUse: number[] = [];
  for (let start = 0; start < MEMBERS; start += CHUNK) {
    const p = raw.pipeline();
    const ids: string[] = [];
    const byAccount: Record<string, string> = {};
    const byKey: Record<string, string> = {};
    const invitations: Record<string, string> = {};
    for (let i = start; i < Math.min(MEMBERS, start + CHUNK); i++) {
      const id = memberId(i);
      const status = statusOf(i);
      const account = `user${i}@${DOMAIN}`;
      const externalKey = i % 4 === 3 ? undefined : `emp-${i}`;
      const appPasswords = i % 10 === 0 ? [{ id: `app_${randomBytes(8).toString('hex')}`, name: 'mail', hash: FAKE_HASH, createdAt: now }] : [];
      // Field order of memberSchema.parse, as MemberRepository.save writes it.
      const member = {
        id,
        domain: DOMAIN,
        account,
        ...(externalKey ? { externalKey } : {}),
        name: `Member ${i}`,
        role: i === 0 ? 'super_admin' : i % 50 === 1 ? 'admin' : 'member',
        status,
        ...(i % 3 === 0 ? { passwordHash: FAKE_HASH } : {}),
        appPasswords,
        createdAt: now,
      };
      p.set(keys.member(DOMAIN, id), JSON.stringify(member));
      ids.push(id);
      byAccount[account] = id;
      if (externalKey) byKey[externalKey] = id;
      if (status === 'in_use') inUse.push(i);
      if (status === 'pending') expected.pendingActivated++;
      if (status === 'unapproved') expected.unapprovedDeleted++;
      else expected.appPasswordsDeleted += appPasswords.length;
      if (status === 'pending' && i % 2 === 0) {
        const inv = { id: `inv_${randomBytes(8).toString('hex')}`, memberId: id, createdAt: now, expiresAt: now + 7 * 24 * 3600_000 };
        const token = randomBytes(32).toString('base64url');
        invitations[inv.id] = JSON.stringify({ ...inv, tokenDigest: digest(token) });
        p.set(keys.invitationByToken(digest(token)), `${DOMAIN} ${inv.id}`, 'PX', 7 * 24 * 3600_000);
        expected.invitationsInvalidated++;
      }
    }
    p.sadd(keys.memberIds(DOMAIN), ...ids);
    p.hset(keys.memberByAccount(DOMAIN), byAccount);
    if (Object.keys(byKey).length) p.hset(keys.memberByExternalKey(DOMAIN), byKey);
    if (Object.keys(invitations).length) p.hset(keys.invitations(DOMAIN), invitations);
    await p.exec();
  }

  // Sessions as WebSessions.create writes them: the JSON under the digest of the cookie id, with its
  // TTL, and the digest in the member's session index (TTL at least the session's).
  for (let start = 0; start < SESSIONS; start += CHUNK) {
    const p = raw.pipeline();
    const indexes = new Map<string, string[]>();
    for (let k = start; k < Math.min(SESSIONS, start + CHUNK); k++) {
      const i = inUse[k % inUse.length]!;
      const id = memberId(i);
      const d = digest(randomBytes(32).toString('base64url'));
      const session = { memberId: id, domain: DOMAIN, account: `user${i}@${DOMAIN}`, authMethod: 'password', clientKind: 'web', createdAt: now, expiresAt: now + SESSION_TTL_MS };
      p.set(keys.webSession(d), JSON.stringify(session), 'PX', SESSION_TTL_MS);
      const list = indexes.get(id) ?? [];
      list.push(d);
      indexes.set(id, list);
    }
    for (const [id, digests] of indexes) {
      p.sadd(keys.memberSessions(DOMAIN, id), ...digests);
      p.pexpire(keys.memberSessions(DOMAIN, id), SESSION_TTL_MS);
    }
    await p.exec();
    expected.sessionsEnded += Math.min(SESSIONS, start + CHUNK) - start;
  }
  return expected;
}

/** Keys under the bench prefix matching a pattern (SCAN patterns do not get ioredis' keyPrefix). */
async function countKeys(url: string, pattern: string): Promise<number> {
  const raw = new Redis(url);
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, batch] = await raw.scan(cursor, 'MATCH', `${PREFIX}${pattern}`, 'COUNT', 5000);
      cursor = next;
      n += batch.length;
    } while (cursor !== '0');
  } finally {
    raw.disconnect();
  }
  return n;
}

const mb = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

async function main(): Promise<void> {
  const { config } = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { seedFile: undefined, demo: { enabled: false }, logLevel: 'warn' } });
  const raw = new Redis(REDIS_URL, { keyPrefix: PREFIX });
  if (SEED_CHILD) {
    try {
      console.log(JSON.stringify(await seed(raw)));
    } finally {
      raw.disconnect();
    }
    return;
  }
  const store = new RedisStore({ url: REDIS_URL, keyPrefix: PREFIX, commandTimeoutMs: 10_000 });
  const logger = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  try {
    await store.connect();
    const services = buildServices({ config, store, logger, clock: systemClock });
    const tenant = await services.tenants.save({ domain: DOMAIN, name: 'SSO switch bench', plan: 'advanced' });

    const seedStart = performance.now();
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, BENCH_SSO_SWITCH_SEED: '1', BENCH_SSO_SWITCH_PREFIX: PREFIX },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    });
    if (child.status !== 0) throw new Error(`seeding failed (exit ${child.status})`);
    const expected = JSON.parse(child.stdout.trim().split('\n').pop()!) as Effects;
    const seedMs = performance.now() - seedStart;
    console.log(`seeded ${MEMBERS} members, ${SESSIONS} sessions, ${expected.invitationsInvalidated} invitations in ${(seedMs / 1000).toFixed(1)} s (child process)`);

    const settings = {
      ...tenant.sso,
      enabled: true,
      type: 'saml' as const,
      webLoginUrl: 'https://idp.bench.example/sso',
      saml: { idpEntityId: 'https://idp.bench.example/saml', idpCertificates: [], allowUnsolicited: false, signAuthnRequests: false, allowSha1: false },
    };

    gc();
    gc();
    const baseline = process.memoryUsage();
    let peakRss = baseline.rss;
    let peakHeap = baseline.heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 50);
    const started = performance.now();
    const result = await services.ssoSwitch.apply(tenant, settings);
    const wallMs = performance.now() - started;
    clearInterval(sampler);
    const end = process.memoryUsage();
    peakRss = Math.max(peakRss, end.rss);
    peakHeap = Math.max(peakHeap, end.heapUsed);

    const left = {
      members: await store.sCard(keys.memberIds(DOMAIN)),
      sessionKeys: await countKeys(REDIS_URL, 'idpb:session:*'),
      sessionIndexes: await countKeys(REDIS_URL, `idpb:{${DOMAIN}}:member-sessions:*`),
      job: await store.get(keys.ssoSwitchJob(DOMAIN)),
    };
    const mismatched = (Object.keys(expected) as Array<keyof Effects>).filter((k) => expected[k] !== result.effects[k]);
    const rssGrowthMb = mb(peakRss - baseline.rss);
    const out = {
      bench: 'sso-switch-enable',
      members: MEMBERS,
      sessions: SESSIONS,
      wallMs: Math.round(wallMs),
      membersPerSec: Math.round(MEMBERS / (wallMs / 1000)),
      effects: result.effects,
      effectsMatchSeed: mismatched.length === 0,
      baselineRssMb: mb(baseline.rss),
      peakRssGrowthMb: rssGrowthMb,
      peakHeapGrowthMb: mb(peakHeap - baseline.heapUsed),
      seedMs: Math.round(seedMs),
      targets: { wallMs: TARGET_MS, rssGrowthMb: TARGET_RSS_MB, met: wallMs < TARGET_MS && rssGrowthMb < TARGET_RSS_MB },
    };
    console.log(`enabled SSO: ${out.wallMs} ms (${out.membersPerSec} members/s), peak RSS +${rssGrowthMb} MB (heap +${out.peakHeapGrowthMb} MB)`);
    console.log(`effects: ${JSON.stringify(result.effects)}${mismatched.length ? `  MISMATCH vs seed: ${mismatched.join(', ')} (expected ${JSON.stringify(expected)})` : ' (as seeded)'}`);
    if (left.members !== MEMBERS - expected.unapprovedDeleted || left.sessionKeys !== 0 || left.sessionIndexes !== 0 || left.job !== null) console.log(`UNEXPECTED end state: ${JSON.stringify(left)}`);
    console.log(`targets: < ${TARGET_MS} ms and < ${TARGET_RSS_MB} MB RSS growth: ${out.targets.met ? 'met' : 'MISSED'}`);
    console.log(JSON.stringify(out));
    if (mismatched.length) process.exitCode = 1;
  } finally {
    raw.disconnect();
    await store.close();
    const deleted = await deletePrefix(REDIS_URL, PREFIX);
    console.log(`deleted ${deleted} keys under ${PREFIX}`);
  }
}

await main();
