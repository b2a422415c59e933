import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256, buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { idps, type TestIdpKeys } from '../../helpers/keys.js';
import {
  b64,
  beginLogin,
  createGateway,
  errorCodeOf,
  lastAuditReason,
  postAcs,
  responseSpec,
  sessionCookieOf,
  signed,
  type Gateway,
} from '../../helpers/gateway.js';

const NAME_ID_OPEN = '<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">';
const NAME_ID_CLOSE = '</saml:NameID>';

/** The PEM body of a certificate, as it appears in a ds:X509Certificate element. */
const bareCert = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');

/** Replaces the one NameID text `from` with `to` in serialized XML, failing loudly when it is not there. */
function replaceNameId(xml: string, from: string, to: string): string {
  const needle = `${NAME_ID_OPEN}${from}${NAME_ID_CLOSE}`;
  assert.equal(xml.split(needle).length, 2, `exactly one NameID "${from}" in the XML`);
  return xml.replace(needle, `${NAME_ID_OPEN}${to}${NAME_ID_CLOSE}`);
}

describe('SAML ACS: signature refusals (S-8 (3), (4))', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
    assert.equal(gw.services.config.saml.secondGate, true, 'every case here runs with the second gate (passport-saml) on');
    // The truncation attacks below are aimed at emp-001; this member makes the untampered
    // "emp-001.evil" response a successful login, so those tests compare like with like.
    await gw.services.members.save('a.example', {
      id: 'm-a-evil',
      account: 'evil@a.example',
      name: 'Evil Twin',
      externalKey: 'emp-001.evil',
      role: 'member',
      status: 'in_use',
    });
  });
  after(async () => gw.close());

  /** A fresh login on `domain` and the unsigned response XML answering it. */
  async function unsignedFor(domain: string, nameId = 'emp-001', idp: TestIdpKeys = idps.a): Promise<{ xml: string; relayState: string }> {
    const login = await beginLogin(gw, domain);
    return { xml: buildSamlResponseXml(responseSpec(gw, domain, idp, login.requestId, nameId)), relayState: login.relayState };
  }

  /** Posts the XML and checks the common shape of a refusal; returns the private reason. */
  async function expectRefused(domain: string, xml: string, relayState: string): Promise<string | undefined> {
    const res = await postAcs(gw, domain, b64(xml), relayState);
    assert.equal(res.status, 400, res.text);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    assert.equal(sessionCookieOf(res), undefined, 'no session cookie on a refusal');
    // The latest audit entry is this very refusal, not one left by an earlier test.
    const [latest] = await gw.services.audit.list(domain, 1);
    assert.equal(latest?.requestId, res.headers['x-request-id']);
    assert.equal(latest?.type, 'saml_response.rejected');
    return lastAuditReason(gw, domain);
  }

  async function expectLogin(domain: string, xml: string, relayState: string, memberId: string): Promise<void> {
    const res = await postAcs(gw, domain, b64(xml), relayState);
    assert.equal(res.status, 303, res.text);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie, 'a session cookie is set');
    const me = await gw.http.get('/session').set('Cookie', cookie);
    assert.equal(me.status, 200);
    assert.equal(me.body.member.id, memberId);
  }

  describe('positive controls (the refusals below are not accidents of the response shape)', () => {
    it('accepts an unmodified response signed on both levels', async () => {
      const { xml, relayState } = await unsignedFor('a.example');
      await expectLogin('a.example', signed(xml, idps.a, 'both'), relayState, 'm-a-active');
    });

    it('accepts an unmodified response signed on the assertion only', async () => {
      const { xml, relayState } = await unsignedFor('a.example');
      await expectLogin('a.example', signed(xml, idps.a, 'assertion'), relayState, 'm-a-active');
    });

    it('accepts an unmodified signed response for NameID "emp-001.evil" (as that member, not emp-001)', async () => {
      const { xml, relayState } = await unsignedFor('a.example', 'emp-001.evil');
      await expectLogin('a.example', signed(xml, idps.a, 'both'), relayState, 'm-a-evil');
    });
  });

  it('refuses a completely unsigned response (signature_invalid)', async () => {
    const { xml, relayState } = await unsignedFor('a.example');
    assert.ok(!xml.includes('Signature'));
    assert.equal(await expectRefused('a.example', xml, relayState), 'signature_invalid');
  });

  // Response-only signatures are accepted (the profile allows them) unless the tenant requires signed
  // assertions: see acs-response-signature.test.ts. Changing what the Response signature covers is not.
  it('refuses a response signed at Response level only whose NameID was changed after signing (signature_invalid)', async () => {
    const { xml, relayState } = await unsignedFor('a.example');
    const out = signed(xml, idps.a, 'response');
    assert.equal(out.match(/<ds:Signature /g)?.length, 1);
    assert.equal(await expectRefused('a.example', replaceNameId(out, 'emp-001', 'emp-001.evil'), relayState), 'signature_invalid');
  });

  describe('signed by a key that is not registered for a.example', () => {
    it('refuses an assertion signed by the attacker key, attacker certificate embedded in KeyInfo (signature_invalid)', async () => {
      for (const sign of ['assertion', 'both'] as const) {
        const { xml, relayState } = await unsignedFor('a.example');
        const out = signed(xml, idps.attacker, sign);
        // xml-crypto publishes publicCert in KeyInfo by default: the attacker's own certificate
        // travels with the response, and must not be trusted.
        assert.ok(out.includes(`<ds:X509Certificate>${bareCert(idps.attacker.certificate)}</ds:X509Certificate>`), 'KeyInfo holds the attacker cert');
        assert.equal(await expectRefused('a.example', out, relayState), 'signature_invalid', sign);
      }
    });

    it('refuses an assertion signed by the attacker key without KeyInfo (signature_invalid)', async () => {
      const { xml, relayState } = await unsignedFor('a.example');
      const out = signed(xml, idps.attacker, 'assertion').replace(/<ds:KeyInfo>[\s\S]*?<\/ds:KeyInfo>/g, '');
      assert.ok(!out.includes('KeyInfo'));
      assert.equal(await expectRefused('a.example', out, relayState), 'signature_invalid');
    });

    it('refuses an attacker-signed assertion whose KeyInfo claims the registered certificate of a.example (signature_invalid)', async () => {
      const { xml, relayState } = await unsignedFor('a.example');
      const out = signed(xml, idps.attacker, 'assertion').replace(bareCert(idps.attacker.certificate), bareCert(idps.a.certificate));
      assert.ok(out.includes(bareCert(idps.a.certificate)));
      assert.equal(await expectRefused('a.example', out, relayState), 'signature_invalid');
    });

    it("refuses a response for a.example signed by tenant B's IdP key (signature_invalid)", async () => {
      // Issuer claims a.example's IdP: B's IdP administrator forging a.example members.
      const forged = await unsignedFor('a.example');
      assert.equal(await expectRefused('a.example', signed(forged.xml, idps.b, 'both'), forged.relayState), 'signature_invalid');
      // And B's IdP posting its own genuine (issuer B) response to a.example's ACS.
      const misrouted = await unsignedFor('a.example', 'emp-001', idps.b);
      assert.ok(misrouted.xml.includes(idps.b.entityId));
      assert.equal(await expectRefused('a.example', signed(misrouted.xml, idps.b, 'both'), misrouted.relayState), 'signature_invalid');
    });
  });

  it('refuses a validly signed response whose NameID was changed after signing (digest mismatch, signature_invalid)', async () => {
    for (const sign of ['assertion', 'both'] as const) {
      const { xml, relayState } = await unsignedFor('a.example');
      const tampered = replaceNameId(signed(xml, idps.a, sign), 'emp-001', 'emp-002');
      assert.equal(await expectRefused('a.example', tampered, relayState), 'signature_invalid', sign);
    }
  });

  describe('weak algorithms (S-8 (4))', () => {
    const variants = [
      { name: 'RSA-SHA1 signature and SHA-1 digest', extra: { signatureAlgorithm: SIG_RSA_SHA1, digestAlgorithm: DIGEST_SHA1 } },
      { name: 'RSA-SHA1 signature, SHA-256 digest', extra: { signatureAlgorithm: SIG_RSA_SHA1, digestAlgorithm: DIGEST_SHA256 } },
      { name: 'RSA-SHA256 signature, SHA-1 digest', extra: { signatureAlgorithm: SIG_RSA_SHA256, digestAlgorithm: DIGEST_SHA1 } },
    ];
    for (const v of variants) {
      it(`refuses ${v.name} on a.example (weak_algorithm)`, async () => {
        for (const sign of ['assertion', 'both'] as const) {
          const { xml, relayState } = await unsignedFor('a.example');
          const out = signed(xml, idps.a, sign, v.extra);
          assert.ok(out.includes(`Algorithm="${v.extra.signatureAlgorithm}"`) && out.includes(`Algorithm="${v.extra.digestAlgorithm}"`));
          assert.equal(await expectRefused('a.example', out, relayState), 'weak_algorithm', sign);
        }
      });

      it(`accepts ${v.name} on sha1.example, which opted in (303)`, async () => {
        const { xml, relayState } = await unsignedFor('sha1.example');
        await expectLogin('sha1.example', signed(xml, idps.a, 'both', v.extra), relayState, 'm-s');
      });
    }

    it('still refuses an invalid signature on sha1.example (opting in to SHA-1 is not opting out of verification)', async () => {
      const { xml, relayState } = await unsignedFor('sha1.example');
      const out = signed(xml, idps.attacker, 'both', { signatureAlgorithm: SIG_RSA_SHA1, digestAlgorithm: DIGEST_SHA1 });
      assert.equal(await expectRefused('sha1.example', out, relayState), 'signature_invalid');
    });
  });

  describe('NameID injection that keeps the signature valid (checkNameId)', () => {
    it('refuses a comment inside the signed NameID: "emp-001<!---->.evil" (name_id_invalid)', async () => {
      for (const sign of ['assertion', 'both'] as const) {
        const { xml, relayState } = await unsignedFor('a.example', 'emp-001.evil');
        // Exclusive c14n drops comments, so the digest of the assertion is unchanged; a parser
        // that read only the first text node would log the attacker in as emp-001.
        const injected = replaceNameId(signed(xml, idps.a, sign), 'emp-001.evil', 'emp-001<!---->.evil');
        assert.equal(await expectRefused('a.example', injected, relayState), 'name_id_invalid', sign);
      }
    });

    it('refuses a CDATA section as the signed NameID: "<![CDATA[emp-001]]>" (name_id_invalid)', async () => {
      for (const sign of ['assertion', 'both'] as const) {
        const { xml, relayState } = await unsignedFor('a.example');
        // The canonical form of a CDATA section is its text: the signature still verifies.
        const injected = replaceNameId(signed(xml, idps.a, sign), 'emp-001', '<![CDATA[emp-001]]>');
        assert.equal(await expectRefused('a.example', injected, relayState), 'name_id_invalid', sign);
      }
    });

    it('refuses a CDATA section inside the signed NameID: "emp-001<![CDATA[.evil]]>" (name_id_invalid)', async () => {
      const { xml, relayState } = await unsignedFor('a.example', 'emp-001.evil');
      const injected = replaceNameId(signed(xml, idps.a, 'both'), 'emp-001.evil', 'emp-001<![CDATA[.evil]]>');
      assert.equal(await expectRefused('a.example', injected, relayState), 'name_id_invalid');
    });

    it('refuses a NameID with a nested element, signed by the registered IdP (name_id_invalid)', async () => {
      for (const sign of ['assertion', 'both'] as const) {
        const { xml, relayState } = await unsignedFor('a.example');
        // Built before signing: the signature is genuine, only the shape is wrong.
        const nested = replaceNameId(xml, 'emp-001', 'emp-001<saml:Extra>.evil</saml:Extra>');
        assert.equal(await expectRefused('a.example', signed(nested, idps.a, sign), relayState), 'name_id_invalid', sign);
      }
    });

    it('refuses a nested element added to the NameID after signing (signature_invalid)', async () => {
      const { xml, relayState } = await unsignedFor('a.example');
      const injected = replaceNameId(signed(xml, idps.a, 'both'), 'emp-001', 'emp-001<saml:Extra/>');
      assert.equal(await expectRefused('a.example', injected, relayState), 'signature_invalid');
    });
  });
});
