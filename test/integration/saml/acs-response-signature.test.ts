/**
 * What real IdPs sign, beyond "the assertion, with RSA-SHA256":
 * - a signature on the Response only (Shibboleth IdP's default; the SAML profile allows it): accepted,
 *   the Response signature covering the one assertion, unless the tenant sets `requireSignedAssertions`
 *   (then refused with the true reason, `assertion_not_signed`);
 * - assertions inside the subject assertion's saml:Advice: not the subject's assertion, never the identity;
 * - RSA-SHA384 with SHA-384 digests ("RSA-SHA256 or stronger").
 * Every login here also passes the second gate (passport-saml / node-saml), which these tests count.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignedXml } from 'xml-crypto';
import { DIGEST_SHA256, ENVELOPED_SIGNATURE, EXC_C14N, SIG_RSA_SHA256, buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { RSA_SHA384, SHA384_DIGEST } from '../../../src/sso/saml/xml-crypto-sha384.js';
import { idps, type TestIdpKeys } from '../../helpers/keys.js';
import { OPERATOR_AUTH, b64, beginLogin, createGateway, errorCodeOf, lastAuditReason, postAcs, responseSpec, sessionCookieOf, signed, type Gateway } from '../../helpers/gateway.js';

const DOMAIN = 'a.example';
const VICTIM = 'emp-999';

/** An enveloped signature over the element with this ID, placed after its Issuer. */
function signById(xml: string, id: string, key: TestIdpKeys = idps.a, algorithms: { signature?: string; digest?: string } = {}): string {
  const sig = new SignedXml({ privateKey: key.privateKey, publicCert: key.certificate, signatureAlgorithm: algorithms.signature ?? SIG_RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
  const xpath = `//*[@ID='${id}']`;
  sig.addReference({ xpath, digestAlgorithm: algorithms.digest ?? DIGEST_SHA256, transforms: [ENVELOPED_SIGNATURE, EXC_C14N] });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

const idOf = (xml: string, localName: 'Response' | 'Assertion'): string => new RegExp(`<(?:samlp|saml):${localName}\\b[^>]*?\\sID="([^"]+)"`).exec(xml)![1]!;

describe('SAML ACS: response-only signatures, Advice, RSA-SHA384', () => {
  let gw: Gateway;
  const gateCount = async (result: 'agreed' | 'refused'): Promise<number> => (await gw.services.metrics.samlSecondGate.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

  before(async () => {
    gw = await createGateway();
    await gw.services.members.save(DOMAIN, { id: 'm-a-victim', account: 'victim@a.example', name: 'Victim', externalKey: VICTIM, role: 'member', status: 'in_use' });
  });
  after(async () => gw.close());

  async function unsigned(domain = DOMAIN, nameId = 'emp-001'): Promise<{ xml: string; relayState: string; requestId: string }> {
    const login = await beginLogin(gw, domain);
    return { xml: buildSamlResponseXml(responseSpec(gw, domain, idps.a, login.requestId, nameId)), relayState: login.relayState, requestId: login.requestId };
  }

  /** Posts, expects a login, returns the member id of the session (and checks the second gate agreed). */
  async function loginMember(xml: string, relayState: string, domain = DOMAIN): Promise<string> {
    const agreed = await gateCount('agreed');
    const res = await postAcs(gw, domain, b64(xml), relayState);
    assert.equal(res.status, 303, `${res.status} ${String(await lastAuditReason(gw, domain))}`);
    assert.equal((await gateCount('agreed')) - agreed, 1, 'node-saml (the second gate) accepted it too and agreed');
    const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(res)!);
    assert.equal(me.status, 200);
    return me.body.member.id as string;
  }

  async function refusedWith(xml: string, relayState: string, domain = DOMAIN): Promise<string | undefined> {
    const res = await postAcs(gw, domain, b64(xml), relayState);
    assert.equal(res.status, 400, res.text);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    assert.equal(sessionCookieOf(res), undefined);
    const [latest] = await gw.services.audit.list(domain, 1);
    assert.equal(latest?.requestId, res.headers['x-request-id'], 'the latest audit entry is this refusal');
    return latest?.reason;
  }

  describe('a signature on the Response only', () => {
    it('is accepted by default: the Response signature by the registered IdP key covers the one assertion', async () => {
      const { xml, relayState } = await unsigned();
      const out = signed(xml, idps.a, 'response');
      assert.equal(out.match(/<ds:Signature /g)?.length, 1);
      assert.match(out, /<samlp:Response [^>]*><saml:Issuer>[^<]*<\/saml:Issuer><ds:Signature /, 'on the Response');
      assert.equal(await loginMember(out, relayState), 'm-a-active');
    });

    it('is refused when the Response is signed by a key the tenant does not trust (signature_invalid)', async () => {
      const { xml, relayState } = await unsigned();
      assert.equal(await refusedWith(signed(xml, idps.attacker, 'response'), relayState), 'signature_invalid');
    });

    it('does not excuse an assertion signature that fails: valid Response signature around an attacker-signed assertion (signature_invalid)', async () => {
      const { xml, relayState } = await unsigned();
      const attackerAssertion = signed(xml, idps.attacker, 'assertion');
      assert.equal(await refusedWith(signById(attackerAssertion, idOf(xml, 'Response')), relayState), 'signature_invalid');
    });

    it('a tenant requiring signed assertions (admin API) refuses it with the true reason, assertion_not_signed, and accepts signed assertions', async () => {
      const admin = (method: 'get' | 'patch', path: string) => gw.http[method](`/admin/v1${path}`).set('Authorization', OPERATOR_AUTH);
      const before = await admin('get', `/domains/${DOMAIN}/sso`);
      assert.equal(before.status, 200, before.text);
      assert.notEqual(before.body.saml.requireSignedAssertions, true, 'off by default');
      const on = await admin('patch', `/domains/${DOMAIN}/sso`).send({ saml: { requireSignedAssertions: true } });
      assert.equal(on.status, 200, on.text);
      assert.equal(on.body.sso.saml.requireSignedAssertions, true);
      try {
        const shown = await admin('get', `/domains/${DOMAIN}/sso`);
        assert.equal(shown.body.saml.requireSignedAssertions, true);

        const refused = await unsigned();
        const gateRuns = (await gateCount('agreed')) + (await gateCount('refused'));
        assert.equal(await refusedWith(signed(refused.xml, idps.a, 'response'), refused.relayState), 'assertion_not_signed');
        assert.equal((await gateCount('agreed')) + (await gateCount('refused')), gateRuns, 'refused by the strict verifier first');

        const assertionSigned = await unsigned();
        assert.equal(await loginMember(signed(assertionSigned.xml, idps.a, 'both'), assertionSigned.relayState), 'm-a-active');
      } finally {
        const off = await admin('patch', `/domains/${DOMAIN}/sso`).send({ saml: { requireSignedAssertions: false } });
        assert.equal(off.status, 200, off.text);
      }
      const again = await unsigned();
      assert.equal(await loginMember(signed(again.xml, idps.a, 'response'), again.relayState), 'm-a-active');
    });

    it('the admin API refuses a requireSignedAssertions that is not a boolean', async () => {
      const res = await gw.http.patch(`/admin/v1/domains/${DOMAIN}/sso`).set('Authorization', OPERATOR_AUTH).send({ saml: { requireSignedAssertions: 'yes' } });
      assert.equal(res.status, 400, res.text);
    });
  });

  describe('saml:Advice', () => {
    /** A response for emp-001 whose assertion carries, in its Advice, an assertion for the victim signed by the same IdP. */
    async function withAdvice(): Promise<{ xml: string; relayState: string; outerId: string; adviceId: string }> {
      const { xml, relayState, requestId } = await unsigned();
      const victimResponse = signed(buildSamlResponseXml(responseSpec(gw, DOMAIN, idps.a, requestId, VICTIM)), idps.a, 'assertion');
      const inner = /<saml:Assertion [\s\S]*<\/saml:Assertion>/.exec(victimResponse)![0];
      const out = xml.replace('<saml:AuthnStatement ', `<saml:Advice>${inner}</saml:Advice><saml:AuthnStatement `);
      return { xml: out, relayState, outerId: idOf(xml, 'Assertion'), adviceId: idOf(inner, 'Assertion') };
    }

    it('is accepted with the outer assertion signed: the identity is the outer NameID, never the Advice one', async () => {
      const { xml, relayState, outerId, adviceId } = await withAdvice();
      assert.notEqual(outerId, adviceId);
      const out = signById(xml, outerId);
      assert.equal(out.match(/<ds:Signature /g)?.length, 2, 'the outer assertion and the Advice assertion are signed');
      assert.equal(await loginMember(out, relayState), 'm-a-active');
    });

    it('is accepted with only the Response signed, and the identity is again the outer NameID', async () => {
      const { xml, relayState } = await withAdvice();
      assert.equal(await loginMember(signed(xml, idps.a, 'response'), relayState), 'm-a-active');
    });

    it('an assertion nested in the subject assertion outside any Advice (in an AttributeValue) is refused even when signed (multiple_assertions)', async () => {
      const { xml, relayState, requestId } = await unsigned();
      const inner = /<saml:Assertion [\s\S]*<\/saml:Assertion>/.exec(buildSamlResponseXml(responseSpec(gw, DOMAIN, idps.a, requestId, VICTIM)))![0];
      const out = xml.replace('</saml:Assertion>', `<saml:AttributeStatement><saml:Attribute Name="x"><saml:AttributeValue>${inner}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>`);
      assert.equal(await refusedWith(signById(out, idOf(xml, 'Assertion')), relayState), 'multiple_assertions');
    });
  });

  describe('RSA-SHA384 ("RSA-SHA256 or stronger")', () => {
    it('is accepted with SHA-384 digests, on the assertion and on the Response, by both gates', async () => {
      const { xml, relayState } = await unsigned();
      const out = signed(xml, idps.a, 'both', { signatureAlgorithm: RSA_SHA384, digestAlgorithm: SHA384_DIGEST });
      assert.equal(out.split(`<ds:SignatureMethod Algorithm="${RSA_SHA384}"/>`).length, 3);
      assert.equal(out.split(`<ds:DigestMethod Algorithm="${SHA384_DIGEST}"/>`).length, 3);
      assert.equal(await loginMember(out, relayState), 'm-a-active');
    });

    it('is accepted signed on the Response only', async () => {
      const { xml, relayState } = await unsigned();
      assert.equal(await loginMember(signed(xml, idps.a, 'response', { signatureAlgorithm: RSA_SHA384, digestAlgorithm: SHA384_DIGEST }), relayState), 'm-a-active');
    });

    it('a SHA-384 response changed after signing is refused (signature_invalid)', async () => {
      const { xml, relayState } = await unsigned();
      const out = signed(xml, idps.a, 'assertion', { signatureAlgorithm: RSA_SHA384, digestAlgorithm: SHA384_DIGEST }).replace('>emp-001<', `>${VICTIM}<`);
      assert.equal(await refusedWith(out, relayState), 'signature_invalid');
    });
  });
});
