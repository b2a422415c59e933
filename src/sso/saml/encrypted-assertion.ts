import { constants, createDecipheriv, createHash, privateDecrypt, publicEncrypt, timingSafeEqual, type KeyObject } from 'node:crypto';
import { AppError, type SamlRejectReason } from '../../errors/index.js';
import type { SpDecryptionKey } from './options.js';
import { AssertionShapeRefused, findSubjectAssertion } from './subject-assertion.js';
import { ElementIndex, NS, XmlRefused, attr, childElements, descendants, parseUntrustedXml } from './xml.js';

/**
 * Decrypts a SAML EncryptedAssertion (XML Encryption 1.1, as SAML core §2.3.4 profiles it) with the
 * SP's configured keys, on the DOM the ACS parsed once — with node:crypto, not xml-encryption (which
 * node-saml, the second gate, uses): xml-encryption 3.x/4.x has no xmlenc11#rsa-oaep, reads SHA-256 from
 * a non-standard DigestMethod URI only, forces MGF1 to the OAEP digest (wrong for rsa-oaep-mgf1p with
 * SHA-256), looks for the key with `//` XPath anywhere in a re-parsed copy, and does not check GCM tag
 * or CBC padding lengths. This module accepts exactly what IdPs send and nothing else:
 *
 * - key transport RSA-OAEP: `xmlenc#rsa-oaep-mgf1p` (MGF1-SHA1) or `xmlenc11#rsa-oaep` (MGF1 from
 *   `xenc11:MGF`, SHA-1 by default), OAEP digest SHA-1 (default), SHA-256, SHA-384 or SHA-512. RSA 1.5
 *   is refused (Bleichenbacher);
 * - content AES-128/256-GCM or AES-128/256-CBC (also AES-192); no 3DES;
 * - the EncryptedKey inside EncryptedData's KeyInfo (Entra ID, ADFS, Okta) or beside EncryptedData in
 *   the EncryptedAssertion (Shibboleth); at most MAX_ENCRYPTED_KEYS of them, each tried with each SP key.
 *
 * Every failure that depends on the ciphertext — unknown key, tampered key or content, bad OAEP encoding
 * or padding, wrong tag — is DecryptionRefused('decryption_failed'), and the ACS answers all of them with
 * the same public code and status, so the answer is no padding or OAEP oracle (only the private detail,
 * for logs and audit, says which). `encryption_algorithm_unsupported` depends on the algorithm URIs alone.
 * Nothing about the key (nor the plaintext) is put in a message.
 */

export const XENC = 'http://www.w3.org/2001/04/xmlenc#';
const XENC11 = 'http://www.w3.org/2009/xmlenc11#';

const RSA_OAEP_MGF1P = `${XENC}rsa-oaep-mgf1p`;
const RSA_OAEP_11 = `${XENC11}rsa-oaep`;

type Hash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const DIGESTS = new Map<string, Hash>([
  ['http://www.w3.org/2000/09/xmldsig#sha1', 'sha1'],
  [`${XENC}sha256`, 'sha256'],
  ['http://www.w3.org/2001/04/xmldsig-more#sha384', 'sha384'],
  [`${XENC}sha512`, 'sha512'],
  // What xml-encryption (and so samlify) writes for SHA-256/512, though XML-DSig defines no such URIs.
  ['http://www.w3.org/2000/09/xmldsig#sha256', 'sha256'],
  ['http://www.w3.org/2000/09/xmldsig#sha512', 'sha512'],
]);

const MGFS = new Map<string, Hash>([
  [`${XENC11}mgf1sha1`, 'sha1'],
  [`${XENC11}mgf1sha256`, 'sha256'],
  [`${XENC11}mgf1sha384`, 'sha384'],
  [`${XENC11}mgf1sha512`, 'sha512'],
]);

interface ContentCipher {
  cipher: 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';
  keyLength: number;
  ivLength: number;
  gcm: boolean;
}

const CONTENT = new Map<string, ContentCipher>([
  [`${XENC}aes128-cbc`, { cipher: 'aes-128-cbc', keyLength: 16, ivLength: 16, gcm: false }],
  [`${XENC}aes192-cbc`, { cipher: 'aes-192-cbc', keyLength: 24, ivLength: 16, gcm: false }],
  [`${XENC}aes256-cbc`, { cipher: 'aes-256-cbc', keyLength: 32, ivLength: 16, gcm: false }],
  [`${XENC11}aes128-gcm`, { cipher: 'aes-128-gcm', keyLength: 16, ivLength: 12, gcm: true }],
  [`${XENC11}aes192-gcm`, { cipher: 'aes-192-gcm', keyLength: 24, ivLength: 12, gcm: true }],
  [`${XENC11}aes256-gcm`, { cipher: 'aes-256-gcm', keyLength: 32, ivLength: 12, gcm: true }],
]);

const GCM_TAG = 16;
/** EncryptedKeys looked at in one EncryptedAssertion (one per recipient; IdPs send one). */
const MAX_ENCRYPTED_KEYS = 2;
const ELEMENT_TYPE = `${XENC}Element`;

export type DecryptionRefusedReason = 'decryption_failed' | 'encryption_algorithm_unsupported';

/** The EncryptedAssertion cannot be decrypted; `message` is for logs and audit (no key material). */
export class DecryptionRefused extends Error {
  constructor(
    readonly reason: DecryptionRefusedReason,
    message: string,
  ) {
    super(message);
    this.name = 'DecryptionRefused';
  }
}

export interface DecryptedAssertion {
  /** The plaintext: the serialized saml:Assertion element (still untrusted; parse it with the limits). */
  xml: string;
  /** Which SP key opened it (logs, and the key handed to the second gate). */
  key: SpDecryptionKey;
  keyTransport: string;
  /** The DigestMethod URI as sent (absent: SHA-1). */
  digestUri: string;
  /** The MGF1 digest that opened the key. */
  mgfDigest: Hash;
  content: string;
  /** Index of the EncryptedKey that opened (node-saml looks at the first only). */
  encryptedKeyIndex: number;
  /** The EncryptedKey's CipherValue text as posted. */
  wrappedKeyText: string;
  /** The AES content key: only to re-wrap it for the second gate (nodeSamlResponse); never logged. */
  contentKey: Buffer;
}

function only(parent: Element, ns: string, name: string, what: string): Element {
  const found = childElements(parent, ns, name);
  if (found.length !== 1) throw new DecryptionRefused('decryption_failed', `${found.length} ${what}`);
  return found[0]!;
}

function cipherValue(parent: Element, what: string): Buffer {
  return cipherValueText(parent, what).bytes;
}

function cipherValueText(parent: Element, what: string): { bytes: Buffer; text: string } {
  const data = only(parent, XENC, 'CipherData', `CipherData in ${what}`);
  const value = only(data, XENC, 'CipherValue', `CipherValue in ${what}`);
  let text = '';
  for (let n = value.firstChild; n; n = n.nextSibling) {
    if (n.nodeType !== 3) throw new DecryptionRefused('decryption_failed', `${what} CipherValue holds more than text`);
    text += n.nodeValue ?? '';
  }
  const compact = text.replace(/[\r\n\t ]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) throw new DecryptionRefused('decryption_failed', `${what} CipherValue is not base64`);
  return { bytes: Buffer.from(compact, 'base64'), text };
}

interface KeyTransport {
  algorithm: string;
  digestUri: string;
  oaepDigest: Hash;
  mgfDigest: Hash;
  label?: Buffer;
  cipher: Buffer;
  /** The CipherValue text exactly as posted (to find it again in the response, for the second gate). */
  cipherText: string;
}

function readKeyTransport(encryptedKey: Element): KeyTransport {
  const method = only(encryptedKey, XENC, 'EncryptionMethod', 'EncryptionMethod in EncryptedKey');
  const algorithm = attr(method, 'Algorithm') ?? '';
  if (algorithm !== RSA_OAEP_MGF1P && algorithm !== RSA_OAEP_11) throw new DecryptionRefused('encryption_algorithm_unsupported', `key transport ${algorithm.slice(0, 120)}`);
  const digests = childElements(method, NS.dsig, 'DigestMethod');
  if (digests.length > 1) throw new DecryptionRefused('decryption_failed', 'more than one DigestMethod');
  const digestUri = digests.length ? (attr(digests[0], 'Algorithm') ?? '') : 'http://www.w3.org/2000/09/xmldsig#sha1';
  const oaepDigest = DIGESTS.get(digestUri);
  if (!oaepDigest) throw new DecryptionRefused('encryption_algorithm_unsupported', `OAEP digest ${digestUri.slice(0, 120)}`);
  const mgfs = childElements(method, XENC11, 'MGF');
  if (mgfs.length > 1 || (mgfs.length && algorithm === RSA_OAEP_MGF1P)) throw new DecryptionRefused('decryption_failed', 'unexpected MGF');
  const mgfUri = mgfs.length ? (attr(mgfs[0], 'Algorithm') ?? '') : `${XENC11}mgf1sha1`;
  const mgfDigest = MGFS.get(mgfUri);
  if (!mgfDigest) throw new DecryptionRefused('encryption_algorithm_unsupported', `MGF ${mgfUri.slice(0, 120)}`);
  const params = childElements(method, XENC, 'OAEPparams');
  if (params.length > 1) throw new DecryptionRefused('decryption_failed', 'more than one OAEPparams');
  const label = params.length ? Buffer.from((params[0]!.textContent ?? '').replace(/\s/g, ''), 'base64') : undefined;
  const { bytes, text } = cipherValueText(encryptedKey, 'EncryptedKey');
  return { algorithm, digestUri, oaepDigest, mgfDigest, label, cipher: bytes, cipherText: text };
}

function mgf1(hash: Hash, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let produced = 0;
  for (let counter = 0; produced < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = createHash(hash).update(seed).update(c).digest();
    out.push(block);
    produced += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/**
 * RSAES-OAEP decryption (RFC 8017 §7.1.2) when the MGF1 digest differs from the OAEP digest, which
 * node:crypto cannot express: the raw RSA result is decoded here. Every check runs whatever the earlier
 * ones found, and all failures look alike.
 */
function oaepDecodeSplit(key: KeyObject, cipher: Buffer, oaepDigest: Hash, mgfDigest: Hash, label: Buffer): Buffer | null {
  const em = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, cipher);
  const hLen = createHash(oaepDigest).digest().length;
  const k = em.length;
  if (k < 2 * hLen + 2) return null;
  const maskedSeed = em.subarray(1, 1 + hLen);
  const maskedDb = em.subarray(1 + hLen);
  const seedMask = mgf1(mgfDigest, maskedDb, hLen);
  const seed = Buffer.alloc(hLen);
  for (let i = 0; i < hLen; i++) seed[i] = maskedSeed[i]! ^ seedMask[i]!;
  const dbMask = mgf1(mgfDigest, seed, maskedDb.length);
  const db = Buffer.alloc(maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ dbMask[i]!;
  let bad = em[0]! !== 0 ? 1 : 0;
  bad |= timingSafeEqual(db.subarray(0, hLen), createHash(oaepDigest).update(label).digest()) ? 0 : 1;
  let separator = -1;
  for (let i = hLen; i < db.length; i++) {
    const byte = db[i]!;
    if (separator < 0 && byte === 1) separator = i;
    else if (separator < 0 && byte !== 0) bad = 1;
  }
  if (bad || separator < 0) return null;
  return db.subarray(separator + 1);
}

/** The content key and the MGF1 digest that opened it, or null when this SP key does not open this EncryptedKey. */
function unwrap(key: KeyObject, transport: KeyTransport): { contentKey: Buffer; mgf: Hash } | null {
  const label = transport.label ?? Buffer.alloc(0);
  const attempt = (mgf: Hash): { contentKey: Buffer; mgf: Hash } | null => {
    try {
      if (mgf === transport.oaepDigest) {
        const contentKey = privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: transport.oaepDigest, ...(label.length ? { oaepLabel: label } : {}) }, transport.cipher);
        return { contentKey, mgf };
      }
      const contentKey = oaepDecodeSplit(key, transport.cipher, transport.oaepDigest, mgf, label);
      return contentKey ? { contentKey, mgf } : null;
    } catch {
      return null;
    }
  };
  const first = attempt(transport.mgfDigest);
  if (first) return first;
  // rsa-oaep-mgf1p fixes MGF1-SHA1, but xml-encryption (samlify …) masks with the OAEP digest: accept both.
  if (transport.algorithm === RSA_OAEP_MGF1P && transport.oaepDigest !== 'sha1') return attempt(transport.oaepDigest);
  return null;
}

function decryptContent(content: ContentCipher, key: Buffer, data: Buffer): Buffer | null {
  if (key.length !== content.keyLength) return null;
  const minimum = content.ivLength + (content.gcm ? GCM_TAG : 16);
  if (data.length < minimum || (!content.gcm && (data.length - content.ivLength) % 16 !== 0)) return null;
  try {
    const iv = data.subarray(0, content.ivLength);
    if (content.gcm) {
      const decipher = createDecipheriv(content.cipher as 'aes-256-gcm', key, iv, { authTagLength: GCM_TAG });
      decipher.setAuthTag(data.subarray(data.length - GCM_TAG));
      return Buffer.concat([decipher.update(data.subarray(content.ivLength, data.length - GCM_TAG)), decipher.final()]);
    }
    // XML Encryption's padding: only the last byte (1 … 16) counts; the others may be anything.
    const decipher = createDecipheriv(content.cipher, key, iv);
    decipher.setAutoPadding(false);
    const plain = Buffer.concat([decipher.update(data.subarray(content.ivLength)), decipher.final()]);
    const pad = plain[plain.length - 1] ?? 0;
    if (pad < 1 || pad > 16 || pad > plain.length) return null;
    return plain.subarray(0, plain.length - pad);
  } catch {
    return null;
  }
}

/**
 * Decrypts `encryptedAssertion` (a saml:EncryptedAssertion element) with the first of `keys` that opens
 * one of its EncryptedKeys. Throws DecryptionRefused when the shape or an algorithm is not one IdPs
 * use, or no key opens it.
 */
export function decryptAssertion(encryptedAssertion: Element, keys: readonly SpDecryptionKey[]): DecryptedAssertion {
  const data = only(encryptedAssertion, XENC, 'EncryptedData', 'EncryptedData in EncryptedAssertion');
  const type = attr(data, 'Type');
  if (type !== null && type !== ELEMENT_TYPE) throw new DecryptionRefused('decryption_failed', 'EncryptedData Type is not Element');
  const method = only(data, XENC, 'EncryptionMethod', 'EncryptionMethod in EncryptedData');
  const contentUri = attr(method, 'Algorithm') ?? '';
  const content = CONTENT.get(contentUri);
  if (!content) throw new DecryptionRefused('encryption_algorithm_unsupported', `content ${contentUri.slice(0, 120)}`);
  const keyInfos = childElements(data, NS.dsig, 'KeyInfo');
  if (keyInfos.length > 1) throw new DecryptionRefused('decryption_failed', 'more than one KeyInfo in EncryptedData');
  const encryptedKeys = [...(keyInfos[0] ? childElements(keyInfos[0], XENC, 'EncryptedKey') : []), ...childElements(encryptedAssertion, XENC, 'EncryptedKey')];
  if (encryptedKeys.length === 0) throw new DecryptionRefused('decryption_failed', 'no EncryptedKey');
  if (encryptedKeys.length > MAX_ENCRYPTED_KEYS) throw new DecryptionRefused('decryption_failed', `${encryptedKeys.length} EncryptedKeys`);
  const ciphertext = cipherValue(data, 'EncryptedData');
  const transports = encryptedKeys.map(readKeyTransport);
  for (const [encryptedKeyIndex, transport] of transports.entries()) {
    for (const key of keys) {
      const opened = unwrap(key.key, transport);
      if (!opened) continue;
      const plain = decryptContent(content, opened.contentKey, ciphertext);
      // OAEP opened it, so the key is ours: a content that does not decrypt is tampered, not another key's.
      if (!plain) throw new DecryptionRefused('decryption_failed', `content ${content.cipher} does not decrypt (key ${key.id})`);
      return { xml: plain.toString('utf8'), key, keyTransport: transport.algorithm, digestUri: transport.digestUri, mgfDigest: opened.mgf, content: contentUri, encryptedKeyIndex, wrappedKeyText: transport.cipherText, contentKey: opened.contentKey };
    }
  }
  throw new DecryptionRefused('decryption_failed', `no configured SP key (${keys.map((k) => k.id).join(', ')}) opens the EncryptedKey`);
}

/**
 * Whether node-saml (through xml-encryption) decrypts this shape itself: rsa-oaep-mgf1p with a SHA-1
 * OAEP digest (what Entra ID, ADFS and Okta send), or with the digest URIs xml-encryption writes (it
 * then masks with that digest). The second gate is given the key that worked in those cases.
 */
export function nodeSamlDecrypts(d: DecryptedAssertion): boolean {
  if (d.keyTransport !== RSA_OAEP_MGF1P || d.encryptedKeyIndex !== 0) return false;
  // xml-encryption reads these two URIs only (anything else as SHA-1), and masks with the same digest.
  const xmlEncryptionDigest = new Map<string, Hash>([
    ['http://www.w3.org/2000/09/xmldsig#sha256', 'sha256'],
    ['http://www.w3.org/2000/09/xmldsig#sha512', 'sha512'],
  ]).get(d.digestUri);
  const read = xmlEncryptionDigest ?? 'sha1';
  return (read === 'sha1' ? d.digestUri === 'http://www.w3.org/2000/09/xmldsig#sha1' : true) && d.mgfDigest === read;
}

/** The one occurrence of `needle` in `haystack`, or -1 when it is absent or not unique. */
function uniqueIndex(haystack: string, needle: string): number {
  const at = haystack.indexOf(needle);
  return at >= 0 && haystack.indexOf(needle, at + 1) < 0 ? at : -1;
}

/**
 * For a key transport node-saml cannot read (xmlenc11#rsa-oaep, standard SHA-2 OAEP digest URIs): the
 * posted response with only the EncryptedKey changed — the same content key wrapped again to the same SP
 * certificate with rsa-oaep-mgf1p as xml-encryption reads it. The EncryptedData (the AES ciphertext) and
 * every other byte stay as posted, so node-saml still decrypts the assertion and checks its signature
 * itself; only the RSA unwrap is not independent. A Response signature (over the EncryptedAssertion as
 * sent) then no longer verifies for node-saml, which falls back to the assertion's own signature. Null when
 * the posted text does not let the EncryptedKey be found unambiguously.
 */
export function nodeSamlResponse(postedXml: string, d: DecryptedAssertion): string | null {
  if (d.encryptedKeyIndex !== 0) return null;
  const at = uniqueIndex(postedXml, `>${d.wrappedKeyText}<`);
  const algorithmAt = d.keyTransport === RSA_OAEP_MGF1P ? -2 : uniqueIndex(postedXml, `"${RSA_OAEP_11}"`);
  if (at < 0 || algorithmAt === -1) return null;
  const digest = new Map<string, Hash>([
    ['http://www.w3.org/2000/09/xmldsig#sha256', 'sha256'],
    ['http://www.w3.org/2000/09/xmldsig#sha512', 'sha512'],
  ]).get(d.digestUri) ?? 'sha1';
  const wrapped = publicEncrypt({ key: d.key.certificate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: digest }, d.contentKey).toString('base64');
  let xml = `${postedXml.slice(0, at + 1)}${wrapped}${postedXml.slice(at + 1 + d.wrappedKeyText.length)}`;
  if (algorithmAt >= 0) xml = xml.replace(`"${RSA_OAEP_11}"`, `"${RSA_OAEP_MGF1P}"`);
  return xml;
}

/** An EncryptedAssertion opened for the ACS: the assertion (still unverified) in its own parsed document. */
export interface OpenedAssertion {
  assertion: Element;
  /** The index of the decrypted document, for the signature check's ID lookup. */
  index: ElementIndex;
  decrypted: DecryptedAssertion;
  /**
   * For node-saml (the second gate): the response with the key re-wrapped for it (nodeSamlResponse), or
   * null to give it the response as posted (it decrypts that shape, or the re-wrap was not possible).
   */
  secondGateXml: string | null;
}

/**
 * The ACS's one call: decrypts the response's EncryptedAssertion with the SP keys, then parses the
 * plaintext under the same structural limits as the response and checks it is one saml:Assertion with
 * no other assertion inside but those of its saml:Advice (subject-assertion.ts). Every refusal is `saml_response_invalid` with a private reason
 * (`encrypted_assertion_unsupported` without keys, `decryption_failed`, `encryption_algorithm_unsupported`,
 * or the XML reasons); nothing about the key or the plaintext is in the detail.
 */
export function openEncryptedAssertion(encrypted: Element, keys: readonly SpDecryptionKey[] | undefined, postedXml: string): OpenedAssertion {
  const refuse = (reason: SamlRejectReason, detail: string): AppError => new AppError('saml_response_invalid', { reason, detail });
  if (!keys?.length) throw refuse('encrypted_assertion_unsupported', 'EncryptedAssertion, and no SP decryption key is configured (saml.decryption)');
  let decrypted: DecryptedAssertion;
  try {
    decrypted = decryptAssertion(encrypted, keys);
  } catch (err) {
    if (err instanceof DecryptionRefused) throw refuse(err.reason, err.message);
    throw refuse('decryption_failed', 'decryption failed');
  }
  let doc: Document;
  try {
    doc = parseUntrustedXml(decrypted.xml);
  } catch (err) {
    if (err instanceof XmlRefused) throw refuse(err.kind, `decrypted assertion: ${err.message}`);
    throw err;
  }
  const assertion = doc.documentElement;
  if (assertion.namespaceURI !== NS.assertion || assertion.localName !== 'Assertion') throw refuse('decryption_failed', 'the decrypted content is not a saml:Assertion');
  const index = new ElementIndex(doc);
  // The same subject-assertion rule as a plaintext response (subject-assertion.ts): the root is the one
  // assertion outside any saml:Advice; assertions in its Advice are allowed and never read. An
  // EncryptedAssertion inside the plaintext (even in an Advice) is refused: nothing would decrypt it.
  if (descendants(index, NS.assertion, 'EncryptedAssertion').length > 0) throw refuse('multiple_assertions', 'an EncryptedAssertion inside the decrypted assertion');
  try {
    if (findSubjectAssertion(doc, index) !== assertion) throw new AssertionShapeRefused('the decrypted Assertion is not the subject assertion');
  } catch (err) {
    if (err instanceof AssertionShapeRefused) throw refuse('multiple_assertions', `decrypted assertion: ${err.message}`);
    throw err;
  }
  const secondGateXml = nodeSamlDecrypts(decrypted) ? null : nodeSamlResponse(postedXml, decrypted);
  return { assertion, index, decrypted, secondGateXml };
}
