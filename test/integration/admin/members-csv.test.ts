import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { TenantInput } from '../../../src/domain/tenant.js';
import { keys } from '../../../src/store/index.js';
import { createGateway, type Gateway, OPERATOR_AUTH as OPERATOR } from '../../helpers/gateway.js';
import { memberSnapshot } from '../../helpers/members.js';

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
});
