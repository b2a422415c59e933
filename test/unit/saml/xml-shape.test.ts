import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DOMParser } from '@xmldom/xmldom';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { SignatureRefused, verifyEnvelopedSignature } from '../../../src/sso/saml/enveloped-signature.js';
import { SAML_MESSAGE_LIMITS, XmlRefused, checkXmlShape } from '../../../src/sso/saml/xml-shape.js';
import { NS } from '../../../src/sso/saml/xml.js';
import { signed } from '../../helpers/gateway.js';
import { HOSTILE_FILLERS, hostileResponse, injectIntoAssertion, limitHuggingFiller } from '../../helpers/hostile-xml.js';
import { idps } from '../../helpers/keys.js';

const refusedAs = (xml: string): string | null => {
  try {
    checkXmlShape(xml, SAML_MESSAGE_LIMITS);
    return null;
  } catch (err) {
    assert.ok(err instanceof XmlRefused);
    return err.kind;
  }
};

const spec = (attributes: Record<string, string> = {}) => ({
  issuer: 'https://sts.windows.net/0000/',
  destination: 'https://sso.bridge.test/acs/a.example',
  inResponseTo: '_req',
  recipient: 'https://sso.bridge.test/acs/a.example',
  audience: 'https://sso.bridge.test/saml/metadata',
  nameId: 'emp-001',
  now: Date.now(),
  attributes,
});

/** An Entra ID-like response: 200 group claims, each its own AttributeValue (about 60 KB signed). */
function entraLike(): string {
  const groups = Array.from({ length: 200 }, (_, i) => `<saml:AttributeValue>${crypto.randomUUID()}-${i}</saml:AttributeValue>`).join('');
  const xml = buildSamlResponseXml(spec({ 'http://schemas.microsoft.com/identity/claims/displayname': 'Employee One' }));
  return signed(xml.replace('</saml:AttributeStatement>', `<saml:Attribute Name="http://schemas.microsoft.com/ws/2008/06/identity/claims/groups">${groups}</saml:Attribute></saml:AttributeStatement>`), idps.a);
}

/** An Okta-like response: xmlns:xs, xmlns:xsi and xsi:type on each of 250 AttributeValues. */
function oktaLike(): string {
  const value = (v: string): string =>
    `<saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">${v}</saml:AttributeValue>`;
  const groups = Array.from({ length: 250 }, (_, i) => value(`Everyone-${i}`)).join('');
  const xml = buildSamlResponseXml(spec({ email: 'emp@a.example' }));
  return signed(xml.replace('</saml:AttributeStatement>', `<saml:Attribute Name="groups" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified">${groups}</saml:Attribute></saml:AttributeStatement>`), idps.a);
}

describe('XML structural limits (checked before parsing)', () => {
  it('lets large real-world responses through', () => {
    const entra = entraLike();
    assert.ok(entra.length > 15_000, `Entra-like response is ${entra.length} bytes`);
    assert.equal(refusedAs(entra), null);
    assert.equal(refusedAs(oktaLike()), null);
    assert.equal(refusedAs(`<a>${'x'.repeat(60_000)}</a>`), null, 'a 60 KB text node');
  });

  it('refuses each hostile shape of 150 KB', () => {
    for (const [name, filler] of Object.entries(HOSTILE_FILLERS)) {
      if (name === 'at the limits') continue;
      assert.equal(refusedAs(hostileResponse(filler(150_000))), 'xml_too_complex', name);
    }
  });

  it('each limit on its own: depth, nodes, namespace declarations, attributes, text', () => {
    const L = SAML_MESSAGE_LIMITS;
    const nest = (n: number): string => '<a>'.repeat(n) + '</a>'.repeat(n);
    assert.equal(refusedAs(nest(L.maxDepth)), null);
    assert.equal(refusedAs(nest(L.maxDepth + 1)), 'xml_too_complex');
    assert.equal(refusedAs(`<r>${'<x/>'.repeat(L.maxNodes - 1)}</r>`), null);
    assert.equal(refusedAs(`<r>${'<x/>'.repeat(L.maxNodes)}</r>`), 'xml_too_complex');
    assert.equal(refusedAs(`<r>${'<!--c-->'.repeat(L.maxNodes)}</r>`), 'xml_too_complex', 'comments count as nodes');
    const attrs = (n: number): string => Array.from({ length: n }, (_, i) => ` a${i}="1"`).join('');
    assert.equal(refusedAs(`<r${attrs(L.maxAttributesPerElement)}/>`), null);
    assert.equal(refusedAs(`<r${attrs(L.maxAttributesPerElement + 1)}/>`), 'xml_too_complex');
    const decls = (n: number): string => Array.from({ length: n }, (_, i) => `<x xmlns:p${i}="u"/>`).join('');
    assert.equal(refusedAs(`<r>${decls(L.maxNamespaceDeclarations)}</r>`), null);
    assert.equal(refusedAs(`<r>${decls(L.maxNamespaceDeclarations + 1)}</r>`), 'xml_too_complex');
    const spread = Array.from({ length: Math.ceil((L.maxAttributes + 1) / 10) }, () => `<x${attrs(10)}/>`).join('');
    assert.equal(refusedAs(`<r>${spread}</r>`), 'xml_too_complex', 'attributes in the whole document');
    assert.equal(refusedAs(`<a>${'x'.repeat(L.maxTextLength + 1)}</a>`), 'xml_too_complex');
    assert.equal(refusedAs(`<a t="${'x'.repeat(L.maxTextLength + 1)}"/>`), 'xml_too_complex');
    assert.equal(refusedAs(`<a><![CDATA[${'x'.repeat(L.maxTextLength + 1)}]]></a>`), 'xml_too_complex');
  });

  it('lets the text of an xenc:CipherValue (an encrypted assertion) be larger, and only that text', () => {
    const L = SAML_MESSAGE_LIMITS;
    const big = 'A'.repeat(L.maxTextLength + 1);
    const cap = L.maxCipherValueLength!;
    assert.ok(cap > L.maxTextLength);
    assert.equal(refusedAs(`<e><xenc:CipherValue xmlns:xenc="x">${big}</xenc:CipherValue></e>`), null);
    assert.equal(refusedAs(`<e><CipherValue>${'A'.repeat(cap)}</CipherValue></e>`), null);
    assert.equal(refusedAs(`<e><xenc:CipherValue>${'A'.repeat(cap + 1)}</xenc:CipherValue></e>`), 'xml_too_complex');
    // Not the text after its end tag, after a self-closing one, or in another element.
    assert.equal(refusedAs(`<e><xenc:CipherValue>A</xenc:CipherValue>${big}</e>`), 'xml_too_complex');
    assert.equal(refusedAs(`<e><xenc:CipherValue/>${big}</e>`), 'xml_too_complex');
    assert.equal(refusedAs(`<e><xenc:CipherValueX>${big}</xenc:CipherValueX></e>`), 'xml_too_complex');
  });

  it('the limit-hugging filler itself stays inside the limits (it is the benchmark worst case)', () => {
    assert.equal(refusedAs(hostileResponse(limitHuggingFiller(180_000))), null);
  });

  it('reads quoted ">" inside attribute values and refuses DOCTYPE and broken markup', () => {
    assert.equal(refusedAs('<a b="x>y" c=\'>\'><c/></a>'), null);
    assert.equal(refusedAs('<!DOCTYPE a><a/>'), 'doctype_refused');
    assert.equal(refusedAs('<a b="unterminated></a>'), 'xml_malformed');
    assert.equal(refusedAs('<a b=unquoted></a>'), 'xml_malformed');
    assert.equal(refusedAs('<a><!-- never closed </a>'), 'xml_malformed');
  });
});

describe('enveloped signature: SignedInfo first', () => {
  it('a forged SignatureValue is refused before the signed element is digested', () => {
    // Content changed (the digest would fail) and the signature value broken: the refusal must name
    // the signature value, i.e. the costly canonicalization + digest of the element never ran.
    const xml = signed(buildSamlResponseXml(spec()), idps.a, 'assertion');
    const hostile = injectIntoAssertion(xml, '<x/>').replace(/<ds:SignatureValue>([A-Za-z0-9+/])/, (_m, c: string) => `<ds:SignatureValue>${c === 'A' ? 'B' : 'A'}`);
    const doc = new DOMParser().parseFromString(hostile, 'text/xml');
    const assertion = doc.getElementsByTagNameNS(NS.assertion, 'Assertion')[0]!;
    assert.throws(() => verifyEnvelopedSignature(assertion, { certificates: [idps.a.certificate], allowSha1: false }), (err: unknown) => {
      assert.ok(err instanceof SignatureRefused);
      assert.match(err.message, /signature value does not verify/);
      return true;
    });
  });
});
