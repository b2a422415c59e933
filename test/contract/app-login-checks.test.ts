import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppLoginChecks } from '../../src/sso/app-login-checks.js';
import { LoginTransactions, newBrowserBinding } from '../../src/sso/transactions.js';
import { MemoryStore, type KeyValueStore } from '../../src/store/index.js';
import { FakeClock } from '../helpers/clock.js';
import { createTestRedisClusterStore } from '../helpers/redis-cluster.js';
import { createTestRedisStore } from '../helpers/redis.js';

/**
 * S-18's record on each store the gateway runs on: written with an app login's transaction, taken
 * once (GETDEL, a single key, so Redis Cluster serves it), and gone once the transaction is consumed.
 */
const TTL_S = 1800;
const TENANT = { domain: 'checks.example', ssoEpoch: 0 };

const deployments: Array<[string, () => Promise<{ store: KeyValueStore; cleanup: () => Promise<void> }>]> = [
  ['memory store', () => Promise.resolve({ store: new MemoryStore(), cleanup: () => Promise.resolve() })],
  ['Redis', createTestRedisStore],
  ['Redis Cluster', createTestRedisClusterStore],
];

for (const [name, create] of deployments) {
  describe(`app login checks (S-18) on the ${name}`, () => {
    let store: KeyValueStore;
    let cleanup: () => Promise<void>;
    const clock = new FakeClock();
    let checks: AppLoginChecks;
    let txns: LoginTransactions;
    before(async () => {
      ({ store, cleanup } = await create());
      checks = new AppLoginChecks(store, clock, TTL_S * 1000);
      txns = new LoginTransactions(store, clock, TTL_S, undefined, checks);
    });
    after(async () => cleanup());

    const start = (fields: { ssoType: 'saml' | 'oauth'; clientKind: 'web' | 'app'; requestId?: string; sessionKey?: string }, binding = newBrowserBinding()) =>
      txns.create(TENANT, { target: 'https://board.example.net/', ...fields }, binding);

    it('a SAML app login checks once by its AuthnRequest ID; concurrent checks get one yes', async () => {
      const requestId = `_${'a'.repeat(40)}`;
      await start({ ssoType: 'saml', clientKind: 'app', requestId, sessionKey: 'app-session-key-0001' });
      assert.equal(await checks.consume('app-session-key-0001', 'SAML'), false, "not by the app's own key");
      assert.equal(await checks.consume(requestId, 'OAUTH'), false, 'not as the other type');
      const answers = await Promise.all(Array.from({ length: 10 }, () => checks.consume(requestId, 'SAML')));
      assert.equal(answers.filter(Boolean).length, 1, JSON.stringify(answers));
      assert.equal(await checks.consume(requestId, 'SAML'), false);
    });

    it('an OAuth app login checks by its sessionKey, and not after its transaction was consumed', async () => {
      const binding = newBrowserBinding();
      const txn = await start({ ssoType: 'oauth', clientKind: 'app', sessionKey: 'oauth-session-key-01' }, binding);
      await txns.consume(TENANT, txn.id, binding);
      assert.equal(await checks.consume('oauth-session-key-01', 'OAUTH'), false);
    });

    it('a web login has no record; an expired one answers no', async () => {
      await start({ ssoType: 'oauth', clientKind: 'web', sessionKey: 'web-session-key-0001' });
      assert.equal(await checks.consume('web-session-key-0001', 'OAUTH'), false);
      await start({ ssoType: 'oauth', clientKind: 'app', sessionKey: 'late-session-key-001' });
      clock.advance(TTL_S * 1000);
      assert.equal(await checks.consume('late-session-key-001', 'OAUTH'), false);
    });
  });
}
