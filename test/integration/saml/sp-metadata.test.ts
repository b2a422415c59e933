import assert from 'node:assert/strict';
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

  it('is served before the tenant has an IdP, and 404s for unknown tenants', async () => {
    assert.equal((await gw.http.get('/saml/metadata/nosso.example')).status, 200);
    const res = await gw.http.get('/saml/metadata/unknown.example');
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'tenant_not_found');
  });
});
