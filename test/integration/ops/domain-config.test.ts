import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OPERATOR_AUTH, SERVICE_ORIGIN, beginLogin, createGateway, postAcs, sessionCookieOf, validResponse, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { keys as storeKeys } from '../../../src/store/index.js';

/**
 * A domain's configuration as one document (issue 18): exported from one gateway and imported into
 * another on its own key prefix (its own Redis data, as staging and production are). The dry run lists
 * the differences and changes nothing; the import applies them (switching SSO on with its effects) and is
 * idempotent; a SAML login then works on the second gateway. Secrets never leave in the export, and a
 * document that lacks one it needs is refused whole. The MDM options (mode, restrictOtherDomains) travel
 * with it and are applied through the MDM service's rules: never a key value, a new key issued on the
 * target, and a plan that refuses 3rd-party sync refuses the whole document before anything is written.
 */

const D2 = 'imported.example';
const MOBILE_GRANTS = ['imp-mobile-1', 'imp-mobile-2'];

describe('configuration export and import between two gateways', () => {
  let staging: Gateway;
  let production: Gateway;
  let doc: Record<string, unknown>;
  let dryChanges: Array<{ path: string; from: unknown; to: unknown }>;
  /** The MDM key value issued on staging: it must appear nowhere in what leaves staging. */
  let stagingKeyValue: string;

  const post = (gw: Gateway, domain: string, body: unknown, dryRun: boolean) =>
    gw.http.post(`/admin/v1/domains/${domain}/config`).query(dryRun ? { dryRun: 'true' } : {}).set('Authorization', OPERATOR_AUTH).send(body as object);

  before(async () => {
    staging = await createGateway();
    production = await createGateway();
    const created = await production.http.post('/admin/v1/domains').set('Authorization', OPERATOR_AUTH).send({ domain: D2, name: 'Imported', plan: 'standard' });
    assert.equal(created.status, 201, created.text);
    await production.services.members.save(D2, { id: 'm-imp', account: `someone@${D2}`, name: 'Some One', externalKey: 'emp-001', role: 'member', status: 'in_use' });
    // Built-in MDM with one exception, and two mobile sessions (OP grants of the mobile client) on production:
    // switching 3rd-party sync on must delete the one and end the others, as PUT …/mdm does (M-1, M-4).
    const builtin = await production.http.put(`/admin/v1/domains/${D2}/mdm`).set('Authorization', OPERATOR_AUTH).send({ mode: 'builtin' });
    assert.equal(builtin.status, 200, builtin.text);
    const exception = await production.http.post(`/admin/v1/domains/${D2}/mdm/builtin-exceptions`).set('Authorization', OPERATOR_AUTH).send({ account: `someone@${D2}` });
    assert.equal(exception.status, 201, exception.text);
    for (const grantId of MOBILE_GRANTS) {
      await production.store.set(storeKeys.opModel('Grant', grantId), JSON.stringify({ clientId: 'mobile', accountId: `${D2}:m-imp` }));
      await production.store.sAdd(storeKeys.opTenantGrants(D2), grantId);
    }
    // An OAuth tenant on staging, to show the secret stays home.
    const b = await staging.services.tenants.load('b.example');
    await staging.services.tenants.save({ ...b, sso: { ...b.sso, enabled: false, type: 'oauth', oauth: { profile: 'oidc', clientId: 'bridge', clientSecret: 'staging-client-secret-value', issuer: 'https://idp.b.example', userKeyClaim: 'sub', scopes: ['openid'] } } });
    // 3rd-party MDM sync on staging, restricted to this domain's accounts, through the MDM admin API.
    const mdm = await staging.http.put('/admin/v1/domains/a.example/mdm').set('Authorization', OPERATOR_AUTH).send({ mode: 'external', restrictOtherDomains: true });
    assert.equal(mdm.status, 200, mdm.text);
    stagingKeyValue = mdm.body.key.value as string;
    assert.ok(stagingKeyValue.length >= 16);
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
    assert.deepEqual(settings.mdm, { mode: 'external', restrictOtherDomains: true }, 'the MDM options, and nothing of the keys');
    assert.ok(!res.text.includes(stagingKeyValue), 'no MDM key value in the export');
    const [stagingKey] = await staging.services.mdmKeys.list('a.example');
    assert.ok(stagingKey && !res.text.includes(stagingKey.id) && !res.text.includes(stagingKey.masked), 'no key id or mask either');

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
    assert.deepEqual(byPath.get('mdm.mode'), { path: 'mdm.mode', from: 'builtin', to: 'external' });
    assert.deepEqual(byPath.get('mdm.restrictOtherDomains'), { path: 'mdm.restrictOtherDomains', from: false, to: true });
    assert.deepEqual([res.body.mdm.issuesKey, res.body.mdm.mobileSessionsEnded, res.body.mdm.builtinExceptionsDeleted], [true, 2, 1], 'the MDM precautions, as POST …/mdm/preview counts them');
    assert.ok((res.body.warnings as string[]).some((w) => /new key issued on this deployment/.test(w)), res.text);
    assert.deepEqual(await production.services.tenants.load(D2), before, 'nothing changed');
    assert.equal((await production.services.mdmKeys.settings(D2)).mode, 'builtin', 'MDM unchanged');
    assert.deepEqual(await production.services.mdmKeys.list(D2), [], 'no key issued');
    assert.equal((await production.services.mdmKeys.listBuiltinExceptions(D2)).length, 1);
    for (const grantId of MOBILE_GRANTS) assert.notEqual(await production.store.get(storeKeys.opModel('Grant', grantId)), null, 'mobile sessions live');
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
    const mdm = await production.services.mdmKeys.settings(D2);
    assert.deepEqual({ mode: mdm.mode, restrictOtherDomains: mdm.restrictOtherDomains }, { mode: 'external', restrictOtherDomains: true });
    // Switching sync on issued a key on this deployment (M-2), as PUT …/mdm does; the answer names it, never its value.
    const keys = await production.services.mdmKeys.list(D2);
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.status, 'active');
    assert.equal(res.body.mdm.keyId, keys[0]?.id);
    // The precautions' side effects, as through PUT …/mdm: built-in exceptions deleted, mobile sessions ended.
    assert.equal(res.body.mdm.mobileSessionsEnded, 2);
    assert.equal(res.body.mdm.builtinExceptionsDeleted, 1);
    assert.deepEqual(await production.services.mdmKeys.listBuiltinExceptions(D2), []);
    for (const grantId of MOBILE_GRANTS) assert.equal(await production.store.get(storeKeys.opModel('Grant', grantId)), null, 'mobile session ended');
    const issuedValue = (await production.services.mdmKeys.reveal(D2, keys[0].id)).value;
    assert.notEqual(issuedValue, stagingKeyValue, 'a new key, not the staging one');
    assert.ok(!res.text.includes(issuedValue), 'no key value in the import answer');
    const trail = await production.services.audit.list(D2, 8);
    assert.equal(trail[0]?.type, 'domain_config.imported');
    assert.equal(trail[0]?.data?.changes, dryChanges.length);
    const enabled = trail.find((e) => e.type === 'mdm.enabled');
    assert.ok(enabled, 'audited as PUT …/mdm audits');
    assert.equal(enabled.data?.keyId, keys[0]?.id);
    assert.ok(trail.some((e) => e.type === 'mdm_builtin_exceptions.deleted'));
    assert.ok(!JSON.stringify(trail).includes(issuedValue), 'no key value in the audit trail');

    const exported = (await production.http.get(`/admin/v1/domains/${D2}/config.json`).set('Authorization', OPERATOR_AUTH)).body as Record<string, unknown>;
    assert.deepEqual(exported.settings, doc.settings, 'the second gateway now exports what the first did');
    const again = await post(production, D2, doc, false);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.applied, false);
    assert.deepEqual(again.body.changes, []);
    assert.deepEqual((await production.services.mdmKeys.list(D2)).map((k) => k.id), keys.map((k) => k.id), 'no second key issued');
  });

  it('refuses MDM sync on a plan without it (403 plan_required, as PUT …/mdm), applying nothing: neither SSO nor MDM', async () => {
    const before = await production.services.tenants.load('nosso.example');
    assert.equal(before.plan, 'free');
    for (const dryRun of [true, false]) {
      const res = await post(production, 'nosso.example', doc, dryRun);
      assert.equal(res.status, 403, res.text);
      assert.equal(res.body.error, 'plan_required');
    }
    assert.deepEqual(await production.services.tenants.load('nosso.example'), before, 'the SSO part was not applied either');
    assert.equal((await production.services.mdmKeys.settings('nosso.example')).mode, 'none');
    assert.deepEqual(await production.services.mdmKeys.list('nosso.example'), []);
    // restrictOtherDomains without 3rd-party sync: PUT …/mdm's own rule, by path inside the document.
    const settings = doc.settings as Record<string, unknown>;
    const bad = await post(production, D2, { ...doc, settings: { ...settings, mdm: { mode: 'none', restrictOtherDomains: true } } }, true);
    assert.equal(bad.status, 400, bad.text);
    assert.ok((bad.body.details as Array<{ path: string }>).some((d) => d.path === 'settings.mdm.restrictOtherDomains'), bad.text);
    // A key value is not part of the document's MDM options.
    const withKey = await post(production, D2, { ...doc, settings: { ...settings, mdm: { mode: 'external', customKey: stagingKeyValue } } }, true);
    assert.equal(withKey.status, 400, withKey.text);
    assert.ok(!withKey.text.includes(stagingKeyValue), 'the refusal does not echo the value');
    // A document without `mdm` (exported before MDM was part of it) leaves MDM as it is.
    const { mdm: _mdm, ...older } = settings;
    const noMdm = await post(production, D2, { ...doc, settings: older }, true);
    assert.equal(noMdm.status, 200, noMdm.text);
    assert.deepEqual(noMdm.body.changes, []);
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
