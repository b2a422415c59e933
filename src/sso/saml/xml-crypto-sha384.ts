import { createHash, createSign, createVerify, type BinaryLike, type KeyLike } from 'node:crypto';
import { SignedXml } from 'xml-crypto';

/**
 * RSA-SHA384 and SHA-384 digests for xml-crypto, the one place they are taught to it.
 *
 * The rule is "RSA-SHA256 or stronger" (S-8), so RSA-SHA384 is accepted (algorithms.ts). Our own
 * verifier (enveloped-signature.ts) uses node:crypto directly, but node-saml — the ACS's second gate —
 * and the signer the demo IdP and the tests use go through xml-crypto, whose 6.x algorithm tables
 * (SignedXml#SignatureAlgorithms / #HashAlgorithms, filled in by its constructor) know RSA-SHA1/256/512
 * and SHA-1/256/512 only: a SHA-384 response would pass the strict gate and fail the second one.
 * node-saml builds its SignedXml instances itself, so the tables cannot be extended per instance; the
 * two lookups they serve (findSignatureAlgorithm, findHashAlgorithm) are wrapped instead, once, here:
 * a name xml-crypto already knows is answered by xml-crypto as before; only the two SHA-384 URIs are
 * added, and RSA-SHA384 only while the instance accepts RSA-SHA256 (never in its HMAC-only mode).
 * Importing this module applies it (idempotent). Remove it when xml-crypto ships SHA-384.
 */
export const RSA_SHA384 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384';
export const SHA384_DIGEST = 'http://www.w3.org/2001/04/xmldsig-more#sha384';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

type Callback<T> = (err: Error | null, value?: T) => void;

class Sha384 {
  getAlgorithmName(): string {
    return SHA384_DIGEST;
  }
  getHash(xml: string): string {
    return createHash('sha384').update(xml, 'utf8').digest('base64');
  }
}

class RsaSha384 {
  getAlgorithmName(): string {
    return RSA_SHA384;
  }
  getSignature(signedInfo: BinaryLike, privateKey: KeyLike, callback?: Callback<string>): string | undefined {
    const signature = createSign('RSA-SHA384').update(signedInfo).sign(privateKey, 'base64');
    if (!callback) return signature;
    callback(null, signature);
    return undefined;
  }
  verifySignature(material: string, key: KeyLike, signatureValue: string, callback?: Callback<boolean>): boolean | undefined {
    const ok = createVerify('RSA-SHA384').update(material).verify(key, signatureValue, 'base64');
    if (!callback) return ok;
    callback(null, ok);
    return undefined;
  }
}

interface AlgorithmLookups {
  SignatureAlgorithms: Record<string, unknown>;
  findSignatureAlgorithm: (this: AlgorithmLookups, name: string) => unknown;
  findHashAlgorithm: (this: AlgorithmLookups, name: string) => unknown;
}

const PATCHED = Symbol.for('idp-bridge.xml-crypto-sha384');
const proto = SignedXml.prototype as unknown as AlgorithmLookups & { [PATCHED]?: true };
if (!proto[PATCHED]) {
  const findSignature = proto.findSignatureAlgorithm;
  const findHash = proto.findHashAlgorithm;
  proto.findSignatureAlgorithm = function (this: AlgorithmLookups, name: string) {
    if (name === RSA_SHA384 && !(RSA_SHA384 in this.SignatureAlgorithms) && RSA_SHA256 in this.SignatureAlgorithms) return new RsaSha384();
    return findSignature.call(this, name);
  };
  proto.findHashAlgorithm = function (this: AlgorithmLookups, name: string) {
    if (name === SHA384_DIGEST) {
      try {
        return findHash.call(this, name);
      } catch {
        return new Sha384();
      }
    }
    return findHash.call(this, name);
  };
  proto[PATCHED] = true;
}
