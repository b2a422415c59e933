/**
 * The EncryptedAssertion decryptor on the key-transport shapes the integration tests' encryptors
 * (xml-encryption, samlify) cannot produce: xmlenc11#rsa-oaep with an MGF element and SHA-2 digests,
 * rsa-oaep-mgf1p with SHA-256 and MGF1-SHA1 as the spec fixes it (wrapped by the openssl CLI, so the
 * OAEP encoding is not ours), the EncryptedKey beside EncryptedData (Shibboleth's layout). And what it
 * refuses: unknown keys, RSA 1.5, 3DES, too many EncryptedKeys.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, createCipheriv, createPrivateKey, publicEncrypt, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { DecryptionRefused, decryptAssertion, nodeSamlDecrypts } from '../../../src/sso/saml/encrypted-assertion.js';
import type { SpDecryptionKey } from '../../../src/sso/saml/options.js';
import { parseUntrustedXml } from '../../../src/sso/saml/xml.js';
import { spEncryptionKeys } from '../../helpers/encrypt-assertion.js';

const XENC = 'http://www.w3.org/2001/04/xmlenc#';
const XENC11 = 'http://www.w3.org/2009/xmlenc11#';
const PLAINTEXT = '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0"><saml:Issuer>x</saml:Issuer></saml:Assertion>';

const spKey = (id: 'current' | 'next', pair: { privateKey: string; certificate: string }): SpDecryptionKey => ({ id, key: createPrivateKey(pair.privateKey), privateKey: pair.privateKey, certificate: pair.certificate });
const KEYS = [spKey('current', spEncryptionKeys.current), spKey('next', spEncryptionKeys.next)];

function encryptContent(algorithm: 'aes-128-gcm' | 'aes-256-gcm' | 'aes-128-cbc' | 'aes-256-cbc', key: Buffer): Buffer {
  const gcm = algorithm.endsWith('gcm');
  const iv = randomBytes(gcm ? 12 : 16);
  const cipher = createCipheriv(algorithm, key, iv);
  const body = Buffer.concat([cipher.update(PLAINTEXT, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, gcm ? (cipher as unknown as { getAuthTag(): Buffer }).getAuthTag() : Buffer.alloc(0)]);
}

/** OAEP with separate digest and MGF1 digests, by the openssl CLI. */
function opensslOaep(certificateFile: string, data: Buffer, md: string, mgf1: string): Buffer {
  return execFileSync('openssl', ['pkeyutl', '-encrypt', '-certin', '-inkey', certificateFile, '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', `rsa_oaep_md:${md}`, '-pkeyopt', `rsa_mgf1_md:${mgf1}`], { input: data });
}

interface Shape {
  content: string;
  contentKey: Buffer;
  ciphertext: Buffer;
  wrapped: Buffer;
  keyMethod: string;
  /** EncryptedKey beside EncryptedData (Shibboleth) instead of inside its KeyInfo. */
  beside?: boolean;
  extraKeys?: number;
}

function encryptedAssertion(s: Shape): Element {
  const encryptedKey = `<xenc:EncryptedKey xmlns:xenc="${XENC}">${s.keyMethod}<xenc:CipherData><xenc:CipherValue>${s.wrapped.toString('base64')}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>`;
  const keys = encryptedKey.repeat(1 + (s.extraKeys ?? 0));
  const xml =
    `<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xenc="${XENC}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">` +
    `<xenc:EncryptedData Type="${XENC}Element"><xenc:EncryptionMethod Algorithm="${s.content}"/>` +
    `<ds:KeyInfo>${s.beside ? '<ds:RetrievalMethod URI="#k1" Type="http://www.w3.org/2001/04/xmlenc#EncryptedKey"/>' : keys}</ds:KeyInfo>` +
    `<xenc:CipherData><xenc:CipherValue>${s.ciphertext.toString('base64')}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>` +
    (s.beside ? keys : '') +
    `</saml:EncryptedAssertion>`;
  return parseUntrustedXml(xml).documentElement;
}

const oaepMethod = (algorithm: string, digest?: string, mgf?: string): string =>
  `<xenc:EncryptionMethod Algorithm="${algorithm}">${digest ? `<ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="${digest}"/>` : ''}${mgf ? `<xenc11:MGF xmlns:xenc11="${XENC11}" Algorithm="${mgf}"/>` : ''}</xenc:EncryptionMethod>`;

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof DecryptionRefused) return err.reason;
    throw err;
  }
  return 'accepted';
}

describe('decryptAssertion', () => {
  it('xmlenc11#rsa-oaep with SHA-256 and MGF1-SHA256, AES-256-GCM; node-saml cannot read that shape', () => {
    const contentKey = randomBytes(32);
    const wrapped = publicEncrypt({ key: spEncryptionKeys.next.certificate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, contentKey);
    const el = encryptedAssertion({ content: `${XENC11}aes256-gcm`, contentKey, ciphertext: encryptContent('aes-256-gcm', contentKey), wrapped, keyMethod: oaepMethod(`${XENC11}rsa-oaep`, `${XENC}sha256`, `${XENC11}mgf1sha256`) });
    const out = decryptAssertion(el, KEYS);
    assert.equal(out.xml, PLAINTEXT);
    assert.equal(out.key.id, 'next');
    assert.equal(nodeSamlDecrypts(out), false);
  });

  it('xmlenc11#rsa-oaep with SHA-256 and the default MGF1-SHA1 (split digests, wrapped by openssl), key beside EncryptedData', () => {
    const contentKey = randomBytes(16);
    const wrapped = opensslOaep(spEncryptionKeys.current.certFile, contentKey, 'sha256', 'sha1');
    const el = encryptedAssertion({ content: `${XENC}aes128-cbc`, contentKey, ciphertext: encryptContent('aes-128-cbc', contentKey), wrapped, keyMethod: oaepMethod(`${XENC11}rsa-oaep`, `${XENC}sha256`), beside: true });
    const out = decryptAssertion(el, KEYS);
    assert.equal(out.xml, PLAINTEXT);
    assert.equal(out.key.id, 'current');
    assert.equal(out.mgfDigest, 'sha1');
  });

  it('rsa-oaep-mgf1p with a SHA-256 digest uses MGF1-SHA1 as the spec fixes it (openssl), and MGF1-SHA256 as xml-encryption writes it', () => {
    for (const mgf of ['sha1', 'sha256']) {
      const contentKey = randomBytes(32);
      const wrapped = opensslOaep(spEncryptionKeys.current.certFile, contentKey, 'sha256', mgf);
      const el = encryptedAssertion({ content: `${XENC}aes256-cbc`, contentKey, ciphertext: encryptContent('aes-256-cbc', contentKey), wrapped, keyMethod: oaepMethod(`${XENC}rsa-oaep-mgf1p`, `${XENC}sha256`) });
      assert.equal(decryptAssertion(el, KEYS).xml, PLAINTEXT, mgf);
    }
  });

  it('rsa-oaep-mgf1p with SHA-1 (Entra ID, ADFS, Okta): node-saml decrypts that shape too', () => {
    const contentKey = randomBytes(32);
    const wrapped = publicEncrypt({ key: spEncryptionKeys.current.certificate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, contentKey);
    const el = encryptedAssertion({ content: `${XENC}aes256-cbc`, contentKey, ciphertext: encryptContent('aes-256-cbc', contentKey), wrapped, keyMethod: oaepMethod(`${XENC}rsa-oaep-mgf1p`, 'http://www.w3.org/2000/09/xmldsig#sha1') });
    const out = decryptAssertion(el, KEYS);
    assert.equal(out.xml, PLAINTEXT);
    assert.equal(nodeSamlDecrypts(out), true);
  });

  it('refuses a key for nobody configured, RSA 1.5, 3DES, an unknown MGF and too many EncryptedKeys', () => {
    const contentKey = randomBytes(32);
    const ciphertext = encryptContent('aes-256-gcm', contentKey);
    const toStranger = publicEncrypt({ key: spEncryptionKeys.stranger.certificate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, contentKey);
    const toUs = publicEncrypt({ key: spEncryptionKeys.current.certificate, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, contentKey);
    const base = { content: `${XENC11}aes256-gcm`, contentKey, ciphertext, wrapped: toUs, keyMethod: oaepMethod(`${XENC}rsa-oaep-mgf1p`) };
    assert.equal(refusal(() => decryptAssertion(encryptedAssertion(base), KEYS)), 'accepted');
    assert.equal(refusal(() => decryptAssertion(encryptedAssertion({ ...base, wrapped: toStranger }), KEYS)), 'decryption_failed');
    assert.equal(refusal(() => decryptAssertion(encryptedAssertion({ ...base, keyMethod: oaepMethod(`${XENC}rsa-1_5`) }), KEYS)), 'encryption_algorithm_unsupported');
    assert.equal(refusal(() => decryptAssertion(encryptedAssertion({ ...base, content: `${XENC}tripledes-cbc` }), KEYS)), 'encryption_algorithm_unsupported');
    assert.equal(refusal(() => decryptAssertion(encryptedAssertion({ ...base, keyMethod: oaepMethod(`${XENC11}rsa-oaep`, undefined, `${XENC11}mgf1md5`) }), KEYS)), 'encryption_algorithm_unsupported');
    assert.equal(refusal(() => decryptAssertion(encryptedAssertion({ ...base, extraKeys: 2 }), KEYS)), 'decryption_failed');
    assert.equal(refusal(() => decryptAssertion(encryptedAssertion({ ...base, ciphertext: ciphertext.subarray(0, 20) }), KEYS)), 'decryption_failed');
  });
});
