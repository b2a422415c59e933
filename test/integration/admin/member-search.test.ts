import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { MemberSearch } from '../../../src/admin/member-search.js';
import type { Member } from '../../../src/domain/member.js';
import { entriesOf, nameSuffixes } from '../../../src/domain/member-index.js';
import type { NewMember } from '../../../src/domain/members.js';
import type { TenantInput } from '../../../src/domain/tenant.js';
import { keys } from '../../../src/store/index.js';
import { createGateway, type Gateway, OPERATOR_AUTH as OPERATOR } from '../../helpers/gateway.js';

const D = 'search.example';

const plainTenant = (domain: string): TenantInput => ({
  domain,
  name: `Tenant ${domain}`,
  plan: 'free',
  sso: { enabled: false, type: 'saml', userKey: 'account', setExpireTime: false },
  serviceOrigins: [],
  logoutRedirectDomains: [],
  thirdPartyAppPasswordsAllowed: false,
});

const MEMBERS: NewMember[] = [
  { id: 's1', account: 'alice@search.example', name: 'Alice Kim', externalKey: 'EMP-100', role: 'member', status: 'in_use' },
  { id: 's2', account: 'alan@search.example', name: 'Alan Park', externalKey: 'emp-101', role: 'admin', status: 'suspended' },
  { id: 's3', account: 'bob@search.example', name: 'Bob Alder', role: 'member', status: 'pending' },
  { id: 's4', account: 'carol@search.example', name: 'Kim Min-jun', externalKey: 'X-1', role: 'member', status: 'in_use' },
  { id: 's5', account: 'dave@search.example', name: 'Dave', externalKey: 'ALX-9', role: 'super_admin', status: 'in_use' },
  { id: 's6', account: 'erin@search.example', name: '山田 花子', role: 'member', status: 'in_use' },
];

interface Page {
  members: Array<{ id: string; account: string; name: string; externalKey: string | null; role: string; status: string }>;
  nextCursor: string | null;
  total: number;
}

async function search(gw: Gateway, params: Record<string, string>, domain = D): Promise<Page> {
  const res = await gw.http.get(`/admin/v1/domains/${domain}/members`).query(params).set('Authorization', OPERATOR);
  assert.equal(res.status, 200, res.text);
  return res.body as Page;
}

/** Every page of a search, following nextCursor; the ids in the order shown. */
async function allPages(gw: Gateway, params: Record<string, string>, domain = D): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: Page = await search(gw, { ...params, ...(cursor ? { cursor } : {}) }, domain);
    ids.push(...page.members.map((m) => m.id));
    cursor = page.nextCursor;
    pages++;
    assert.ok(pages < 10_000, 'paging ends');
  } while (cursor !== null);
  return { ids, pages };
}

const idsOf = (page: Page): string[] => page.members.map((m) => m.id);

/** The three search indexes hold exactly the entries the member records give. */
async function assertIndexConsistent(gw: Gateway, domain = D): Promise<void> {
  const want = { account: [] as string[], name: [] as string[], key: [] as string[] };
  for (const id of await gw.store.sMembers(keys.memberIds(domain))) {
    const m = JSON.parse((await gw.store.get(keys.member(domain, id)))!) as Member;
    const e = entriesOf(m);
    want.account.push(e.account);
    want.name.push(...e.names);
    if (e.externalKey) want.key.push(e.externalKey);
  }
  const all = (key: string): Promise<string[]> => gw.store.zRangeByLex(key, '-', '+', 1_000_000);
  assert.deepEqual((await all(keys.memberSearchByAccount(domain))).sort(), want.account.sort());
  assert.deepEqual((await all(keys.memberSearchByName(domain))).sort(), want.name.sort());
  assert.deepEqual((await all(keys.memberSearchByExternalKey(domain))).sort(), want.key.sort());
}

async function resetTenant(gw: Gateway, domain = D, members = MEMBERS): Promise<void> {
  for (const id of await gw.store.sMembers(keys.memberIds(domain))) await gw.services.members.delete(domain, id);
  await gw.services.tenants.save(plainTenant(domain));
  for (const m of members) await gw.services.members.save(domain, m);
}

describe('GET …/members: search, filters and paging over the member indexes', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  beforeEach(async () => resetTenant(gw));
  after(async () => gw.close());

  it('without q lists every member in account order, with the tenant total', async () => {
    const page = await search(gw, {});
    assert.deepEqual(page.members.map((m) => m.account), MEMBERS.map((m) => m.account).sort());
    assert.equal(page.total, MEMBERS.length);
    assert.equal(page.nextCursor, null);
    assert.deepEqual(page.members.find((m) => m.id === 's2'), { id: 's2', account: 'alan@search.example', name: 'Alan Park', externalKey: 'emp-101', role: 'admin', status: 'suspended', hasPassword: false, appPasswords: [] });
  });

  it('q matches an account prefix, then a name word prefix, then an external key prefix, each member once', async () => {
    // accounts alan, alice; the name "Bob Alder"; the external key ALX-9 (case-insensitive)
    assert.deepEqual(idsOf(await search(gw, { q: 'al' })), ['s2', 's1', 's3', 's5']);
    assert.deepEqual(idsOf(await search(gw, { q: 'AL' })), ['s2', 's1', 's3', 's5'], 'case-insensitive');
    assert.deepEqual(idsOf(await search(gw, { q: 'alice@' })), ['s1']);
  });

  it('q matches any word of the name, and a run of words', async () => {
    assert.deepEqual(idsOf(await search(gw, { q: 'kim' })), ['s1', 's4'], '"kim" (Alice Kim) sorts before "kim min-jun"');
    assert.deepEqual(idsOf(await search(gw, { q: 'Kim  Min' })), ['s4']);
    assert.deepEqual(idsOf(await search(gw, { q: 'min-j' })), ['s4']);
    assert.deepEqual(idsOf(await search(gw, { q: '花子' })), ['s6']);
    assert.deepEqual(idsOf(await search(gw, { q: '山田 花' })), ['s6']);
  });

  it('q matches an external key by prefix, case-insensitively', async () => {
    assert.deepEqual(idsOf(await search(gw, { q: 'emp-10' })), ['s1', 's2']);
    assert.deepEqual(idsOf(await search(gw, { q: 'EMP-101' })), ['s2']);
    assert.deepEqual(idsOf(await search(gw, { q: 'x-1' })), ['s4']);
    assert.deepEqual(idsOf(await search(gw, { q: 'nobody' })), []);
  });

  it('filters by status, role and hasExternalKey, alone and with q', async () => {
    assert.deepEqual(idsOf(await search(gw, { status: 'suspended' })), ['s2']);
    assert.deepEqual(idsOf(await search(gw, { status: 'in_use' })), ['s1', 's4', 's5', 's6']);
    assert.deepEqual(idsOf(await search(gw, { role: 'super_admin' })), ['s5']);
    assert.deepEqual(idsOf(await search(gw, { hasExternalKey: 'false' })), ['s3', 's6']);
    assert.deepEqual(idsOf(await search(gw, { hasExternalKey: 'true', q: 'al' })), ['s2', 's1', 's5']);
    assert.deepEqual(idsOf(await search(gw, { q: 'al', status: 'in_use', role: 'member' })), ['s1']);
    const page = await search(gw, { status: 'unapproved' });
    assert.deepEqual(page.members, []);
    assert.equal(page.total, MEMBERS.length, 'total counts the whole tenant');
  });

  it('refuses bad parameters with 400 validation_failed', async () => {
    for (const query of [{ count: '0' }, { count: '101' }, { status: 'gone' }, { role: 'owner' }, { hasExternalKey: 'yes' }, { cursor: 'not a cursor' }, { cursor: 'eyJ4IjoxfQ' }, { q: 'a\u0001b' }]) {
      const res = await gw.http.get(`/admin/v1/domains/${D}/members`).query(query).set('Authorization', OPERATOR);
      assert.equal(res.status, 400, JSON.stringify(query));
      assert.equal(res.body.error, 'validation_failed');
    }
  });

  it('paging with count=1 visits every match exactly once, in order', async () => {
    const { ids, pages } = await allPages(gw, { q: 'al', count: '1' });
    assert.deepEqual(ids, ['s2', 's1', 's3', 's5']);
    assert.ok(pages >= 4);
  });

  describe('at a few hundred members', () => {
    const N = 600;
    const many: NewMember[] = Array.from({ length: N }, (_, i) => ({
      id: `p${i}`,
      account: `user${String(i).padStart(4, '0')}@search.example`,
      name: i % 5 === 0 ? `Kim User${i}` : `Lee User${i}`,
      ...(i % 4 === 0 ? {} : { externalKey: `K${i}` }),
      role: i % 10 === 0 ? 'admin' : 'member',
      status: i % 100 === 7 ? 'suspended' : 'in_use',
    }));
    beforeEach(async () => resetTenant(gw, D, many));

    it('pages of 50 visit every member exactly once, with total', async () => {
      const first = await search(gw, {});
      assert.equal(first.members.length, 50, 'count defaults to 50');
      assert.equal(first.total, N);
      const { ids } = await allPages(gw, { count: '100' });
      assert.equal(ids.length, N);
      assert.equal(new Set(ids).size, N);
      assert.deepEqual(ids, many.map((m) => m.id!).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
    });

    it('a filtered search with q pages through every match once (matching by account, name and key)', async () => {
      // No account starts with "user1" (user0001…user0599); the names "… User1…" do.
      const matches = (m: NewMember): boolean => m.account.startsWith('user1') || nameSuffixes(m.name).some((w) => w.startsWith('user1')) || (m.externalKey ?? '').toLowerCase().startsWith('user1');
      const want = new Set(many.filter((m) => matches(m) && m.status === 'in_use').map((m) => m.id!));
      const { ids } = await allPages(gw, { q: 'USER1', status: 'in_use', count: '7' });
      assert.equal(ids.length, new Set(ids).size, 'no member twice');
      assert.deepEqual(new Set(ids), want);
      const byKey = await allPages(gw, { q: 'k1', count: '9' });
      const wantKey = many.filter((m) => /^k1/i.test(m.externalKey ?? '')).map((m) => m.id!);
      assert.deepEqual(new Set(byKey.ids), new Set(wantKey));
      assert.equal(byKey.ids.length, wantKey.length);
      assert.ok(want.size > 0);
      const kims = await allPages(gw, { q: 'kim', role: 'admin' });
      assert.deepEqual(new Set(kims.ids), new Set(many.filter((m) => m.name.startsWith('Kim') && m.role === 'admin').map((m) => m.id!)));
    });

    it('a per-request budget gives short pages with a cursor, and still every match exactly once', async () => {
      const searcher = new MemberSearch(gw.store, { budget: 40 });
      const tenant = await gw.services.tenants.load(D);
      const seen: string[] = [];
      let cursor: string | undefined;
      let requests = 0;
      for (;;) {
        const page = await searcher.search(tenant, { status: 'suspended', count: 50, cursor });
        requests++;
        assert.ok(page.members.length < 50);
        seen.push(...page.members.map((m) => m.id));
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      assert.deepEqual(seen, many.filter((m) => m.status === 'suspended').map((m) => m.id!));
      assert.ok(requests <= Math.ceil(N / 40) + 1, `each request examined at most the budget (${requests} requests)`);
    });
  });

  describe('the index stays right', () => {
    it('after a rename, an account change, an external-key change and a delete through the API', async () => {
      const api = (method: 'patch' | 'delete', path: string, body?: object) => gw.http[method](`/admin/v1/domains/${D}/members/${path}`).set('Authorization', OPERATOR).send(body);
      assert.equal((await api('patch', 's1', { name: 'Alicia Zhang' })).status, 200);
      assert.deepEqual(idsOf(await search(gw, { q: 'kim' })), ['s4'], 'the old name is gone from the index');
      assert.deepEqual(idsOf(await search(gw, { q: 'zhang' })), ['s1']);
      assert.equal((await api('patch', 's3', { account: 'robert@search.example' })).status, 200);
      assert.deepEqual(idsOf(await search(gw, { q: 'bob@' })), []);
      assert.deepEqual(idsOf(await search(gw, { q: 'robert' })), ['s3']);
      assert.equal((await api('patch', 's4', { externalKey: 'NEW-4' })).status, 200);
      assert.deepEqual(idsOf(await search(gw, { q: 'x-1' })), []);
      assert.deepEqual(idsOf(await search(gw, { q: 'new-' })), ['s4']);
      assert.equal((await api('patch', 's4', { externalKey: null })).status, 200);
      assert.deepEqual(idsOf(await search(gw, { hasExternalKey: 'false' })), ['s4', 's6', 's3']);
      assert.equal((await api('delete', 's2')).status, 204);
      assert.deepEqual(idsOf(await search(gw, { q: 'al' })), ['s1', 's3', 's5']);
      assert.equal((await search(gw, {})).total, MEMBERS.length - 1);
      await assertIndexConsistent(gw);
    });

    it('after a member is added through the API', async () => {
      const res = await gw.http.post(`/admin/v1/domains/${D}/members`).set('Authorization', OPERATOR).send({ account: 'zoe@search.example', name: 'Zoe Kim', externalKey: 'Z-1' });
      assert.equal(res.status, 201, res.text);
      // "kim\0<id>" entries sort by id, then "kim min-jun"
      assert.deepEqual(idsOf(await search(gw, { q: 'kim' })), [...['s1', res.body.id as string].sort(), 's4']);
      await assertIndexConsistent(gw);
    });

    it('after an external-key CSV import and the bulk external-key API (keys moved, swapped, removed)', async () => {
      const csv = 'account,name,externalKey\r\nalice@search.example,,emp-101\r\nalan@search.example,,EMP-100\r\ncarol@search.example,,\r\nerin@search.example,,E-6\r\n';
      const res = await gw.http.put(`/admin/v1/domains/${D}/external-keys.csv`).set('Authorization', OPERATOR).set('Content-Type', 'text/csv').send(csv);
      assert.equal(res.status, 200, res.text);
      await assertIndexConsistent(gw);
      assert.deepEqual(idsOf(await search(gw, { q: 'e-6' })), ['s6']);
      assert.deepEqual(idsOf(await search(gw, { q: 'x-1' })), []);
      const bulk = await gw.http.post(`/admin/v1/domains/${D}/external-keys`).set('Authorization', OPERATOR).send({ users: [{ id: 's5', externalKey: 'B-5' }, { id: 's6', externalKey: null }] });
      assert.equal(bulk.status, 200, bulk.text);
      await assertIndexConsistent(gw);
      assert.deepEqual(idsOf(await search(gw, { q: 'b-5' })), ['s5']);
    });

    it('after switching SSO on deletes unapproved members', async () => {
      await gw.services.members.save(D, { id: 'u1', account: 'unapproved@search.example', name: 'Una Approved', externalKey: 'U-1', status: 'unapproved' });
      assert.deepEqual(idsOf(await search(gw, { q: 'una' })), ['u1']);
      const tenant = await gw.services.tenants.load(D);
      const switched = await gw.services.ssoSwitch.apply(tenant, { ...tenant.sso, enabled: true });
      assert.equal(switched.effects.unapprovedDeleted, 1);
      assert.deepEqual(idsOf(await search(gw, { q: 'una' })), []);
      await assertIndexConsistent(gw);
    });
  });

  it('PATCH status suspends (ending the web sessions) and restores a member; the status filter follows', async () => {
    const { id: sessionId } = await gw.services.sessions.create({ memberId: 's1', domain: D, account: 'alice@search.example', authMethod: 'saml', clientKind: 'web' }, 3600_000);
    const patch = (status: string) => gw.http.patch(`/admin/v1/domains/${D}/members/s1`).set('Authorization', OPERATOR).send({ status });
    const suspended = await patch('suspended');
    assert.equal(suspended.status, 200, suspended.text);
    assert.equal(suspended.body.status, 'suspended');
    assert.equal(await gw.services.sessions.find(sessionId), null, 'suspending ended the session');
    assert.deepEqual(idsOf(await search(gw, { status: 'suspended' })), ['s2', 's1']);
    const restored = await patch('in_use');
    assert.equal(restored.body.status, 'in_use');
    assert.deepEqual(idsOf(await search(gw, { status: 'suspended' })), ['s2']);
  });

  describe('tenants whose members were written before the index', () => {
    const OLD = 'old.example';

    /** Writes members the way the gateway did before the search index (record, id set, unique indexes). */
    async function writeWithoutIndex(members: Array<Omit<Member, 'domain' | 'appPasswords'>>): Promise<void> {
      for (const m of members) {
        await gw.store.set(keys.member(OLD, m.id), JSON.stringify({ ...m, domain: OLD, appPasswords: [] }));
        await gw.store.sAdd(keys.memberIds(OLD), m.id);
        await gw.store.hSet(keys.memberByAccount(OLD), { [m.account]: m.id });
        if (m.externalKey) await gw.store.hSet(keys.memberByExternalKey(OLD), { [m.externalKey]: m.id });
      }
    }

    it('builds the index once, on the first search, and finds every member', async () => {
      await gw.services.tenants.save(plainTenant(OLD));
      const olds = Array.from({ length: 1200 }, (_, i) => ({ id: `o${i}`, account: `old${i}@old.example`, name: `Old Member ${i}`, ...(i % 2 ? { externalKey: `OK-${i}` } : {}), role: 'member' as const, status: 'in_use' as const }));
      await writeWithoutIndex(olds);
      assert.equal(await gw.store.get(keys.memberSearchReady(OLD)), null);
      const [a, b] = await Promise.all([search(gw, { q: 'old1' }, OLD), search(gw, { q: 'ok-11' }, OLD)]);
      assert.equal(a.total, 1200);
      assert.equal(a.members.length, 50);
      assert.ok(b.members.length > 0);
      assert.equal(await gw.store.get(keys.memberSearchReady(OLD)), '1');
      const { ids } = await allPages(gw, { count: '100' }, OLD);
      assert.equal(ids.length, 1200);
      assert.equal(new Set(ids).size, 1200);
      await assertIndexConsistent(gw, OLD);
      // Written by the current code after the build: indexed by the write itself.
      await gw.services.members.save(OLD, { id: 'n1', account: 'new@old.example', name: 'Newcomer' });
      assert.deepEqual(idsOf(await search(gw, { q: 'newc' }, OLD)), ['n1']);
    });

    it('skips an index entry whose member is gone or changed (never shows a stale entry)', async () => {
      await gw.store.zAdd(keys.memberSearchByAccount(D), 'aaa@search.example\0ghost', 'alice-old@search.example\0s1');
      const page = await search(gw, {});
      assert.deepEqual(idsOf(page), ['s2', 's1', 's3', 's4', 's5', 's6']);
      assert.deepEqual(idsOf(await search(gw, { q: 'aaa' })), []);
    });
  });
});
