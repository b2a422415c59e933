/**
 * XML Signature Wrapping (XSW1 … XSW8), after Somorovsky et al., "On Breaking SAML: Be Whoever You
 * Want to Be" (USENIX Security 2012), in the shapes the SAML Raider Burp extension generates.
 *
 * Every attack starts from a response genuinely signed by a.example's IdP for emp-001 and adds an
 * evil assertion for emp-999 (the victim) that no signature covers, while the genuine signature
 * still verifies over the moved original. A gateway that checks "some valid signature exists" and
 * then reads the first (or last) assertion logs the attacker in as the victim.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { buildSamlResponseXml, type SigningOptions } from '../../../src/demo/saml-response.js';
import { NS } from '../../../src/sso/saml/xml.js';
import { idps } from '../../helpers/keys.js';
import { b64, beginLogin, createGateway, errorCodeOf, lastAuditReason, postAcs, responseSpec, sessionCookieOf, signed, type Gateway } from '../../helpers/gateway.js';

const DOMAIN = 'a.example';
const LEGIT = 'emp-001';
const VICTIM = 'emp-999';
const WRAPPING_REASONS = ['multiple_assertions', 'signature_invalid'];

const evilId = (): string => `_evil_${randomBytes(8).toString('hex')}`;
const parse = (xml: string): Document => new DOMParser().parseFromString(xml, 'text/xml');
const serialize = (doc: Document): string => new XMLSerializer().serializeToString(doc);

function children(parent: Element, ns: string, localName: string): Element[] {
  return Array.from(parent.childNodes).filter((n): n is Element => n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === localName);
}

function child(parent: Element, ns: string, localName: string): Element {
  const [found] = children(parent, ns, localName);
  assert.ok(found, `${parent.localName} has a ${localName} child`);
  return found;
}

/** A deep copy of `el` without its own (enveloped) ds:Signature. */
function withoutSignature<T extends Element>(el: T): T {
  const copy = el.cloneNode(true) as T;
  for (const sig of children(copy, NS.dsig, 'Signature')) copy.removeChild(sig);
  return copy;
}

/** Turns an assertion (in place) into the attacker's: a new ID and the victim's NameID. */
function makeEvil(assertion: Element): Element {
  assertion.setAttribute('ID', evilId());
  const nameId = child(child(assertion, NS.assertion, 'Subject'), NS.assertion, 'NameID');
  while (nameId.firstChild) nameId.removeChild(nameId.firstChild);
  nameId.appendChild(nameId.ownerDocument.createTextNode(VICTIM));
  return assertion;
}

/** The IDs referenced by the ds:Signatures of `xml` that verify with a.example's registered certificate. */
function verifyingReferences(xml: string): string[] {
  const doc = parse(xml);
  const ok: string[] = [];
  for (const node of Array.from(doc.getElementsByTagNameNS(NS.dsig, 'Signature'))) {
    const sig = new SignedXml({ publicCert: idps.a.certificate, getCertFromKeyInfo: () => null });
    try {
      sig.loadSignature(node);
      if (sig.checkSignature(xml)) ok.push(...sig.getReferences().map((r) => r.uri?.replace(/^#/, '') ?? ''));
    } catch {
      // A signature broken by the wrapping simply does not count.
    }
  }
  return ok;
}

interface Wrapped {
  xml: string;
  /** ID of the element the genuine signature covers (it must still verify after wrapping). */
  signedId: string;
}

/**
 * One attack: `signs` lists what the genuine IdP signed (one test each); `wrap` rearranges the
 * parsed document and returns the ID of the genuinely signed element the attack relies on.
 */
interface Xsw {
  name: string;
  signs: Array<SigningOptions['sign']>;
  wrap: (doc: Document) => string;
  /** The audit reason this variant produced when these tests were written. */
  observed: string;
  /** Extra variants beyond the eight whose signature a standalone xml-crypto check refuses too (digest
   * mismatch, duplicate ID): left out of the "the attacks are real" check. */
  tampered?: boolean;
}

const response = (doc: Document): Element => doc.documentElement;
const assertionOf = (doc: Document): Element => child(response(doc), NS.assertion, 'Assertion');
const signatureOf = (el: Element): Element => child(el, NS.dsig, 'Signature');

const XSW: Xsw[] = [
  {
    // Evil Response wrapping: the original Response (signature removed) travels inside the outer
    // Response's Signature; the outer Response gets a new ID and the evil assertion.
    name: 'XSW1: original Response inside the Signature of an evil Response',
    signs: ['response', 'both'],
    wrap: (doc) => {
      const outer = response(doc);
      const signedId = outer.getAttribute('ID')!;
      const original = withoutSignature(outer);
      signatureOf(outer).appendChild(original);
      outer.setAttribute('ID', evilId());
      const outerAssertion = assertionOf(doc);
      for (const s of children(outerAssertion, NS.dsig, 'Signature')) outerAssertion.removeChild(s);
      makeEvil(outerAssertion);
      return signedId;
    },
    observed: 'multiple_assertions',
  },
  {
    // Same, but the original Response is a detached sibling placed before the Signature.
    name: 'XSW2: original Response as a detached sibling before the Signature of an evil Response',
    signs: ['response', 'both'],
    wrap: (doc) => {
      const outer = response(doc);
      const signedId = outer.getAttribute('ID')!;
      const original = withoutSignature(outer);
      outer.insertBefore(original, signatureOf(outer));
      outer.setAttribute('ID', evilId());
      const outerAssertion = assertionOf(doc);
      for (const s of children(outerAssertion, NS.dsig, 'Signature')) outerAssertion.removeChild(s);
      makeEvil(outerAssertion);
      return signedId;
    },
    observed: 'multiple_assertions',
  },
  {
    // Evil (unsigned) assertion inserted as the Response's first assertion, before the signed one.
    name: 'XSW3: evil assertion before the original signed assertion',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const evil = makeEvil(withoutSignature(original));
      response(doc).insertBefore(evil, original);
      return original.getAttribute('ID')!;
    },
    observed: 'multiple_assertions',
  },
  {
    // The original signed assertion becomes a child of the evil assertion, which takes its place.
    name: 'XSW4: original signed assertion inside the evil assertion',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const evil = makeEvil(withoutSignature(original));
      response(doc).replaceChild(evil, original);
      evil.appendChild(original);
      return original.getAttribute('ID')!;
    },
    observed: 'multiple_assertions',
  },
  {
    // The evil assertion keeps a copy of the signature (which references the original's ID); the
    // original, without its signature, is appended as the Response's last child.
    name: 'XSW5: evil assertion keeps the signature copy, original appended as a sibling',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const signedId = original.getAttribute('ID')!;
      const evil = makeEvil(original.cloneNode(true) as Element);
      response(doc).replaceChild(evil, original);
      response(doc).appendChild(withoutSignature(original));
      return signedId;
    },
    observed: 'multiple_assertions',
  },
  {
    // The original (without its signature) moves inside the Signature of the evil assertion copy.
    name: 'XSW6: original assertion inside the Signature of the evil assertion',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const signedId = original.getAttribute('ID')!;
      const evil = makeEvil(original.cloneNode(true) as Element);
      response(doc).replaceChild(evil, original);
      signatureOf(evil).appendChild(withoutSignature(original));
      return signedId;
    },
    observed: 'multiple_assertions',
  },
  {
    // The original signed assertion hidden in an <Extensions> element (no namespace, as SAML
    // Raider emits it) before the evil, unsigned assertion.
    name: 'XSW7: original signed assertion inside <Extensions>, evil assertion in its place',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const evil = makeEvil(withoutSignature(original));
      const extensions = doc.createElement('Extensions');
      response(doc).replaceChild(evil, original);
      response(doc).insertBefore(extensions, evil);
      extensions.appendChild(original);
      return original.getAttribute('ID')!;
    },
    observed: 'multiple_assertions',
  },
  {
    // Same with a schema-valid samlp:Extensions (after Issuer, before Status).
    name: 'XSW7b: original signed assertion inside samlp:Extensions, evil assertion in its place',
    signs: ['assertion'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const evil = makeEvil(withoutSignature(original));
      const extensions = doc.createElementNS(NS.protocol, 'samlp:Extensions');
      response(doc).replaceChild(evil, original);
      response(doc).insertBefore(extensions, child(response(doc), NS.protocol, 'Status'));
      extensions.appendChild(original);
      return original.getAttribute('ID')!;
    },
    observed: 'multiple_assertions',
  },
  {
    // The original (without its signature) inside a ds:Object of the evil assertion's Signature.
    name: 'XSW8: original assertion inside a ds:Object in the Signature of the evil assertion',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const signedId = original.getAttribute('ID')!;
      const evil = makeEvil(original.cloneNode(true) as Element);
      response(doc).replaceChild(evil, original);
      const object = doc.createElementNS(NS.dsig, 'ds:Object');
      object.appendChild(withoutSignature(original));
      signatureOf(evil).appendChild(object);
      return signedId;
    },
    observed: 'multiple_assertions',
  },
  {
    // Not one of the eight: no second copy at all. The evil assertion claims the signed ID and
    // carries the genuine signature, so only the digest can catch it.
    name: 'ID reuse: a single evil assertion with the signed ID and the genuine signature',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const signedId = original.getAttribute('ID')!;
      makeEvil(original).setAttribute('ID', signedId);
      return signedId;
    },
    observed: 'signature_invalid',
    tampered: true,
  },
  {
    // Not one of the eight: the evil assertion and the moved original share the signed ID.
    name: 'duplicate ID: evil assertion with the signed ID before the original',
    signs: ['assertion'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const signedId = original.getAttribute('ID')!;
      const evil = makeEvil(withoutSignature(original));
      evil.setAttribute('ID', signedId);
      response(doc).insertBefore(evil, original);
      return signedId;
    },
    observed: 'multiple_assertions',
    tampered: true,
  },
  {
    // saml:Advice (SAML core 2.6.1) may carry other assertions; the subject's assertion is the outer one.
    // Here the evil assertion is the outer one and holds the genuine signed assertion as its Advice.
    name: 'Advice wrapping: evil outer assertion holding the genuine signed assertion in its Advice',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const evil = makeEvil(withoutSignature(original));
      response(doc).replaceChild(evil, original);
      const advice = doc.createElementNS(NS.assertion, 'saml:Advice');
      advice.appendChild(original);
      evil.insertBefore(advice, child(evil, NS.assertion, 'AuthnStatement'));
      return original.getAttribute('ID')!;
    },
    observed: 'signature_invalid',
  },
  {
    // The genuine signed assertion untouched; an evil assertion in an Advice placed before it, directly
    // under the Response (where no Advice belongs), so that "the first assertion" is the evil one.
    name: 'Advice beside: evil assertion in an Advice under the Response, before the genuine one',
    signs: ['assertion', 'both'],
    wrap: (doc) => {
      const original = assertionOf(doc);
      const advice = doc.createElementNS(NS.assertion, 'saml:Advice');
      advice.appendChild(makeEvil(withoutSignature(original)));
      response(doc).insertBefore(advice, original);
      return original.getAttribute('ID')!;
    },
    observed: 'multiple_assertions',
  },
];

describe('SAML ACS: XML Signature Wrapping (XSW1 … XSW8)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
    assert.equal(gw.services.config.saml.secondGate, true, 'every case here runs with the second gate (passport-saml) on');
    await gw.services.members.save(DOMAIN, {
      id: 'm-a-victim',
      account: 'victim@a.example',
      name: 'Victim',
      externalKey: VICTIM,
      role: 'member',
      status: 'in_use',
    });
  });
  after(async () => gw.close());

  /** A fresh login and the genuinely signed response for emp-001 answering it. */
  async function genuine(sign: SigningOptions['sign'], nameId = LEGIT): Promise<{ xml: string; relayState: string }> {
    const login = await beginLogin(gw, DOMAIN);
    const xml = signed(buildSamlResponseXml(responseSpec(gw, DOMAIN, idps.a, login.requestId, nameId)), idps.a, sign);
    return { xml, relayState: login.relayState };
  }

  function wrap(xml: string, attack: Xsw): Wrapped {
    const doc = parse(xml);
    const signedId = attack.wrap(doc);
    return { xml: serialize(doc), signedId };
  }

  async function loginAs(xml: string, relayState: string, memberId: string): Promise<void> {
    const res = await postAcs(gw, DOMAIN, b64(xml), relayState);
    assert.equal(res.status, 303, res.text);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie);
    const me = await gw.http.get('/session').set('Cookie', cookie);
    assert.equal(me.status, 200);
    assert.equal(me.body.member.id, memberId);
  }

  describe('positive controls', () => {
    // Response-only signatures are accepted (the SAML profile allows them), so they are a positive control too.
    for (const sign of ['assertion', 'response', 'both'] as const) {
      it(`an unmodified genuine response (signed: ${sign}) logs emp-001 in`, async () => {
        const { xml, relayState } = await genuine(sign);
        await loginAs(xml, relayState, 'm-a-active');
      });
    }

    it('the victim exists and can log in with a response genuinely signed for emp-999', async () => {
      const { xml, relayState } = await genuine('both', VICTIM);
      await loginAs(xml, relayState, 'm-a-victim');
    });

    it('the wrapping helpers keep the genuine signature verifiable (the attacks are real)', async () => {
      for (const attack of XSW.filter((a) => !a.tampered)) {
        for (const sign of attack.signs) {
          const { xml } = await genuine(sign);
          const wrapped = wrap(xml, attack);
          assert.ok(verifyingReferences(wrapped.xml).includes(wrapped.signedId), `${attack.name} (${sign}): signature over ${wrapped.signedId} still verifies`);
          const doc = parse(wrapped.xml);
          const nameIds = Array.from(doc.getElementsByTagNameNS(NS.assertion, 'NameID')).map((n) => n.textContent);
          assert.ok(nameIds.includes(LEGIT) && nameIds.includes(VICTIM), `${attack.name} (${sign}): both the signed and the evil assertion are present`);
        }
      }
    });
  });

  for (const attack of XSW) {
    for (const sign of attack.signs) {
      it(`refuses ${attack.name} [genuine signature: ${sign}] (audit reason: ${attack.observed})`, async () => {
        const { xml, relayState } = await genuine(sign);
        const wrapped = wrap(xml, attack);
        const res = await postAcs(gw, DOMAIN, b64(wrapped.xml), relayState);
        assert.ok(res.status < 500, `never 5xx (got ${res.status})`);
        assert.equal(res.status, 400, res.text);
        assert.equal(errorCodeOf(res), 'saml_response_invalid');
        assert.equal(sessionCookieOf(res), undefined, 'no session cookie');
        const [latest] = await gw.services.audit.list(DOMAIN, 1);
        assert.equal(latest?.requestId, res.headers['x-request-id'], 'the latest audit entry is this refusal');
        const reason = await lastAuditReason(gw, DOMAIN);
        assert.ok(reason !== undefined && WRAPPING_REASONS.includes(reason), `reason ${String(reason)}`);
        const session = await gw.http.get('/session');
        assert.equal(session.status, 401);
      });
    }
  }

  it('still serves after every variant (GET /healthz 200) and no victim session was ever created', async () => {
    const health = await gw.http.get('/healthz');
    assert.equal(health.status, 200);
    const trail = await gw.services.audit.list(DOMAIN, 1000);
    const victimLogins = trail.filter((e) => e.type === 'login.succeeded' && e.actor === 'member:m-a-victim');
    assert.equal(victimLogins.length, 1, 'only the positive control logged the victim in');
  });
});
