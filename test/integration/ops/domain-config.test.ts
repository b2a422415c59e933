import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OPERATOR_AUTH, SERVICE_ORIGIN, beginLogin, createGateway, postAcs, sessionCookieOf, validResponse, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

/**
 * A domain's configuration as one document (issue 18): exported from one gateway and imported into
 * another on its own key prefix (its own Redis data, as staging and production are). The dry run lists
 * the differences and changes nothing; the import applies them (switching SSO on with its effects) and is
 * idempotent; a SAML login then works on the second gateway. Secrets never leave in the export, and a
 * document that lacks one it needs is refused whole.
 */

const D2 = 'imported.example';

describe('configuration export and import between two gateways', () => {
  let staging: Gateway;
  let production: Gateway;
  let doc: Record<string, unknown>;
  let dryChanges: Array<{ path: string; from: unknown; to: unknown }>;

  const post = (gw: Gateway, domain: string, body: unknown, dryRun: boolean) =>
    gw.http.post(`/admin/v1/domains/${domain}/config`).query(dryRun ? { dryRun: 'true' } : {}).set('Authorization', OPERATOR_AUTH).send(body as object);

  before(async () => {
    staging = await createGateway();
    production = await createGateway();
    const created = await production.http.post('/admin/v1/domains').set('Authorization', OPERATOR_AUTH).send({ domain: D2, name: 'Imported', plan: 'standard' });
    assert.equal(created.status, 201, created.text);
    await production.services.members.save(D2, { id: 'm-imp', account: `someone@${D2}`, name: 'Some One', externalKey: 'emp-001', role: 'member', status: 'in_use' });
    // An OAuth tenant on staging, to show the secret stays home.
    const b = await staging.services.tenants.load('b.example');
    await staging.services.tenants.save({ ...b, sso: { ...b.sso, enabled: false, type: 'oauth', oauth: { profile: 'oidc', clientId: 'bridge', clientSecret: 'staging-client-secret-value', issuer: 'https://idp.b.example', userKeyClaim: 'sub', scopes: ['openid'] } } });
  });
  after(async () => {
    await staging?.close();
    await production?.close();
  });

  it('exports a domain as a versioned document without secrets', async () => {
    const res = await staging.http.get('/admin/v1/domains/a.example/config.json').set('Authorization', OPERATOR_AUTH);
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers["content-disposition"]), /^attachment; filename="?a\.example\.config\.json"?$/);
    doc = res.body as Record<string, unknown>;
    assert.equal(doc.version, 1);
    assert.equal(doc.domain, 'a.example');
    const settings = doc.settings as Record<string, unknown>;
    assert.deepEqual(settings.serviceOrigins, ['https://intranet.a.example']);
    assert.equal((settings.sso as { enabled: boolean }).enabled, true);
    assert.equal((settings.sso as { saml: { idpEntityId: string } }).saml.idpEntityId, idps.a.entityId);
    assert.equal('plan' in settings || 'ssoEpoch' in settings || 'domain' in settings, false, "the operator's and the store's fields stay out");

    const oauth = await staging.http.get('/admin/v1/domains/b.example/config.json').set('Authorization', OPERATOR_AUTH);
    assert.equal(oauth.status, 200);
    assert.doesNotMatch(oauth.text, /staging-client-secret-value|clientSecret"/);
    assert.equal(oauth.body.settings.sso.oauth.clientSecretSet, true);
  });

  it('dry run: lists the differences (path, from, to) and changes nothing', async () => {
    const before = await production.services.tenants.load(D2);
    const res = await post(production, D2, doc, true);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.dryRun, true);
    dryChanges = res.body.changes;
    const byPath = new Map(dryChanges.map((c) => [c.path, c]));
    assert.deepEqual(byPath.get('sso.enabled'), { path: 'sso.enabled', from: false, to: true });
    assert.deepEqual(byPath.get('name'), { path: 'name', from: 'Imported', to: 'Tenant a.example' });
    assert.deepEqual(byPath.get('serviceOrigins'), { path: 'serviceOrigins', from: [], to: ['https://intranet.a.example'] });
    assert.deepEqual(byPath.get('sso.saml.idpEntityId'), { path: 'sso.saml.idpEntityId', from: null, to: idps.a.entityId });
    assert.deepEqual(await production.services.tenants.load(D2), before, 'nothing changed');
  });

  it('applies the document: the same changes, SSO switched on with its effects, audited; the same document again changes nothing', async () => {
    const res = await post(production, D2, doc, false);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.applied, true);
    assert.deepEqual(res.body.changes, dryChanges, 'what the dry run announced');
    assert.equal(res.body.switched, true);
    const tenant = await production.services.tenants.load(D2);
    assert.equal(tenant.sso.enabled, true);
    assert.equal(tenant.name, 'Tenant a.example');
    assert.deepEqual(tenant.serviceOrigins, ['https://intranet.a.example']);
    const [audit] = await production.services.audit.list(D2, 1);
    assert.equal(audit?.type, 'domain_config.imported');
    assert.equal(audit?.data?.changes, dryChanges.length);

    const exported = (await production.http.get(`/admin/v1/domains/${D2}/config.json`).set('Authorization', OPERATOR_AUTH)).body as Record<string, unknown>;
    assert.deepEqual(exported.settings, doc.settings, 'the second gateway now exports what the first did');
    const again = await post(production, D2, doc, false);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.applied, false);
    assert.deepEqual(again.body.changes, []);
  });

  it('a SAML login works on the second gateway with the imported settings', async () => {
    const login = await beginLogin(production, D2, `${SERVICE_ORIGIN}/board`);
    const res = await postAcs(production, D2, validResponse(production, D2, idps.a, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 303, res.text.slice(0, 300));
    assert.ok(sessionCookieOf(res), 'a session');
  });

  it('refuses a document it cannot apply whole (400 validation_failed), changing nothing', async () => {
    const before = await production.services.tenants.load('nosso.example');
    const oauthDoc = (await staging.http.get('/admin/v1/domains/b.example/config.json').set('Authorization', OPERATOR_AUTH)).body as { settings: { sso: Record<string, unknown> } };
    // The secret stayed on staging: importing the OAuth settings without it cannot work.
    const noSecret = await post(production, 'nosso.example', oauthDoc, true);
    assert.equal(noSecret.status, 400, noSecret.text);
    assert.equal(noSecret.body.error, 'validation_failed');
    assert.ok((noSecret.body.details as Array<{ path: string }>).some((d) => d.path === 'settings.sso.oauth.clientSecret'), noSecret.text);
    // With the secret given, the dry run shows it as changed without showing it.
    const withSecret = structuredClone(oauthDoc);
    (withSecret.settings.sso.oauth as Record<string, unknown>).clientSecret = 'production-client-secret';
    const dry = await post(production, 'nosso.example', withSecret, true);
    assert.equal(dry.status, 200, dry.text);
    assert.doesNotMatch(dry.text, /production-client-secret/);
    assert.ok((dry.body.changes as Array<{ path: string }>).some((c) => c.path === 'sso.oauth.clientSecret'));
    for (const bad of [{ ...doc, version: 2 }, { ...doc, settings: { ...(doc.settings as object), serviceOrigins: ['javascript:alert(1)'] } }, { ...doc, extra: true }]) {
      const res = await post(production, 'nosso.example', bad, false);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.error, 'validation_failed');
    }
    assert.deepEqual(await production.services.tenants.load('nosso.example'), before, 'nothing changed');
  });
});
