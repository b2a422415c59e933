import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DOMParser } from '@xmldom/xmldom';
import { PUBLIC_URL, SP_ENTITY_ID, createGateway, type Gateway } from '../../helpers/gateway.js';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';

describe('SP metadata (S-11)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  after(async () => gw.close());

  it('describes the SP for one tenant', async () => {
    const res = await gw.http.get('/saml/metadata/a.example');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] as string, /application\/samlmetadata\+xml/);
    const doc = new DOMParser().parseFromString(res.text, 'text/xml');
    const entity = doc.documentElement;
    assert.equal(entity.localName, 'EntityDescriptor');
    assert.equal(entity.getAttribute('entityID'), SP_ENTITY_ID);
    const sp = entity.getElementsByTagNameNS(MD, 'SPSSODescriptor')[0]!;
    assert.equal(sp.getAttribute('WantAssertionsSigned'), 'true');
    assert.ok(sp.hasAttribute('AuthnRequestsSigned'));
    const acs = sp.getElementsByTagNameNS(MD, 'AssertionConsumerService')[0]!;
    assert.equal(acs.getAttribute('Binding'), 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST');
    assert.equal(acs.getAttribute('Location'), `${PUBLIC_URL}/acs/a.example`);
    assert.equal(sp.getElementsByTagNameNS(MD, 'NameIDFormat')[0]?.textContent, 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified');
  });

  it('publishes no encryption certificate without saml.decryption, and each configured one (current, next) with use="encryption" and its EncryptionMethods', async () => {
    const keyDescriptors = (xml: string): Element[] => Array.from(new DOMParser().parseFromString(xml, 'text/xml').getElementsByTagNameNS(MD, 'KeyDescriptor'));
    const plain = await gw.http.get('/saml/metadata/a.example');
    assert.equal(keyDescriptors(plain.text).filter((k) => k.getAttribute('use') === 'encryption').length, 0);
    const k = (name: string): string => `test/fixtures/keys/${name}`;
    const enc = await createGateway({ overrides: { saml: { decryption: { keyFile: k('sp-enc.key.pem'), certFile: k('sp-enc.crt.pem'), nextKeyFile: k('sp-enc-next.key.pem'), nextCertFile: k('sp-enc-next.crt.pem') } } } });
    try {
      const res = await enc.http.get('/saml/metadata/a.example');
      const encryption = keyDescriptors(res.text).filter((kd) => kd.getAttribute('use') === 'encryption');
      const body = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
      assert.deepEqual(
        encryption.map((kd) => kd.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'X509Certificate')[0]?.textContent),
        [body(readFileSync(k('sp-enc.crt.pem'), 'utf8')), body(readFileSync(k('sp-enc-next.crt.pem'), 'utf8'))],
      );
      const methods = Array.from(encryption[0]!.getElementsByTagNameNS(MD, 'EncryptionMethod')).map((m) => m.getAttribute('Algorithm'));
      assert.ok(methods.includes('http://www.w3.org/2009/xmlenc11#aes256-gcm'));
      assert.ok(methods.includes('http://www.w3.org/2001/04/xmlenc#aes128-cbc'));
      assert.ok(methods.includes('http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p'));
      assert.ok(!methods.some((m) => m?.includes('rsa-1_5') || m?.includes('tripledes')));
      // The signing certificate is still there, and not marked for encryption.
      assert.equal(keyDescriptors(res.text).filter((kd) => kd.getAttribute('use') === 'signing').length, 1);
    } finally {
      await enc.close();
    }
  });

  it('is served before the tenant has an IdP, and 404s for unknown tenants', async () => {
    assert.equal((await gw.http.get('/saml/metadata/nosso.example')).status, 200);
    const res = await gw.http.get('/saml/metadata/unknown.example');
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'tenant_not_found');
  });
});
