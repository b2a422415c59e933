import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TenantInput } from '../../../src/domain/tenant.js';
import { keys } from '../../../src/store/index.js';
import { createGateway, type Gateway, OPERATOR_AUTH as OPERATOR, tenantKeyAuth } from '../../helpers/gateway.js';
import { assertExternalKeyIndexConsistent, externalKeyOf, memberSnapshot } from '../../helpers/members.js';

const DOMAIN = 'keys.example';

const plainTenant = (domain: string): TenantInput => ({
  domain,
  name: `Tenant ${domain}`,
  plan: 'free',
  sso: { enabled: false, type: 'saml', userKey: 'account', setExpireTime: false },
  serviceOrigins: [],
  logoutRedirectDomains: [],
  thirdPartyAppPasswordsAllowed: false,
});

describe('S-26: an external key per member (PATCH …/members/{id})', () => {
  let gw: Gateway;
  const patch = (id: string, externalKey: unknown) => gw.http.patch(`/admin/v1/domains/${DOMAIN}/members/${id}`).set('Authorization', OPERATOR).send({ externalKey });
  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(plainTenant(DOMAIN));
    await gw.services.members.save(DOMAIN, { id: 'm1', account: 'one@keys.example', name: 'One' });
    await gw.services.members.save(DOMAIN, { id: 'm2', account: 'two@keys.example', name: 'Two', externalKey: 'taken' });
  });
  after(async () => gw.close());

  it('sets, changes and removes a key, keeping the index in step', async () => {
    const set = await patch('m1', 'emp-100');
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.externalKey, 'emp-100');
    assert.equal((await gw.services.members.findByExternalKey(DOMAIN, 'emp-100'))?.id, 'm1');

    const changed = await patch('m1', 'emp-101');
    assert.equal(changed.status, 200);
    assert.equal(changed.body.externalKey, 'emp-101');
    assert.equal(await gw.services.members.findByExternalKey(DOMAIN, 'emp-100'), null);
    assert.equal((await gw.services.members.findByExternalKey(DOMAIN, 'emp-101'))?.id, 'm1');

    const removed = await patch('m1', null);
    assert.equal(removed.status, 200);
    assert.equal(removed.body.externalKey, null);
    assert.equal(await gw.services.members.findByExternalKey(DOMAIN, 'emp-101'), null);
    await assertExternalKeyIndexConsistent(gw, DOMAIN);
  });

  it("refuses another member's key with 409 external_key_conflict, and keys are case-sensitive", async () => {
    const clash = await patch('m1', 'taken');
    assert.equal(clash.status, 409);
    assert.equal(clash.body.error, 'external_key_conflict');
    assert.equal(await externalKeyOf(gw, DOMAIN, 'm1'), null);
    const otherCase = await patch('m1', 'TAKEN');
    assert.equal(otherCase.status, 200);
    assert.equal(otherCase.body.externalKey, 'TAKEN');
    assert.equal(await externalKeyOf(gw, DOMAIN, 'm2'), 'taken');
  });

  it('refuses forbidden characters and keys over 100 characters with 400 validation_failed', async () => {
    const before = await memberSnapshot(gw, DOMAIN);
    for (const bad of ['a%b', 'a\\b', 'a#b', 'a/b', 'a?b', 'a\u0001b', 'a\nb', 'a\u007fb', '', 'x'.repeat(101)]) {
      const res = await patch('m1', bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.body.error, 'validation_failed');
    }
    assert.equal(await memberSnapshot(gw, DOMAIN), before);
    const longest = await patch('m1', 'x'.repeat(100));
    assert.equal(longest.status, 200);
  });
});

describe('S-27: external keys in bulk (POST …/external-keys)', () => {
  let gw: Gateway;
  const post = (users: unknown) => gw.http.post(`/admin/v1/domains/${DOMAIN}/external-keys`).set('Authorization', OPERATOR).send({ users });
  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(plainTenant(DOMAIN));
    for (let i = 1; i <= 8; i++) {
      await gw.services.members.save(DOMAIN, { id: `m${i}`, account: `user${i}@keys.example`, name: `User ${i}`, ...(i <= 4 ? { externalKey: `k${i}` } : {}) });
    }
  });
  after(async () => gw.close());

  it('resolves members by id, account and externalKey:VALUE, and answers each in order', async () => {
    const res = await post([
      { id: 'm5', externalKey: 'new-5' },
      { id: 'USER6@keys.example', externalKey: 'new-6' },
      { id: 'externalKey:k1', externalKey: 'new-1' },
    ]);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, {
      users: [
        { id: 'm5', account: 'user5@keys.example', externalKey: 'new-5' },
        { id: 'm6', account: 'user6@keys.example', externalKey: 'new-6' },
        { id: 'm1', account: 'user1@keys.example', externalKey: 'new-1' },
      ],
    });
    assert.equal(await externalKeyOf(gw, DOMAIN, 'm1'), 'new-1');
    assert.equal(await gw.services.members.findByExternalKey(DOMAIN, 'k1'), null);
    await assertExternalKeyIndexConsistent(gw, DOMAIN);
    const [audit] = await gw.services.audit.list(DOMAIN, 1);
    assert.equal(audit?.type, 'external_keys.updated');
    assert.equal(audit?.data?.count, 3);
    assert.equal(audit?.actor, 'operator');
  });

  it("swaps two members' keys, and rotates three", async () => {
    const swap = await post([
      { id: 'm2', externalKey: 'k3' },
      { id: 'm3', externalKey: 'k2' },
    ]);
    assert.equal(swap.status, 200, swap.text);
    assert.equal(await externalKeyOf(gw, DOMAIN, 'm2'), 'k3');
    assert.equal(await externalKeyOf(gw, DOMAIN, 'm3'), 'k2');
    const rotate = await post([
      { id: 'm2', externalKey: 'k2' },
      { id: 'm3', externalKey: 'k4' },
      { id: 'm4', externalKey: 'k3' },
    ]);
    assert.equal(rotate.status, 200, rotate.text);
    assert.deepEqual([await externalKeyOf(gw, DOMAIN, 'm2'), await externalKeyOf(gw, DOMAIN, 'm3'), await externalKeyOf(gw, DOMAIN, 'm4')], ['k2', 'k4', 'k3']);
    await assertExternalKeyIndexConsistent(gw, DOMAIN);
  });

  it('lets a key freed by the request be reused in it (null removes a mapping)', async () => {
    const res = await post([
      { id: 'm7', externalKey: 'k4' },
      { id: 'm3', externalKey: null },
    ]);
    assert.equal(res.status, 200, res.text);
    assert.equal(await externalKeyOf(gw, DOMAIN, 'm3'), null);
    assert.equal(await externalKeyOf(gw, DOMAIN, 'm7'), 'k4');
    await assertExternalKeyIndexConsistent(gw, DOMAIN);
  });

  it('refuses a key held by a member outside the request with 409, changing nothing', async () => {
    const before = await memberSnapshot(gw, DOMAIN);
    const res = await post([
      { id: 'm8', externalKey: 'fine' },
      { id: 'm5', externalKey: 'k2' },
    ]);
    assert.equal(res.status, 409);
    assert.equal(res.body.error, 'external_key_conflict');
    assert.deepEqual(res.body.details.conflicts, [{ index: 1, externalKey: 'k2', heldBy: { id: 'm2', account: 'user2@keys.example' } }]);
    assert.equal(await memberSnapshot(gw, DOMAIN), before);
  });

  it('refuses two items giving the same key with 409', async () => {
    const before = await memberSnapshot(gw, DOMAIN);
    const res = await post([
      { id: 'm5', externalKey: 'dup' },
      { id: 'm8', externalKey: 'dup' },
    ]);
    assert.equal(res.status, 409);
    assert.equal(res.body.error, 'external_key_conflict');
    assert.deepEqual(res.body.details.conflicts, [{ index: 1, externalKey: 'dup', otherIndex: 0 }]);
    assert.equal(await memberSnapshot(gw, DOMAIN), before);
  });

  it('answers 404 unknown_member naming the offending indexes, changing nothing', async () => {
    const before = await memberSnapshot(gw, DOMAIN);
    const res = await post([
      { id: 'm5', externalKey: 'x-5' },
      { id: 'nobody@keys.example', externalKey: 'x-6' },
      { id: 'externalKey:no-such-key', externalKey: 'x-7' },
      { id: 'no/such/id', externalKey: 'x-8' },
    ]);
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'unknown_member');
    assert.deepEqual(
      res.body.details.unknown.map((u: { index: number }) => u.index),
      [1, 2, 3],
    );
    assert.equal(await memberSnapshot(gw, DOMAIN), before);
  });

  it('refuses invalid keys, the same member twice, 0 and 51 items with 400 validation_failed', async () => {
    const before = await memberSnapshot(gw, DOMAIN);
    const bad = await post([
      { id: 'm5', externalKey: 'ok' },
      { id: 'm6', externalKey: 'no/slash' },
      { id: 'm8', externalKey: 'y'.repeat(101) },
    ]);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'validation_failed');
    assert.deepEqual(
      bad.body.details.map((d: { path: string }) => d.path),
      ['users.1.externalKey', 'users.2.externalKey'],
    );
    const twice = await post([
      { id: 'm5', externalKey: 'a' },
      { id: 'user5@keys.example', externalKey: 'b' },
    ]);
    assert.equal(twice.status, 400);
    assert.equal(twice.body.details[0].path, 'users.1.id');
    const none = await post([]);
    assert.equal(none.status, 400);
    assert.equal(none.body.error, 'validation_failed');
    const many = await post(Array.from({ length: 51 }, (_, i) => ({ id: `m${(i % 8) + 1}`, externalKey: `many-${i}` })));
    assert.equal(many.status, 400);
    assert.equal(many.body.error, 'validation_failed');
    const missing = await post([{ id: 'm5' }]);
    assert.equal(missing.status, 400);
    assert.equal(await memberSnapshot(gw, DOMAIN), before);
  });

  it('accepts exactly 50 items', async () => {
    // 50 items need 50 distinct members.
    for (let i = 9; i <= 50; i++) await gw.services.members.save(DOMAIN, { id: `m${i}`, account: `user${i}@keys.example`, name: `User ${i}` });
    const fifty = await post(Array.from({ length: 50 }, (_, i) => ({ id: `m${i + 1}`, externalKey: `fifty-${i + 1}` })));
    assert.equal(fifty.status, 200, fifty.text);
    assert.equal(fifty.body.users.length, 50);
    assert.equal(await externalKeyOf(gw, DOMAIN, 'm50'), 'fifty-50');
    await assertExternalKeyIndexConsistent(gw, DOMAIN);
  });

  it('keeps keys required while SSO matches on external keys (400 external_key_required)', async () => {
    const res = await gw.http
      .post('/admin/v1/domains/a.example/external-keys')
      .set('Authorization', OPERATOR)
      .send({ users: [{ id: 'm-a-active', externalKey: null }] });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'external_key_required');
    assert.equal(await externalKeyOf(gw, 'a.example', 'm-a-active'), 'emp-001');
  });

  it('refuses while another bulk change holds the tenant lock (409 conflict)', async () => {
    await gw.store.set(keys.externalKeysLock(DOMAIN), 'someone-else', { ttlMs: 5000 });
    try {
      const res = await post([{ id: 'm5', externalKey: 'locked' }]);
      assert.equal(res.status, 409);
      assert.equal(res.body.error, 'conflict');
    } finally {
      await gw.store.del(keys.externalKeysLock(DOMAIN));
    }
  });
});

describe('S-27: listing external keys (GET …/external-keys)', () => {
  let gw: Gateway;
  const MEMBERS = 300;
  const list = (query: Record<string, string | number>) => gw.http.get(`/admin/v1/domains/${DOMAIN}/external-keys`).set('Authorization', OPERATOR).query(query);

  /** Follows nextCursor to the end; checks every page's size. */
  type Listed = { id: string; account: string; name: string; externalKey: string | null };
  async function all(query: Record<string, string | number>): Promise<Listed[]> {
    const users: Listed[] = [];
    let cursor: string | null = '0';
    let pages = 0;
    while (cursor !== null) {
      const res = await list({ ...query, cursor });
      assert.equal(res.status, 200, res.text);
      assert.ok(res.body.users.length <= Number(query.count ?? 100));
      users.push(...(res.body.users as Listed[]));
      cursor = res.body.nextCursor;
      assert.ok(++pages < 200);
    }
    return users;
  }

  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(plainTenant(DOMAIN));
    // Enough members for a hashtable-encoded set, so SSCAN really pages (and pages are uneven).
    await Promise.all(
      Array.from({ length: MEMBERS }, (_, i) =>
        gw.services.members.save(DOMAIN, { id: `m${String(i).padStart(3, '0')}`, account: `u${i}@keys.example`, name: `U ${i}`, ...(i % 2 === 0 ? { externalKey: `e${i}` } : {}) }),
      ),
    );
  });
  after(async () => gw.close());

  it('pages through every member exactly once with count and cursor', async () => {
    const first = await list({ count: 7 });
    assert.equal(first.status, 200);
    assert.equal(first.body.users.length, 7);
    assert.deepEqual(Object.keys(first.body.users[0]).sort(), ['account', 'externalKey', 'id', 'name']);
    const users = await all({ count: 7 });
    const ids = users.map((u) => u.id);
    assert.equal(new Set(ids).size, ids.length, 'no member twice');
    assert.equal(ids.length, MEMBERS);
    const byId = new Map(users.map((u) => [u.id, u]));
    assert.equal(byId.get('m002')?.externalKey, 'e2');
    assert.equal(byId.get('m003')?.externalKey, null);
  });

  it('filters with hasExternalKey, filling pages up to count across SSCAN pages', async () => {
    const full = await list({ count: 100, hasExternalKey: 'true' });
    assert.equal(full.status, 200);
    assert.equal(full.body.users.length, 100);
    assert.ok(full.body.users.every((u: { externalKey: string | null }) => u.externalKey !== null));
    const withKeys = await all({ count: 100, hasExternalKey: 'true' });
    assert.equal(new Set(withKeys.map((u) => u.id)).size, MEMBERS / 2);
    const withoutKeys = await all({ count: 33, hasExternalKey: 'false' });
    assert.equal(new Set(withoutKeys.map((u) => u.id)).size, MEMBERS / 2);
    assert.ok(withoutKeys.every((u) => u.externalKey === null));
  });

  it('defaults count to 100 and refuses count outside 1–100, a bad filter or a forged cursor', async () => {
    const dflt = await list({});
    assert.equal(dflt.body.users.length, 100);
    const refused: Array<Record<string, string | number>> = [{ count: 0 }, { count: 101 }, { count: 'x' }, { hasExternalKey: 'yes' }, { cursor: 'not a cursor!' }, { cursor: Buffer.from('1\n../x/y').toString('base64url') }, { cursor: Buffer.from('abc').toString('base64url') }, { cursor: Buffer.from('99999999999999999999').toString('base64url') }];
    for (const query of refused) {
      const res = await list(query);
      assert.equal(res.status, 400, JSON.stringify(query));
      assert.equal(res.body.error, 'validation_failed');
    }
  });
});

describe('external keys: tenant isolation', () => {
  let gw: Gateway;
  let keyA: string;
  before(async () => {
    gw = await createGateway();
    keyA = await tenantKeyAuth(gw, 'a.example', 'a-admin');
  });
  after(async () => gw.close());

  it("answers 404 tenant_not_found to a tenant key on another tenant's external keys, changing nothing", async () => {
    const before = await memberSnapshot(gw, 'b.example');
    const attempts = [
      gw.http.post('/admin/v1/domains/b.example/external-keys').set('Authorization', keyA).send({ users: [{ id: 'm-b-user', externalKey: 'stolen' }] }),
      gw.http.get('/admin/v1/domains/b.example/external-keys').set('Authorization', keyA),
      gw.http.get('/admin/v1/domains/b.example/external-keys.csv').set('Authorization', keyA),
      gw.http.put('/admin/v1/domains/b.example/external-keys.csv').set('Authorization', keyA).set('Content-Type', 'text/csv').send('account,name,externalKey\nuser1@b.example,,stolen\n'),
    ];
    for (const attempt of attempts) {
      const res = await attempt;
      assert.equal(res.status, 404);
      assert.equal(res.body.error, 'tenant_not_found');
    }
    assert.equal(await memberSnapshot(gw, 'b.example'), before);
  });

  it('lets the tenant key reach its own tenant', async () => {
    const own = await gw.http.post('/admin/v1/domains/a.example/external-keys').set('Authorization', keyA).send({ users: [{ id: 'm-a-pending', externalKey: 'emp-003b' }] });
    assert.equal(own.status, 200, own.text);
    const [audit] = await gw.services.audit.list('a.example', 1);
    assert.match(String(audit?.actor), /^admin-key:/);
    const csv = await gw.http.get('/admin/v1/domains/a.example/external-keys.csv').set('Authorization', keyA);
    assert.equal(csv.status, 200);
  });
});
