import { createHash, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { ExclusiveCanonicalization, ExclusiveCanonicalizationWithComments } from 'xml-crypto';
import { digestHash, signatureHash } from './algorithms.js';
import { ElementIndex, NS, attr, plainText } from './xml.js';

const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const EXC_C14N_WITH_COMMENTS = 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments';
/** As xml-crypto canonicalizes: an unresolved `ds:` prefix means the XML signature namespace. */
const DEFAULT_NS_FOR_PREFIX = { ds: NS.dsig };

/** The signature is there but is not one we accept: the message says why (logs and audit only). */
export class SignatureRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureRefused';
  }
}

interface NamespaceBinding {
  prefix: string;
  namespaceURI: string;
}

/** Element children of `parent`, in order (text between them is ignored; anything else counts). */
function elementChildren(parent: Element): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) if (n.nodeType === 1) out.push(n as Element);
  return out;
}

/** The element children must be exactly these XML-signature elements, in this order (`?` = optional). */
function expectChildren(parent: Element, names: readonly string[]): Element[] {
  const children = elementChildren(parent);
  const out: Element[] = [];
  let i = 0;
  for (const spec of names) {
    const optional = spec.endsWith('?');
    const name = optional ? spec.slice(0, -1) : spec;
    const child = children[i];
    if (child && child.namespaceURI === NS.dsig && child.localName === name) {
      out.push(child);
      i++;
    } else if (!optional) {
      throw new SignatureRefused(`${parent.localName} lacks ${name} where expected`);
    }
  }
  if (i !== children.length) throw new SignatureRefused(`unexpected ${children[i]!.localName} in ${parent.localName}`);
  return out;
}

function algorithmOf(el: Element): string {
  return attr(el, 'Algorithm') ?? '';
}

function base64Of(el: Element, what: string): Buffer {
  const text = plainText(el)?.replace(/\s+/g, '');
  if (!text || !/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) throw new SignatureRefused(`${what} is not base64`);
  return Buffer.from(text, 'base64');
}

/** PrefixList of an `ec:InclusiveNamespaces` child of a canonicalization step (exc-c14n §3). */
function inclusivePrefixes(method: Element): string[] {
  const children = elementChildren(method);
  if (children.length === 0) return [];
  const [only] = children;
  if (children.length > 1 || only!.namespaceURI !== EXC_C14N || only!.localName !== 'InclusiveNamespaces') {
    throw new SignatureRefused(`unexpected content in ${method.localName}`);
  }
  return (attr(only, 'PrefixList') ?? '').split(/\s+/).filter(Boolean);
}

/**
 * Namespaces declared on the ancestors of `el` and in scope there (nearest declaration wins), minus
 * those `el` declares itself or uses as its own prefix: what exc-c14n's InclusiveNamespaces may pull
 * in (the same list xml-crypto's findAncestorNs builds, without an XPath query).
 */
function ancestorNamespaces(el: Element): NamespaceBinding[] {
  const own = new Set<string>([el.prefix ?? '']);
  for (let i = 0; i < el.attributes.length; i++) {
    const a = el.attributes[i]!;
    if (a.name === 'xmlns' || a.name.startsWith('xmlns:')) own.add(a.name.replace(/^xmlns:?/, ''));
  }
  const seen = new Set<string>();
  const out: NamespaceBinding[] = [];
  for (let p = el.parentNode; p && p.nodeType === 1; p = p.parentNode) {
    const attrs = (p as Element).attributes;
    for (let i = 0; i < attrs.length; i++) {
      const a = attrs[i]!;
      if (a.name !== 'xmlns' && !a.name.startsWith('xmlns:')) continue;
      const prefix = a.name.replace(/^xmlns:?/, '');
      if (seen.has(prefix)) continue;
      seen.add(prefix);
      if (a.value !== '' && !own.has(prefix)) out.push({ prefix, namespaceURI: a.value });
    }
  }
  return out;
}

/**
 * Exclusive canonical form of `el`, leaving `omit` (its enveloped signature) out. Works on the
 * document itself — the signature is detached for the moment and put back — except when inherited
 * InclusiveNamespaces declarations must be written onto `el`: the canonicalizer does that by adding
 * attributes, so it then gets a copy (cloning a subtree costs more than canonicalizing it).
 */
function canonicalize(el: Element, algorithm: string, prefixes: string[], omit?: Element): string {
  const inherited = prefixes.length ? ancestorNamespaces(el).filter((ns) => prefixes.includes(ns.prefix)) : [];
  const target = inherited.length ? (el.cloneNode(true) as Element) : el;
  let omitted: ChildNode | null = null;
  let before: ChildNode | null = null;
  if (omit) {
    omitted = target === el ? omit : target.childNodes[Array.prototype.indexOf.call(el.childNodes, omit)]!;
    before = omitted.nextSibling;
    target.removeChild(omitted);
  }
  try {
    const c14n = algorithm === EXC_C14N_WITH_COMMENTS ? new ExclusiveCanonicalizationWithComments() : new ExclusiveCanonicalization();
    return c14n.process(target, { inclusiveNamespacesPrefixList: prefixes, ancestorNamespaces: inherited, defaultNsForPrefix: DEFAULT_NS_FOR_PREFIX });
  } finally {
    if (omitted && target === el) el.insertBefore(omitted, before);
  }
}

/** Exclusive canonical form of `el` (no comments, no inclusive prefixes): to tell whether two parsed copies of an element are the same. */
export function exclusiveCanonicalForm(el: Element): string {
  return canonicalize(el, EXC_C14N, []);
}

const publicKeys = new Map<string, KeyObject>();
const PUBLIC_KEY_CACHE_MAX = 1000;

/** The RSA public key of a registered certificate (PEM), parsed once. */
function publicKeyOf(certificatePem: string): KeyObject | null {
  let key = publicKeys.get(certificatePem);
  if (!key) {
    try {
      key = createPublicKey(certificatePem);
    } catch {
      return null;
    }
    if (publicKeys.size >= PUBLIC_KEY_CACHE_MAX) publicKeys.clear();
    publicKeys.set(certificatePem, key);
  }
  return key.asymmetricKeyType === 'rsa' ? key : null;
}

export interface EnvelopedSignatureOptions {
  /** The tenant's registered IdP certificates (PEM). Nothing in the message (KeyInfo) is ever trusted. */
  certificates: readonly string[];
  /** RSA-SHA1 and SHA-1 digests only when the tenant opted in (S-8). */
  allowSha1: boolean;
  /** The index of `element`'s document, when the caller has one already (else the document is walked). */
  index?: ElementIndex;
}

/**
 * Verifies the enveloped XML signature of `element` (SAML core §5.4) on the parsed document, and
 * returns the exact canonical XML the signature covers — the only form of `element` to trust. Returns
 * null when `element` carries no signature; throws SignatureRefused for anything else that does not
 * verify. Deliberately narrower than XML-DSig, as SAML profiles it:
 *
 * - exactly one `ds:Signature`, a direct child of `element`, holding SignedInfo, SignatureValue and an
 *   optional KeyInfo (ignored) and nothing else (no ds:Object);
 * - SignedInfo: exclusive c14n, an RSA SignatureMethod (RSA-SHA256/384/512; RSA-SHA1 only when allowed),
 *   exactly one Reference;
 * - the Reference names `element` itself (`#` + its ID), whose ID no other element of the document
 *   carries (ID, Id or id), with exactly the transforms enveloped-signature then exclusive c14n, and a
 *   SHA-256/384/512 digest (SHA-1 only when allowed);
 * - the SignatureValue verifies over the canonical SignedInfo with one of `certificates` — checked
 *   before the referenced element is canonicalized and digested.
 *
 * Canonicalization is xml-crypto's (the same code node-saml relies on); the rest needs no XPath.
 */
export function verifyEnvelopedSignature(element: Element, options: EnvelopedSignatureOptions): string | null {
  const signatures = elementChildren(element).filter((c) => c.namespaceURI === NS.dsig && c.localName === 'Signature');
  if (signatures.length === 0) return null;
  if (signatures.length > 1) throw new SignatureRefused(`more than one Signature on ${element.localName}`);
  const signature = signatures[0]!;
  const [signedInfo, signatureValue] = expectChildren(signature, ['SignedInfo', 'SignatureValue', 'KeyInfo?']) as [Element, Element];
  const [c14nMethod, signatureMethod, reference] = expectChildren(signedInfo, ['CanonicalizationMethod', 'SignatureMethod', 'Reference']) as [Element, Element, Element];

  const signedInfoC14n = algorithmOf(c14nMethod);
  if (signedInfoC14n !== EXC_C14N && signedInfoC14n !== EXC_C14N_WITH_COMMENTS) throw new SignatureRefused(`canonicalization ${signedInfoC14n} not supported`);
  const signatureAlg = signatureHash(algorithmOf(signatureMethod), options.allowSha1);
  if (!signatureAlg) throw new SignatureRefused(`signature algorithm ${algorithmOf(signatureMethod)} not accepted`);
  if (elementChildren(signatureMethod).length > 0) throw new SignatureRefused('unexpected content in SignatureMethod');

  // The Reference: this element, by a unique ID.
  const id = attr(element, 'ID');
  if (!id) throw new SignatureRefused(`${element.localName} has no ID`);
  if (attr(reference, 'URI') !== `#${id}`) throw new SignatureRefused(`the signature does not reference its ${element.localName}`);
  const holders = (options.index ?? new ElementIndex(element.ownerDocument)).withId(id);
  if (holders.length !== 1 || holders[0] !== element) throw new SignatureRefused(`ID ${id.slice(0, 80)} is not unique`);
  const [transforms, digestMethod, digestValue] = expectChildren(reference, ['Transforms', 'DigestMethod', 'DigestValue']) as [Element, Element, Element];
  const steps = expectChildren(transforms, ['Transform', 'Transform']);
  const [enveloped, c14n] = steps as [Element, Element];
  // (The enveloped-signature transform takes no parameters; xml-crypto's signer still writes an
  // InclusiveNamespaces element into it, which means nothing and is ignored, as xml-crypto does.)
  if (algorithmOf(enveloped) !== ENVELOPED) throw new SignatureRefused('first transform is not enveloped-signature');
  const referenceC14n = algorithmOf(c14n);
  if (referenceC14n !== EXC_C14N && referenceC14n !== EXC_C14N_WITH_COMMENTS) throw new SignatureRefused(`transform ${referenceC14n} not supported`);
  const digestAlg = digestHash(algorithmOf(digestMethod), options.allowSha1);
  if (!digestAlg) throw new SignatureRefused(`digest algorithm ${algorithmOf(digestMethod)} not accepted`);
  if (elementChildren(digestMethod).length > 0) throw new SignatureRefused('unexpected content in DigestMethod');

  // First the signature over the canonical SignedInfo (small, whatever the element holds), by a
  // registered certificate only: a stranger without a signature of this IdP never gets the element
  // itself canonicalized and digested, the costly part for a large or deep element.
  const expected = base64Of(digestValue, 'DigestValue');
  const signedBytes = Buffer.from(canonicalize(signedInfo, signedInfoC14n, inclusivePrefixes(c14nMethod)), 'utf8');
  const value = base64Of(signatureValue, 'SignatureValue');
  const verified = options.certificates.some((pem) => {
    const key = publicKeyOf(pem);
    if (!key) return false;
    try {
      return verify(signatureAlg, signedBytes, key, value);
    } catch {
      return false;
    }
  });
  if (!verified) throw new SignatureRefused('signature value does not verify with a registered certificate');

  // Then the digest of the element without its signature. A same-document reference drops comments
  // (XML-DSig 4.4.3.3), whichever exc-c14n variant the transform names.
  const canonical = canonicalize(element, EXC_C14N, inclusivePrefixes(c14n), signature);
  const actual = createHash(digestAlg).update(canonical, 'utf8').digest();
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) throw new SignatureRefused('digest mismatch');
  return canonical;
}
