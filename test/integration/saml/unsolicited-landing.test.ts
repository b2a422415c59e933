import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../../src/config/index.js';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { applySeed } from '../../../src/seed.js';
import { OPERATOR_AUTH, b64, createGateway, errorCodeOf, lastAuditReason, postAcs, responseSpec, sessionCookieOf, signed, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

/*
 * S-9: an allowed IdP-initiated (unsolicited) login lands on the default service URL — the tenant's,
 * else the gateway's. Outside the demo there is no built-in one (no `/welcome` fallback, a 404 there):
 * allowing unsolicited logins without one is refused (400 default_service_url_required), and a tenant
 * stored that way before the rule has its unsolicited responses refused rather than sent nowhere.
 */
describe('unsolicited logins need a default service URL (S-9)', () => {
  let gw: Gateway;
  const admin = (method: 'patch' | 'post', path: string) => gw.http[method](`/admin/v1/domains${path}`).set('Authorization', OPERATOR_AUTH);
  const unsolicited = (domain: string): string => b64(signed(buildSamlResponseXml(responseSpec(gw, domain, idps.a, null, 'emp-001')), idps.a));

  before(async () => {
    // As deployed outside the demo without DEFAULT_SERVICE_URL: the gateway has no default service URL.
    gw = await createGateway({ overrides: { defaultServiceUrl: undefined } });
  });
  after(async () => gw.close());

  it('the gateway has no default service URL outside the demo, and a login without accessUrl is refused (not sent to /welcome)', async () => {
    assert.equal(gw.services.config.defaultServiceUrl, undefined);
    const res = await gw.http.get('/d/login/a.example');
    assert.equal(res.status, 400);
    assert.equal(errorCodeOf(res), 'invalid_access_url');
    const path = await gw.http.get('/d/login/a.example').query({ accessUrl: '/board' });
    assert.equal(errorCodeOf(path), 'invalid_access_url');
  });

  it('refuses allowing unsolicited logins without one (PATCH …/sso: 400 default_service_url_required; preview lists it) and changes nothing', async () => {
    const before = await gw.services.tenants.find('a.example');
    const res = await admin('patch', '/a.example/sso').send({ saml: { allowUnsolicited: true } });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.body.error, 'default_service_url_required');
    assert.deepEqual(res.body.details.map((d: { path: string }) => d.path), ['saml.allowUnsolicited']);
    assert.deepEqual(await gw.services.tenants.find('a.example'), before);

    const preview = await admin('post', '/a.example/sso/preview').send({ saml: { allowUnsolicited: true } });
    assert.equal(preview.status, 200, preview.text);
    assert.deepEqual(preview.body.problems.map((p: { path: string }) => p.path), ['saml.allowUnsolicited']);
  });

  it('accepts it once the tenant has its own; removing that URL is then refused; an unsolicited login lands on it', async () => {
    assert.equal((await admin('patch', '/a.example').send({ defaultServiceUrl: 'https://board.example.net/start' })).status, 200);
    const allowed = await admin('patch', '/a.example/sso').send({ saml: { allowUnsolicited: true } });
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(allowed.body.sso.saml.allowUnsolicited, true);

    const removed = await admin('patch', '/a.example').send({ defaultServiceUrl: null });
    assert.equal(removed.status, 400, removed.text);
    assert.equal(removed.body.error, 'default_service_url_required');
    assert.deepEqual(removed.body.details.map((d: { path: string }) => d.path), ['defaultServiceUrl']);
    assert.equal((await gw.services.tenants.find('a.example'))?.defaultServiceUrl, 'https://board.example.net/start');

    const res = await postAcs(gw, 'a.example', unsolicited('a.example'), undefined);
    assert.equal(res.status, 303, res.text.slice(0, 300));
    assert.equal(res.headers.location, 'https://board.example.net/start');
    assert.ok(sessionCookieOf(res));
  });

  it('refuses an unsolicited response for a tenant stored with allowUnsolicited and no landing (from before the rule)', async () => {
    const tenant = await gw.services.tenants.find('unsolicited.example');
    assert.equal(tenant?.sso.saml?.allowUnsolicited, true);
    assert.equal(tenant?.defaultServiceUrl, undefined);
    const res = await postAcs(gw, 'unsolicited.example', unsolicited('unsolicited.example'), undefined);
    assert.equal(res.status, 400);
    assert.equal(errorCodeOf(res), 'unsolicited_response_refused');
    assert.equal(await lastAuditReason(gw, 'unsolicited.example'), 'no_default_service_url');
    assert.equal(sessionCookieOf(res), undefined);
    assert.doesNotMatch(String(res.headers.location ?? ''), /welcome/);
  });

  it('refuses such a tenant in the seed at boot, with the tenant named', async () => {
    const tenant = (await gw.services.tenants.find('unsolicited.example'))!;
    const seed = { tenants: [{ ...tenant, domain: 'seeded.example', members: [] }] } as unknown as Parameters<typeof applySeed>[0];
    await assert.rejects(applySeed(seed, gw.services, { defaultServiceUrl: undefined }), (err: unknown) => err instanceof ConfigError && /seeded\.example/.test(err.message));
    assert.equal(await gw.services.tenants.find('seeded.example'), null);
    // With the gateway's default it is fine.
    await applySeed(seed, gw.services, { defaultServiceUrl: 'https://board.example.net/home' });
    assert.ok(await gw.services.tenants.find('seeded.example'));
  });
});
