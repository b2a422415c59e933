import { NS, descendants, type ElementIndex } from './xml.js';

/** The document holds assertions in a shape no single-subject Response has: the message says where (logs and audit). */
export class AssertionShapeRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AssertionShapeRefused';
  }
}

const isNamed = (el: Element, ns: string, localName: string): boolean => el.namespaceURI === ns && el.localName === localName;

function hasAncestor(el: Element, test: (ancestor: Element) => boolean): boolean {
  for (let p = el.parentNode; p && p.nodeType === 1; p = p.parentNode) if (test(p as Element)) return true;
  return false;
}

/**
 * The subject's assertion of a Response: the one Assertion of the whole document outside any
 * saml:Advice, a direct child of the Response (every classic signature-wrapping shape needs a second
 * copy somewhere). Assertions inside that assertion's Advice (SAML core 2.6.1: evidence the IdP relied
 * on; genuine IdPs send them) are not a second subject assertion and are never read as one; an Advice
 * anywhere else, or an assertion below anything but an Advice, is refused. Returns null when the
 * document holds no Assertion at all; throws AssertionShapeRefused for every other shape.
 *
 * `response` is where the subject assertion must sit: the Response element, or — for the plaintext of
 * an EncryptedAssertion (encrypted-assertion.ts) — the decrypted document, whose root it must be.
 */
export function findSubjectAssertion(response: Element | Document, index: ElementIndex): Element | null {
  const all = descendants(index, NS.assertion, 'Assertion');
  if (all.length === 0) return null;
  const subjects = all.filter((a) => !hasAncestor(a, (p) => isNamed(p, NS.assertion, 'Advice')));
  if (subjects.length === 0) throw new AssertionShapeRefused('no Assertion outside an Advice');
  if (subjects.length > 1) throw new AssertionShapeRefused(`${subjects.length} Assertion elements outside Advice`);
  const subject = subjects[0]!;
  if (subject.parentNode !== response) throw new AssertionShapeRefused(response.nodeType === 9 ? 'the decrypted Assertion is not the root' : 'the Assertion is not a child of the Response');
  // An Advice is a child of an assertion (SAML core 2.3.3): of the subject's, or of one in its Advice.
  for (const advice of descendants(index, NS.assertion, 'Advice')) {
    const parent = advice.parentNode;
    if (!(parent && parent.nodeType === 1 && isNamed(parent as Element, NS.assertion, 'Assertion')) || !hasAncestor(advice, (p) => p === subject)) {
      throw new AssertionShapeRefused('an Advice outside the assertion');
    }
  }
  for (const a of all) {
    const parent = a.parentNode;
    if (a !== subject && !(parent && parent.nodeType === 1 && isNamed(parent as Element, NS.assertion, 'Advice'))) {
      throw new AssertionShapeRefused('an Assertion inside something other than an Advice');
    }
  }
  return subject;
}
