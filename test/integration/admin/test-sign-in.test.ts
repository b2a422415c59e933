import assert from 'node:assert/strict';
import { inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { TenantInput } from '../../../src/domain/tenant.js';
import { keys } from '../../../src/store/index.js';
import {
  LOOPBACK_IDPS,
  OPERATOR_AUTH as OPERATOR,
  PUBLIC_URL,
  createGateway,
  errorCodeOf,
  postAcs,
  rememberLoginBinding,
  sessionCookieOf,
  validResponse,
  withBinding,
  type Gateway,
  type StartedLogin,
} from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { oidcTenant } from '../../helpers/oauth-tenants.js';
import { callbackUrlOf, followAuthorization, startOidcIdp, type OidcIdp } from '../../helpers/oidc-idp.js';

/**
 * The administrator's test sign-in (docs/spec.md §11): a single-use link that runs one real login at the
 * tenant's configured IdP while SSO is off, records the outcome — the mapped member, or the precise reason
 * — and never creates a session or changes the tenant. SAML with really signed responses, OIDC against a
 * real OpenID Provider (oidc-provider).
 */

const SAML = 'test-saml.example';
const OIDC = 'test-oidc.example';
const NET = { timeout: 20_000 };

const samlOff: TenantInput = {
  domain: SAML,
  name: 'Test SAML Co',
  plan: 'standard',
  sso: {
    enabled: false,
    type: 'saml',
    userKey: 'externalKey',
    setExpireTime: false,
    webLoginUrl: idps.a.ssoUrl,
    saml: { idpEntityId: idps.a.entityId, idpCertificates: [idps.a.certificate], allowUnsolicited: false, signAuthnRequests: false, allowSha1: false },
  },
};

describe('test sign-in at the configured IdP while SSO is off', () => {
  let gw: Gateway;
  let idp: OidcIdp;

  const admin = {
    post: (path: string, body: object = {}) => gw.http.post(`/admin/v1${path}`).set('Authorization', OPERATOR).send(body),
    get: (path: string) => gw.http.get(`/admin/v1${path}`).set('Authorization', OPERATOR),
  };

  before(async () => {
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
    idp = await startOidcIdp({ extraRedirectUris: [callbackUrlOf(OIDC)] });
    await gw.services.tenants.save(samlOff);
    await gw.services.members.save(SAML, { id: 'm-t1', account: 'alice@test-saml.example', name: 'Alice', externalKey: 'emp-001', role: 'member', status: 'in_use' });
    const oidc = oidcTenant(OIDC, idp.issuer);
    await gw.services.tenants.save({ ...oidc, sso: { ...oidc.sso!, enabled: false } });
    await gw.services.members.save(OIDC, { id: 'm-o200', account: 'emp200@test-oidc.example', name: 'Employee 200', externalKey: 'emp-200', role: 'member', status: 'in_use' });
  });
  after(async () => {
    await gw.services.outbound.close();
    await idp?.close();
    await gw.close();
  });

  async function newTest(domain: string): Promise<{ id: string; path: string }> {
    const res = await admin.post(`/domains/${domain}/sso/test-sign-ins`);
    assert.equal(res.status, 201, res.text);
    assert.match(res.body.id as string, /^[A-Za-z0-9_-]{16}$/);
    assert.match(res.body.url as string, new RegExp(`^${PUBLIC_URL}/d/test-sign-in/[A-Za-z0-9_-]{43}$`));
    assert.ok(Date.parse(res.body.expiresAt as string) - gw.clock.now() <= 10 * 60_000);
    return { id: res.body.id as string, path: new URL(res.body.url as string).pathname };
  }

  /** Opens the link as the admin's browser does: 302 to the SAML IdP, with the AuthnRequest. */
  async function openSaml(path: string): Promise<StartedLogin> {
    const res = await gw.http.get(path);
    assert.equal(res.status, 302, res.text.slice(0, 300));
    const redirect = new URL(res.headers.location as string);
    assert.equal(redirect.origin + redirect.pathname, idps.a.ssoUrl);
    const relayState = redirect.searchParams.get('RelayState')!;
    const xml = inflateRawSync(Buffer.from(redirect.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const bindingCookie = rememberLoginBinding(res, relayState)!;
    assert.ok(bindingCookie);
    return { relayState, requestId: /\sID="([^"]+)"/.exec(xml)![1]!, redirect, authnRequestXml: xml, bindingCookie };
  }

  const record = async (domain: string, id: string) => admin.get(`/domains/${domain}/sso/test-sign-ins/${id}`);

  it('SAML success: records the mapped member, sets no session cookie, changes nothing; the link works once', async () => {
    const tenantBefore = await gw.store.get(keys.tenant(SAML));
    const test = await newTest(SAML);
    assert.deepEqual(Object.keys((await record(SAML, test.id)).body).sort(), ['createdAt', 'expiresAt', 'id', 'status']);
    assert.equal((await record(SAML, test.id)).body.status, 'pending');

    const login = await openSaml(test.path);
    const res = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assert.match(res.text, /Test sign-in finished\. Return to the console to see the result\./);
    assert.equal(sessionCookieOf(res), undefined, 'no employee session');
    assert.ok(!((res.headers['set-cookie'] as string[] | undefined) ?? []).some((c) => c.startsWith('idpb_session=')));
    assert.equal(await gw.countKeys('idpb:session:*'), 0);

    const got = await record(SAML, test.id);
    assert.equal(got.status, 200);
    assert.equal(got.body.status, 'succeeded');
    assert.deepEqual(got.body.member, { id: 'm-t1', account: 'alice@test-saml.example', name: 'Alice', externalKey: 'emp-001' });
    assert.equal(got.body.assertedId, 'emp-001');
    assert.ok(got.body.finishedAt);
    assert.equal(await gw.store.get(keys.tenant(SAML)), tenantBefore, 'the tenant is unchanged (SSO still off)');
    const types = (await gw.services.audit.list(SAML, 5)).map((e) => e.type);
    assert.ok(types.includes('sso.test_sign_in.finished') && types.includes('sso.test_sign_in.started'), types.join());

    // Single use.
    const again = await gw.http.get(test.path);
    assert.equal(again.status, 400);
    assert.equal(errorCodeOf(again), 'test_sign_in_invalid');
    // Employees still go to the password login, and a response for a normal login is refused while SSO is off.
    const employee = await gw.http.get(`/d/login/${SAML}`);
    assert.match(String(employee.headers.location), /^\/d\/password-login\//);
  });

  it('SAML failure: a response signed with another certificate is recorded with its reason', async () => {
    const test = await newTest(SAML);
    const login = await openSaml(test.path);
    const res = await postAcs(gw, SAML, validResponse(gw, SAML, idps.attacker, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.match(res.text, /Test sign-in finished/);
    assert.equal(sessionCookieOf(res), undefined);
    const got = (await record(SAML, test.id)).body;
    assert.equal(got.status, 'failed');
    assert.equal(got.code, 'saml_response_invalid');
    assert.equal(got.reason, 'signature_invalid');
    assert.match(got.message as string, /certificate mismatch/);
    assert.equal(got.member, undefined);
  });

  it('SAML failure: a wrong audience and a member that does not exist are told apart', async () => {
    const wrongAudience = await newTest(SAML);
    let login = await openSaml(wrongAudience.path);
    await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, login, 'emp-001', { audience: 'https://someone-else.test/sp' }), login.relayState);
    const audience = (await record(SAML, wrongAudience.id)).body;
    assert.equal(audience.reason, 'audience_mismatch');
    assert.match(audience.message as string, /wrong audience/);

    const unknown = await newTest(SAML);
    login = await openSaml(unknown.path);
    const res = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, login, 'emp-999'), login.relayState);
    assert.equal(res.status, 403, res.text.slice(0, 300));
    const got = (await record(SAML, unknown.id)).body;
    assert.equal(got.status, 'failed');
    assert.equal(got.code, 'member_not_found');
    assert.equal(got.reason, 'member_not_found');
    assert.equal(got.assertedId, 'emp-999', 'the admin sees which identifier the IdP sent');
    assert.match(got.message as string, /no member/);
  });

  it('OIDC success against a real OpenID Provider while SSO is off', NET, async () => {
    const test = await newTest(OIDC);
    const start = await gw.http.get(test.path);
    assert.equal(start.status, 302, start.text);
    const location = new URL(start.headers.location as string);
    assert.equal(location.origin, idp.issuer);
    rememberLoginBinding(start, location.searchParams.get('state')!);
    idp.nextLogin('emp-200');
    const cb = await followAuthorization(location);
    assert.equal(cb.origin + cb.pathname, callbackUrlOf(OIDC));
    const res = await withBinding(gw.http.get(`/oauth/callback/${OIDC}${cb.search}`), cb.searchParams.get('state')!);
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assert.equal(sessionCookieOf(res), undefined);
    const got = (await record(OIDC, test.id)).body;
    assert.equal(got.status, 'succeeded', JSON.stringify(got));
    assert.equal(got.member.id, 'm-o200');
    assert.equal(got.assertedId, 'emp-200');
    assert.equal((await gw.services.tenants.load(OIDC)).sso.enabled, false);
  });

  it('OIDC failure: a member that does not exist', NET, async () => {
    const test = await newTest(OIDC);
    const start = await gw.http.get(test.path);
    const location = new URL(start.headers.location as string);
    rememberLoginBinding(start, location.searchParams.get('state')!);
    idp.nextLogin('emp-404');
    const cb = await followAuthorization(location);
    const res = await withBinding(gw.http.get(`/oauth/callback/${OIDC}${cb.search}`), cb.searchParams.get('state')!);
    assert.equal(res.status, 403, res.text.slice(0, 300));
    const got = (await record(OIDC, test.id)).body;
    assert.deepEqual([got.status, got.reason, got.assertedId], ['failed', 'member_not_found', 'emp-404']);
  });

  it('answers 404 for an unknown id or another tenant’s test; refuses a tenant without an IdP configured', async () => {
    const test = await newTest(SAML);
    assert.equal((await record('a.example', test.id)).status, 404);
    const unknown = await record(SAML, 'AAAAAAAAAAAAAAAA');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, 'not_found');
    const incomplete = await admin.post('/domains/nosso.example/sso/test-sign-ins');
    assert.equal(incomplete.status, 400, incomplete.text);
    assert.equal(incomplete.body.error, 'validation_failed');
  });
});
