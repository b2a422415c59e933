import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keys } from '../../../src/store/index.js';
import { createGateway, OPERATOR_AUTH, statusRecorder, tenantKeyAuth, type Gateway } from '../../helpers/gateway.js';
import { ENTERPRISE_URN, ERROR_URN, issueScimToken, patchOp, plainTenant, SCIM_TYPE, scimClient, USER_URN } from '../../helpers/scim.js';

const DOMAIN = 'scim.example';
const OTHER = 'other-scim.example';

const user = (userName: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  schemas: [USER_URN],
  userName,
  name: { givenName: 'Ada', familyName: 'Lovelace' },
  emails: [{ value: userName, type: 'work', primary: true }],
  active: true,
  ...extra,
});

function assertScimError(res: { status: number; body: Record<string, unknown>; headers: Record<string, unknown> }, status: number, code: string, scimType?: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.match(String(res.headers['content-type']), /application\/scim\+json/);
  assert.deepEqual(res.body.schemas, [ERROR_URN]);
  assert.equal(res.body.status, String(status), 'status is a string (RFC 7644 §3.12)');
  assert.equal(res.body.scimType, scimType);
  assert.equal((res.body['urn:idp-bridge:error'] as { code: string }).code, code);
}

describe('SCIM 2.0 Users (docs/spec.md §14)', () => {
  let gw: Gateway;
  let scim: ReturnType<typeof scimClient>;
  let tokenId: string;
  const { call, statuses } = statusRecorder();

  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(plainTenant(DOMAIN));
    await gw.services.tenants.save(plainTenant(OTHER));
    await gw.services.members.save(DOMAIN, { id: 'm-super', account: 'boss@scim.example', name: 'Boss', role: 'super_admin', status: 'in_use', externalKey: 'boss-key' });
    const issued = await issueScimToken(gw, DOMAIN);
    tokenId = issued.id;
    scim = scimClient(gw, DOMAIN, issued.token);
  });
  after(async () => gw.close());

  describe('tokens through the admin API', () => {
    it('issues a token shown once, lists it without the secret, stores only its hash', async () => {
      const created = await gw.http.post(`/admin/v1/domains/${DOMAIN}/scim-tokens`).set('Authorization', OPERATOR_AUTH).send({ name: 'okta' });
      assert.equal(created.status, 201);
      assert.match(created.body.token, /^scim_[A-Za-z0-9_-]{43}$/);
      assert.equal(created.body.scimBaseUrl, `https://sso.bridge.test/scim/v2/${DOMAIN}`);
      const list = await gw.http.get(`/admin/v1/domains/${DOMAIN}/scim-tokens`).set('Authorization', OPERATOR_AUTH);
      assert.equal(list.status, 200);
      assert.ok(list.body.tokens.some((t: { id: string; name: string }) => t.id === created.body.id && t.name === 'okta'));
      assert.ok(!list.text.includes(created.body.token), 'the list never shows a token');
      const stored = await gw.store.hGetAll(keys.scimTokensOf(DOMAIN));
      assert.ok(!JSON.stringify(stored).includes(created.body.token), 'only a digest is stored');
      assert.equal((await scimClient(gw, DOMAIN, created.body.token)('get', '/Users')).status, 200);
    });

    it('rotates (the old secret dies at once, the id stays) and revokes', async () => {
      const issued = await issueScimToken(gw, DOMAIN, 'rotating');
      const rotated = await gw.http.post(`/admin/v1/domains/${DOMAIN}/scim-tokens/${issued.id}/rotate`).set('Authorization', OPERATOR_AUTH);
      assert.equal(rotated.status, 200);
      assert.equal(rotated.body.id, issued.id);
      assert.notEqual(rotated.body.token, issued.token);
      assertScimError(await scimClient(gw, DOMAIN, issued.token)('get', '/Users'), 401, 'scim_unauthorized');
      assert.equal((await scimClient(gw, DOMAIN, rotated.body.token)('get', '/Users')).status, 200);
      const revoked = await gw.http.delete(`/admin/v1/domains/${DOMAIN}/scim-tokens/${issued.id}`).set('Authorization', OPERATOR_AUTH);
      assert.equal(revoked.status, 204);
      assertScimError(await scimClient(gw, DOMAIN, rotated.body.token)('get', '/Users'), 401, 'scim_unauthorized');
      assert.equal((await gw.http.delete(`/admin/v1/domains/${DOMAIN}/scim-tokens/${issued.id}`).set('Authorization', OPERATOR_AUTH)).status, 404);
      const trail = await gw.services.audit.list(DOMAIN, 20);
      for (const type of ['scim_token.created', 'scim_token.rotated', 'scim_token.revoked']) assert.ok(trail.some((e) => e.type === type), type);
    });

    it('needs super: a read-only tenant key cannot issue; another tenant key sees nothing', async () => {
      const readKey = await gw.http.post(`/admin/v1/domains/${DOMAIN}/api-keys`).set('Authorization', OPERATOR_AUTH).send({ name: 'ro', scope: 'read' });
      const ro = await gw.http.post(`/admin/v1/domains/${DOMAIN}/scim-tokens`).set('Authorization', `Bearer ${readKey.body.key as string}`).send({ name: 'x' });
      assert.equal(ro.status, 403);
      const otherKey = await tenantKeyAuth(gw, OTHER);
      assert.equal((await gw.http.get(`/admin/v1/domains/${DOMAIN}/scim-tokens`).set('Authorization', otherKey)).status, 404);
    });
  });

  describe('refusals', () => {
    it('401 without a token, with a bad one, and with another domain\'s token', async () => {
      assertScimError(await gw.http.get(`/scim/v2/${DOMAIN}/Users`), 401, 'scim_unauthorized');
      assertScimError(await scimClient(gw, DOMAIN, 'scim_' + 'A'.repeat(43))('get', '/Users'), 401, 'scim_unauthorized');
      assertScimError(await scimClient(gw, DOMAIN, 'not-a-token')('get', '/Users'), 401, 'scim_unauthorized');
      const other = await issueScimToken(gw, OTHER);
      const res = await scimClient(gw, DOMAIN, other.token)('get', '/Users');
      assertScimError(res, 401, 'scim_unauthorized');
      assert.match(String(res.headers['www-authenticate']), /Bearer/);
    });

    it('400 invalidFilter for a malformed filter or an attribute that cannot be filtered', async () => {
      assertScimError(await scim('get', '/Users?filter=' + encodeURIComponent('userName eq')), 400, 'scim_invalid_filter', 'invalidFilter');
      assertScimError(await scim('get', '/Users?filter=' + encodeURIComponent('userName zz "a"')), 400, 'scim_invalid_filter', 'invalidFilter');
      assertScimError(await scim('get', '/Users?filter=' + encodeURIComponent('password eq "x"')), 400, 'scim_invalid_filter', 'invalidFilter');
    });

    it('409 uniqueness for a duplicate userName or externalId; nothing half-created', async () => {
      const first = await call('create', scim('post', '/Users', user('dup@scim.example', { externalId: 'dup-key' })));
      assert.equal(first.status, 201);
      const before = await gw.store.sCard(keys.memberIds(DOMAIN));
      assertScimError(await scim('post', '/Users', user('DUP@scim.example')), 409, 'scim_uniqueness', 'uniqueness');
      assertScimError(await scim('post', '/Users', user('fresh@scim.example', { externalId: 'dup-key' })), 409, 'scim_uniqueness', 'uniqueness');
      assert.equal(await gw.store.sCard(keys.memberIds(DOMAIN)), before);
      assert.equal(await gw.services.members.findByAccount(DOMAIN, 'fresh@scim.example'), null, 'no member and no account claim left behind');
      assert.equal(await gw.store.hGet(keys.memberByAccount(DOMAIN), 'fresh@scim.example'), null);
      // A retried create (Entra after a timeout) never makes a second member.
      assertScimError(await scim('post', '/Users', user('dup@scim.example', { externalId: 'dup-key' })), 409, 'scim_uniqueness', 'uniqueness');
    });

    it('400 invalidValue for a userName that is not an account or an externalId breaking S-26; 400 for bad JSON', async () => {
      assertScimError(await scim('post', '/Users', user('no-at-sign')), 400, 'scim_invalid_value', 'invalidValue');
      assertScimError(await scim('post', '/Users', user('k@scim.example', { externalId: 'a/b' })), 400, 'scim_invalid_value', 'invalidValue');
      assertScimError(await scim('post', '/Users', user('k@scim.example', { active: 'maybe' })), 400, 'scim_invalid_value', 'invalidValue');
      const broken = await gw.http.post(`/scim/v2/${DOMAIN}/Users`).set('Authorization', scim('get', '/').get('Authorization')).set('Content-Type', SCIM_TYPE).send('{"userName":');
      assertScimError(broken, 400, 'bad_request', 'invalidSyntax');
      assertScimError(await scim('get', '/Users/nope'), 404, 'scim_resource_not_found');
    });

    it('a super admin is read-only through SCIM: 403 on PUT, PATCH, deactivation and DELETE', async () => {
      assert.equal((await scim('get', '/Users/m-super')).status, 200);
      assertScimError(await scim('patch', '/Users/m-super', patchOp({ op: 'replace', path: 'active', value: false })), 403, 'scim_super_admin_protected');
      assertScimError(await scim('put', '/Users/m-super', user('boss@scim.example', { active: false })), 403, 'scim_super_admin_protected');
      assertScimError(await scim('delete', '/Users/m-super'), 403, 'scim_super_admin_protected');
      const boss = await gw.services.members.findById(DOMAIN, 'm-super');
      assert.equal(boss?.status, 'in_use');
      assert.equal(boss?.externalKey, 'boss-key');
    });
  });

  describe('operations', () => {
    let id: string;
    it('POST creates a member (userName → account, externalId → external key, active → in_use) and answers 201 with Location and ETag', async () => {
      const res = await call('create', scim('post', '/Users', user('Ada@scim.example', { externalId: 'emp-ada', title: 'Engineer', [ENTERPRISE_URN]: { department: 'R&D', employeeNumber: '42', manager: { value: 'm-super' } }, schemas: [USER_URN, ENTERPRISE_URN] })));
      assert.equal(res.status, 201);
      assert.match(String(res.headers['content-type']), /application\/scim\+json/);
      id = res.body.id;
      assert.equal(res.headers.location, `https://sso.bridge.test/scim/v2/${DOMAIN}/Users/${id}`);
      assert.equal(res.headers.etag, res.body.meta.version);
      assert.equal(res.body.userName, 'ada@scim.example');
      assert.equal(res.body.externalId, 'emp-ada');
      assert.equal(res.body.active, true);
      assert.equal(res.body[ENTERPRISE_URN].department, 'R&D');
      const member = await gw.services.members.findById(DOMAIN, id);
      assert.equal(member?.account, 'ada@scim.example');
      assert.equal(member?.externalKey, 'emp-ada');
      assert.equal(member?.status, 'in_use');
      assert.equal(member?.role, 'member');
      assert.equal(member?.name, 'Ada Lovelace');
      const [created] = await gw.services.audit.list(DOMAIN, 1);
      assert.equal(created?.type, 'scim.user_created');
      assert.equal(created?.actor, `scim-token:${tokenId}`);
    });

    it('GET reads it back; attributes and excludedAttributes shape the answer', async () => {
      const res = await scim('get', `/Users/${id}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.name.givenName, 'Ada');
      assert.deepEqual(res.body.groups, []);
      const only = await scim('get', `/Users/${id}?attributes=userName,name.familyName,${ENTERPRISE_URN}:department`);
      assert.deepEqual(Object.keys(only.body).sort(), ['id', 'name', 'schemas', 'userName', ENTERPRISE_URN].sort());
      assert.deepEqual(only.body.name, { familyName: 'Lovelace' });
      assert.deepEqual(only.body[ENTERPRISE_URN], { department: 'R&D' });
      const without = await scim('get', `/Users/${id}?excludedAttributes=emails,name`);
      assert.equal(without.body.emails, undefined);
      assert.equal(without.body.name, undefined);
      assert.equal(without.body.userName, 'ada@scim.example');
    });

    it('PUT replaces; If-Match with a stale version answers 412 and changes nothing', async () => {
      const current = await scim('get', `/Users/${id}`);
      const put = await call('put', scim('put', `/Users/${id}`, user('ada.l@scim.example', { externalId: 'emp-ada', displayName: 'Ada L.', name: { givenName: 'Ada' } }), { 'If-Match': current.body.meta.version }));
      assert.equal(put.status, 200);
      assert.equal(put.body.userName, 'ada.l@scim.example');
      assert.equal(put.body.displayName, 'Ada L.');
      assert.equal(put.body.title, undefined, 'a full replace drops what the body left out');
      assert.notEqual(put.body.meta.version, current.body.meta.version);
      assertScimError(await scim('put', `/Users/${id}`, user('stale@scim.example'), { 'If-Match': current.body.meta.version }), 412, 'scim_precondition_failed');
      assertScimError(await scim('patch', `/Users/${id}`, patchOp({ op: 'replace', path: 'displayName', value: 'x' }), { 'If-Match': current.body.meta.version }), 412, 'scim_precondition_failed');
      assert.equal((await gw.services.members.findById(DOMAIN, id))?.account, 'ada.l@scim.example');
      assert.equal(await gw.services.members.findByAccount(DOMAIN, 'ada@scim.example'), null, 'the old account index entry is released');
    });

    it('PATCH add / replace / remove (RFC 7644 §3.5.2), the response is the patched user', async () => {
      const res = await call(
        'patch',
        scim(
          'patch',
          `/Users/${id}`,
          patchOp({ op: 'replace', path: 'name.familyName', value: 'Byron' }, { op: 'add', path: 'title', value: 'Countess' }, { op: 'remove', path: 'emails' }, { op: 'add', value: { nickName: 'AL' } }),
        ),
      );
      assert.equal(res.status, 200);
      assert.equal(res.body.name.familyName, 'Byron');
      assert.equal(res.body.title, 'Countess');
      assert.equal(res.body.nickName, 'AL');
      assert.equal(res.body.emails, undefined);
      assertScimError(await scim('patch', `/Users/${id}`, patchOp({ op: 'replace', path: 'id', value: 'x' })), 400, 'scim_mutability', 'mutability');
      assertScimError(await scim('patch', `/Users/${id}`, patchOp({ op: 'jump', path: 'title' })), 400, 'scim_invalid_syntax', 'invalidSyntax');
      assertScimError(await scim('patch', `/Users/${id}`, { Operations: [] }), 400, 'scim_invalid_syntax', 'invalidSyntax');
    });

    it('lists with filters (eq, co, sw, and/or on userName, externalId, emails, displayName) and startIndex/count paging', async () => {
      for (let i = 0; i < 5; i++) {
        await call('create', scim('post', '/Users', user(`list${i}@scim.example`, { externalId: `L-${i}`, displayName: i % 2 ? 'Odd Person' : 'Even Person', emails: [{ value: `list${i}@mail.example`, type: 'work' }] })));
      }
      const q = async (filter: string, extra = ''): Promise<{ total: number; names: string[] }> => {
        const res = await scim('get', `/Users?filter=${encodeURIComponent(filter)}${extra}`);
        assert.equal(res.status, 200, res.text);
        assert.deepEqual(res.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
        return { total: res.body.totalResults, names: res.body.Resources.map((r: { userName: string }) => r.userName) };
      };
      assert.deepEqual((await q('userName eq "LIST2@scim.example"')).names, ['list2@scim.example'], 'userName compares without case');
      assert.deepEqual((await q('externalId eq "L-3"')).names, ['list3@scim.example']);
      assert.equal((await q('externalId eq "l-3"')).total, 0, 'externalId is caseExact');
      assert.equal((await q('userName sw "list"')).total, 5);
      assert.equal((await q('emails co "mail.example"')).total, 5);
      assert.deepEqual((await q('emails[type eq "work" and value sw "list4"]')).names, ['list4@scim.example']);
      assert.equal((await q('displayName eq "Odd Person"')).total, 2);
      assert.deepEqual((await q('displayName eq "Odd Person" and externalId eq "L-1"')).names, ['list1@scim.example']);
      assert.equal((await q('externalId eq "L-0" or externalId eq "L-4"')).total, 2);
      const page = await q('userName sw "list"', '&startIndex=2&count=2');
      assert.equal(page.total, 5);
      assert.deepEqual(page.names, ['list1@scim.example', 'list2@scim.example']);
      const all = await scim('get', '/Users?startIndex=3&count=2&attributes=userName');
      assert.equal(all.body.totalResults, await gw.store.sCard(keys.memberIds(DOMAIN)));
      assert.equal(all.body.startIndex, 3);
      assert.equal(all.body.itemsPerPage, 2);
      assert.deepEqual(Object.keys(all.body.Resources[0]).sort(), ['id', 'schemas', 'userName']);
      const none = await scim('get', '/Users?count=0');
      assert.equal(none.body.Resources.length, 0);
      assertScimError(await scim('get', '/Users?count=abc'), 400, 'scim_invalid_syntax', 'invalidSyntax');
    });

    it('DELETE removes the member with its SCIM attributes; a repeated DELETE is 404', async () => {
      const res = await call('delete', scim('delete', `/Users/${id}`));
      assert.equal(res.status, 204);
      assert.equal(await gw.services.members.findById(DOMAIN, id), null);
      assert.equal(await gw.store.get(keys.scimUser(DOMAIN, id)), null);
      assert.equal(await gw.services.members.findByExternalKey(DOMAIN, 'emp-ada'), null);
      assertScimError(await scim('delete', `/Users/${id}`), 404, 'scim_resource_not_found');
      const [deleted] = await gw.services.audit.list(DOMAIN, 1);
      assert.equal(deleted?.type, 'scim.user_deleted');
    });
  });

  describe('discovery', () => {
    it('ServiceProviderConfig, ResourceTypes and Schemas (with the enterprise extension)', async () => {
      const spc = await scim('get', '/ServiceProviderConfig');
      assert.equal(spc.status, 200);
      assert.equal(spc.body.patch.supported, true);
      assert.equal(spc.body.etag.supported, true);
      assert.equal(spc.body.filter.supported, true);
      const types = await scim('get', '/ResourceTypes');
      assert.deepEqual(types.body.Resources.map((r: { id: string }) => r.id), ['User', 'Group']);
      assert.equal(types.body.Resources[0].schemaExtensions[0].schema, ENTERPRISE_URN);
      const schemas = await scim('get', '/Schemas');
      assert.deepEqual(schemas.body.Resources.map((r: { id: string }) => r.id), [USER_URN, 'urn:ietf:params:scim:schemas:core:2.0:Group', ENTERPRISE_URN]);
      assert.equal((await scim('get', `/Schemas/${ENTERPRISE_URN}`)).body.name, 'EnterpriseUser');
      assertScimError(await scim('get', '/Nothing'), 404, 'scim_resource_not_found');
    });
  });

  it('the SCIM token never reaches a log line; no request answered 5xx', () => {
    assert.ok(statuses.length >= 9, `${statuses.length} recorded`);
    assert.ok(!/scim_[A-Za-z0-9_-]{43}/.test(gw.logText()), 'no SCIM token in the logs');
  });
});

describe('SCIM rate limit (config scim.rateLimitPerMinute, per token)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway({ overrides: { scim: { rateLimitPerMinute: 10 } } });
    await gw.services.tenants.save(plainTenant(DOMAIN));
  });
  after(async () => gw.close());

  it('answers 429 rate_limited with Retry-After past the limit; another token has its own budget; the next window admits again', async () => {
    const a = scimClient(gw, DOMAIN, (await issueScimToken(gw, DOMAIN, 'a')).token);
    const b = scimClient(gw, DOMAIN, (await issueScimToken(gw, DOMAIN, 'b')).token);
    for (let i = 0; i < 10; i++) assert.equal((await a('get', '/ServiceProviderConfig')).status, 200);
    const over = await a('get', '/Users');
    assertScimError(over, 429, 'rate_limited');
    assert.ok(Number(over.headers['retry-after']) >= 1);
    assert.equal((await b('get', '/Users')).status, 200, "another token's budget is its own");
    gw.clock.advance(60_000);
    assert.equal((await a('get', '/Users')).status, 200);
  });
});
