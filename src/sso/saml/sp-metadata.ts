import type { Tenant } from '../../domain/tenant.js';
import { NAMEID_FORMAT_URNS, acsUrl, sloCallbackUrl, sloUrl, spEntityId, type SpContext } from './options.js';
import { xmlEscape } from './xml.js';

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

/**
 * What the SP decrypts, in order of preference (encrypted-assertion.ts): SAML metadata lets an IdP pick
 * from these. rsa-oaep-mgf1p first: node-saml, the second gate, decrypts it too.
 */
const ENCRYPTION_METHODS = [
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  'http://www.w3.org/2009/xmlenc11#rsa-oaep',
];

const certBody = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');

/**
 * S-11: SP metadata for one tenant — EntityDescriptor, SPSSODescriptor with AuthnRequestsSigned and
 * WantAssertionsSigned="true", the signing certificate(s) (current, and next ahead of a rollover),
 * single logout endpoints (Location for requests, ResponseLocation for responses) when the SP can
 * sign, the NameID format and the HTTP-POST ACS. Served before the tenant has an IdP, since the
 * admin needs it to register the bridge there.
 */
export function buildSpMetadata(sp: SpContext, tenant: Tenant): string {
  const signing = sp.signing;
  const certs = signing ? [signing.certificate, ...(signing.nextCertificate ? [signing.nextCertificate] : [])] : [];
  const keyDescriptors = certs
    .map((c) => `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certBody(c)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`)
    .join('');
  // b-saml-enc: the decryption keys' certificates (current, and next during a rollover) for IdPs to encrypt to.
  const encryption = (sp.decryption ?? [])
    .map(
      (k) =>
        `<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certBody(k.certificate)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>` +
        ENCRYPTION_METHODS.map((a) => `<md:EncryptionMethod Algorithm="${a}"/>`).join('') +
        `</md:KeyDescriptor>`,
    )
    .join('');
  const slo = signing
    ? [REDIRECT, POST]
        .map((b) => `<md:SingleLogoutService Binding="${b}" Location="${xmlEscape(sloUrl(sp))}" ResponseLocation="${xmlEscape(sloCallbackUrl(sp))}"/>`)
        .join('')
    : '';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${xmlEscape(spEntityId(sp, tenant))}">` +
    `<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="${signing && tenant.sso.saml?.signAuthnRequests ? 'true' : 'false'}" WantAssertionsSigned="true">` +
    keyDescriptors +
    encryption +
    slo +
    `<md:NameIDFormat>${NAMEID_FORMAT_URNS[tenant.sso.saml?.nameIdFormat ?? 'unspecified']}</md:NameIDFormat>` +
    `<md:AssertionConsumerService Binding="${POST}" Location="${xmlEscape(acsUrl(sp, tenant.domain))}" index="0" isDefault="true"/>` +
    `</md:SPSSODescriptor></md:EntityDescriptor>`
  );
}
