import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as xmlenc from 'xml-encryption';

const dir = fileURLToPath(new URL('../fixtures/keys/', import.meta.url));
const read = (name: string): string => readFileSync(`${dir}${name}`, 'utf8');

/** Test-only SP decryption key pairs (test/fixtures/keys, made with openssl). `stranger` is configured nowhere. */
export const spEncryptionKeys = {
  current: { privateKey: read('sp-enc.key.pem'), certificate: read('sp-enc.crt.pem'), keyFile: `${dir}sp-enc.key.pem`, certFile: `${dir}sp-enc.crt.pem` },
  next: { privateKey: read('sp-enc-next.key.pem'), certificate: read('sp-enc-next.crt.pem'), keyFile: `${dir}sp-enc-next.key.pem`, certFile: `${dir}sp-enc-next.crt.pem` },
  stranger: { privateKey: read('sp-enc-stranger.key.pem'), certificate: read('sp-enc-stranger.crt.pem'), keyFile: `${dir}sp-enc-stranger.key.pem`, certFile: `${dir}sp-enc-stranger.crt.pem` },
};

export const ALG = {
  aes128cbc: 'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  aes256cbc: 'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  aes128gcm: 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  aes256gcm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  rsaOaepMgf1p: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  rsa15: 'http://www.w3.org/2001/04/xmlenc#rsa-1_5',
} as const;

const encrypt = promisify(xmlenc.encrypt);

export interface EncryptOptions {
  /** The certificate (PEM) the IdP encrypts to. */
  certificate: string;
  content: string;
  keyTransport?: string;
}

/**
 * Replaces the saml:Assertion of a (signed) response with a saml:EncryptedAssertion, as an IdP does after
 * signing the assertion: the encryption is xml-encryption's (auth0's, node-saml's own dependency), not
 * the gateway's code. The assertion is serialized standalone, with its saml namespace declared on it.
 */
export async function encryptAssertionIn(responseXml: string, options: EncryptOptions): Promise<string> {
  const start = responseXml.indexOf('<saml:Assertion ');
  const endTag = '</saml:Assertion>';
  // The last end tag: the subject assertion's, after those of any assertions in its saml:Advice.
  const end = responseXml.lastIndexOf(endTag) + endTag.length;
  if (start < 0 || end < endTag.length) throw new Error('no saml:Assertion to encrypt');
  const assertion = responseXml.slice(start, end).replace('<saml:Assertion ', '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ');
  const encrypted = await encrypt(assertion, {
    rsa_pub: options.certificate,
    pem: options.certificate,
    encryptionAlgorithm: options.content as xmlenc.EncryptionAlgorithm,
    keyEncryptionAlgorithm: (options.keyTransport ?? ALG.rsaOaepMgf1p) as xmlenc.KeyEncryptionAlgorithm,
    disallowEncryptionWithInsecureAlgorithm: false,
    warnInsecureAlgorithm: false,
  });
  return `${responseXml.slice(0, start)}<saml:EncryptedAssertion>${encrypted}</saml:EncryptedAssertion>${responseXml.slice(end)}`;
}

/**
 * The same, in the XML Encryption 1.1 shape xml-encryption cannot write (Shibboleth's): key transport
 * xmlenc11#rsa-oaep with a SHA-256 OAEP digest and the default MGF1-SHA1 — the key wrapped by the openssl
 * CLI — the EncryptedKey beside EncryptedData, content AES-GCM by node:crypto.
 */
export function encryptAssertionXmlenc11(responseXml: string, certFile: string, content: 'aes-128-gcm' | 'aes-256-gcm'): string {
  const start = responseXml.indexOf('<saml:Assertion ');
  const endTag = '</saml:Assertion>';
  const end = responseXml.lastIndexOf(endTag) + endTag.length;
  const assertion = responseXml.slice(start, end).replace('<saml:Assertion ', '<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ');
  const key = randomBytes(content === 'aes-128-gcm' ? 16 : 32);
  const iv = randomBytes(12);
  const cipher = createCipheriv(content, key, iv);
  const body = Buffer.concat([cipher.update(assertion, 'utf8'), cipher.final()]);
  const data = Buffer.concat([iv, body, cipher.getAuthTag()]);
  const wrapped = execFileSync('openssl', ['pkeyutl', '-encrypt', '-certin', '-inkey', certFile, '-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha1'], { input: key });
  const XENC = 'http://www.w3.org/2001/04/xmlenc#';
  const encrypted =
    `<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="${XENC}" Id="_ed1" Type="${XENC}Element">` +
    `<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#${content === 'aes-128-gcm' ? 'aes128-gcm' : 'aes256-gcm'}"/>` +
    `<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:RetrievalMethod Type="${XENC}EncryptedKey" URI="#_ek1"/></ds:KeyInfo>` +
    `<xenc:CipherData><xenc:CipherValue>${data.toString('base64')}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>` +
    `<xenc:EncryptedKey xmlns:xenc="${XENC}" Id="_ek1" Recipient="${'https://sso.bridge.test/saml/metadata'}">` +
    `<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep"><ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="${XENC}sha256"/></xenc:EncryptionMethod>` +
    `<xenc:CipherData><xenc:CipherValue>${wrapped.toString('base64')}</xenc:CipherValue></xenc:CipherData>` +
    `<xenc:ReferenceList><xenc:DataReference URI="#_ed1"/></xenc:ReferenceList></xenc:EncryptedKey></saml:EncryptedAssertion>`;
  return `${responseXml.slice(0, start)}${encrypted}${responseXml.slice(end)}`;
}
