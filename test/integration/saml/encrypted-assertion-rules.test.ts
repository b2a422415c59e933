/**
 * Encrypted assertions under the rules a-saml-sigs added for plaintext ones:
 * - the plaintext of an EncryptedAssertion goes through the same subject-assertion rule
 *   (subject-assertion.ts): assertions inside its saml:Advice are allowed and never the identity; an
 *   assertion anywhere else in it is refused;
 * - an encrypted assertion with no signature of its own, covered only by a signed Response, is accepted
 *   unless the tenant sets requireSignedAssertions (then `assertion_not_signed`).
 * The IdP's encryptor is xml-encryption (auth0's library); every accepted login passes the second gate too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignedXml } from 'xml-crypto';
import { DIGEST_SHA256, ENVELOPED_SIGNATURE, EXC_C14N, SIG_RSA_SHA256, buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { ALG, encryptAssertionIn, spEncryptionKeys } from '../../helpers/encrypt-assertion.js';
import { b64, beginLogin, createGateway, errorCodeOf, lastAuditReason, postAcs, responseSpec, sessionCookieOf, signed, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

const DOMAIN = 'a.example';
const VICTIM = 'emp-999';

/** An enveloped signature by IdP A over the element with this ID, placed after its Issuer. */
function signById(xml: string, id: string): string {
  const sig = new SignedXml({ privateKey: idps.a.privateKey, publicCert: idps.a.certificate, signatureAlgorithm: SIG_RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
  const xpath = `//*[@ID='${id}']`;
  sig.addReference({ xpath, digestAlgorithm: DIGEST_SHA256, transforms: [ENVELOPED_SIGNATURE, EXC_C14N] });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

const assertionIdOf = (xml: string): string => /<saml:Assertion\b[^>]*?\sID="([^"]+)"/.exec(xml)![1]!;
const encrypt = (xml: string): Promise<string> => encryptAssertionIn(xml, { certificate: spEncryptionKeys.current.certificate, content: ALG.aes256gcm });

describe('ACS: encrypted assertions under the subject-assertion and response-only signature rules', () => {
  let gw: Gateway;
  const gateCount = async (result: 'agreed' | 'refused'): Promise<number> => (await gw.services.metrics.samlSecondGate.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

  before(async () => {
    gw = await createGateway({ overrides: { saml: { decryption: { keyFile: spEncryptionKeys.current.keyFile, certFile: spEncryptionKeys.current.certFile } } } });
    await gw.services.members.save(DOMAIN, { id: 'm-a-victim', account: 'victim@a.example', name: 'Victim', externalKey: VICTIM, role: 'member', status: 'in_use' });
  });
  after(async () => gw.close());

  async function unsigned(nameId = 'emp-001'): Promise<{ xml: string; relayState: string; requestId: string }> {
    const login = await beginLogin(gw, DOMAIN);
    return { xml: buildSamlResponseXml(responseSpec(gw, DOMAIN, idps.a, login.requestId, nameId)), relayState: login.relayState, requestId: login.requestId };
  }

  /** Posts, expects a login, returns the member id of the session (and checks the second gate agreed). */
  async function loginMember(xml: string, relayState: string): Promise<string> {
    assert.doesNotMatch(xml, /<saml:Assertion[\s>]/, 'no plaintext assertion travels');
    const agreed = await gateCount('agreed');
    const res = await postAcs(gw, DOMAIN, b64(xml), relayState);
    assert.equal(res.status, 303, `${res.status} ${String(await lastAuditReason(gw, DOMAIN))}`);
    assert.equal((await gateCount('agreed')) - agreed, 1, 'node-saml (the second gate) decrypted it, accepted it and agreed');
    const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(res)!);
    assert.equal(me.status, 200);
    return me.body.member.id as string;
  }

  async function refusedWith(xml: string, relayState: string): Promise<string | undefined> {
    const res = await postAcs(gw, DOMAIN, b64(xml), relayState);
    assert.equal(res.status, 400, res.text);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    assert.equal(sessionCookieOf(res), undefined);
    return lastAuditReason(gw, DOMAIN);
  }

  /** emp-001's response whose assertion carries, in its Advice, an assertion for the victim signed by the same IdP. */
  async function withAdvice(): Promise<{ xml: string; relayState: string; outerId: string }> {
    const { xml, relayState, requestId } = await unsigned();
    const victim = signed(buildSamlResponseXml(responseSpec(gw, DOMAIN, idps.a, requestId, VICTIM)), idps.a, 'assertion');
    const inner = /<saml:Assertion [\s\S]*<\/saml:Assertion>/.exec(victim)![0];
    return { xml: xml.replace('<saml:AuthnStatement ', `<saml:Advice>${inner}</saml:Advice><saml:AuthnStatement `), relayState, outerId: assertionIdOf(xml) };
  }

  describe('saml:Advice inside the encrypted assertion', () => {
    it('is accepted with the outer assertion signed, and the identity is the outer NameID, never the Advice one', async () => {
      const { xml, relayState, outerId } = await withAdvice();
      const out = await encrypt(signById(xml, outerId));
      assert.equal(await loginMember(out, relayState), 'm-a-active');
    });

    it('is accepted with only the Response signed (over the EncryptedAssertion), again as the outer NameID', async () => {
      const { xml, relayState } = await withAdvice();
      const out = signed(await encrypt(xml), idps.a, 'response');
      assert.equal(out.match(/<ds:Signature[\s>]/g)?.length, 1, 'one visible signature: the Response one');
      assert.equal(await loginMember(out, relayState), 'm-a-active');
    });

    it('an assertion nested in the decrypted assertion outside any Advice (in an AttributeValue) is refused (multiple_assertions)', async () => {
      const { xml, relayState, requestId } = await unsigned();
      const inner = /<saml:Assertion [\s\S]*<\/saml:Assertion>/.exec(buildSamlResponseXml(responseSpec(gw, DOMAIN, idps.a, requestId, VICTIM)))![0];
      const nested = xml.replace(
        '<saml:AuthnStatement ',
        `<saml:AttributeStatement><saml:Attribute Name="evidence"><saml:AttributeValue>${inner}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement><saml:AuthnStatement `,
      );
      const out = await encrypt(signById(nested, assertionIdOf(xml)));
      assert.equal(await refusedWith(out, relayState), 'multiple_assertions');
    });
  });

  describe('an encrypted assertion covered only by a signed Response', () => {
    it('is accepted by default (the Response signature covers the EncryptedAssertion), by both gates', async () => {
      const { xml, relayState } = await unsigned();
      const out = signed(await encrypt(xml), idps.a, 'response');
      assert.equal(out.match(/<ds:Signature[\s>]/g)?.length, 1);
      assert.match(out, /<samlp:Response [^>]*><saml:Issuer>[^<]*<\/saml:Issuer><ds:Signature /, 'on the Response');
      assert.equal(await loginMember(out, relayState), 'm-a-active');
    });

    it('is refused with assertion_not_signed when the tenant requires signed assertions; a signed encrypted one is then accepted', async () => {
      const tenant = await gw.services.tenants.load(DOMAIN);
      await gw.services.tenants.save({ ...tenant, sso: { ...tenant.sso, saml: { ...tenant.sso.saml!, requireSignedAssertions: true } } });
      try {
        const { xml, relayState } = await unsigned();
        assert.equal(await refusedWith(signed(await encrypt(xml), idps.a, 'response'), relayState), 'assertion_not_signed');

        const again = await unsigned();
        assert.equal(await loginMember(await encrypt(signed(again.xml, idps.a, 'assertion')), again.relayState), 'm-a-active');
      } finally {
        await gw.services.tenants.save(tenant);
      }
    });

    it('is refused when the Response is signed by a key the tenant does not trust, or when nothing is signed (signature_invalid)', async () => {
      const first = await unsigned();
      assert.equal(await refusedWith(signed(await encrypt(first.xml), idps.attacker, 'response'), first.relayState), 'signature_invalid');
      const second = await unsigned();
      assert.equal(await refusedWith(await encrypt(second.xml), second.relayState), 'signature_invalid');
    });

    it('another EncryptedAssertion under that Response signature is refused (signature_invalid)', async () => {
      const { xml, relayState, requestId } = await unsigned();
      const genuine = signed(await encrypt(xml), idps.a, 'response');
      const other = await encrypt(buildSamlResponseXml(responseSpec(gw, DOMAIN, idps.a, requestId, VICTIM)));
      const enc = (x: string): string => /<saml:EncryptedAssertion>[\s\S]*<\/saml:EncryptedAssertion>/.exec(x)![0];
      assert.equal(await refusedWith(genuine.replace(enc(genuine), () => enc(other)), relayState), 'signature_invalid');
    });
  });
});
