import { sign, type KeyObject } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import type { Tenant } from '../../domain/tenant.js';
import { APP_USER_AGENT } from '../app-login-checks.js';
import type { ClientKind } from '../transactions.js';
import { NAMEID_UNSPECIFIED, acsUrl, requireSamlSettings, samlEntryPoint, spEntityId, type SpContext } from './options.js';
import { xmlEscape } from './xml.js';

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

export interface AuthnRequestInput {
  tenant: Tenant;
  sp: SpContext;
  clientKind: ClientKind;
  /** The AuthnRequest ID (kept in the login transaction, expected back as InResponseTo). */
  requestId: string;
  /** The opaque transaction id. */
  relayState: string;
  /** IssueInstant, from the injected clock. */
  now: number;
  /** Optional login hint passed on to the IdP (S-4). */
  worksId?: string;
  /** The SP signing key, parsed once (a PEM string would be parsed again on every login). */
  signingKey?: KeyObject;
}

/**
 * S-7: the IdP redirect URL carrying an AuthnRequest (HTTP-Redirect binding, SAML bindings §3.4) —
 * unique ID, IssueInstant, ProtocolBinding HTTP-POST, AssertionConsumerServiceURL, Destination,
 * Issuer = the SP entity ID, NameIDPolicy unspecified. Signed (RSA-SHA256 over
 * `SAMLRequest=…&RelayState=…&SigAlg=…`, §3.4.4.1) when the tenant's IdP wants signed requests and the
 * gateway has an SP key. Built directly rather than through node-saml: this runs on every login start,
 * and the library's per-request setup and PEM parsing cost several times the whole route.
 */
export function authnRequestUrl(input: AuthnRequestInput): string {
  const { tenant, sp } = input;
  const saml = requireSamlSettings(tenant);
  const entryPoint = samlEntryPoint(tenant, input.clientKind);
  const xml =
    `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="${xmlEscape(input.requestId)}" Version="2.0"` +
    ` IssueInstant="${new Date(input.now).toISOString()}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"` +
    ` Destination="${xmlEscape(entryPoint)}" AssertionConsumerServiceURL="${xmlEscape(acsUrl(sp, tenant.domain))}">` +
    `<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">${xmlEscape(spEntityId(sp, tenant))}</saml:Issuer>` +
    `<samlp:NameIDPolicy Format="${NAMEID_UNSPECIFIED}" AllowCreate="true"/>` +
    `</samlp:AuthnRequest>`;
  // The signed octets are exactly the encoded parameters as they appear in the URL.
  let query = `SAMLRequest=${encodeURIComponent(deflateRawSync(xml).toString('base64'))}&RelayState=${encodeURIComponent(input.relayState)}`;
  if (saml.signAuthnRequests && input.signingKey) {
    query += `&SigAlg=${encodeURIComponent(RSA_SHA256)}`;
    query += `&Signature=${encodeURIComponent(sign('sha256', Buffer.from(query, 'utf8'), input.signingKey).toString('base64'))}`;
  }
  if (input.worksId !== undefined) query += `&worksId=${encodeURIComponent(input.worksId)}`;
  // S-18: an app login tells the IdP so; the IdP may then check the AuthnRequest ID with POST /login/check/{ID}.
  if (input.clientKind === 'app') query += `&userAgent=${APP_USER_AGENT}`;
  const url = new URL(entryPoint);
  url.search = url.search ? `${url.search.slice(1)}&${query}` : query;
  return url.href;
}
