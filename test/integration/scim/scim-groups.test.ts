import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keys } from '../../../src/store/index.js';
import { createGateway, OPERATOR_AUTH, type Gateway } from '../../helpers/gateway.js';
import { ERROR_URN, GROUP_URN, issueScimToken, patchOp, plainTenant, scimClient, USER_URN } from '../../helpers/scim.js';

const DOMAIN = 'groups.example';

describe('SCIM 2.0 Groups (docs/spec.md §14)', () => {
  let gw: Gateway;
  let scim: ReturnType<typeof scimClient>;
  const userIds: string[] = [];
  let groupId: string;

  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(plainTenant(DOMAIN));
    scim = scimClient(gw, DOMAIN, (await issueScimToken(gw, DOMAIN)).token);
    for (let i = 0; i < 6; i++) {
      const res = await scim('post', '/Users', { schemas: [USER_URN], userName: `g${i}@groups.example`, active: true });
      assert.equal(res.status, 201);
      userIds.push(res.body.id);
    }
  });
  after(async () => gw.close());

  const membersOf = async (id: string): Promise<string[]> => ((await scim("get", `/Groups/${id}`)).body.members as Array<{ value: string }>).map((m) => m.value).sort();

  it('POST creates a group with members; GET reads it; a user shows its groups', async () => {
    const res = await scim('post', '/Groups', { schemas: [GROUP_URN], displayName: 'Engineering', externalId: 'eng-1', members: [{ value: userIds[0] }, { value: userIds[1] }] });
    assert.equal(res.status, 201, res.text);
    groupId = res.body.id;
    assert.equal(res.body.displayName, 'Engineering');
    assert.equal(res.headers.etag, 'W/"1"');
    assert.deepEqual(await membersOf(groupId), [userIds[0], userIds[1]].sort());
    const u = await scim('get', `/Users/${userIds[0]}`);
    assert.deepEqual(u.body.groups, [{ value: groupId, display: 'Engineering' }]);
    const [audited] = await gw.services.audit.list(DOMAIN, 1);
    assert.equal(audited?.type, 'scim.group_created');
  });

  it('refuses a duplicate displayName (409 uniqueness) and unknown member values (400 invalidValue), writing nothing', async () => {
    const dup = await scim('post', '/Groups', { schemas: [GROUP_URN], displayName: 'engineering' });
    assert.equal(dup.status, 409);
    assert.equal(dup.body.scimType, 'uniqueness');
    const unknown = await scim('post', '/Groups', { schemas: [GROUP_URN], displayName: 'Ghosts', members: [{ value: 'no-such-user' }] });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body.schemas, [ERROR_URN]);
    assert.equal(unknown.body.scimType, 'invalidValue');
    assert.equal(await gw.store.hGet(keys.scimGroupByName(DOMAIN), 'ghosts'), null);
    assert.equal(await gw.store.sCard(keys.scimGroupIds(DOMAIN)), 1);
  });

  it('PATCH adds and removes members in pages, by value list and by members[value eq "…"]; answers 204; the version moves', async () => {
    const add = await scim('patch', `/Groups/${groupId}`, patchOp({ op: 'Add', path: 'members', value: [{ value: userIds[2] }, { value: userIds[3] }] }));
    assert.equal(add.status, 204, add.text);
    assert.equal(add.headers.etag, 'W/"2"');
    const remove = await scim('patch', `/Groups/${groupId}`, patchOp({ op: 'Remove', path: 'members', value: [{ value: userIds[0] }] }, { op: 'remove', path: `members[value eq "${userIds[1]}"]` }));
    assert.equal(remove.status, 204);
    assert.deepEqual(await membersOf(groupId), [userIds[2], userIds[3]].sort());
    assert.deepEqual(await gw.store.sMembers(keys.scimMemberGroups(DOMAIN, userIds[0]!)), [], 'the reverse index follows');
    const [audited] = await gw.services.audit.list(DOMAIN, 1);
    assert.equal(audited?.type, 'scim.group_updated');
    assert.equal(audited?.data?.removed, 2);
  });

  it('PATCH replace of displayName (by path and, as Okta sends it, by value without a path); replace of the whole member list', async () => {
    assert.equal((await scim('patch', `/Groups/${groupId}`, patchOp({ op: 'Replace', path: 'displayName', value: 'Eng' }))).status, 204);
    const okta = await scim('patch', `/Groups/${groupId}?attributes=displayName`, patchOp({ op: 'replace', value: { id: groupId, displayName: 'Engineering Dept' } }));
    assert.equal(okta.status, 200);
    assert.deepEqual(okta.body, { schemas: [GROUP_URN], id: groupId, displayName: 'Engineering Dept' });
    assert.equal(await gw.store.hGet(keys.scimGroupByName(DOMAIN), 'eng'), null, 'the old name is released');
    assert.equal((await scim('patch', `/Groups/${groupId}`, patchOp({ op: 'replace', path: 'members', value: [{ value: userIds[4] }] }))).status, 204);
    assert.deepEqual(await membersOf(groupId), [userIds[4]]);
    const tooMany = await scim('patch', `/Groups/${groupId}`, patchOp({ op: 'add', path: 'members', value: Array.from({ length: 10_001 }, (_, i) => ({ value: `u${i}` })) }));
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.body.scimType, 'tooMany');
  });

  it('lists with filter displayName eq (Entra checks before creating), excludedAttributes=members, paging', async () => {
    await scim('post', '/Groups', { schemas: [GROUP_URN], displayName: 'Sales' });
    const found = await scim('get', `/Groups?filter=${encodeURIComponent('displayName eq "engineering dept"')}&excludedAttributes=members`);
    assert.equal(found.status, 200);
    assert.equal(found.body.totalResults, 1);
    assert.equal(found.body.Resources[0].id, groupId);
    assert.equal(found.body.Resources[0].members, undefined);
    const all = await scim('get', '/Groups?count=1&startIndex=2');
    assert.equal(all.body.totalResults, 2);
    assert.equal(all.body.Resources.length, 1);
    const withMember = await scim('get', `/Groups?filter=${encodeURIComponent(`members.value eq "${userIds[4]}"`)}`);
    assert.equal(withMember.body.totalResults, 1);
    const sw = await scim('get', `/Groups?filter=${encodeURIComponent('displayName sw "sal"')}`);
    assert.deepEqual(sw.body.Resources.map((g: { displayName: string }) => g.displayName), ['Sales']);
    const bad = await scim('get', `/Groups?filter=${encodeURIComponent('displayName eq')}`);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.scimType, 'invalidFilter');
  });

  it('PUT replaces name and members; If-Match with a stale version is 412', async () => {
    const current = await scim('get', `/Groups/${groupId}`);
    const put = await scim('put', `/Groups/${groupId}`, { schemas: [GROUP_URN], displayName: 'Engineering', members: [{ value: userIds[5] }] }, { 'If-Match': current.body.meta.version });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.body.members.map((m: { value: string }) => m.value), [userIds[5]]);
    const stale = await scim('patch', `/Groups/${groupId}`, patchOp({ op: 'add', path: 'members', value: [{ value: userIds[0] }] }), { 'If-Match': current.body.meta.version });
    assert.equal(stale.status, 412);
    assert.deepEqual(await membersOf(groupId), [userIds[5]]);
  });

  it('deleting a user takes it out of its groups; DELETE of a group removes it and every membership', async () => {
    assert.equal((await scim('delete', `/Users/${userIds[5]}`)).status, 204);
    assert.deepEqual(await membersOf(groupId), []);
    await scim('patch', `/Groups/${groupId}`, patchOp({ op: 'add', path: 'members', value: [{ value: userIds[0] }] }));
    assert.equal((await scim('delete', `/Groups/${groupId}`)).status, 204);
    assert.equal((await scim('get', `/Groups/${groupId}`)).status, 404);
    assert.deepEqual(await gw.store.sMembers(keys.scimMemberGroups(DOMAIN, userIds[0]!)), []);
    assert.equal(await gw.store.hGet(keys.scimGroupByName(DOMAIN), 'engineering'), null);
    assert.equal((await scim('delete', `/Groups/${groupId}`)).status, 404);
  });
});

describe('SCIM data when a member is deleted through the admin API', () => {
  it('the member leaves its SCIM groups and its SCIM attributes go with it', async () => {
    const gw = await createGateway();
    try {
      await gw.services.tenants.save(plainTenant(DOMAIN));
      const scim = scimClient(gw, DOMAIN, (await issueScimToken(gw, DOMAIN)).token);
      const u = await scim('post', '/Users', { schemas: [USER_URN], userName: 'admin-deleted@groups.example', title: 'Temp' });
      const g = await scim('post', '/Groups', { schemas: [GROUP_URN], displayName: 'Temps', members: [{ value: u.body.id }] });
      assert.equal(g.status, 201);
      const del = await gw.http.delete(`/admin/v1/domains/${DOMAIN}/members/${u.body.id as string}`).set('Authorization', OPERATOR_AUTH);
      assert.equal(del.status, 204);
      assert.deepEqual((await scim('get', `/Groups/${g.body.id as string}`)).body.members, []);
      assert.equal(await gw.store.get(keys.scimUser(DOMAIN, u.body.id as string)), null);
      assert.equal(await gw.store.sCard(keys.scimMemberGroups(DOMAIN, u.body.id as string)), 0);
    } finally {
      await gw.close();
    }
  });
});
