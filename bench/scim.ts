/**
 * SCIM 2.0 provisioning at scale (docs/spec.md §14), over real HTTP on loopback, on real Redis.
 *
 *   node --import tsx bench/scim.ts                   (REDIS_URL, else redis://127.0.0.1:6379; SCIM_USERS=100000,
 *                                                    SCIM_CONCURRENCY=10, SCIM_GROUP_MEMBERS=50000, SCIM_PAGE=1000)
 *
 * 1. First sync: SCIM_USERS users created one request per user (POST /Users, with an externalId and the
 *    enterprise extension, as Entra ID sends them), SCIM_CONCURRENCY requests in flight at a time (Entra's
 *    provisioning runs about 10). Reports users/s and the peak RSS growth of the process (the gateway and
 *    the small load loop share it), sampled by bench/lib/peak-memory.ts.
 * 2. A group of SCIM_GROUP_MEMBERS members built by PATCH add in pages of SCIM_PAGE members (as the IdPs
 *    page large groups), then one page removed: time, peak RSS growth, requests.
 * Everything is checked after (member count, group size) and lives under a key prefix deleted at the end.
 * The last line is the JSON result `npm run bench` reads. Timings are reported, never asserted.
 */
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { createApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { systemClock } from '../src/domain/clock.js';
import { createLogger } from '../src/observability/logger.js';
import { keys, RedisStore } from '../src/store/index.js';
import { measurePeakMemory } from './lib/peak-memory.js';

const USERS = Number(process.env.SCIM_USERS ?? 100_000);
const CONCURRENCY = Number(process.env.SCIM_CONCURRENCY ?? 10);
const GROUP_MEMBERS = Math.min(USERS, Number(process.env.SCIM_GROUP_MEMBERS ?? 50_000));
const PAGE = Number(process.env.SCIM_PAGE ?? 1000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `bench:scim:${randomBytes(4).toString('hex')}:`;
const DOMAIN = 'bench-scim.example';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

async function main(): Promise<void> {
  const { config } = loadConfig({
    env: { NODE_ENV: 'development' },
    overrides: { publicUrl: 'http://127.0.0.1', seedFile: undefined, demo: { enabled: false }, store: { redisUrl: REDIS_URL, keyPrefix: PREFIX }, scim: { rateLimitPerMinute: 1_000_000 } },
  });
  const store = new RedisStore({ url: REDIS_URL, keyPrefix: PREFIX, commandTimeoutMs: 30_000 });
  await store.connect();
  const logger = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const { app, services } = createApp({ config, store, logger, clock: systemClock });
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const agent = new Agent({ connections: CONCURRENCY, pipelining: 1 });
  try {
    await services.tenants.save({ domain: DOMAIN, name: 'SCIM bench', plan: 'advanced', sso: { enabled: false, type: 'saml', userKey: 'externalKey', setExpireTime: false }, serviceOrigins: [], logoutRedirectDomains: [], thirdPartyAppPasswordsAllowed: false });
    const { token } = await services.scimTokens.issue(DOMAIN, 'bench');
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' };
    const call = async (method: 'POST' | 'PATCH', path: string, body: unknown, expect: number): Promise<Record<string, unknown> | null> => {
      const res = await request(`${origin}/scim/v2/${DOMAIN}${path}`, { method, headers, body: JSON.stringify(body), dispatcher: agent });
      const text = await res.body.text();
      if (res.statusCode !== expect) throw new Error(`${method} ${path} answered ${res.statusCode}: ${text.slice(0, 200)}`);
      return text ? (JSON.parse(text) as Record<string, unknown>) : null;
    };

    // 1. First sync.
    const ids: string[] = new Array<string>(USERS);
    let next = 0;
    const sync = await measurePeakMemory(gc, async () => {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let i = next++; i < USERS; i = next++) {
            const created = await call('POST', '/Users', {
              schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE],
              userName: `user${i}@${DOMAIN}`,
              externalId: `EMP-${i}`,
              active: true,
              displayName: `User ${i}`,
              name: { givenName: 'User', familyName: String(i) },
              emails: [{ value: `user${i}@${DOMAIN}`, type: 'work', primary: true }],
              [ENTERPRISE]: { department: `Dept ${i % 40}`, employeeNumber: String(i) },
            }, 201);
            ids[i] = created!.id as string;
          }
        }),
      );
      return {};
    });
    const members = await store.sCard(keys.memberIds(DOMAIN));
    const usersPerSec = Math.round((USERS / sync.ms) * 1000);
    console.log(`first sync: ${USERS} users in ${(sync.ms / 1000).toFixed(1)} s = ${usersPerSec} users/s at concurrency ${CONCURRENCY}; peak RSS +${sync.rssGrowthMb} MB (heap +${sync.heapGrowthMb} MB); members now ${members}`);

    // 2. A large group patched in pages.
    const group = await call('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Everyone' }, 201);
    const groupId = group!.id as string;
    let requests = 0;
    const patch = await measurePeakMemory(gc, async () => {
      for (let start = 0; start < GROUP_MEMBERS; start += PAGE) {
        const page = ids.slice(start, Math.min(GROUP_MEMBERS, start + PAGE)).map((value) => ({ value }));
        await call('PATCH', `/Groups/${groupId}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Add', path: 'members', value: page }] }, 204);
        requests++;
      }
      await call('PATCH', `/Groups/${groupId}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Remove', path: 'members', value: ids.slice(0, PAGE).map((value) => ({ value })) }] }, 204);
      requests++;
      return {};
    });
    const groupSize = await store.sCard(keys.scimGroupMembers(DOMAIN, groupId));
    console.log(`group of ${GROUP_MEMBERS} members: ${requests} PATCH requests of ${PAGE} in ${(patch.ms / 1000).toFixed(2)} s; peak RSS +${patch.rssGrowthMb} MB; group now ${groupSize} members`);
    const consistent = members === USERS && groupSize === GROUP_MEMBERS - Math.min(PAGE, GROUP_MEMBERS);
    console.log(
      JSON.stringify({
        bench: 'scim',
        users: USERS,
        concurrency: CONCURRENCY,
        sync: { ms: sync.ms, usersPerSec, rssGrowthMb: sync.rssGrowthMb },
        groupPatch: { members: GROUP_MEMBERS, page: PAGE, requests, ms: patch.ms, rssGrowthMb: patch.rssGrowthMb },
        consistent,
        node: process.version,
      }),
    );
    if (!consistent) process.exitCode = 1;
  } finally {
    server.close();
    await agent.close();
    await services.outbound.close();
    let cursor = '0';
    const r = new Redis(REDIS_URL);
    do {
      const [nextCursor, found] = await r.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
      cursor = nextCursor;
      if (found.length) await r.del(...found);
    } while (cursor !== '0');
    r.disconnect();
    await store.close();
  }
}

await main();
