import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { LOOPBACK_IDPS, createGateway, type Gateway, OPERATOR_AUTH as OPERATOR } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

const body = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
const METADATA = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.meta.test/entity"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${body(idps.a.certificate)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.meta.test/slo"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.meta.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`;

describe('IdP metadata import through the admin API (S-12)', () => {
  let open: Gateway;
  let guarded: Gateway;
  let server: Server;
  let base: string;

  before(async () => {
    open = await createGateway({ overrides: LOOPBACK_IDPS });
    guarded = await createGateway();
    server = createServer((req, res) => {
      if (req.url === '/metadata') return void res.writeHead(200, { 'content-type': 'application/xml' }).end(METADATA);
      if (req.url === '/redirect') return void res.writeHead(302, { location: '/metadata' }).end();
      if (req.url === '/huge') return void res.writeHead(200).end('x'.repeat(1_100_000));
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.close();
    await open.close();
    await guarded.close();
  });

  it('imports an XML body: entity ID, SSO and SLO URLs, certificates', async () => {
    const res = await open.http.post('/admin/v1/domains/nosso.example/saml/idp-metadata').set('Authorization', OPERATOR).set('Content-Type', 'application/xml').send(METADATA);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.entityId, 'https://idp.meta.test/entity');
    assert.equal(res.body.ssoUrl, 'https://idp.meta.test/sso');
    assert.equal(res.body.sloUrl, 'https://idp.meta.test/slo');
    assert.equal(res.body.certificates, 1);
    const tenant = await open.services.tenants.find('nosso.example');
    assert.equal(tenant?.sso.webLoginUrl, 'https://idp.meta.test/sso');
    assert.equal(tenant?.sso.enabled, false, 'importing metadata does not switch SSO on');
    const audit = await open.services.audit.list('nosso.example', 1);
    assert.equal(audit[0]?.type, 'idp_metadata.imported');
  });

  it('refuses malformed and hostile XML with idp_metadata_invalid', async () => {
    for (const xml of ['<md:EntityDescriptor', `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${METADATA}`, METADATA.replace(/<md:KeyDescriptor[\s\S]*<\/md:KeyDescriptor>/, '')]) {
      const res = await open.http.post('/admin/v1/domains/nosso.example/saml/idp-metadata').set('Authorization', OPERATOR).set('Content-Type', 'application/xml').send(xml);
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'idp_metadata_invalid');
    }
  });

  it('fetches {"url"} when allowed, refusing redirects and oversized documents', async () => {
    const ok = await open.http.post('/admin/v1/domains/nosso.example/saml/idp-metadata').set('Authorization', OPERATOR).send({ url: `${base}/metadata` });
    assert.equal(ok.status, 200, ok.text);
    for (const path of ['/redirect', '/huge', '/missing']) {
      const res = await open.http.post('/admin/v1/domains/nosso.example/saml/idp-metadata').set('Authorization', OPERATOR).send({ url: `${base}${path}` });
      assert.equal(res.status, 400, path);
      assert.equal(res.body.error, 'metadata_fetch_failed', path);
    }
  });

  it('refuses loopback, private and link-local targets (SSRF guard) by default', async () => {
    for (const url of [`${base}/metadata`, 'http://localhost:1/metadata', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:1/x', 'http://10.0.0.1/x', 'ftp://idp.example/x', 'https://user:pw@idp.example/x']) {
      const res = await guarded.http.post('/admin/v1/domains/nosso.example/saml/idp-metadata').set('Authorization', OPERATOR).send({ url });
      assert.equal(res.status, 400, url);
      assert.equal(res.body.error, 'metadata_fetch_failed', url);
    }
  });
});
