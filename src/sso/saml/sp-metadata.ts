import type { Tenant } from '../../domain/tenant.js';
import { NAMEID_FORMAT_URNS, acsUrl, sloCallbackUrl, sloUrl, spEntityId, type SpContext } from './options.js';
import { xmlEscape } from './xml.js';

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

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
    slo +
    `<md:NameIDFormat>${NAMEID_FORMAT_URNS[tenant.sso.saml?.nameIdFormat ?? 'unspecified']}</md:NameIDFormat>` +
    `<md:AssertionConsumerService Binding="${POST}" Location="${xmlEscape(acsUrl(sp, tenant.domain))}" index="0" isDefault="true"/>` +
    `</md:SPSSODescriptor></md:EntityDescriptor>`
  );
}
