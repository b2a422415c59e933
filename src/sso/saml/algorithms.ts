import { NS, attr, descendants, type ElementIndex } from './xml.js';

/** Signature algorithms accepted in XML signatures and redirect-binding signatures (RSA-SHA256 or stronger). */
// (xml-crypto, which node-saml uses, learns the SHA-384 ones in xml-crypto-sha384.ts.)
export const STRONG_SIGNATURES: ReadonlyMap<string, 'sha256' | 'sha384' | 'sha512'> = new Map([
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'sha256'],
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha384', 'sha384'],
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha512', 'sha512'],
]);
/** SHA-384's URI is in xmldsig-more (RFC 6931 §2.1.3), SHA-256/512's in xmlenc. */
const STRONG_DIGESTS: ReadonlyMap<string, 'sha256' | 'sha384' | 'sha512'> = new Map([
  ['http://www.w3.org/2001/04/xmlenc#sha256', 'sha256'],
  ['http://www.w3.org/2001/04/xmldsig-more#sha384', 'sha384'],
  ['http://www.w3.org/2001/04/xmlenc#sha512', 'sha512'],
]);
export const SHA1_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SHA1_DIGEST = 'http://www.w3.org/2000/09/xmldsig#sha1';

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/** The hash of an accepted RSA SignatureMethod (RSA-SHA1 only when allowed), or null. */
export function signatureHash(algorithm: string, allowSha1: boolean): HashName | null {
  return STRONG_SIGNATURES.get(algorithm) ?? (allowSha1 && algorithm === SHA1_SIGNATURE ? 'sha1' : null);
}

/** The hash of an accepted DigestMethod (SHA-1 only when allowed), or null. */
export function digestHash(algorithm: string, allowSha1: boolean): HashName | null {
  return STRONG_DIGESTS.get(algorithm) ?? (allowSha1 && algorithm === SHA1_DIGEST ? 'sha1' : null);
}

const XENC_NS = 'http://www.w3.org/2001/04/xmlenc#';

/** The first SignatureMethod or DigestMethod below `root` weaker than SHA-256, or null (S-8). */
export function findWeakAlgorithm(root: Document | Element | ElementIndex, allowSha1: boolean): string | null {
  for (const m of descendants(root, NS.dsig, 'SignatureMethod')) {
    const alg = attr(m, 'Algorithm') ?? '';
    if (!signatureHash(alg, allowSha1)) return `signature ${alg}`;
  }
  for (const m of descendants(root, NS.dsig, 'DigestMethod')) {
    // An EncryptedKey's RSA-OAEP digest (xenc:EncryptionMethod) is no signature digest: SHA-1 is sound there.
    if ((m.parentNode as Element | null)?.namespaceURI === XENC_NS) continue;
    const alg = attr(m, 'Algorithm') ?? '';
    if (!digestHash(alg, allowSha1)) return `digest ${alg}`;
  }
  return null;
}
