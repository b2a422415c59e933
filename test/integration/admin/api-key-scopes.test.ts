import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { adminOperations } from '../../../src/http/routes/admin/openapi.js';
import '../../../src/http/routes/admin/all-routes.js';
import { digestForKey, keys } from '../../../src/store/index.js';
import { memberSnapshot } from '../../helpers/members.js';
import { createGateway, type Gateway, OPERATOR_AUTH } from '../../helpers/gateway.js';

const DAY = 86_400_000;

/** §11: API keys carry a scope (read-only or full) and an optional expiry; creating and revoking them needs `super`. */
describe('admin API key scopes and expiry', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  after(async () => gw.close());

  const create = (body: Record<string, unknown>, auth = OPERATOR_AUTH) => gw.http.post('/admin/v1/domains/a.example/api-keys').set('Authorization', auth).send(body);

  it('creates a full key by default, and shows scope and expiry when created and listed', async () => {
    const res = await create({ name: 'default' });
    assert.equal(res.status, 201);
    assert.equal(res.body.scope, 'full');
    assert.equal(res.body.expiresAt, null);
    assert.match(res.body.key, /^idpb_/);
    const list = await gw.http.get('/admin/v1/domains/a.example/api-keys').set('Authorization', OPERATOR_AUTH);
    const listed = list.body.apiKeys.find((k: { id: string }) => k.id === res.body.id);
    assert.deepEqual(Object.keys(listed).sort(), ['createdAt', 'expired', 'expiresAt', 'id', 'name', 'scope']);
    assert.equal(listed.scope, 'full');
    assert.equal(listed.expired, false);
  });

  it('a read-only key reads every GET route of its tenant but changes nothing: every other method is 403 forbidden', async () => {
    const created = await create({ name: 'reader', scope: 'read' });
    assert.equal(created.body.scope, 'read');
    const reader = `Bearer ${created.body.key as string}`;
    assert.equal((await gw.http.get('/admin/v1/domains/a.example').set('Authorization', reader)).status, 200);
    assert.equal((await gw.http.get('/admin/v1/domains/a.example/members').set('Authorization', reader)).status, 200);
    assert.equal((await gw.http.get('/admin/v1/domains/a.example/sso').set('Authorization', reader)).status, 200);
    assert.equal((await gw.http.get('/admin/v1/domains/a.example/audit').set('Authorization', reader)).status, 200);

    const tenantBefore = JSON.stringify(await gw.services.tenants.find('a.example'));
    const membersBefore = await memberSnapshot(gw, 'a.example');
    const writes = adminOperations().filter((o) => o.method !== 'get' && o.path.startsWith('/domains/{domain}') && !(o.method === 'delete' && o.path === '/session'));
    assert.ok(writes.length >= 15);
    for (const op of writes) {
      const path = op.path.replace('{domain}', 'a.example').replace('{id}', 'm-a-active').replace(/\{\w+\}/g, 'x');
      const req = gw.http[op.method](`/admin/v1${path}`).set('Authorization', reader);
      const res = op.body === 'csv' ? await req.set('Content-Type', 'text/csv').send('account,name,externalKey\n') : await req.send({ name: 'x' });
      assert.equal(res.status, 403, `${op.method.toUpperCase()} ${path} answered ${res.status}`);
      assert.equal(res.body.error, 'forbidden', `${op.method.toUpperCase()} ${path}`);
    }
    assert.equal(JSON.stringify(await gw.services.tenants.find('a.example')), tenantBefore);
    assert.equal(await memberSnapshot(gw, 'a.example'), membersBefore);
  });

  it('only a full key (or the operator, or a super admin) creates and revokes keys', async () => {
    const reader = `Bearer ${(await create({ name: 'reader-2', scope: 'read' })).body.key as string}`;
    const full = await create({ name: 'full' });
    const fullAuth = `Bearer ${full.body.key as string}`;
    assert.equal((await create({ name: 'by-reader' }, reader)).status, 403);
    const byFull = await create({ name: 'by-full', scope: 'read' }, fullAuth);
    assert.equal(byFull.status, 201);
    const events = await gw.services.audit.list('a.example', 5);
    assert.equal(events.find((e) => e.type === 'api_key.created')?.actor, `admin-key:${full.body.id as string}`);
    assert.equal((await gw.http.delete(`/admin/v1/domains/a.example/api-keys/${byFull.body.id as string}`).set('Authorization', reader)).status, 403);
    assert.equal((await gw.http.delete(`/admin/v1/domains/a.example/api-keys/${byFull.body.id as string}`).set('Authorization', fullAuth)).status, 204);
  });

  it('refuses an expiry in the past, more than 366 days ahead, or not an ISO date-time (400 validation_failed)', async () => {
    const now = gw.clock.now();
    for (const expiresAt of [new Date(now - 1000).toISOString(), new Date(now + 367 * DAY).toISOString(), '2030-01-01', 'tomorrow', 12345]) {
      const res = await create({ name: 'bad', expiresAt });
      assert.equal(res.status, 400, String(expiresAt));
      assert.equal(res.body.error, 'validation_failed');
      assert.equal(res.body.details[0].path, 'expiresAt');
    }
    assert.equal((await create({ name: 'bad', scope: 'admin' })).status, 400);
    assert.equal((await create({ name: 'year', expiresAt: new Date(now + 366 * DAY).toISOString() })).status, 201);
  });

  it('an expired key answers 401 unauthorized and is listed as expired', async () => {
    const expiresAt = new Date(gw.clock.now() + DAY).toISOString();
    const created = await create({ name: 'day', expiresAt, scope: 'full' });
    assert.equal(created.status, 201);
    assert.equal(created.body.expiresAt, expiresAt);
    const auth = `Bearer ${created.body.key as string}`;
    assert.equal((await gw.http.get('/admin/v1/domains/a.example').set('Authorization', auth)).status, 200);
    gw.clock.advance(DAY);
    const res = await gw.http.get('/admin/v1/domains/a.example').set('Authorization', auth);
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'unauthorized');
    const list = await gw.http.get('/admin/v1/domains/a.example/api-keys').set('Authorization', OPERATOR_AUTH);
    const listed = list.body.apiKeys.find((k: { id: string }) => k.id === created.body.id);
    assert.equal(listed.expired, true);
    assert.equal(listed.expiresAt, expiresAt);
  });

  it('a key stored before scopes and expiry existed keeps working as a full key that never expires', async () => {
    const key = `idpb_${'L'.repeat(43)}`;
    const digest = digestForKey(key);
    await gw.store.set(keys.adminApiKey(digest), JSON.stringify({ id: 'key_legacy', domain: 'a.example', name: 'legacy', createdAt: gw.clock.now() - 400 * DAY }));
    await gw.store.hSet(keys.adminApiKeysOf('a.example'), { key_legacy: digest });
    const auth = `Bearer ${key}`;
    const patch = await gw.http.patch('/admin/v1/domains/a.example').set('Authorization', auth).send({ name: 'Tenant a.example' });
    assert.equal(patch.status, 200);
    const me = await gw.http.get('/admin/v1/session').set('Authorization', auth);
    assert.deepEqual(me.body.apiKey, { id: 'key_legacy', scope: 'full' });
    const list = await gw.http.get('/admin/v1/domains/a.example/api-keys').set('Authorization', OPERATOR_AUTH);
    const listed = list.body.apiKeys.find((k: { id: string }) => k.id === 'key_legacy');
    assert.deepEqual({ scope: listed.scope, expiresAt: listed.expiresAt, expired: listed.expired }, { scope: 'full', expiresAt: null, expired: false });
  });
});
