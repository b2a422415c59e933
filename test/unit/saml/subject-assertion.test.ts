/**
 * Which assertion of a Response is the subject's (subject-assertion.ts): the one outside any
 * saml:Advice, a child of the Response; Advice assertions inside it are allowed and never chosen.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssertionShapeRefused, findSubjectAssertion } from '../../../src/sso/saml/subject-assertion.js';
import { ElementIndex, parseUntrustedXml } from '../../../src/sso/saml/xml.js';

const assertion = (id: string, inner = ''): string => `<saml:Assertion ID="${id}"><saml:Issuer>i</saml:Issuer>${inner}</saml:Assertion>`;
const advice = (...assertions: string[]): string => `<saml:Advice>${assertions.join('')}</saml:Advice>`;
const response = (body: string): string =>
  `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r">${body}</samlp:Response>`;

/** The chosen assertion's ID, null for none, or the refusal's message. */
function outcome(xml: string): string | null {
  const doc = parseUntrustedXml(xml);
  try {
    return findSubjectAssertion(doc.documentElement, new ElementIndex(doc))?.getAttribute('ID') ?? null;
  } catch (err) {
    assert.ok(err instanceof AssertionShapeRefused);
    return `refused: ${err.message}`;
  }
}

describe('findSubjectAssertion', () => {
  it('chooses the one assertion of a plain response, and none when there is none', () => {
    assert.equal(outcome(response(assertion('_a'))), '_a');
    assert.equal(outcome(response('<samlp:Status/>')), null);
  });

  it('chooses the outer assertion when its Advice carries assertions, nested Advice included', () => {
    assert.equal(outcome(response(assertion('_outer', advice(assertion('_adv1'), assertion('_adv2', advice(assertion('_adv3'))))))), '_outer');
  });

  it('refuses every other shape', () => {
    const cases: Array<[string, string]> = [
      ['two assertions', response(assertion('_a') + assertion('_b'))],
      ['an Advice beside the assertion, under the Response', response(advice(assertion('_evil')) + assertion('_a'))],
      ['only Advice assertions', response(advice(assertion('_evil')))],
      ['an assertion below something other than an Advice inside the assertion', response(assertion('_a', `<saml:AttributeStatement>${assertion('_evil')}</saml:AttributeStatement>`))],
      ['an assertion inside an Advice inside something else', response(assertion('_a', `<saml:Conditions>${advice(assertion('_evil'))}</saml:Conditions>`))],
      ['the assertion not a child of the Response', response(`<samlp:Extensions>${assertion('_a')}</samlp:Extensions>`)],
    ];
    for (const [label, xml] of cases) assert.match(outcome(xml) ?? '', /^refused: /, label);
  });

  it('on a decrypted assertion (the document as container): the root is the subject, its Advice assertions allowed, others refused', () => {
    const standalone = (body: string): string => body.replace('<saml:Assertion ', '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ');
    const inDocument = (xml: string): string | null => {
      const doc = parseUntrustedXml(xml);
      try {
        return findSubjectAssertion(doc, new ElementIndex(doc))?.getAttribute('ID') ?? null;
      } catch (err) {
        assert.ok(err instanceof AssertionShapeRefused);
        return `refused: ${err.message}`;
      }
    };
    assert.equal(inDocument(standalone(assertion('_root', advice(assertion('_adv'))))), '_root');
    assert.match(inDocument(standalone(assertion('_root', `<saml:AttributeStatement>${assertion('_evil')}</saml:AttributeStatement>`))) ?? '', /^refused: /);
    // The Response element as container: a standalone assertion is not its child.
    assert.match(outcome(standalone(assertion('_root'))) ?? '', /^refused: the Assertion is not a child of the Response/);
  });
});
