import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { parse } from 'csv-parse/sync';
import { ExternalKeys } from '../../../src/admin/external-keys.js';
import type { NewMember } from '../../../src/domain/members.js';
import type { TenantInput } from '../../../src/domain/tenant.js';
import { keys } from '../../../src/store/index.js';
import { createGateway, type Gateway, OPERATOR_AUTH as OPERATOR } from '../../helpers/gateway.js';
import { assertExternalKeyIndexConsistent, externalKeyOf, memberSnapshot } from '../../helpers/members.js';

const DOMAIN = 'csv.example';
const URL_OF = (domain: string): string => `/admin/v1/domains/${domain}/external-keys.csv`;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

const plainTenant = (domain: string): TenantInput => ({
  domain,
  name: `Tenant ${domain}`,
  plan: 'free',
  sso: { enabled: false, type: 'saml', userKey: 'account', setExpireTime: false },
  serviceOrigins: [],
  logoutRedirectDomains: [],
  thirdPartyAppPasswordsAllowed: false,
});

/** The members every test starts from. */
const MEMBERS: NewMember[] = [
  { id: 'c1', account: 'alice@csv.example', name: 'Alice', externalKey: 'emp-1' },
  { id: 'c2', account: 'bob@csv.example', name: 'Bob', externalKey: 'emp-2' },
  { id: 'c3', account: 'carol@csv.example', name: 'Carol' },
  { id: 'c4', account: 'dave@csv.example', name: 'Dave, Jr.', externalKey: 'emp-4' },
  { id: 'c5', account: 'erin@csv.example', name: '山田 花子' },
];

async function resetTenant(gw: Gateway): Promise<void> {
  for (const id of await gw.store.sMembers(keys.memberIds(DOMAIN))) await gw.services.members.delete(DOMAIN, id);
  await gw.services.tenants.save(plainTenant(DOMAIN));
  for (const m of MEMBERS) await gw.services.members.save(DOMAIN, m);
}

function upload(gw: Gateway, body: string | Buffer, type = 'text/csv', domain = DOMAIN) {
  return gw.http.put(URL_OF(domain)).set('Authorization', OPERATOR).set('Content-Type', type).send(body);
}

async function download(gw: Gateway, domain = DOMAIN): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const res = await gw.http
    .get(URL_OF(domain))
    .set('Authorization', OPERATOR)
    .buffer(true)
    .parse((r, cb) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => cb(null, Buffer.concat(chunks)));
    });
  return { status: res.status, headers: res.headers, body: res.body as Buffer };
}

const rowsOf = (csv: Buffer): string[][] => parse(csv, { bom: true });

type RowError = { row: number; column: string | null; error: string };
const errorsOf = (res: { body: { details?: { errors: RowError[] } } }): Array<[number, string | null]> => (res.body.details?.errors ?? []).map((e) => [e.row, e.column]);

describe('S-28: external keys as CSV', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  beforeEach(async () => resetTenant(gw));
  after(async () => gw.close());

  describe('download', () => {
    it('streams account,name,externalKey with a BOM, a header row, CRLF rows and RFC 4180 quoting', async () => {
      const res = await download(gw);
      assert.equal(res.status, 200);
      assert.match(res.headers['content-type']!, /^text\/csv; charset=utf-8/);
      assert.match(res.headers['content-disposition']!, /^attachment; filename="external-keys-csv\.example\.csv"$/);
      assert.ok(res.body.subarray(0, 3).equals(BOM), 'starts with the UTF-8 BOM (Excel)');
      const text = res.body.subarray(3).toString('utf8');
      assert.ok(text.startsWith('account,name,externalKey\r\n'));
      assert.ok(text.endsWith('\r\n'));
      assert.ok(text.includes('dave@csv.example,"Dave, Jr.",emp-4\r\n'));
      const rows = rowsOf(res.body);
      assert.deepEqual(rows[0], ['account', 'name', 'externalKey']);
      assert.deepEqual(
        rows.slice(1).sort((a, b) => a[0]!.localeCompare(b[0]!)),
        [
          ['alice@csv.example', 'Alice', 'emp-1'],
          ['bob@csv.example', 'Bob', 'emp-2'],
          ['carol@csv.example', 'Carol', ''],
          ['dave@csv.example', 'Dave, Jr.', 'emp-4'],
          ['erin@csv.example', '山田 花子', ''],
        ],
      );
      const [audit] = await gw.services.audit.list(DOMAIN, 1);
      assert.equal(audit?.type, 'external_keys.exported');
      assert.equal(audit?.data?.rows, 5);
    });

    it('neutralises formulas: a cell starting with = + - @ tab or CR gets a leading apostrophe', async () => {
      await gw.services.members.save(DOMAIN, { id: 'f1', account: 'formula@csv.example', name: '=HYPERLINK("https://evil.example","click")', externalKey: '-2+3' });
      await gw.services.members.save(DOMAIN, { id: 'f2', account: 'plus@csv.example', name: '+1 555', externalKey: '@key' });
      await gw.services.members.save(DOMAIN, { id: 'f3', account: 'tab@csv.example', name: '\tTabbed\r', externalKey: "'=already" });
      await gw.services.members.save(DOMAIN, { id: 'f4', account: 'quote@csv.example', name: 'He said "hi"\nthen left', externalKey: "it's" });
      const res = await download(gw);
      const text = res.body.toString('utf8');
      assert.ok(text.includes(`formula@csv.example,"'=HYPERLINK(""https://evil.example"",""click"")",'-2+3\r\n`), text);
      const byAccount = new Map(rowsOf(res.body).map((r) => [r[0], r]));
      assert.deepEqual(byAccount.get('formula@csv.example'), ['formula@csv.example', `'=HYPERLINK("https://evil.example","click")`, "'-2+3"]);
      assert.deepEqual(byAccount.get('plus@csv.example'), ['plus@csv.example', "'+1 555", "'@key"]);
      assert.deepEqual(byAccount.get('tab@csv.example'), ['tab@csv.example', "'\tTabbed\r", "''=already"]);
      assert.deepEqual(byAccount.get('quote@csv.example'), ['quote@csv.example', 'He said "hi"\nthen left', "it's"]);
      // … and the upload takes exactly that apostrophe off again: the file round-trips unchanged.
      const again = await upload(gw, res.body);
      assert.equal(again.status, 200, again.text);
      assert.deepEqual(again.body, { updated: 0, removed: 0, unchanged: 9 });
      assert.equal(await externalKeyOf(gw, DOMAIN, 'f1'), '-2+3');
      assert.equal(await externalKeyOf(gw, DOMAIN, 'f3'), "'=already");
    });

    it('round-trips: the downloaded file uploaded unchanged changes nothing', async () => {
      const before = await memberSnapshot(gw, DOMAIN);
      const file = await download(gw);
      const res = await upload(gw, file.body);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { updated: 0, removed: 0, unchanged: 5 });
      assert.equal(await memberSnapshot(gw, DOMAIN), before);
      assert.equal(await gw.countKeys('*ext-key*'), 0, 'no job, batch or lock left behind');
    });
  });

  describe('upload', () => {
    it('applies a good file: sets, changes and removes keys, and leaves members not in the file alone', async () => {
      const csv = ['account,name,externalKey', 'alice@csv.example,Alice,emp-1', 'bob@csv.example,Bob,emp-20', 'carol@csv.example,Carol,emp-3', 'dave@csv.example,"Dave, Jr.",', ''].join('\n');
      const res = await upload(gw, csv);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { updated: 2, removed: 1, unchanged: 1 });
      assert.deepEqual([await externalKeyOf(gw, DOMAIN, 'c1'), await externalKeyOf(gw, DOMAIN, 'c2'), await externalKeyOf(gw, DOMAIN, 'c3'), await externalKeyOf(gw, DOMAIN, 'c4'), await externalKeyOf(gw, DOMAIN, 'c5')], ['emp-1', 'emp-20', 'emp-3', null, null]);
      assert.equal(await gw.services.members.findByExternalKey(DOMAIN, 'emp-2'), null);
      assert.equal(await gw.services.members.findByExternalKey(DOMAIN, 'emp-4'), null);
      await assertExternalKeyIndexConsistent(gw, DOMAIN);
      const [audit] = await gw.services.audit.list(DOMAIN, 1);
      assert.equal(audit?.type, 'external_keys.imported');
      assert.deepEqual([audit?.data?.updated, audit?.data?.removed, audit?.data?.unchanged], [2, 1, 1]);
      assert.equal(await gw.countKeys('*ext-key*'), 0);
    });

    it('an empty externalKey removes the mapping', async () => {
      const res = await upload(gw, 'account,name,externalKey\nalice@csv.example,,\n');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { updated: 0, removed: 1, unchanged: 0 });
      assert.equal(await externalKeyOf(gw, DOMAIN, 'c1'), null);
      assert.equal(await gw.services.members.findByExternalKey(DOMAIN, 'emp-1'), null);
    });

    it('reports every bad row as {row, column, error} and writes nothing', async () => {
      const before = await memberSnapshot(gw, DOMAIN);
      const csv = [
        'account,name,externalKey', // 1
        'alice@csv.example,Alice,ok-1', // 2: fine on its own
        'nobody@csv.example,X,ok-2', // 3: unknown account
        'bob@csv.example,Bob,bad/slash', // 4: forbidden character
        `carol@csv.example,Carol,${'k'.repeat(101)}`, // 5: too long
        'dave@csv.example,Dave,extra,field', // 6: wrong number of fields
        ',Nobody,ok-3', // 7: empty account
        'erin@csv.example,Erin,ok-1', // 8: duplicate key inside the file
        '', // 9: blank lines are skipped
        'ALICE@csv.example,Alice again,ok-9', // 10: duplicate account (accounts are case-insensitive)
      ].join('\r\n');
      const res = await upload(gw, csv);
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'csv_invalid');
      assert.equal(res.body.details.truncated, false);
      assert.deepEqual(errorsOf(res), [
        [3, 'account'],
        [4, 'externalKey'],
        [5, 'externalKey'],
        [6, null],
        [7, 'account'],
        [8, 'externalKey'],
        [10, 'account'],
      ]);
      const messages = (res.body.details.errors as RowError[]).map((e) => e.error);
      assert.match(messages[1]!, /% \\ # \/ \?/);
      assert.match(messages[2]!, /100 characters/);
      assert.match(messages[5]!, /also on row 2/);
      assert.match(messages[6]!, /also on row 2/);
      assert.equal(await memberSnapshot(gw, DOMAIN), before, 'no member key changed');
      assert.equal(await gw.countKeys('*ext-key*'), 0);
    });

    it('refuses every forbidden character and control characters in keys', async () => {
      const before = await memberSnapshot(gw, DOMAIN);
      const bad = ['a%b', 'a\\b', 'a#b', 'a/b', 'a?b', 'a\u0007b', 'a\u007fb'];
      const csv = ['account,name,externalKey', ...bad.map((k, i) => `${MEMBERS[i % 5]!.account},,"${k}"`)].join('\n');
      const res = await upload(gw, csv);
      assert.equal(res.status, 400);
      const errors = res.body.details.errors as RowError[];
      // Rows 2–6 name five different members; rows 7–8 repeat accounts (reported too).
      for (const row of [2, 3, 4, 5, 6, 7, 8]) assert.ok(errors.some((e) => e.row === row && e.column === 'externalKey'), `row ${row}`);
      assert.equal(await memberSnapshot(gw, DOMAIN), before);
    });

    it('accepts a key of exactly 100 characters and refuses 101', async () => {
      const ok = await upload(gw, `account,name,externalKey\ncarol@csv.example,,${'k'.repeat(100)}\n`);
      assert.equal(ok.status, 200, ok.text);
      const tooLong = await upload(gw, `account,name,externalKey\ncarol@csv.example,,${'k'.repeat(101)}\n`);
      assert.equal(tooLong.status, 400);
      assert.deepEqual(errorsOf(tooLong), [[2, 'externalKey']]);
      assert.equal(await externalKeyOf(gw, DOMAIN, 'c3'), 'k'.repeat(100));
    });

    it('refuses a key held by a member who is not in the file, or who keeps it', async () => {
      const before = await memberSnapshot(gw, DOMAIN);
      const outside = await upload(gw, 'account,name,externalKey\ncarol@csv.example,,emp-1\n');
      assert.equal(outside.status, 400);
      assert.deepEqual(errorsOf(outside), [[2, 'externalKey']]);
      assert.match(outside.body.details.errors[0].error, /alice@csv\.example/);
      const keeps = await upload(gw, 'account,name,externalKey\nalice@csv.example,,emp-1\ncarol@csv.example,,emp-1\n');
      assert.equal(keeps.status, 400);
      assert.deepEqual(errorsOf(keeps), [[3, 'externalKey']]);
      assert.equal(await memberSnapshot(gw, DOMAIN), before);
    });

    it('accepts keys moving between members of the file (swap, and reuse of a freed key)', async () => {
      const res = await upload(gw, 'account,name,externalKey\nalice@csv.example,,emp-2\nbob@csv.example,,emp-1\ndave@csv.example,,\ncarol@csv.example,,emp-4\n');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { updated: 3, removed: 1, unchanged: 0 });
      assert.deepEqual([await externalKeyOf(gw, DOMAIN, 'c1'), await externalKeyOf(gw, DOMAIN, 'c2'), await externalKeyOf(gw, DOMAIN, 'c3'), await externalKeyOf(gw, DOMAIN, 'c4')], ['emp-2', 'emp-1', 'emp-4', null]);
      await assertExternalKeyIndexConsistent(gw, DOMAIN);
    });

    it('reads UTF-8 with and without a BOM, CRLF and LF, quoted fields with commas, quotes and line breaks', async () => {
      const lines = ['account,name,externalKey', 'alice@csv.example,"Liddell, Alice",社員-001', 'bob@csv.example,"Bob ""The Builder""","key, with comma"', 'carol@csv.example,"two\r\nlines",C'];
      const withBom = await upload(gw, Buffer.concat([BOM, Buffer.from(lines.join('\r\n'), 'utf8')]));
      assert.equal(withBom.status, 200, withBom.text);
      assert.deepEqual(withBom.body, { updated: 3, removed: 0, unchanged: 0 });
      assert.deepEqual([await externalKeyOf(gw, DOMAIN, 'c1'), await externalKeyOf(gw, DOMAIN, 'c2'), await externalKeyOf(gw, DOMAIN, 'c3')], ['社員-001', 'key, with comma', 'C']);
      const withoutBom = await upload(gw, Buffer.from(`${lines.join('\n')}\n`, 'utf8'));
      assert.equal(withoutBom.status, 200, withoutBom.text);
      assert.deepEqual(withoutBom.body, { updated: 0, removed: 0, unchanged: 3 });
    });

    it('takes the header case-insensitively in any column order, without name, ignoring other columns', async () => {
      const res = await upload(gw, 'ExternalKey,Notes,ACCOUNT\nnew-1,whatever,alice@csv.example\n');
      assert.equal(res.status, 200, res.text);
      assert.equal(await externalKeyOf(gw, DOMAIN, 'c1'), 'new-1');
    });

    it('counts rows as lines of the file, also after a quoted line break and blank lines (CRLF)', async () => {
      const csv = 'account,name,externalKey\r\nalice@csv.example,"multi\r\nline\r\nname",ok\r\n\r\nnobody@csv.example,,x\r\nbob@csv.example,"a\nb",bad#\r\n';
      const res = await upload(gw, csv);
      assert.equal(res.status, 400);
      assert.deepEqual(errorsOf(res), [
        [6, 'account'],
        [7, 'externalKey'],
      ]);
    });

    it('refuses a missing header, a missing column, a malformed quote and a file that is not UTF-8', async () => {
      const before = await memberSnapshot(gw, DOMAIN);
      const empty = await upload(gw, '');
      assert.equal(empty.status, 400);
      assert.equal(empty.body.error, 'csv_invalid');
      assert.deepEqual(errorsOf(empty), [[1, null]]);
      const noKeyColumn = await upload(gw, 'account,name\nalice@csv.example,Alice\n');
      assert.deepEqual(errorsOf(noKeyColumn), [[1, 'externalKey']]);
      const headerless = await upload(gw, 'alice@csv.example,Alice,emp-9\n');
      assert.equal(headerless.status, 400);
      assert.deepEqual(errorsOf(headerless), [
        [1, 'account'],
        [1, 'externalKey'],
      ]);
      const badQuote = await upload(gw, 'account,name,externalKey\nalice@csv.example,"Ali"ce,k\n');
      assert.equal(badQuote.status, 400);
      assert.deepEqual(errorsOf(badQuote), [[2, null]]);
      const shiftJis = Buffer.concat([Buffer.from('account,name,externalKey\nalice@csv.example,'), Buffer.from([0x8e, 0x52, 0x93, 0x63]), Buffer.from(',emp-1\n')]);
      const notUtf8 = await upload(gw, shiftJis);
      assert.equal(notUtf8.status, 400);
      assert.deepEqual(errorsOf(notUtf8), [[2, null]]);
      assert.match(notUtf8.body.details.errors[0].error, /UTF-8/);
      assert.equal(await memberSnapshot(gw, DOMAIN), before);
    });

    it('caps the error list at 1000 and says it was truncated', async () => {
      const rows = Array.from({ length: 1200 }, (_, i) => `ghost${i}@csv.example,,k${i}`);
      const res = await upload(gw, ['account,name,externalKey', ...rows].join('\n'));
      assert.equal(res.status, 400);
      assert.equal(res.body.details.errors.length, 1000);
      assert.equal(res.body.details.truncated, true);
      assert.equal(res.body.details.errors[999].row, 1001);
    });

    it('answers 415 to any content type but text/csv (UTF-8), changing nothing', async () => {
      const before = await memberSnapshot(gw, DOMAIN);
      const csv = 'account,name,externalKey\ncarol@csv.example,,nope\n';
      for (const type of ['application/json', 'text/plain', 'application/octet-stream', 'text/csv; charset=shift_jis', 'multipart/form-data; boundary=x']) {
        const res = await upload(gw, type === 'application/json' ? JSON.stringify({ csv }) : csv, type);
        assert.equal(res.status, 415, type);
        assert.equal(res.body.error, 'unsupported_media_type');
      }
      const gzip = await gw.http.put(URL_OF(DOMAIN)).set('Authorization', OPERATOR).set('Content-Type', 'text/csv').set('Content-Encoding', 'br').send(csv);
      assert.equal(gzip.status, 415);
      assert.equal(await memberSnapshot(gw, DOMAIN), before);
      const utf8 = await upload(gw, csv, 'text/csv; charset=UTF-8');
      assert.equal(utf8.status, 200, utf8.text);
    });

    it('keeps keys required while SSO matches on external keys', async () => {
      const res = await upload(gw, 'account,name,externalKey\nactive@a.example,,\npending@a.example,,emp-3b\n', 'text/csv', 'a.example');
      assert.equal(res.status, 400);
      assert.deepEqual(errorsOf(res), [[2, 'externalKey']]);
      assert.equal(await externalKeyOf(gw, 'a.example', 'm-a-active'), 'emp-001');
      const roundTrip = await upload(gw, (await download(gw, 'a.example')).body, 'text/csv', 'a.example');
      assert.deepEqual(roundTrip.body, { updated: 0, removed: 0, unchanged: 3 });
    });

    it('refuses while another bulk change holds the tenant lock (409 conflict)', async () => {
      await gw.store.set(keys.externalKeysLock(DOMAIN), 'someone-else', { ttlMs: 5000 });
      try {
        const res = await upload(gw, 'account,name,externalKey\ncarol@csv.example,,locked\n');
        assert.equal(res.status, 409);
        assert.equal(res.body.error, 'conflict');
        assert.equal(await externalKeyOf(gw, DOMAIN, 'c3'), null);
      } finally {
        await gw.store.del(keys.externalKeysLock(DOMAIN));
      }
    });
  });

  describe('limits', () => {
    const limited = (options: { maxBytes?: number; maxRows?: number }): ExternalKeys => new ExternalKeys({ store: gw.store, members: gw.services.members, clock: gw.clock, ...options });
    const stream = (text: string): Readable => Readable.from([Buffer.from(text)], { objectMode: false });

    it('refuses a file over the byte limit with payload_too_large, writing nothing', async () => {
      const before = await memberSnapshot(gw, DOMAIN);
      const csv = `account,name,externalKey\n${MEMBERS.map((m, i) => `${m.account},${'x'.repeat(50)},big-${i}`).join('\n')}\n`;
      await assert.rejects(limited({ maxBytes: 100 }).importCsv(await gw.services.tenants.load(DOMAIN), stream(csv)), (err: { code?: string }) => err.code === 'payload_too_large');
      assert.equal(await memberSnapshot(gw, DOMAIN), before);
      assert.equal(await gw.countKeys('*ext-key*'), 0);
    });

    it('refuses a file with more data rows than allowed', async () => {
      const csv = `account,name,externalKey\n${MEMBERS.map((m, i) => `${m.account},,row-${i}`).join('\n')}\n`;
      await assert.rejects(limited({ maxRows: 3 }).importCsv(await gw.services.tenants.load(DOMAIN), stream(csv)), (err: { code?: string; details?: { errors: RowError[] } }) => {
        assert.equal(err.code, 'csv_invalid');
        assert.deepEqual(err.details?.errors.map((e) => e.row), [5]);
        assert.match(err.details.errors[0]!.error, /more than 3 rows/);
        return true;
      });
      assert.equal(await externalKeyOf(gw, DOMAIN, 'c3'), null);
    });
  });

  describe('staging and resuming', () => {
    const csv = 'account,name,externalKey\nalice@csv.example,,r-1\nbob@csv.example,,r-2\ncarol@csv.example,,emp-1\ndave@csv.example,,\nerin@csv.example,,emp-2\n';
    const expected = { c1: 'r-1', c2: 'r-2', c3: 'emp-1', c4: null, c5: 'emp-2' };
    const keysNow = async (): Promise<Record<string, string | null>> => Object.fromEntries(await Promise.all(Object.keys(expected).map(async (id) => [id, await externalKeyOf(gw, DOMAIN, id)] as const)));

    it('applies in batches: an import interrupted after its first batch is finished by the next GET of the CSV', async () => {
      const crashing = new ExternalKeys({
        store: gw.store,
        members: gw.services.members,
        clock: gw.clock,
        batchSize: 2,
        afterApplyBatch: (_domain, batch) => (batch === 0 ? Promise.reject(new Error('process died')) : Promise.resolve()),
      });
      const tenant = await gw.services.tenants.load(DOMAIN);
      await assert.rejects(crashing.importCsv(tenant, Readable.from([Buffer.from(csv)], { objectMode: false })), /process died/);
      const job = JSON.parse((await gw.store.get(keys.externalKeyImportJob(DOMAIN)))!);
      assert.equal(job.state, 'applying');
      assert.equal(job.next, 1);
      assert.equal(job.batches, 3);
      const midway = await keysNow();
      assert.notDeepEqual(midway, expected);

      const res = await download(gw);
      assert.equal(res.status, 200);
      assert.deepEqual(await keysNow(), expected);
      await assertExternalKeyIndexConsistent(gw, DOMAIN);
      assert.equal(await gw.countKeys('*ext-key*'), 0);
      const audits = await gw.services.audit.list(DOMAIN, 2);
      const resumed = audits.find((a) => a.type === 'external_keys.imported');
      assert.equal(resumed?.data?.resumed, true);
      assert.equal(resumed?.data?.updated, 4);
      // The exported file shows the finished import.
      const rows = new Map(rowsOf(res.body).map((r) => [r[0], r[2]]));
      assert.equal(rows.get('carol@csv.example'), 'emp-1');
    });

    it('an interrupted import is also finished by the next PUT, before its own file is validated', async () => {
      const crashing = new ExternalKeys({
        store: gw.store,
        members: gw.services.members,
        clock: gw.clock,
        batchSize: 1,
        afterApplyBatch: (_domain, batch) => (batch === 2 ? Promise.reject(new Error('process died')) : Promise.resolve()),
      });
      await assert.rejects(crashing.importCsv(await gw.services.tenants.load(DOMAIN), Readable.from([Buffer.from(csv)], { objectMode: false })));
      // This file is valid only once the pending import is done (emp-1 moves from alice to carol).
      const res = await upload(gw, 'account,name,externalKey\nalice@csv.example,,emp-1b\n');
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(await keysNow(), { ...expected, c1: 'emp-1b' });
      await assertExternalKeyIndexConsistent(gw, DOMAIN);
      assert.equal(await gw.countKeys('*ext-key*'), 0);
    });

    it('discards an import whose staging never completed (its request never succeeded)', async () => {
      const before = await memberSnapshot(gw, DOMAIN);
      await gw.store.hSet(keys.externalKeyImportBatch(DOMAIN, 'deadbeef', 0), { c3: '0\t\tghost' });
      await gw.store.set(
        keys.externalKeyImportJob(DOMAIN),
        JSON.stringify({ id: 'deadbeef', state: 'staging', batches: 2, staged: 1, next: 0, counts: { updated: 1, removed: 0, unchanged: 0 }, startedAt: 0 }),
      );
      const res = await download(gw);
      assert.equal(res.status, 200);
      assert.equal(await memberSnapshot(gw, DOMAIN), before);
      assert.equal(await gw.countKeys('*ext-key*'), 0);
    });
  });
});
