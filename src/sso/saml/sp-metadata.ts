import { SAML } from '@node-saml/node-saml';
import type { Tenant } from '../../domain/tenant.js';
import { NAMEID_UNSPECIFIED, acsUrl, spEntityId, type SpContext } from './options.js';

/**
 * S-11: SP metadata for one tenant — EntityDescriptor with WantAssertionsSigned="true", the HTTP-POST
 * ACS and the NameID format; signing key descriptors and SLO endpoints arrive when configured.
 * Available before the tenant has an IdP, since the admin needs it to register the bridge there.
 */
export function buildSpMetadata(sp: SpContext, tenant: Tenant): string {
  const saml = new SAML({
    issuer: spEntityId(sp, tenant),
    callbackUrl: acsUrl(sp, tenant.domain),
    // The metadata does not involve the IdP; node-saml requires the option, so give it a callback.
    idpCert: (cb) => cb(new Error('not used for metadata')),
    identifierFormat: NAMEID_UNSPECIFIED,
    wantAssertionsSigned: true,
  });
  return saml.generateServiceProviderMetadata(null, null);
}
