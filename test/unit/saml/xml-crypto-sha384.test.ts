/**
 * xml-crypto 6.x learns RSA-SHA384 and SHA-384 (xml-crypto-sha384.ts) for node-saml, the ACS's second
 * gate, and the test signer; what it knew before is unchanged, and its HMAC-only mode gains nothing.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignedXml } from 'xml-crypto';
import { ENVELOPED_SIGNATURE, EXC_C14N } from '../../../src/demo/saml-response.js';
import { RSA_SHA384, SHA384_DIGEST } from '../../../src/sso/saml/xml-crypto-sha384.js';
import { idps } from '../../helpers/keys.js';

const DOC = '<r xmlns="urn:x" ID="_r"><a>text</a></r>';

function signSha384(): string {
  const sig = new SignedXml({ privateKey: idps.a.privateKey, signatureAlgorithm: RSA_SHA384, canonicalizationAlgorithm: EXC_C14N });
  sig.addReference({ xpath: '/*', digestAlgorithm: SHA384_DIGEST, transforms: [ENVELOPED_SIGNATURE, EXC_C14N] });
  sig.computeSignature(DOC);
  return sig.getSignedXml();
}

type Lookups = { findSignatureAlgorithm: (name: string) => unknown; findHashAlgorithm: (name: string) => unknown };

describe('xml-crypto with RSA-SHA384 / SHA-384', () => {
  it('signs and verifies, and the values are real SHA-384 (checked with node:crypto alone)', () => {
    const xml = signSha384();
    const check = new SignedXml({ publicCert: idps.a.certificate, getCertFromKeyInfo: () => null });
    check.loadSignature(/<(?:ds:)?Signature[\s\S]*<\/(?:ds:)?Signature>/.exec(xml)![0]);
    assert.equal(check.checkSignature(xml), true);

    const digest = /<DigestValue>([^<]+)<\/DigestValue>/.exec(xml)![1]!;
    assert.equal(digest, createHash('sha384').update('<r xmlns="urn:x" ID="_r"><a>text</a></r>').digest('base64'));
    // SignedInfo in exclusive canonical form: its namespace declared, empty elements written out.
    const signedInfo = /<SignedInfo[\s\S]*<\/SignedInfo>/
      .exec(xml)![0]
      .replace('<SignedInfo>', '<SignedInfo xmlns="http://www.w3.org/2000/09/xmldsig#">')
      .replace(/<(\w+)([^>]*)\/>/g, '<$1$2></$1>');
    const value = Buffer.from(/<SignatureValue>([^<]+)<\/SignatureValue>/.exec(xml)![1]!, 'base64');
    assert.equal(verify('sha384', Buffer.from(signedInfo), createPublicKey(idps.a.certificate), value), true);
  });

  it('still refuses what it did not know, and the HMAC-only mode does not gain RSA-SHA384', () => {
    const sig = new SignedXml() as unknown as Lookups & { enableHMAC: () => void };
    assert.throws(() => sig.findSignatureAlgorithm('http://www.w3.org/2001/04/xmldsig-more#rsa-md5'), /not supported/);
    assert.throws(() => sig.findHashAlgorithm('http://www.w3.org/2001/04/xmldsig-more#md5'), /not supported/);
    sig.enableHMAC();
    assert.throws(() => sig.findSignatureAlgorithm(RSA_SHA384), /not supported/);
  });
});
