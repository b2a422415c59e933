/**
 * The ACS verifies XML signatures itself, on the document it parsed once (src/sso/saml/enveloped-signature.ts),
 * instead of handing the response to node-saml. These tests pin what it accepts — every shape a real IdP
 * sends (exclusive c14n with or without comments, InclusiveNamespaces, SHA-512, wrapped base64, KeyInfo
 * holding anything, a default-namespace assertion) — and what it refuses, each time checking with
 * xml-crypto itself that the signatures the test builds are genuine, so a refusal is the policy and not
 * a broken fixture.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { NS } from '../../../src/sso/saml/xml.js';
import { DIGEST_SHA256 as SHA256, ENVELOPED_SIGNATURE as ENVELOPED, EXC_C14N, SIG_RSA_SHA256 as RSA_SHA256, buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { idps, type TestIdpKeys } from '../../helpers/keys.js';
import { b64, beginLogin, createGateway, errorCodeOf, lastAuditReason, postAcs, responseSpec, sessionCookieOf, type Gateway } from '../../helpers/gateway.js';

const DOMAIN = 'a.example';
const EXC_C14N_WITH_COMMENTS = 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments';
const C14N_INCLUSIVE = 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315';
const RSA_SHA512 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512';
const SHA512 = 'http://www.w3.org/2001/04/xmlenc#sha512';

interface SignOptions {
  key?: TestIdpKeys;
  /** SignedInfo canonicalization. */
  c14n?: string;
  transforms?: string[];
  signatureAlgorithm?: string;
  digestAlgorithm?: string;
  /** InclusiveNamespaces PrefixList on the reference's exc-c14n transform and on SignedInfo. */
  prefixes?: string[];
  isEmptyUri?: boolean;
  /** Add the same reference twice. */
  twoReferences?: boolean;
  /** Element the signature is placed in (after its Issuer); default: the signed element itself. */
  placeIn?: 'Assertion' | 'Response';
}

/** An enveloped signature over the Response or the Assertion, placed after that element's Issuer. */
function sign(xml: string, what: 'Assertion' | 'Response', o: SignOptions = {}): string {
  const key = o.key ?? idps.a;
  const sig = new SignedXml({
    privateKey: key.privateKey,
    publicCert: key.certificate,
    signatureAlgorithm: o.signatureAlgorithm ?? RSA_SHA256,
    canonicalizationAlgorithm: o.c14n ?? EXC_C14N,
    inclusiveNamespacesPrefixList: o.prefixes,
  });
  const xpath = `//*[local-name(.)='${what}']`;
  const reference = {
    xpath,
    digestAlgorithm: o.digestAlgorithm ?? SHA256,
    transforms: o.transforms ?? [ENVELOPED, EXC_C14N],
    inclusiveNamespacesPrefixList: o.prefixes,
    isEmptyUri: o.isEmptyUri,
  };
  sig.addReference(reference);
  if (o.twoReferences) sig.addReference(reference);
  const place = `//*[local-name(.)='${o.placeIn ?? what}']`;
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: `${place}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

/** xml-crypto's own verdict on the (only) signature whose parent is a `what`, with a.example's certificate. */
function xmlCryptoAccepts(xml: string, what: 'Assertion' | 'Response'): boolean {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const node = Array.from(doc.getElementsByTagNameNS(NS.dsig, 'Signature')).find((s) => (s.parentNode as Element).localName === what);
  if (!node) return false;
  const sig = new SignedXml({ publicCert: idps.a.certificate, getCertFromKeyInfo: () => null });
  try {
    sig.loadSignature(node);
    return sig.checkSignature(xml);
  } catch {
    return false;
  }
}

describe('SAML ACS: signature shapes (the verifier on the parsed document)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
    assert.equal(gw.services.config.saml.secondGate, true, 'every case here runs with the second gate (passport-saml) on');
  });
  after(async () => gw.close());

  async function unsigned(transform: (xml: string) => string = (x) => x): Promise<{ xml: string; relayState: string }> {
    const login = await beginLogin(gw, DOMAIN);
    return { xml: transform(buildSamlResponseXml(responseSpec(gw, DOMAIN, idps.a, login.requestId, 'emp-001', { attributes: { email: 'active@a.example' } }))), relayState: login.relayState };
  }

  async function expectLogin(xml: string, relayState: string): Promise<void> {
    const res = await postAcs(gw, DOMAIN, b64(xml), relayState);
    assert.equal(res.status, 303, `${res.status} ${String(await lastAuditReason(gw, DOMAIN))}`);
    assert.ok(sessionCookieOf(res));
  }

  async function expectRefused(xml: string, relayState: string, reason = 'signature_invalid'): Promise<void> {
    const res = await postAcs(gw, DOMAIN, b64(xml), relayState);
    assert.equal(res.status, 400, res.text);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    assert.equal(sessionCookieOf(res), undefined);
    const [latest] = await gw.services.audit.list(DOMAIN, 1);
    assert.equal(latest?.requestId, res.headers['x-request-id']);
    assert.equal(latest?.reason, reason);
  }

  describe('accepted (each also verified by xml-crypto)', () => {
    it('exclusive c14n WithComments for SignedInfo and the reference', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(sign(xml, 'Assertion', { c14n: EXC_C14N_WITH_COMMENTS, transforms: [ENVELOPED, EXC_C14N_WITH_COMMENTS] }), 'Response', { c14n: EXC_C14N_WITH_COMMENTS });
      assert.ok(xmlCryptoAccepts(out, 'Assertion') && xmlCryptoAccepts(out, 'Response'));
      await expectLogin(out, relayState);
    });

    it('InclusiveNamespaces PrefixList="xs" with xs declared on the Response (Shibboleth-style xsi:type values)', async () => {
      const { xml, relayState } = await unsigned((x) =>
        x
          .replace('<samlp:Response ', '<samlp:Response xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ')
          .replace('<saml:AttributeValue>', '<saml:AttributeValue xsi:type="xs:string">'),
      );
      const out = sign(sign(xml, 'Assertion', { prefixes: ['xs'] }), 'Response', { prefixes: ['xs'] });
      assert.match(out, /InclusiveNamespaces[^>]*PrefixList="xs"/);
      assert.ok(xmlCryptoAccepts(out, 'Assertion') && xmlCryptoAccepts(out, 'Response'));
      await expectLogin(out, relayState);
      // The same document must not have been changed by verifying it: a second verifier agrees.
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
    });

    it('RSA-SHA512 with SHA-512 digests', async () => {
      const { xml, relayState } = await unsigned();
      const o = { signatureAlgorithm: RSA_SHA512, digestAlgorithm: SHA512 };
      const out = sign(sign(xml, 'Assertion', o), 'Response', o);
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
      await expectLogin(out, relayState);
    });

    it('a KeyInfo holding some other certificate (KeyInfo is never read)', async () => {
      const { xml, relayState } = await unsigned();
      const bare = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
      const out = sign(xml, 'Assertion').replace(bare(idps.a.certificate), bare(idps.attacker.certificate));
      assert.ok(out.includes(bare(idps.attacker.certificate)));
      await expectLogin(out, relayState);
    });

    it('a SignatureValue wrapped over lines, as Java IdPs send it (it is outside SignedInfo)', async () => {
      const { xml, relayState } = await unsigned();
      const wrap = (v: string): string => v.replace(/(.{76})/g, '$1\r\n');
      const out = sign(xml, 'Assertion').replace(/<ds:SignatureValue>([^<]+)</, (_, v: string) => `<ds:SignatureValue>\n${wrap(v)}\n<`);
      assert.ok(/<ds:SignatureValue>\n/.test(out));
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
      await expectLogin(out, relayState);
    });

    it('a comment added between elements of the signed assertion (not covered by exclusive c14n)', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Assertion').replace('</saml:Conditions>', '</saml:Conditions><!-- added in transit -->');
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
      await expectLogin(out, relayState);
    });

    it('an assertion in the default namespace (no saml: prefix)', async () => {
      const { xml, relayState } = await unsigned((x) => {
        const start = x.indexOf('<saml:Assertion ');
        const end = x.indexOf('</saml:Assertion>') + '</saml:Assertion>'.length;
        const assertion = x
          .slice(start, end)
          .replace('<saml:Assertion ', '<saml:Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ')
          .replace(/<(\/?)saml:/g, '<$1');
        return x.slice(0, start) + assertion + x.slice(end);
      });
      assert.match(xml, /<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" /);
      const out = sign(xml, 'Assertion');
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
      await expectLogin(out, relayState);
    });
  });

  describe('refused (signature_invalid)', () => {
    it('a Response signature that no longer verifies, though the assertion signature does (stricter than node-saml, which ignored it)', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(sign(xml, 'Assertion'), 'Response').replace(/(<samlp:Response [^>]*IssueInstant=")[^"]+"/, '$12000-01-01T00:00:00.000Z"');
      assert.ok(xmlCryptoAccepts(out, 'Assertion') && !xmlCryptoAccepts(out, 'Response'));
      await expectRefused(out, relayState);
    });

    it('a Response signed by an unregistered key around a genuinely signed assertion', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(sign(xml, 'Assertion'), 'Response', { key: idps.attacker });
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
      await expectRefused(out, relayState);
    });

    it('a ds:Object inside a valid signature (where XSW8 hides a second assertion)', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Assertion').replace('</ds:SignatureValue>', '</ds:SignatureValue><ds:Object><x:Anything xmlns:x="urn:x"/></ds:Object>');
      assert.ok(xmlCryptoAccepts(out, 'Assertion'), 'xml-crypto alone accepts it');
      await expectRefused(out, relayState);
    });

    it('inclusive c14n (SAML core 5.4.3 names exclusive c14n; nothing else is accepted)', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Assertion', { c14n: C14N_INCLUSIVE, transforms: [ENVELOPED, C14N_INCLUSIVE] });
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
      await expectRefused(out, relayState);
    });

    it('the enveloped-signature transform alone (no exclusive c14n step)', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Assertion', { transforms: [ENVELOPED] });
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
      await expectRefused(out, relayState);
    });

    it('a reference to the whole document (URI="")', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Assertion', { isEmptyUri: true });
      assert.match(out, /<ds:Reference URI="">/);
      await expectRefused(out, relayState);
    });

    it('two references in one SignedInfo', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Assertion', { twoReferences: true });
      assert.equal(out.match(/<ds:Reference /g)?.length, 2);
      assert.ok(xmlCryptoAccepts(out, 'Assertion'));
      await expectRefused(out, relayState);
    });

    it('a signature inside the assertion that covers the Response instead of its parent', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Response', { placeIn: 'Assertion' });
      assert.ok(xmlCryptoAccepts(out, 'Assertion'), 'xml-crypto alone accepts it: the enveloped transform removes it from the Response');
      await expectRefused(out, relayState);
    });

    it('whitespace added inside the signed assertion (digest mismatch)', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Assertion').replace('</saml:Conditions>', '</saml:Conditions>\n');
      assert.ok(!xmlCryptoAccepts(out, 'Assertion'));
      await expectRefused(out, relayState);
    });

    it('a signed Response nesting 10,000 elements deep: refused by the structural limits before parsing, never a 500', async () => {
      const { xml, relayState } = await unsigned();
      const depth = 10_000;
      const out = sign(sign(xml, 'Assertion'), 'Response').replace('</samlp:Response>', `${'<x>'.repeat(depth)}${'</x>'.repeat(depth)}</samlp:Response>`);
      await expectRefused(out, relayState, 'xml_too_complex');
    });

    it('a SignatureValue that is not base64', async () => {
      const { xml, relayState } = await unsigned();
      const out = sign(xml, 'Assertion').replace(/<ds:SignatureValue>[^<]+</, '<ds:SignatureValue>not*base64<');
      await expectRefused(out, relayState);
    });
  });
});
