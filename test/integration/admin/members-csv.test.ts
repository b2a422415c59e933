import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { MembersCsvImport } from '../../../src/admin/members-csv.js';
import { MemberRepository } from '../../../src/domain/members.js';
import type { Tenant, TenantInput } from '../../../src/domain/tenant.js';
import { keys, MemoryStore, type KeyValueStore } from '../../../src/store/index.js';
import { createGateway, type Gateway, OPERATOR_AUTH as OPERATOR } from '../../helpers/gateway.js';
import { assertExternalKeyIndexConsistent, assertSearchIndexConsistent, memberSnapshot } from '../../helpers/members.js';

const D = 'bulk-add.example';
const URL = `/admin/v1/domains/${D}/members.csv`;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

const tenant = (ssoOn = false): TenantInput => ({
  domain: D,
  name: 'Bulk add',
  plan: 'free',
  sso: { enabled: ssoOn, type: 'saml', userKey: 'externalKey', setExpireTime: false },
  serviceOrigins: [],
  logoutRedirectDomains: [],
  thirdPartyAppPasswordsAllowed: false,
});

type RowError = { row: number; column: string | null; error: string };

function upload(gw: Gateway, body: string | Buffer, type = 'text/csv') {
  return gw.http.post(URL).set('Authorization', OPERATOR).set('Content-Type', type).send(body);
}

const errorsOf = (res: { body: { details?: { errors: RowError[] } } }): Array<[number, string | null]> => (res.body.details?.errors ?? []).map((e) => [e.row, e.column]);

function rows(n: number, from = 0): string {
  let csv = 'account,name,externalKey,role\r\n';
  for (let i = from; i < from + n; i++) csv += `user${i}@${D},"Member ${i}, Jr.",EMP-${i},${i % 100 === 0 ? 'admin' : ''}\r\n`;
  return csv;
}

describe('POST …/members.csv: bulk add, all or nothing', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  beforeEach(async () => {
    for (const id of Object.keys(await gw.store.hGetAll(keys.membersImportJobs(D)))) await gw.store.del(keys.membersImportJobMembers(D, id));
    await gw.store.del(keys.membersImportJobs(D), keys.externalKeysLock(D));
    for (const id of await gw.store.sMembers(keys.memberIds(D))) await gw.services.members.delete(D, id);
    await gw.services.tenants.save(tenant());
    await gw.services.members.save(D, { id: 'existing', account: `old@${D}`, name: 'Old Timer', externalKey: 'OLD-1' });
  });
  after(async () => gw.close());

  it('adds 1,000 members (pending, role member unless given), searchable at once, and audits one event', async () => {
    const res = await upload(gw, rows(1000));
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { created: 1000 });
    const page = await gw.http.get(`/admin/v1/domains/${D}/members`).query({ q: 'user99' }).set('Authorization', OPERATOR);
    assert.equal(page.body.total, 1001);
    assert.deepEqual(page.body.members.map((m: { account: string }) => m.account), [...Array.from({ length: 10 }, (_, i) => `user99${i}@bulk-add.example`), 'user99@bulk-add.example'], 'byte order: "0" sorts before "@"');
    const m = page.body.members[10] as { name: string; externalKey: string; role: string; status: string };
    assert.deepEqual({ name: m.name, externalKey: m.externalKey, role: m.role, status: m.status }, { name: 'Member 99, Jr.', externalKey: 'EMP-99', role: 'member', status: 'pending' });
    const admins = await gw.http.get(`/admin/v1/domains/${D}/members`).query({ role: 'admin', count: '100' }).set('Authorization', OPERATOR);
    assert.equal(admins.body.members.length, 10);
    assert.equal((await gw.services.members.findByExternalKey(D, 'EMP-500'))?.account, `user500@${D}`);
    const [event] = await gw.services.audit.list(D, 1);
    assert.equal(event?.type, 'members.imported');
    assert.deepEqual(event?.data, { count: 1000 });
  });

  it('one bad row: nothing is added and the report names the row and the column', async () => {
    const before = await memberSnapshot(gw, D);
    const csv = rows(1000).replace(`user500@${D},"Member 500, Jr.",EMP-500,`, `user500@${D},"Member 500, Jr.",EMP/500,`);
    const res = await upload(gw, csv);
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error, 'csv_invalid');
    assert.deepEqual(errorsOf(res), [[502, 'externalKey']]);
    assert.equal(res.body.details.truncated, false);
    assert.equal(await memberSnapshot(gw, D), before);
  });

  it('reports every kind of row error, in file order', async () => {
    const csv = [
      'account,name,externalKey,role',
      `a@${D},A,K-1,`,
      `not-an-account,B,K-2,`,
      `a@${D},A again,K-3,`,
      `old@${D},Clash,K-4,`,
      `c@${D},,K-5,`,
      `d@${D},D,K-1,`,
      `e@${D},E,OLD-1,`,
      `f@${D},F,K-6,owner`,
      `g@${D},G,K-7`,
      `'=h@${D},'=H,'=K-8,`,
    ].join('\n');
    const res = await upload(gw, csv);
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(errorsOf(res), [
      [3, 'account'],
      [4, 'account'],
      [5, 'account'],
      [6, 'name'],
      [7, 'externalKey'],
      [8, 'externalKey'],
      [9, 'role'],
      [10, null],
    ]);
    const messages = (res.body.details.errors as RowError[]).map((e) => e.error);
    assert.match(messages[1]!, /also on row 2/);
    assert.match(messages[2]!, /already exists/);
    assert.match(messages[5]!, /already used by another member/);
    assert.equal(await gw.store.sCard(keys.memberIds(D)), 1);
  });

  it('accepts a BOM, CRLF or LF, quoted cells, any column order, no optional columns, and formula-escaped cells', async () => {
    const csv = Buffer.concat([BOM, Buffer.from(`Name,Account\n"Kim, Min-jun",kim@${D}\r\n'=SUM(A1),'+sum@${D}\n`, 'utf8')]);
    const res = await upload(gw, csv, 'text/csv; charset=utf-8');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, { created: 2 });
    assert.equal((await gw.services.members.findByAccount(D, `kim@${D}`))?.name, 'Kim, Min-jun');
    assert.equal((await gw.services.members.findByAccount(D, `+sum@${D}`))?.name, '=SUM(A1)');
  });

  it('requires an external key on every row while SSO is on (S-25)', async () => {
    await gw.services.tenants.save(tenant(true));
    const res = await upload(gw, `account,name,externalKey\nx@${D},X,\ny@${D},Y,Y-1\n`);
    assert.equal(res.status, 400, res.text);
    assert.deepEqual(errorsOf(res), [[2, 'externalKey']]);
  });

  it('refuses an unknown or missing column, and an empty file', async () => {
    const unknown = await upload(gw, `account,name,status\nx@${D},X,in_use\n`);
    assert.deepEqual(errorsOf(unknown), [[1, null]]);
    const missing = await upload(gw, `account,externalKey\nx@${D},X-1\n`);
    assert.deepEqual(errorsOf(missing), [[1, 'name']]);
    const empty = await upload(gw, '');
    assert.equal(empty.status, 400);
    assert.deepEqual(errorsOf(empty), [[1, null]]);
  });

  it('refuses a wrong media type with 415 and an oversized file with 413, adding nothing', async () => {
    const json = await gw.http.post(URL).set('Authorization', OPERATOR).send({ account: 'x' });
    assert.equal(json.status, 415);
    assert.equal(json.body.error, 'unsupported_media_type');
    const latin1 = await upload(gw, rows(2), 'text/csv; charset=iso-8859-1');
    assert.equal(latin1.status, 415);
    const line = `someone@${D},${'N'.repeat(190)},,\r\n`;
    const big = await upload(gw, `account,name,externalKey,role\r\n${line.repeat(Math.ceil((65 * 1024 * 1024) / line.length))}`);
    assert.equal(big.status, 413, big.text);
    assert.equal(big.body.error, 'payload_too_large');
    assert.equal(await gw.store.sCard(keys.memberIds(D)), 1);
  });

  it('a file of the same accounts again is refused whole (accounts exist now)', async () => {
    assert.equal((await upload(gw, rows(3))).status, 200);
    const again = await upload(gw, rows(4));
    assert.equal(again.status, 400);
    assert.deepEqual(errorsOf(again).map(([, c]) => c), ['account', 'externalKey', 'account', 'externalKey', 'account', 'externalKey']);
    assert.equal(await gw.store.sCard(keys.memberIds(D)), 4);
  });

  describe('an import whose process dies between batches (crash, SIGKILL, restart, failover)', () => {
    const list = (q?: string) => gw.http.get(`/admin/v1/domains/${D}/members`).query(q ? { q } : {}).set('Authorization', OPERATOR);
    const jobIds = async (): Promise<string[]> => Object.keys(await gw.store.hGetAll(keys.membersImportJobs(D)));

    it('cut after its first batch: a job names what it wrote; while its lock lives it is left alone (409); once the lock is gone the next members.csv rolls it back, then imports its own file whole', { timeout: 60_000 }, async () => {
      const run = dyingImport(gw.store, new MemberRepository(gw.store), gw.clock, await gw.services.tenants.load(D), rows(1200), 0);
      await run.died;
      const [jobId, ...others] = await jobIds();
      assert.ok(jobId && others.length === 0, 'one job record');
      assert.equal(JSON.parse((await gw.store.hGet(keys.membersImportJobs(D), jobId))!).written, 1);
      assert.equal(await gw.store.sCard(keys.membersImportJobMembers(D, jobId)), 500, 'the job names the first batch');
      assert.equal(await gw.store.sCard(keys.memberIds(D)), 501);

      // Still "alive" (its lock held): neither an upload nor a listing touches it.
      const live = await upload(gw, rows(1200));
      assert.equal(live.status, 409, live.text);
      assert.equal(live.body.error, 'conflict');
      assert.equal((await list()).body.total, 501);
      assert.deepEqual(await jobIds(), [jobId]);

      // The process is gone: its lock expires (the test does not wait for the TTL).
      assert.ok((await gw.store.pttl(keys.externalKeysLock(D))) > 0, 'the dead import left its lock to expire');
      await gw.store.del(keys.externalKeysLock(D));
      const res = await upload(gw, rows(1200));
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { created: 1200 });
      assert.equal(await gw.store.sCard(keys.memberIds(D)), 1201);
      assert.deepEqual(await jobIds(), []);
      assert.equal(await gw.countKeys(`*members-import*`), 0);
      await assertSearchIndexConsistent(gw, D);
      await assertExternalKeyIndexConsistent(gw, D);
      assert.equal(await gw.store.hLen(keys.memberByAccount(D)), 1201);
      const [imported, rolledBack] = await gw.services.audit.list(D, 2);
      assert.equal(imported?.type, 'members.imported');
      assert.deepEqual(imported?.data, { count: 1200 });
      assert.equal(rolledBack?.type, 'members.import_rolled_back');
      assert.equal(rolledBack?.data?.count, 500);
      assert.equal(rolledBack?.data?.jobId, jobId);
    });

    it('cut after its last batch, before the job was deleted: the next GET …/members rolls all of it back before listing; the search finds none of it', { timeout: 60_000 }, async () => {
      const before = await memberSnapshot(gw, D);
      const run = dyingImport(gw.store, new MemberRepository(gw.store), gw.clock, await gw.services.tenants.load(D), rows(1200), 2);
      await run.died;
      assert.equal(await gw.store.sCard(keys.memberIds(D)), 1201, 'every row was written');
      await gw.store.del(keys.externalKeysLock(D));

      const page = await list('user');
      assert.equal(page.status, 200, page.text);
      assert.equal(page.body.total, 1);
      assert.deepEqual(page.body.members, []);
      assert.equal(await memberSnapshot(gw, D), before, 'the tenant is as before the import');
      assert.equal(await gw.countKeys(`*members-import*`), 0);
      await assertSearchIndexConsistent(gw, D);
      assert.equal(await gw.store.hLen(keys.memberByAccount(D)), 1);
      const [event] = await gw.services.audit.list(D, 1);
      assert.equal(event?.type, 'members.import_rolled_back');
      assert.equal(event?.data?.count, 1200);
      // Its file is not "existing accounts" now.
      assert.equal((await upload(gw, rows(1200))).status, 200);
    });

    it('a rollback cut short is finished by the next request', { timeout: 60_000 }, async () => {
      const run = dyingImport(gw.store, new MemberRepository(gw.store), gw.clock, await gw.services.tenants.load(D), rows(1200), 1);
      await run.died;
      await gw.store.del(keys.externalKeysLock(D));
      const [jobId] = await jobIds();
      // A rollback that died after deleting some members (without taking them out of the job's set yet).
      const some = (await gw.store.sMembers(keys.membersImportJobMembers(D, jobId!))).slice(0, 300);
      await gw.services.members.deleteMany(D, some);
      assert.equal((await list()).body.total, 1);
      assert.equal(await gw.countKeys(`*members-import*`), 0);
      await assertSearchIndexConsistent(gw, D);
      assert.equal((await gw.services.audit.list(D, 1))[0]?.data?.count, 700);
    });

    it('a clash met while writing still undoes the batches in the request and leaves no job', async () => {
      const importer = new MembersCsvImport({
        store: gw.store,
        members: gw.services.members,
        clock: gw.clock,
        afterWriteBatch: async (_d, n) => {
          if (n === 0) await gw.services.members.save(D, { account: `user900@${D}`, name: 'Quick' });
        },
      });
      await assert.rejects(importer.importCsv(await gw.services.tenants.load(D), Readable.from([Buffer.from(rows(1200))]), { allowSuperAdmin: true }), { code: 'conflict' });
      assert.equal(await gw.store.sCard(keys.memberIds(D)), 2);
      assert.equal(await gw.countKeys(`*members-import*`), 0);
      await assertSearchIndexConsistent(gw, D);
    });

    it('the same on the memory store', async () => {
      const store = new MemoryStore();
      const members = new MemberRepository(store);
      const t = await gw.services.tenants.load(D);
      await members.save(D, { id: 'existing', account: `old@${D}`, name: 'Old Timer', externalKey: 'OLD-1' });
      const run = dyingImport(store, members, gw.clock, t, rows(1200), 1);
      await run.died;
      assert.equal(await store.sCard(keys.memberIds(D)), 1001);
      await store.del(keys.externalKeysLock(D));
      const rolledBack: number[] = [];
      await new MembersCsvImport({ store, members, clock: gw.clock }).rollBackAbandoned(D, (r) => {
        rolledBack.push(r.count);
        return Promise.resolve();
      });
      assert.deepEqual(rolledBack, [1000]);
      assert.deepEqual(await store.sMembers(keys.memberIds(D)), ['existing']);
      assert.equal(await store.zCard(keys.memberSearchByName(D)), 2, '"old timer", "timer"');
      assert.equal(await store.hLen(keys.membersImportJobs(D)), 0);
      await store.close();
    });
  });
});

/**
 * An import whose process "dies" after batch `cutAfter` was written: the seam never returns (nothing
 * of that process runs again, its lock stays until its TTL or the test deletes it).
 */
function dyingImport(store: KeyValueStore, members: MemberRepository, clock: Gateway['clock'], t: Tenant, csv: string, cutAfter: number): { died: Promise<void> } {
  let died!: () => void;
  const diedP = new Promise<void>((resolve) => (died = resolve));
  const importer = new MembersCsvImport({
    store,
    members,
    clock,
    afterWriteBatch: (_d, n) => {
      if (n !== cutAfter) return Promise.resolve();
      died();
      return new Promise<void>(() => {});
    },
  });
  void importer.importCsv(t, Readable.from([Buffer.from(csv)]), { allowSuperAdmin: true });
  return { died: diedP };
}
