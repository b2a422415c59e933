import { NS, attr, descendants } from './xml.js';

/** Signature algorithms accepted in XML signatures and redirect-binding signatures (RSA-SHA256 or stronger). */
export const STRONG_SIGNATURES: ReadonlyMap<string, 'sha256' | 'sha512'> = new Map([
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'sha256'],
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha512', 'sha512'],
]);
const STRONG_DIGESTS = new Set(['http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/04/xmlenc#sha512']);
export const SHA1_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SHA1_DIGEST = 'http://www.w3.org/2000/09/xmldsig#sha1';

/** The first SignatureMethod or DigestMethod below `root` weaker than SHA-256, or null (S-8). */
export function findWeakAlgorithm(root: Document | Element, allowSha1: boolean): string | null {
  for (const m of descendants(root, NS.dsig, 'SignatureMethod')) {
    const alg = attr(m, 'Algorithm') ?? '';
    if (!STRONG_SIGNATURES.has(alg) && !(allowSha1 && alg === SHA1_SIGNATURE)) return `signature ${alg}`;
  }
  for (const m of descendants(root, NS.dsig, 'DigestMethod')) {
    const alg = attr(m, 'Algorithm') ?? '';
    if (!STRONG_DIGESTS.has(alg) && !(allowSha1 && alg === SHA1_DIGEST)) return `digest ${alg}`;
  }
  return null;
}
