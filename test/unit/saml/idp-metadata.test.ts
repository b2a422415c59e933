import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../../src/errors/index.js';
import { normaliseCertificatePem } from '../../../src/sso/saml/certificates.js';
import { applyIdpMetadata, parseIdpMetadata } from '../../../src/sso/saml/idp-metadata.js';
import { derCertificate, idps } from '../../helpers/keys.js';

const certBody = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');

function metadata(options: { certs?: string[]; use?: string | null; sso?: string; slo?: string; root?: 'EntityDescriptor' | 'EntitiesDescriptor'; entityId?: string | null } = {}): string {
  const certs = options.certs ?? [idps.a.certificate];
  const use = options.use === undefined ? 'signing' : options.use;
  const keyDescriptors = certs
    .map(
      (c) =>
        `<md:KeyDescriptor${use === null ? '' : ` use="${use}"`}><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${certBody(c)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`,
    )
    .join('');
  const sso = options.sso ?? '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/>';
  const slo = options.slo ?? '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/slo"/>';
  const entityId = options.entityId === undefined ? 'https://idp.example/entity' : options.entityId;
  const entity = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"${entityId === null ? '' : ` entityID="${entityId}"`}><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keyDescriptors}${slo}${sso}</md:IDPSSODescriptor></md:EntityDescriptor>`;
  return options.root === 'EntitiesDescriptor' ? `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${entity}</md:EntitiesDescriptor>` : entity;
}

const refusedWith = (re: RegExp) => (err: unknown) => err instanceof AppError && err.code === 'idp_metadata_invalid' && re.test(err.publicMessage);

describe('IdP metadata import (S-12)', () => {
  it('takes entityID, SSO URL, SLO URL and the signing certificates', () => {
    const m = parseIdpMetadata(metadata({ certs: [idps.a.certificate, idps.aNext.certificate] }));
    assert.equal(m.entityId, 'https://idp.example/entity');
    assert.equal(m.ssoUrl, 'https://idp.example/sso');
    assert.equal(m.sloUrl, 'https://idp.example/slo');
    assert.equal(m.signingCertificates.length, 2);
    assert.equal(certBody(m.signingCertificates[0]!), certBody(idps.a.certificate));
  });

  it('accepts an EntitiesDescriptor holding one IdP and KeyDescriptors without use=', () => {
    const m = parseIdpMetadata(metadata({ root: 'EntitiesDescriptor', use: null }));
    assert.equal(m.signingCertificates.length, 1);
  });

  it('keeps two certificates at most and says so', () => {
    const m = parseIdpMetadata(metadata({ certs: [idps.a.certificate, idps.aNext.certificate, idps.b.certificate] }));
    assert.equal(m.signingCertificates.length, 2);
    assert.equal(m.warnings.length, 1);
  });

  it('applies to a tenant: login URL, entity ID, certificates, SLO URL', () => {
    const sso = applyIdpMetadata({ enabled: true, type: 'saml', userKey: 'externalKey', setExpireTime: false }, parseIdpMetadata(metadata()));
    assert.equal(sso.webLoginUrl, 'https://idp.example/sso');
    assert.equal(sso.saml?.idpEntityId, 'https://idp.example/entity');
    assert.equal(sso.saml?.idpSloUrl, 'https://idp.example/slo');
    assert.equal(sso.saml?.allowSha1, false);
    assert.equal(sso.saml?.signAuthnRequests, false, 'AuthnRequests go unsigned unless the IdP wants them signed');
  });

  it('turns AuthnRequest signing on when the IdP says WantAuthnRequestsSigned="true", and keeps an admin\'s choice otherwise', () => {
    const wants = metadata().replace('<md:IDPSSODescriptor ', '<md:IDPSSODescriptor WantAuthnRequestsSigned="true" ');
    const base = { enabled: true, type: 'saml' as const, userKey: 'externalKey' as const, setExpireTime: false };
    assert.equal(parseIdpMetadata(wants).wantAuthnRequestsSigned, true);
    assert.equal(applyIdpMetadata(base, parseIdpMetadata(wants)).saml?.signAuthnRequests, true);
    const chosen = applyIdpMetadata(base, parseIdpMetadata(metadata()));
    assert.equal(applyIdpMetadata({ ...base, saml: { ...chosen.saml!, signAuthnRequests: true } }, parseIdpMetadata(metadata())).saml?.signAuthnRequests, true);
  });

  it('accepts an IdP that offers only HTTP-POST and chooses the POST binding for it (S-7a)', () => {
    const POST = '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/sso-post"/>';
    const REDIRECT = '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso-redirect"/>';
    const base = { enabled: true, type: 'saml' as const, userKey: 'externalKey' as const, setExpireTime: false };
    const postOnly = parseIdpMetadata(metadata({ sso: POST }));
    assert.equal(postOnly.ssoUrl, 'https://idp.example/sso-post');
    assert.equal(postOnly.ssoBinding, 'post');
    const applied = applyIdpMetadata(base, postOnly);
    assert.equal(applied.webLoginUrl, 'https://idp.example/sso-post');
    assert.equal(applied.saml?.authnRequestBinding, 'post');

    // Both offered: redirect unless the tenant chose post, whose own Location is then used.
    const both = parseIdpMetadata(metadata({ sso: POST + REDIRECT }));
    assert.deepEqual([both.ssoBinding, both.ssoUrl], ['redirect', 'https://idp.example/sso-redirect']);
    const plain = applyIdpMetadata(base, both);
    assert.equal(plain.webLoginUrl, 'https://idp.example/sso-redirect');
    assert.equal(plain.saml?.authnRequestBinding, undefined);
    const preferPost = applyIdpMetadata({ ...base, saml: { ...plain.saml!, authnRequestBinding: 'post' } }, both);
    assert.deepEqual([preferPost.webLoginUrl, preferPost.saml?.authnRequestBinding], ['https://idp.example/sso-post', 'post']);
    // A tenant that had chosen post, re-imported metadata that lists only Redirect: back to redirect.
    const redirectOnly = applyIdpMetadata({ ...base, saml: { ...plain.saml!, authnRequestBinding: 'post' } }, parseIdpMetadata(metadata({ sso: REDIRECT })));
    assert.deepEqual([redirectOnly.webLoginUrl, redirectOnly.saml?.authnRequestBinding], ['https://idp.example/sso-redirect', 'redirect']);
  });

  it('refuses malformed, hostile or incomplete metadata with a reason', () => {
    assert.throws(() => parseIdpMetadata(''), refusedWith(/empty/));
    assert.throws(() => parseIdpMetadata('<md:EntityDescriptor'), refusedWith(/malformed/));
    assert.throws(() => parseIdpMetadata(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${metadata()}`), refusedWith(/DOCTYPE/));
    assert.throws(() => parseIdpMetadata('<foo/>'), refusedWith(/EntityDescriptor/));
    assert.throws(() => parseIdpMetadata(metadata({ entityId: null })), refusedWith(/entityID/));
    assert.throws(() => parseIdpMetadata(metadata({ certs: [] })), refusedWith(/signing certificate/));
    assert.throws(() => parseIdpMetadata(metadata({ use: 'encryption' })), refusedWith(/signing certificate/));
    assert.throws(() => parseIdpMetadata(metadata({ sso: '' })), refusedWith(/SingleSignOnService/));
    assert.throws(
      () => parseIdpMetadata(metadata({ sso: '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact" Location="https://idp.example/sso"/>' })),
      refusedWith(/HTTP-Redirect or HTTP-POST/),
    );
    assert.throws(
      () => parseIdpMetadata(metadata({ sso: '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="data:text/html,x"/>' })),
      refusedWith(/http/),
    );
    assert.throws(
      () => parseIdpMetadata(metadata({ sso: '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="javascript:alert(1)"/>' })),
      refusedWith(/http/),
    );
    assert.throws(() => parseIdpMetadata(metadata({ certs: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'] })), refusedWith(/certificate/));
  });
});

describe('certificates are PEM only (S-12)', () => {
  it('accepts PEM and normalises line endings', () => {
    const pem = normaliseCertificatePem(idps.a.certificate.replace(/\n/g, '\r\n'));
    assert.ok(pem.startsWith('-----BEGIN CERTIFICATE-----\n'));
    assert.ok(!pem.includes('\r'));
  });
  it('refuses DER with certificate_not_pem and a "convert to PEM" message', () => {
    assert.throws(
      () => normaliseCertificatePem(derCertificate().toString('latin1')),
      (err: unknown) => err instanceof AppError && err.code === 'certificate_not_pem' && /convert it to PEM/.test(err.publicMessage),
    );
    assert.throws(() => normaliseCertificatePem(derCertificate().toString('base64')), (err: unknown) => err instanceof AppError && err.code === 'certificate_not_pem');
  });
  it('refuses a PEM block that is not a certificate', () => {
    assert.throws(
      () => normaliseCertificatePem('-----BEGIN CERTIFICATE-----\nTUlJQmJhZGNlcnQ=\n-----END CERTIFICATE-----\n'),
      (err: unknown) => err instanceof AppError && err.code === 'certificate_invalid',
    );
    assert.throws(() => normaliseCertificatePem(idps.a.privateKey), (err: unknown) => err instanceof AppError && err.code === 'certificate_not_pem');
  });
});
