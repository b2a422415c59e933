import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminOperations } from '../../../src/http/routes/admin/openapi.js';
import '../../../src/http/routes/admin/all-routes.js';
import { createGateway, type Gateway, OPERATOR_AUTH as OPERATOR, tenantKeyAuth } from '../../helpers/gateway.js';


/**
 * §11: a tenant key reaches only its tenant; every path of another tenant answers 404 as if it did not
 * exist — for EVERY admin route (the list comes from the documented operations, which another test
 * keeps equal to the router), and nothing of the other tenant changes.
 */
describe('tenant isolation of the admin API', () => {
  let gw: Gateway;
  let keyA: string;
  before(async () => {
    gw = await createGateway();
    keyA = await tenantKeyAuth(gw, 'a.example', 'a-admin');
  });
  after(async () => gw.close());

  it('answers 404 tenant_not_found for every tenant path of another tenant, and changes nothing there', async () => {
    const before = JSON.stringify(await gw.services.tenants.find('b.example'));
    const memberBefore = JSON.stringify(await gw.services.members.findById('b.example', 'm-b-user'));
    const ops = adminOperations().filter((o) => o.path.startsWith('/domains/{domain}'));
    assert.ok(ops.length >= 15);
    for (const op of ops) {
      const path = op.path.replace('{domain}', 'b.example').replace('{id}', 'm-b-user').replace(/\{\w+\}/g, 'x');
      const req = gw.http[op.method](`/admin/v1${path}`).set('Authorization', keyA);
      const res = op.body === 'csv' ? await req.set('Content-Type', 'text/csv').send('account,name,externalKey\n') : await req.send({});
      assert.equal(res.status, 404, `${op.method.toUpperCase()} ${path} answered ${res.status}`);
      assert.equal(res.body.error, 'tenant_not_found', `${op.method.toUpperCase()} ${path}`);
    }
    assert.equal(JSON.stringify(await gw.services.tenants.find('b.example')), before);
    assert.equal(JSON.stringify(await gw.services.members.findById('b.example', 'm-b-user')), memberBefore);
  });

  it('answers an unknown tenant and a forbidden one identically', async () => {
    const other = await gw.http.get('/admin/v1/domains/b.example').set('Authorization', keyA);
    const none = await gw.http.get('/admin/v1/domains/none.example').set('Authorization', keyA);
    assert.equal(other.status, none.status);
    assert.equal(other.body.error, none.body.error);
    assert.equal(other.body.message, none.body.message);
  });

  it('lets the tenant key reach its own tenant, and keeps operator-only actions for the operator', async () => {
    assert.equal((await gw.http.get('/admin/v1/domains/a.example').set('Authorization', keyA)).status, 200);
    const list = await gw.http.get('/admin/v1/domains').set('Authorization', keyA);
    assert.deepEqual(
      list.body.domains.map((d: { domain: string }) => d.domain),
      ['a.example'],
    );
    const create = await gw.http.post('/admin/v1/domains').set('Authorization', keyA).send({ domain: 'new.example', name: 'New' });
    assert.equal(create.status, 403);
    assert.equal(create.body.error, 'forbidden');
    const plan = await gw.http.patch('/admin/v1/domains/a.example').set('Authorization', keyA).send({ plan: 'advanced' });
    assert.equal(plan.status, 403);
  });

  it('refuses missing, malformed and revoked keys with 401 unauthorized', async () => {
    assert.equal((await gw.http.get('/admin/v1/domains')).status, 401);
    assert.equal((await gw.http.get('/admin/v1/domains').set('Authorization', 'Basic abc')).status, 401);
    assert.equal((await gw.http.get('/admin/v1/domains').set('Authorization', `Bearer idpb_${'A'.repeat(43)}`)).status, 401);
    const created = await gw.http.post('/admin/v1/domains/a.example/api-keys').set('Authorization', OPERATOR).send({ name: 'temp' });
    const temp = `Bearer ${created.body.key as string}`;
    assert.equal((await gw.http.get('/admin/v1/domains/a.example').set('Authorization', temp)).status, 200);
    assert.equal((await gw.http.delete(`/admin/v1/domains/a.example/api-keys/${created.body.id as string}`).set('Authorization', OPERATOR)).status, 204);
    const after = await gw.http.get('/admin/v1/domains/a.example').set('Authorization', temp);
    assert.equal(after.status, 401);
    assert.equal(after.body.error, 'unauthorized');
  });

  it('stores tenant keys hashed and never lists them', async () => {
    const list = await gw.http.get('/admin/v1/domains/a.example/api-keys').set('Authorization', OPERATOR);
    assert.equal(list.status, 200);
    assert.ok(!JSON.stringify(list.body).includes('idpb_'));
    assert.ok(!gw.logText().includes(keyA.slice(7)), 'the key never reaches the logs');
  });
});
