import { sign, type KeyObject } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { SignedXml } from 'xml-crypto';
import type { Tenant } from '../../domain/tenant.js';
import { APP_USER_AGENT } from '../app-login-checks.js';
import type { ClientKind } from '../transactions.js';
import { acsUrl, buildAuthnRequestOptions, requireSamlSettings, samlEntryPoint, spEntityId, type AuthnRequestOptions, type SpContext } from './options.js';
import { xmlEscape } from './xml.js';

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

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

/** An AuthnRequest on its way to the IdP: a redirect (HTTP-Redirect binding) or a form to post (HTTP-POST). */
export type AuthnRequestMessage = { binding: 'redirect'; location: string } | { binding: 'post'; action: string; fields: { SAMLRequest: string; RelayState: string } };

/**
 * S-7, S-7a: the AuthnRequest XML — unique ID, IssueInstant, ProtocolBinding HTTP-POST (the ACS),
 * AssertionConsumerServiceURL, Destination, Issuer = the SP entity ID, ForceAuthn when the tenant asks,
 * NameIDPolicy in the tenant's format, RequestedAuthnContext when the tenant names classes (children in
 * the order of the SAML core schema).
 */
export function buildAuthnRequestXml(input: { requestId: string; now: number; destination: string; acsUrl: string; issuer: string; options: AuthnRequestOptions }): string {
  const o = input.options;
  const context = o.requestedAuthnContext
    ? `<samlp:RequestedAuthnContext Comparison="${o.requestedAuthnContext.comparison}">` +
      o.requestedAuthnContext.classRefs.map((ref) => `<saml:AuthnContextClassRef>${xmlEscape(ref)}</saml:AuthnContextClassRef>`).join('') +
      `</samlp:RequestedAuthnContext>`
    : '';
  return (
    `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${xmlEscape(input.requestId)}" Version="2.0"` +
    ` IssueInstant="${new Date(input.now).toISOString()}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"` +
    ` Destination="${xmlEscape(input.destination)}" AssertionConsumerServiceURL="${xmlEscape(input.acsUrl)}"${o.forceAuthn ? ' ForceAuthn="true"' : ''}>` +
    `<saml:Issuer>${xmlEscape(input.issuer)}</saml:Issuer>` +
    `<samlp:NameIDPolicy Format="${xmlEscape(o.nameIdFormat)}" AllowCreate="true"/>` +
    context +
    `</samlp:AuthnRequest>`
  );
}

/** HTTP-POST binding: an enveloped signature (RSA-SHA256, exc-c14n) right after the Issuer (SAML core §5.4.2). */
function signAuthnRequestXml(xml: string, key: KeyObject): string {
  const sig = new SignedXml({ privateKey: key.export({ format: 'pem', type: 'pkcs8' }), signatureAlgorithm: RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
  sig.addReference({ xpath: "/*[local-name(.)='AuthnRequest']", digestAlgorithm: SHA256, transforms: [ENVELOPED, EXC_C14N] });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: "/*[local-name(.)='AuthnRequest']/*[local-name(.)='Issuer']", action: 'after' } });
  return sig.getSignedXml();
}

/** The entry point with extra query parameters appended after its own. */
function withQuery(entryPoint: string, query: string): string {
  if (!query) return entryPoint;
  const url = new URL(entryPoint);
  url.search = url.search ? `${url.search.slice(1)}&${query}` : query;
  return url.href;
}

/**
 * S-7: the AuthnRequest for one login, in the tenant's binding. HTTP-Redirect (SAML bindings §3.4): the
 * deflated request in the IdP URL, signed when asked over `SAMLRequest=…&RelayState=…&SigAlg=…`
 * (§3.4.4.1). HTTP-POST (§3.5): the base64 request and RelayState as form fields for the browser to
 * post, signed when asked with an enveloped XML signature. Built directly rather than through
 * node-saml: this runs on every login start (see bench/authn-request.ts and docs/spec.md §13).
 */
export function buildAuthnRequest(input: AuthnRequestInput): AuthnRequestMessage {
  const { tenant, sp } = input;
  const saml = requireSamlSettings(tenant);
  const options = buildAuthnRequestOptions(saml, sp);
  const entryPoint = samlEntryPoint(tenant, input.clientKind);
  const xml = buildAuthnRequestXml({ requestId: input.requestId, now: input.now, destination: entryPoint, acsUrl: acsUrl(sp, tenant.domain), issuer: spEntityId(sp, tenant), options });
  const key = options.sign ? input.signingKey : undefined;
  // S-18: an app login tells the IdP so (beside worksId, outside the signed part); the IdP may then check
  // the AuthnRequest ID with POST /login/check/{ID}.
  const hint = [input.worksId !== undefined ? `worksId=${encodeURIComponent(input.worksId)}` : '', input.clientKind === 'app' ? `userAgent=${APP_USER_AGENT}` : ''].filter(Boolean).join('&');
  if (options.binding === 'post') {
    const body = key ? signAuthnRequestXml(xml, key) : xml;
    return { binding: 'post', action: withQuery(entryPoint, hint), fields: { SAMLRequest: Buffer.from(body, 'utf8').toString('base64'), RelayState: input.relayState } };
  }
  // The signed octets are exactly the encoded parameters as they appear in the URL.
  let query = `SAMLRequest=${encodeURIComponent(deflateRawSync(xml).toString('base64'))}&RelayState=${encodeURIComponent(input.relayState)}`;
  if (key) {
    query += `&SigAlg=${encodeURIComponent(RSA_SHA256)}`;
    query += `&Signature=${encodeURIComponent(sign('sha256', Buffer.from(query, 'utf8'), key).toString('base64'))}`;
  }
  if (hint) query += `&${hint}`;
  return { binding: 'redirect', location: withQuery(entryPoint, query) };
}

