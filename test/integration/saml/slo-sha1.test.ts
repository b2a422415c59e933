/**
 * A tenant's `allowSha1` reaches single logout (S-13 follows S-8's algorithm rule): a legacy IdP that
 * signs its logins with RSA-SHA1 signs its logout messages the same way, and a tenant that accepts the
 * one accepts the other; a tenant that does not refuses both (weak_algorithm).
 */
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { SignedXml } from 'xml-crypto';
import { DIGEST_SHA1, ENVELOPED_SIGNATURE, EXC_C14N, SIG_RSA_SHA1, buildSamlResponseXml, newSamlId } from '../../../src/demo/saml-response.js';
import type { TenantInput as Tenant } from '../../../src/domain/tenant.js';
import { idps, type TestIdpKeys } from '../../helpers/keys.js';
import { PUBLIC_URL, b64, beginLogin, createGateway, errorCodeOf, postAcs, responseSpec, sessionCookieOf, signed, standardTenants, type Gateway } from '../../helpers/gateway.js';

const IDP_SLO_URL = 'https://idp-legacy.test/slo';
const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const SHA1 = { signatureAlgorithm: SIG_RSA_SHA1, digestAlgorithm: DIGEST_SHA1 };

/** idps.a's key pair under its own IdP entity ID. */
const idpNamed = (entityId: string): TestIdpKeys => ({ ...idps.a, entityId, ssoUrl: `${new URL(entityId).origin}/sso` });

function tenant(domain: string, idp: TestIdpKeys, allowSha1: boolean): Tenant {
  const base = standardTenants().find((t) => t.tenant.domain === 'a.example')!.tenant;
  return {
    ...base,
    domain,
    name: domain,
    serviceOrigins: [],
    logoutRedirectDomains: [domain],
    sso: { ...base.sso!, webLoginUrl: idp.ssoUrl, saml: { ...base.sso!.saml!, idpEntityId: idp.entityId, idpCertificates: [idp.certificate], idpSloUrl: IDP_SLO_URL, allowSha1 } },
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

function logoutRequestXml(gw: Gateway, issuer: string, sessionIndex: string): string {
  return (
    `<samlp:LogoutRequest xmlns:samlp="${SAMLP}" xmlns:saml="${SAML}" ID="${newSamlId()}" Version="2.0" IssueInstant="${iso(gw.clock.now())}" Destination="${PUBLIC_URL}/saml2/sp/slo">` +
    `<saml:Issuer>${issuer}</saml:Issuer><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">emp-001</saml:NameID>` +
    `<samlp:SessionIndex>${sessionIndex}</samlp:SessionIndex></samlp:LogoutRequest>`
  );
}

function logoutResponseXml(gw: Gateway, issuer: string, inResponseTo: string): string {
  return (
    `<samlp:LogoutResponse xmlns:samlp="${SAMLP}" xmlns:saml="${SAML}" ID="${newSamlId()}" Version="2.0" IssueInstant="${iso(gw.clock.now())}" Destination="${PUBLIC_URL}/saml2/sp/slo/callback" InResponseTo="${inResponseTo}">` +
    `<saml:Issuer>${issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>`
  );
}

/** HTTP-Redirect binding with an RSA-SHA1 detached signature over the raw query (SAML bindings §3.4.4.1). */
function sha1RedirectQuery(field: 'SAMLRequest' | 'SAMLResponse', xml: string, relayState?: string): string {
  let q = `${field}=${encodeURIComponent(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`;
  if (relayState !== undefined) q += `&RelayState=${encodeURIComponent(relayState)}`;
  q += `&SigAlg=${encodeURIComponent(SIG_RSA_SHA1)}`;
  return `${q}&Signature=${encodeURIComponent(sign('sha1', Buffer.from(q), idps.a.privateKey).toString('base64'))}`;
}

/** HTTP-POST binding: an enveloped RSA-SHA1 / SHA-1 signature on the root. */
function sha1Enveloped(xml: string): string {
  const sig = new SignedXml({ privateKey: idps.a.privateKey, publicCert: idps.a.certificate, signatureAlgorithm: SIG_RSA_SHA1, canonicalizationAlgorithm: EXC_C14N });
  sig.addReference({ xpath: '/*', digestAlgorithm: DIGEST_SHA1, transforms: [ENVELOPED_SIGNATURE, EXC_C14N] });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: "/*/*[local-name(.)='Issuer']", action: 'after' } });
  return sig.getSignedXml();
}

describe('SAML single logout with RSA-SHA1 follows the tenant allowSha1 (S-13, S-8)', () => {
  let gw: Gateway;
  const LEGACY = idpNamed('https://idp-legacy.test/saml');
  const STRICT = idpNamed('https://idp-strict.test/saml');
  const SHARED = idpNamed('https://idp-shared.test/saml');

  before(async () => {
    gw = await createGateway();
    const tenants: Array<[string, TestIdpKeys, boolean]> = [
      ['legacy.example', LEGACY, true],
      ['strict.example', STRICT, false],
      // One IdP entity, two tenants, opposite choices: each is judged by its own rule.
      ['shared-legacy.example', SHARED, true],
      ['shared-strict.example', SHARED, false],
    ];
    for (const [domain, idp, allowSha1] of tenants) {
      await gw.services.tenants.save(tenant(domain, idp, allowSha1));
      await gw.services.members.save(domain, { id: `m-${domain}`, account: `emp@${domain}`, name: domain, externalKey: 'emp-001', role: 'member', status: 'in_use' });
    }
  });
  after(async () => gw.close());

  /** Logs emp-001 in at `domain` with a response signed as `algorithms` say; returns the session cookie. */
  async function login(domain: string, idp: TestIdpKeys, sessionIndex: string, algorithms: Partial<typeof SHA1> = {}): Promise<string> {
    const started = await beginLogin(gw, domain);
    const xml = signed(buildSamlResponseXml(responseSpec(gw, domain, idp, started.requestId, 'emp-001', { sessionIndex })), idp, 'both', algorithms);
    const res = await postAcs(gw, domain, b64(xml), started.relayState);
    assert.equal(res.status, 303, res.text);
    return sessionCookieOf(res)!;
  }
  const sessionStatus = async (cookie: string): Promise<number> => (await gw.http.get('/session').set('Cookie', cookie)).status;
  const lastReason = async (domain: string): Promise<string | undefined> => (await gw.services.audit.list(domain, 1))[0]?.reason;

  it('IdP-initiated, HTTP-Redirect: the SHA-1 tenant whose login took RSA-SHA1 ends the session; the other refuses (weak_algorithm)', async () => {
    const cookie = await login('legacy.example', LEGACY, '_l-1', SHA1);
    const res = await gw.http.get(`/saml2/sp/slo?${sha1RedirectQuery('SAMLRequest', logoutRequestXml(gw, LEGACY.entityId, '_l-1'))}`);
    assert.equal(res.status, 302, res.text);
    assert.equal(new URL(res.headers.location as string).origin + new URL(res.headers.location as string).pathname, IDP_SLO_URL);
    assert.equal(await sessionStatus(cookie), 401);

    const kept = await login('strict.example', STRICT, '_s-1');
    const refused = await gw.http.get(`/saml2/sp/slo?${sha1RedirectQuery('SAMLRequest', logoutRequestXml(gw, STRICT.entityId, '_s-1'))}`);
    assert.equal(refused.status, 400);
    assert.equal(errorCodeOf(refused), 'saml_logout_invalid');
    assert.equal(await lastReason('strict.example'), 'weak_algorithm');
    assert.equal(await sessionStatus(kept), 200);
  });

  it('IdP-initiated, HTTP-POST (enveloped RSA-SHA1, SHA-1 digest): accepted for the SHA-1 tenant only', async () => {
    const cookie = await login('legacy.example', LEGACY, '_l-2', SHA1);
    const res = await gw.http.post('/saml2/sp/slo').type('form').send({ SAMLRequest: b64(sha1Enveloped(logoutRequestXml(gw, LEGACY.entityId, '_l-2'))) });
    assert.equal(res.status, 302, res.text);
    assert.equal(await sessionStatus(cookie), 401);

    const kept = await login('strict.example', STRICT, '_s-2');
    const refused = await gw.http.post('/saml2/sp/slo').type('form').send({ SAMLRequest: b64(sha1Enveloped(logoutRequestXml(gw, STRICT.entityId, '_s-2'))) });
    assert.equal(refused.status, 400);
    assert.equal(await lastReason('strict.example'), 'weak_algorithm');
    assert.equal(await sessionStatus(kept), 200);
  });

  it('two tenants of one IdP entity with opposite choices: a SHA-1 LogoutRequest ends the session of the SHA-1 tenant only', async () => {
    const legacy = await login('shared-legacy.example', SHARED, '_shared');
    const strict = await login('shared-strict.example', SHARED, '_shared');
    const res = await gw.http.get(`/saml2/sp/slo?${sha1RedirectQuery('SAMLRequest', logoutRequestXml(gw, SHARED.entityId, '_shared'))}`);
    assert.equal(res.status, 302, res.text);
    assert.equal(await sessionStatus(legacy), 401);
    assert.equal(await sessionStatus(strict), 200, 'the tenant without allowSha1 did not take the SHA-1 signature');
  });

  it("SP-initiated: the IdP's RSA-SHA1 LogoutResponse completes the logout for the SHA-1 tenant and is refused for the other", async () => {
    for (const [domain, idp, allowed] of [['legacy.example', LEGACY, true], ['strict.example', STRICT, false]] as const) {
      const cookie = await login(domain, idp, '_sp', allowed ? SHA1 : {});
      const target = `https://${domain}/bye`;
      const start = await gw.http.get('/d/logout').query({ redirect_uri: target }).set('Cookie', cookie);
      assert.equal(start.status, 302, start.text);
      const url = new URL(start.headers.location as string);
      assert.equal(url.origin + url.pathname, IDP_SLO_URL);
      const requestId = /\sID="([^"]+)"/.exec(inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8'))![1]!;
      const answer = await gw.http.get(`/saml2/sp/slo/callback?${sha1RedirectQuery('SAMLResponse', logoutResponseXml(gw, idp.entityId, requestId), url.searchParams.get('RelayState')!)}`);
      if (allowed) {
        assert.equal(answer.status, 302, answer.text);
        assert.equal(answer.headers.location, target);
      } else {
        assert.equal(answer.status, 400);
        assert.equal(errorCodeOf(answer), 'saml_logout_invalid');
        assert.equal(await lastReason(domain), 'weak_algorithm');
      }
    }
  });
});
