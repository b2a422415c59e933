import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { verifyEnvelopedSignature } from '../../../src/sso/saml/enveloped-signature.js';
import { createGateway, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const SP_CERT = readFileSync('config/dev-only/sp-signing.crt.pem', 'utf8');
const NEXT_CERT = readFileSync('test/fixtures/keys/idp-b.crt.pem', 'utf8');
const pemBody = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');

/** xml-crypto's own verification, the way an IdP that pinned `certificate` checks the document. */
function verifiesWith(xml: string, certificate: string): boolean {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const signature = doc.getElementsByTagNameNS(DSIG, 'Signature')[0];
  if (!signature) return false;
  const sig = new SignedXml({ publicCert: certificate, getCertFromKeyInfo: () => null });
  sig.loadSignature(signature);
  try {
    return sig.checkSignature(xml);
  } catch {
    return false;
  }
}

describe('SP metadata is signed with the SP signing key (enveloped, RSA-SHA256)', () => {
  let gw: Gateway;
  let rolled: Gateway;
  let unsigned: Gateway;
  before(async () => {
    gw = await createGateway();
    rolled = await createGateway({
      store: gw.store,
      overrides: { saml: { signing: { keyFile: 'config/dev-only/sp-signing.key.pem', certFile: 'config/dev-only/sp-signing.crt.pem', nextCertFile: 'test/fixtures/keys/idp-b.crt.pem' } } },
    });
    unsigned = await createGateway({ store: gw.store, overrides: { saml: { signing: { keyFile: '', certFile: '' } } } });
  });
  after(async () => {
    await unsigned.close();
    await rolled.close();
    await gw.close();
  });

  it('verifies with xml-crypto and with the gateway own verifier against the SP certificate, and with no other', async () => {
    const res = await gw.http.get('/saml/metadata/a.example');
    assert.equal(res.status, 200);
    assert.ok(verifiesWith(res.text, SP_CERT), 'the signature verifies with the SP certificate');
    assert.ok(!verifiesWith(res.text, idps.a.certificate), 'and not with another certificate');
    const doc = new DOMParser().parseFromString(res.text, 'text/xml');
    const root = doc.documentElement;
    // The schema puts ds:Signature first in an EntityDescriptor; the reference is the root by its ID.
    const first = Array.from(root.childNodes).find((n) => n.nodeType === 1) as Element;
    assert.equal(first.namespaceURI, DSIG);
    assert.equal(first.localName, 'Signature');
    assert.match(root.getAttribute('ID') ?? '', /^_[0-9a-f]{40}$/);
    assert.equal(first.getElementsByTagNameNS(DSIG, 'SignatureMethod')[0]?.getAttribute('Algorithm'), 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    assert.equal(first.getElementsByTagNameNS(DSIG, 'Reference')[0]?.getAttribute('URI'), `#${root.getAttribute('ID')}`);
    assert.ok(verifyEnvelopedSignature(root, { certificates: [SP_CERT], allowSha1: false }));
    // The same document twice is the same bytes (same ID, deterministic RSA PKCS#1 v1.5).
    assert.equal((await gw.http.get('/saml/metadata/a.example')).text, res.text);
  });

  it('a changed document no longer verifies', async () => {
    const res = await gw.http.get('/saml/metadata/a.example');
    const tampered = res.text.replace('/acs/a.example', '/acs/evil.example');
    assert.notEqual(tampered, res.text);
    assert.ok(!verifiesWith(tampered, SP_CERT));
  });

  it('lists the next certificate as a second signing KeyDescriptor, but signs with the current key', async () => {
    const res = await rolled.http.get('/saml/metadata/a.example');
    const doc = new DOMParser().parseFromString(res.text, 'text/xml');
    const signing = Array.from(doc.getElementsByTagNameNS(MD, 'KeyDescriptor'))
      .filter((k) => k.getAttribute('use') === 'signing')
      .map((k) => k.getElementsByTagNameNS(DSIG, 'X509Certificate')[0]?.textContent?.replace(/\s+/g, ''));
    assert.deepEqual(signing, [pemBody(SP_CERT), pemBody(NEXT_CERT)]);
    assert.ok(verifiesWith(res.text, SP_CERT));
    assert.ok(!verifiesWith(res.text, NEXT_CERT));
  });

  it('stays unsigned when the gateway has no SP signing key', async () => {
    const res = await unsigned.http.get('/saml/metadata/a.example');
    assert.equal(res.status, 200);
    assert.doesNotMatch(res.text, /Signature/);
  });
});
