import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ConsoleSessions } from '../../../src/admin/console-sessions.js';
import { digestForKey, hashedPartOf, keys, MemoryStore, type KeyValueStore } from '../../../src/store/index.js';
import { FakeClock } from '../../helpers/clock.js';
import { createTestRedisClusterStore } from '../../helpers/redis-cluster.js';
import { createTestRedisStore } from '../../helpers/redis.js';

const MINUTE = 60_000;
const TIMEOUTS = { idleMs: 30 * MINUTE, absoluteMs: 8 * 60 * MINUTE };

/** Console sessions behave alike on the memory store, one Redis and Redis Cluster (both keys of a session in one slot). */
const deployments: Array<{ name: string; make: () => Promise<{ store: KeyValueStore; cleanup: () => Promise<void> }> }> = [
  { name: 'memory', make: () => Promise.resolve({ store: new MemoryStore(), cleanup: () => Promise.resolve() }) },
  { name: 'Redis', make: createTestRedisStore },
  { name: 'Redis Cluster', make: createTestRedisClusterStore },
];

for (const deployment of deployments) {
  describe(`console sessions on ${deployment.name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of cleanups) await c();
    });
    const make = async (): Promise<{ sessions: ConsoleSessions; clock: FakeClock; store: KeyValueStore }> => {
      const { store, cleanup } = await deployment.make();
      cleanups.push(cleanup);
      const clock = new FakeClock();
      return { sessions: new ConsoleSessions(store, clock, TIMEOUTS), clock, store };
    };

    it('creates, finds, slides the idle time, and ends a session; both keys share the tenant slot', async () => {
      const { sessions, clock } = await make();
      const { cookieValue, session } = await sessions.create({ domain: 'a.example', memberId: 'm-1', method: 'saml' });
      assert.match(cookieValue, /^[A-Za-z0-9_-]{43}\.a\.example$/);
      const digest = digestForKey(cookieValue.split('.')[0]!);
      assert.equal(hashedPartOf(keys.consoleSession('a.example', digest)), hashedPartOf(keys.consoleSessionSeen('a.example', digest)));
      const found = await sessions.use(cookieValue);
      assert.equal(found?.memberId, 'm-1');
      assert.equal(found?.csrfToken, session.csrfToken);
      clock.advance(20 * MINUTE);
      assert.equal((await sessions.use(cookieValue))?.idleExpiresAt, clock.now() + 30 * MINUTE, 'slid to now');
      clock.advance(20 * MINUTE);
      assert.ok(await sessions.use(cookieValue), '40 minutes after sign-in, 20 after the last use');
      assert.equal(await sessions.destroy(cookieValue), true);
      assert.equal(await sessions.use(cookieValue), null);
      assert.equal(await sessions.destroy(cookieValue), false);
    });

    it('ends a session past its idle or absolute timeout, and refuses malformed or forged cookies', async () => {
      const { sessions, clock } = await make();
      const idle = await sessions.create({ domain: 'a.example', memberId: 'm-1', method: 'password' });
      clock.advance(30 * MINUTE);
      assert.equal(await sessions.use(idle.cookieValue), null);
      const busy = await sessions.create({ domain: 'a.example', memberId: 'm-1', method: 'password' });
      for (let i = 0; i < 19; i++) {
        clock.advance(25 * MINUTE);
        assert.ok(await sessions.use(busy.cookieValue), `use ${i + 1}`);
      }
      clock.advance(25 * MINUTE); // 500 minutes > 8 hours
      assert.equal(await sessions.use(busy.cookieValue), null);
      const other = await sessions.create({ domain: 'a.example', memberId: 'm-2', method: 'saml' });
      const [secret] = other.cookieValue.split('.');
      for (const forged of [`${secret}.b.example`, `${secret}`, `${secret}.A.EXAMPLE`, `${'x'.repeat(43)}.a.example`, '', undefined, 42]) {
        assert.equal(await sessions.use(forged), null, String(forged));
      }
      assert.ok(await sessions.use(other.cookieValue), 'the real cookie still works');
      assert.equal(ConsoleSessions.csrfMatches((await sessions.use(other.cookieValue))!, other.session.csrfToken), true);
      assert.equal(ConsoleSessions.csrfMatches(other.session, 'A'.repeat(43)), false);
      assert.equal(ConsoleSessions.csrfMatches(other.session, undefined), false);
    });
  });
}
