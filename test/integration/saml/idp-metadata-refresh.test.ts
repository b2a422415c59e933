import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SignedXml } from 'xml-crypto';
import { idps, type TestIdpKeys } from '../../helpers/keys.js';
import { LOOPBACK_IDPS, OPERATOR_AUTH as OPERATOR, beginLogin, createGateway, errorCodeOf, lastAuditReason, postAcs, validResponse, type Gateway } from '../../helpers/gateway.js';

const D = 'a.example';
const HOUR = 3600_000;
const MINUTE = 60_000;
const DAY = 24 * HOUR;
const body = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
const fp = (pem: string): string => new X509Certificate(pem).fingerprint256;

/** IdP A's metadata (its entity ID and SSO URL, as the standard tenant a.example has), listing `certs`. */
function metadata(certs: string[]): string {
  const kds = certs.map((c) => `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${body(c)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`).join('');
  return (
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_idp-a-metadata" entityID="${idps.a.entityId}">` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${kds}` +
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${idps.a.ssoUrl}"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

/** The metadata with an enveloped RSA-SHA256 signature on its root by `signer`, placed first as the schema wants. */
function signedMetadata(certs: string[], signer: TestIdpKeys): string {
  const sig = new SignedXml({ privateKey: signer.privateKey, publicCert: signer.certificate, signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#' });
  sig.addReference({ xpath: '/*', digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256', transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'] });
  sig.computeSignature(metadata(certs), { prefix: 'ds', location: { reference: '/*', action: 'prepend' } });
  return sig.getSignedXml();
}

/** A test IdP's metadata endpoint: what it serves is changed by the test; it counts the fetches. */
const served = { status: 200, xml: metadata([idps.a.certificate]), hits: 0 };

async function loginStatus(gw: Gateway, idp: TestIdpKeys): Promise<number> {
  const login = await beginLogin(gw, D);
  const res = await postAcs(gw, D, validResponse(gw, D, idp, login, 'emp-001'), login.relayState);
  return res.status;
}

async function certificatesOf(gw: Gateway): Promise<string[]> {
  return (await gw.services.tenants.find(D))!.sso.saml!.idpCertificates;
}

describe('IdP metadata refresh: certificate rollover without an administrator', () => {
  let gw: Gateway;
  let gw2: Gateway;
  let server: Server;
  let url: string;

  before(async () => {
    server = createServer((_req, res) => {
      served.hits++;
      res.writeHead(served.status, { 'content-type': 'application/samlmetadata+xml' }).end(served.xml);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/metadata`;
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
    // A second gateway process on the same Redis and the same (injected) time.
    gw2 = await createGateway({ overrides: LOOPBACK_IDPS, store: gw.store, clock: gw.clock });
    const res = await gw.http.post(`/admin/v1/domains/${D}/saml/idp-metadata`).set('Authorization', OPERATOR).send({ url });
    assert.equal(res.status, 200, res.text);
  });
  after(async () => {
    server.close();
    await gw2.close();
    await gw.close();
  });

  it('keeps the URL of an import and schedules the next refresh one interval (6 h ± 10%) later', async () => {
    const tenant = await gw.services.tenants.find(D);
    assert.equal(tenant?.sso.saml?.idpMetadataUrl, url);
    const sso = await gw.http.get(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR);
    assert.equal(sso.status, 200);
    const refresh = sso.body.idpMetadataRefresh;
    assert.equal(refresh.url, url);
    assert.equal(refresh.lastError, null);
    const due = Date.parse(refresh.nextDueAt) - gw.clock.now();
    assert.ok(due >= 5.4 * HOUR && due <= 6.6 * HOUR, `next refresh in ${due / HOUR} h`);
    const hits = served.hits;
    assert.equal(await gw.services.idpMetadata.tick(), 0, 'nothing is due yet');
    assert.equal(served.hits, hits);
    assert.equal(await loginStatus(gw, idps.a), 303);
  });

  it('picks up a new certificate the IdP publishes, then the removal of the old one: logins go on with no admin action', async () => {
    served.xml = metadata([idps.a.certificate, idps.aNext.certificate]);
    gw.clock.advance(7 * HOUR);
    assert.equal(await gw.services.idpMetadata.tick(), 1);
    assert.deepEqual((await certificatesOf(gw)).map(fp), [fp(idps.a.certificate), fp(idps.aNext.certificate)]);
    let audit = (await gw.services.audit.list(D, 1))[0];
    assert.equal(audit?.type, 'idp_metadata.refreshed');
    assert.equal(audit?.actor, 'scheduler');
    assert.equal(audit?.data?.added, fp(idps.aNext.certificate));
    assert.equal(audit?.data?.removed, '');

    // The IdP switches to its new key and stops publishing the old certificate.
    served.xml = metadata([idps.aNext.certificate]);
    gw.clock.advance(7 * HOUR);
    assert.equal(await gw.services.idpMetadata.tick(), 1);
    assert.equal(await loginStatus(gw, idps.aNext), 303, 'a response signed with the new key logs in');
    assert.equal(await loginStatus(gw, idps.a), 400, 'the retired key no longer does');
    assert.equal(await lastAuditReason(gw, D), 'signature_invalid');
    audit = (await gw.services.audit.list(D, 5)).find((e) => e.type === 'idp_metadata.refreshed');
    assert.equal(audit?.data?.added, '');
    assert.equal(audit?.data?.removed, fp(idps.a.certificate));

    // The same document again: nothing changes and nothing is audited.
    gw.clock.advance(7 * HOUR);
    const before = (await gw.services.audit.list(D, 1))[0]?.id;
    assert.equal(await gw.services.idpMetadata.tick(), 1);
    assert.equal((await gw.services.audit.list(D, 1))[0]?.id, before);
  });

  it('keeps the certificates on a broken fetch (HTTP 500, garbage, no certificate, another IdP, past validUntil), audits it and backs off 5, 10, 20 … min', async () => {
    const kept = await certificatesOf(gw);
    const cases: Array<{ status: number; xml: string; reason: string }> = [
      { status: 500, xml: 'oops', reason: 'http_status' },
      { status: 200, xml: '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"', reason: 'idp_metadata_invalid' },
      { status: 200, xml: metadata([]), reason: 'idp_metadata_invalid' },
      { status: 200, xml: metadata([idps.b.certificate]).replace(idps.a.entityId, idps.b.entityId), reason: 'entity_id_changed' },
      { status: 200, xml: metadata([idps.b.certificate]).replace('ID="_idp-a-metadata"', `ID="_old" validUntil="${new Date(gw.clock.now()).toISOString()}"`), reason: 'metadata_expired' },
    ];
    gw.clock.advance(7 * HOUR);
    let wait = 5 * MINUTE;
    for (const [i, c] of cases.entries()) {
      served.status = c.status;
      served.xml = c.xml;
      assert.equal(await gw.services.idpMetadata.tick(), 1, c.reason);
      assert.deepEqual(await certificatesOf(gw), kept, c.reason);
      const audit = (await gw.services.audit.list(D, 1))[0];
      assert.equal(audit?.type, 'idp_metadata.refresh_failed');
      assert.equal(audit?.reason, c.reason);
      const status = await gw.services.idpMetadata.status(D);
      assert.equal(status?.failures, i + 1);
      assert.equal(status.nextDueAt - gw.clock.now(), wait, `backoff after failure ${i + 1}`);
      assert.equal(await gw.services.idpMetadata.tick(), 0, 'not again before the backoff');
      gw.clock.advance(wait);
      wait *= 2;
    }
    const sso = await gw.http.get(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR);
    assert.equal(sso.body.idpMetadataRefresh.lastError.reason, 'metadata_expired');
    assert.equal(sso.body.idpMetadataRefresh.failures, 5);
    assert.equal(await loginStatus(gw, idps.aNext), 303, 'logins go on with the kept certificate');

    served.status = 200;
    served.xml = metadata([idps.aNext.certificate]);
    assert.equal(await gw.services.idpMetadata.tick(), 1);
    const status = await gw.services.idpMetadata.status(D);
    assert.equal(status?.failures, 0);
    assert.equal(status?.lastError, null);
  });

  it('two gateway processes on one Redis fetch once per due time', async () => {
    for (let round = 0; round < 3; round++) {
      gw.clock.advance(7 * HOUR);
      const hits = served.hits;
      const counts = await Promise.all([gw.services.idpMetadata.tick(), gw2.services.idpMetadata.tick()]);
      assert.equal(counts[0] + counts[1], 1, `round ${round}: ${counts.join(',')}`);
      const again = await Promise.all([gw2.services.idpMetadata.tick(), gw.services.idpMetadata.tick()]);
      assert.deepEqual(again, [0, 0]);
      assert.equal(served.hits, hits + 1);
    }
  });

  it('refresh now: POST …/sso/saml/idp-metadata/refresh (409 without a URL; a failure answers its error and is audited)', async () => {
    const none = await gw.http.post('/admin/v1/domains/nosso.example/sso/saml/idp-metadata/refresh').set('Authorization', OPERATOR).send({});
    assert.equal(none.status, 409);
    assert.equal(errorCodeOf(none), 'idp_metadata_url_missing');

    const same = await gw.http.post(`/admin/v1/domains/${D}/sso/saml/idp-metadata/refresh`).set('Authorization', OPERATOR).send({});
    assert.equal(same.status, 200, same.text);
    assert.equal(same.body.result, 'unchanged');

    served.xml = metadata([idps.aNext.certificate, idps.a.certificate]);
    const updated = await gw.http.post(`/admin/v1/domains/${D}/sso/saml/idp-metadata/refresh`).set('Authorization', OPERATOR).send({});
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.body.result, 'updated');
    assert.deepEqual(updated.body.added, [fp(idps.a.certificate)]);
    assert.equal(updated.body.sso.certificates.length, 2);
    assert.equal((await gw.services.audit.list(D, 1))[0]?.actor.startsWith('admin') || (await gw.services.audit.list(D, 1))[0]?.actor === 'operator', true);

    served.status = 500;
    const failed = await gw.http.post(`/admin/v1/domains/${D}/sso/saml/idp-metadata/refresh`).set('Authorization', OPERATOR).send({});
    served.status = 200;
    assert.equal(failed.status, 400);
    assert.equal(errorCodeOf(failed), 'metadata_fetch_failed');
    assert.equal((await gw.services.audit.list(D, 1))[0]?.type, 'idp_metadata.refresh_failed');
    assert.equal((await certificatesOf(gw)).length, 2);
  });

  it('with requireSignedMetadata, an unsigned or wrongly signed document changes nothing; one signed by the pinned certificate is applied', async () => {
    const patch = await gw.http
      .patch(`/admin/v1/domains/${D}/sso`)
      .set('Authorization', OPERATOR)
      .send({ saml: { requireSignedMetadata: true, metadataSigningCertificate: idps.b.certificate } });
    assert.equal(patch.status, 200, patch.text);
    const kept = await certificatesOf(gw);
    const refresh = () => gw.http.post(`/admin/v1/domains/${D}/sso/saml/idp-metadata/refresh`).set('Authorization', OPERATOR).send({});

    served.xml = metadata([idps.aNext.certificate]);
    const unsigned = await refresh();
    assert.equal(errorCodeOf(unsigned), 'idp_metadata_unsigned');
    served.xml = signedMetadata([idps.aNext.certificate], idps.attacker);
    const forged = await refresh();
    assert.equal(errorCodeOf(forged), 'idp_metadata_signature_invalid');
    served.xml = signedMetadata([idps.aNext.certificate], idps.b).replace(body(idps.aNext.certificate), body(idps.attacker.certificate));
    const tampered = await refresh();
    assert.equal(errorCodeOf(tampered), 'idp_metadata_signature_invalid');
    assert.deepEqual(await certificatesOf(gw), kept);
    assert.equal((await gw.services.audit.list(D, 1))[0]?.reason, 'signature_invalid');

    served.xml = signedMetadata([idps.aNext.certificate], idps.b);
    const ok = await refresh();
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(await certificatesOf(gw), [idps.aNext.certificate]);

    const missing = await gw.http.patch(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR).send({ saml: { metadataSigningCertificate: null } });
    assert.equal(missing.status, 400);
    assert.equal(errorCodeOf(missing), 'validation_failed');
  });

  it('warns of certificates ending within 30 days in /metrics and GET …/sso', async () => {
    const notAfter = Date.parse(new X509Certificate(idps.aNext.certificate).validTo);
    const metricLine = async (): Promise<string | undefined> => (await gw.http.get('/metrics')).text.split('\n').find((l) => l.startsWith(`idpb_idp_certificates_expiring{domain="${D}"}`));
    assert.equal(await metricLine(), undefined, 'nothing expiring today');
    gw.clock.set(notAfter - 10 * DAY);
    assert.equal(await metricLine(), `idpb_idp_certificates_expiring{domain="${D}"} 1`);
    const sso = await gw.http.get(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR);
    assert.equal(sso.body.certificates[0].expiresSoon, true);
    assert.equal(sso.body.certificates[0].notAfter, new Date(notAfter).toISOString());
  });

  it('the scheduler runs a pass on its timer and stops with the process (timers mocked, no waiting)', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    gw.clock.advance(7 * HOUR);
    const hits = served.hits;
    gw.services.idpMetadata.start((err) => assert.fail(String(err)));
    t.mock.timers.tick(59_000);
    await gw.services.idpMetadata.idle();
    assert.equal(served.hits, hits, 'no pass before checkEverySeconds');
    t.mock.timers.tick(1_000);
    await gw.services.idpMetadata.idle();
    assert.equal(served.hits, hits + 1, 'the timer ran a pass, which fetched the due tenant');
    gw.clock.advance(7 * HOUR);
    t.mock.timers.tick(60_000);
    await gw.services.idpMetadata.idle();
    assert.equal(served.hits, hits + 2, 'and again a minute later');
    await gw.services.idpMetadata.stop();
    gw.clock.advance(7 * HOUR);
    t.mock.timers.tick(120_000);
    await gw.services.idpMetadata.idle();
    assert.equal(served.hits, hits + 2, 'stopped: the timer runs no pass');
    assert.equal(await gw.services.idpMetadata.tick(), 1, 'the refresh is still due');
  });

  it('goes through the outbound policy: a gateway that does not admit loopback refuses the URL and keeps the certificates', async () => {
    const guarded = await createGateway({ store: gw.store, clock: gw.clock });
    try {
      const before = await certificatesOf(gw);
      const res = await guarded.http.post(`/admin/v1/domains/${D}/sso/saml/idp-metadata/refresh`).set('Authorization', OPERATOR).send({});
      assert.equal(res.status, 400);
      assert.equal(errorCodeOf(res), 'metadata_fetch_failed');
      assert.equal(await lastAuditReason(gw, D), 'outbound_refused');
      assert.deepEqual(await certificatesOf(gw), before);
    } finally {
      await guarded.close();
    }
  });

  it('an XML import replaces the URL: nothing refreshes it any more', async () => {
    const res = await gw.http.post(`/admin/v1/domains/${D}/saml/idp-metadata`).set('Authorization', OPERATOR).set('Content-Type', 'application/xml').send(metadata([idps.a.certificate]));
    assert.equal(res.status, 200, res.text);
    assert.equal((await gw.services.tenants.find(D))?.sso.saml?.idpMetadataUrl, undefined);
    assert.equal(await gw.services.idpMetadata.status(D), null);
    gw.clock.advance(7 * HOUR);
    assert.equal(await gw.services.idpMetadata.tick(), 0);
  });
});
