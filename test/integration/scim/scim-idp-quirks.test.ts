import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createGateway, type Gateway } from '../../helpers/gateway.js';
import { ENTERPRISE_URN, GROUP_URN, issueScimToken, patchOp, plainTenant, scimClient, USER_URN } from '../../helpers/scim.js';

const DOMAIN = 'quirks.example';

/** What Entra ID and Okta really send (their provisioning docs and captured traffic shapes). */
describe('SCIM: real IdP quirks (docs/spec.md §14)', () => {
  let gw: Gateway;
  let scim: ReturnType<typeof scimClient>;

  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(plainTenant(DOMAIN));
    scim = scimClient(gw, DOMAIN, (await issueScimToken(gw, DOMAIN)).token);
  });
  after(async () => gw.close());

  describe('Entra ID', () => {
    let id: string;
    it('checks for the user with filter=userName eq "…" before creating, then creates', async () => {
      const userName = 'Alex.Wilber@quirks.example';
      const check = await scim('get', `/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`);
      assert.equal(check.status, 200);
      assert.equal(check.body.totalResults, 0);
      assert.deepEqual(check.body.Resources, []);
      const created = await scim('post', '/Users', {
        schemas: [USER_URN, ENTERPRISE_URN],
        externalId: 'alexw',
        userName,
        active: true,
        displayName: 'Alex Wilber',
        emails: [{ primary: true, type: 'work', value: userName }],
        name: { formatted: 'Alex Wilber', familyName: 'Wilber', givenName: 'Alex' },
        [ENTERPRISE_URN]: { department: 'Retail', employeeNumber: '1001' },
      });
      assert.equal(created.status, 201, created.text);
      id = created.body.id;
      const again = await scim('get', `/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}`);
      assert.equal(again.body.totalResults, 1);
      assert.equal(again.body.Resources[0].id, id);
    });

    it('PATCH with capitalised ops, booleans as strings, filtered and URN paths', async () => {
      const res = await scim(
        'patch',
        `/Users/${id}`,
        patchOp(
          { op: 'Replace', path: 'emails[type eq "work"].value', value: 'alex.w@quirks.example' },
          { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+81 90 0000 0000' },
          { op: 'Replace', path: `${ENTERPRISE_URN}:department`, value: 'Sales' },
          { op: 'Add', path: 'title', value: 'Manager' },
          { op: 'Replace', path: 'active', value: 'False' },
        ),
      );
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.emails, [{ primary: true, type: 'work', value: 'alex.w@quirks.example' }]);
      assert.deepEqual(res.body.phoneNumbers, [{ type: 'mobile', value: '+81 90 0000 0000' }]);
      assert.equal(res.body[ENTERPRISE_URN].department, 'Sales');
      assert.equal(res.body.title, 'Manager');
      assert.equal(res.body.active, false);
      assert.equal((await gw.services.members.findById(DOMAIN, id))?.status, 'suspended');
      const back = await scim('patch', `/Users/${id}`, patchOp({ op: 'Replace', path: 'active', value: 'True' }));
      assert.equal(back.body.active, true);
      assert.equal((await gw.services.members.findById(DOMAIN, id))?.status, 'in_use');
    });

    it('PATCH without a path and string booleans in the value object; Remove of a URN path; externalId change', async () => {
      const res = await scim('patch', `/Users/${id}`, patchOp({ op: 'Replace', value: { active: 'False', displayName: 'Alex W.' } }, { op: 'Remove', path: `${ENTERPRISE_URN}:employeeNumber` }, { op: 'Replace', path: 'externalId', value: 'alex-wilber' }));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.active, false);
      assert.equal(res.body.displayName, 'Alex W.');
      assert.equal(res.body[ENTERPRISE_URN].employeeNumber, undefined);
      assert.equal((await gw.services.members.findByExternalKey(DOMAIN, 'alex-wilber'))?.id, id);
      assert.equal(await gw.services.members.findByExternalKey(DOMAIN, 'alexw'), null);
    });

    it('group membership in pages of Add / Remove operations with capitalised ops', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await scim('post', '/Users', { schemas: [USER_URN], userName: `e${i}@quirks.example` })).body.id);
      const g = await scim('post', '/Groups', { schemas: [GROUP_URN], displayName: 'Retail', externalId: 'retail-obj-id', members: [] });
      assert.equal(g.status, 201);
      for (const page of [ids.slice(0, 2), ids.slice(2)]) {
        const res = await scim('patch', `/Groups/${g.body.id}`, patchOp({ op: 'Add', path: 'members', value: page.map((value) => ({ value })) }));
        assert.equal(res.status, 204);
      }
      await scim('patch', `/Groups/${g.body.id}`, patchOp({ op: 'Remove', path: 'members', value: [{ value: ids[0] }] }));
      const read = await scim('get', `/Groups/${g.body.id}`);
      assert.deepEqual(read.body.members.map((m: { value: string }) => m.value).sort(), ids.slice(1).sort());
    });
  });

  describe('Okta', () => {
    let id: string;
    it('full PUT replaces (what is left out is cleared; externalId left out keeps the SSO key)', async () => {
      const created = await scim('post', '/Users', {
        schemas: [USER_URN],
        userName: 'dana@quirks.example',
        externalId: 'okta-00u1',
        name: { givenName: 'Dana', familyName: 'Scully' },
        emails: [{ primary: true, value: 'dana@quirks.example', type: 'work' }],
        title: 'Agent',
        active: true,
      });
      assert.equal(created.status, 201);
      id = created.body.id;
      const put = await scim('put', `/Users/${id}`, {
        schemas: [USER_URN],
        id,
        userName: 'dana@quirks.example',
        name: { givenName: 'Dana', familyName: 'Mulder' },
        emails: [{ primary: true, value: 'dana@quirks.example', type: 'work' }],
        active: true,
        groups: [],
      });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.body.name.familyName, 'Mulder');
      assert.equal(put.body.title, undefined, 'left out, so cleared');
      assert.equal(put.body.externalId, 'okta-00u1', 'the external key stays');
      const cleared = await scim('put', `/Users/${id}`, { schemas: [USER_URN], userName: 'dana@quirks.example', externalId: null, active: true });
      assert.equal(cleared.body.externalId, undefined, 'an explicit null removes it');
    });

    it('deactivates with PUT active:false, then DELETEs', async () => {
      const off = await scim('put', `/Users/${id}`, { schemas: [USER_URN], userName: 'dana@quirks.example', active: false });
      assert.equal(off.status, 200);
      assert.equal(off.body.active, false);
      assert.equal((await gw.services.members.findById(DOMAIN, id))?.status, 'suspended');
      const trail = await gw.services.audit.list(DOMAIN, 2);
      assert.deepEqual(trail.map((e) => e.type), ['scim.user_deactivated', 'scim.user_replaced']);
      assert.equal((await scim('delete', `/Users/${id}`)).status, 204);
      assert.equal(await gw.services.members.findById(DOMAIN, id), null);
    });

    it('pages through users with startIndex/count until totalResults', async () => {
      const seen = new Set<string>();
      let total = Infinity;
      for (let start = 1; start <= total; start += 2) {
        const page = await scim('get', `/Users?startIndex=${start}&count=2`);
        total = page.body.totalResults;
        for (const r of page.body.Resources) seen.add(r.id);
      }
      assert.equal(seen.size, total);
    });
  });
});

describe('SCIM: the dialects docs/spec.md §11 lists', () => {
  let gw: Gateway;
  let scim: ReturnType<typeof scimClient>;
  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(plainTenant(DOMAIN));
    scim = scimClient(gw, DOMAIN, (await issueScimToken(gw, DOMAIN)).token);
  });
  after(async () => gw.close());

  it('Entra: a pathless replace whose value keys are attribute paths; manager as a plain id string', async () => {
    const boss = (await scim('post', '/Users', { schemas: [USER_URN], userName: 'boss@quirks.example' })).body.id as string;
    const id = (await scim('post', '/Users', { schemas: [USER_URN], userName: 'dialect@quirks.example', name: { givenName: 'A', familyName: 'B' } })).body.id as string;
    const res = await scim(
      'patch',
      `/Users/${id}`,
      patchOp(
        { op: 'replace', value: { 'name.givenName': 'Carol', [`${ENTERPRISE_URN}:department`]: 'Legal', active: 'False', displayName: 'Carol B' } },
        { op: 'Replace', path: `${ENTERPRISE_URN}:manager`, value: boss },
      ),
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.name.givenName, 'Carol');
    assert.equal(res.body.name.familyName, 'B');
    assert.equal(res.body[ENTERPRISE_URN].department, 'Legal');
    assert.deepEqual(res.body[ENTERPRISE_URN].manager, { value: boss });
    assert.equal(res.body.active, false);
    assert.equal(res.body.displayName, 'Carol B');
  });

  it('Entra: "$ref": null in group members; Okta: a password on create is neither stored nor returned', async () => {
    const u = await scim('post', '/Users', { schemas: [USER_URN], userName: 'pw@quirks.example', password: 'Sup3r-secret!', active: true });
    assert.equal(u.status, 201);
    assert.equal(u.body.password, undefined);
    assert.ok(!JSON.stringify(await gw.store.get(`idpb:{${DOMAIN}}:scim:user:${u.body.id as string}`)).includes('Sup3r'), 'not kept');
    assert.equal((await gw.services.members.findById(DOMAIN, u.body.id as string))?.passwordHash, undefined);
    const g = await scim('post', '/Groups', { schemas: [GROUP_URN], displayName: 'Refs', members: [{ value: u.body.id, $ref: null, display: 'pw' }] });
    assert.equal(g.status, 201, g.text);
    const p = await scim('patch', `/Groups/${g.body.id as string}`, patchOp({ op: 'Remove', path: 'members', value: [{ value: u.body.id, $ref: null }] }));
    assert.equal(p.status, 204);
  });
});
