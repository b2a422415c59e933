import { AppError, isAppError } from '../../errors/index.js';
import type { SsoSettings } from '../../domain/tenant.js';
import { certificateFromBase64 } from './certificates.js';
import { METADATA_LIMITS, NS, XmlRefused, attr, childElements, descendants, parseUntrustedXml } from './xml.js';

const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

export interface IdpMetadata {
  entityId: string;
  /** The SingleSignOnService the bridge sends AuthnRequests to: HTTP-Redirect when listed, else HTTP-POST. */
  ssoUrl: string;
  /** The binding of `ssoUrl`. */
  ssoBinding: 'redirect' | 'post';
  /** Each SingleSignOnService listed, by binding (an admin may prefer POST where both are offered). */
  ssoUrls: { redirect?: string; post?: string };
  sloUrl?: string;
  /** PEM signing certificates (at most two kept: current and next). */
  signingCertificates: string[];
  /** IDPSSODescriptor WantAuthnRequestsSigned="true": the IdP refuses unsigned AuthnRequests. */
  wantAuthnRequestsSigned: boolean;
  warnings: string[];
}

function refuse(detail: string): AppError {
  return new AppError('idp_metadata_invalid', { detail, message: `The identity provider metadata could not be used: ${detail}.` });
}

/**
 * S-12: takes entityID, the SSO URL, the SLO URL and the signing certificates from IdP metadata XML.
 * Malformed XML, DOCTYPEs, metadata without an IdP role, without an HTTP-Redirect or HTTP-POST SSO
 * endpoint or without a signing certificate are refused with a reason.
 */
export function parseIdpMetadata(xml: string): IdpMetadata {
  if (typeof xml !== 'string' || xml.trim() === '') throw refuse('the document is empty');
  if (xml.length > 1_000_000) throw refuse('the document is larger than 1 MB');
  let doc: Document;
  try {
    doc = parseUntrustedXml(xml, METADATA_LIMITS);
  } catch (err) {
    if (err instanceof XmlRefused) throw refuse({ doctype_refused: 'DOCTYPE declarations are not allowed', xml_malformed: 'the XML is malformed', xml_too_complex: 'the XML is nested too deeply or has too many elements or attributes' }[err.kind]);
    throw err;
  }
  const root = doc.documentElement;
  let entity: Element | undefined;
  if (root.namespaceURI === NS.metadata && root.localName === 'EntityDescriptor') entity = root;
  else if (root.namespaceURI === NS.metadata && root.localName === 'EntitiesDescriptor') {
    const withIdp = descendants(root, NS.metadata, 'EntityDescriptor').filter((e) => childElements(e, NS.metadata, 'IDPSSODescriptor').length);
    if (withIdp.length !== 1) throw refuse('it must describe exactly one identity provider');
    entity = withIdp[0];
  }
  if (!entity) throw refuse('the root element is not an EntityDescriptor');
  const entityId = attr(entity, 'entityID');
  if (!entityId) throw refuse('entityID is missing');
  const idp = childElements(entity, NS.metadata, 'IDPSSODescriptor')[0];
  if (!idp) throw refuse('there is no IDPSSODescriptor');

  const endpoint = (name: string, binding: string): string | undefined =>
    childElements(idp, NS.metadata, name).find((e) => attr(e, 'Binding') === binding)?.getAttribute('Location') ?? undefined;
  // HTTP-Redirect when listed (no page in between); an IdP that offers only HTTP-POST gets the POST binding (S-7a).
  const ssoUrls = { redirect: endpoint('SingleSignOnService', BINDING_REDIRECT), post: endpoint('SingleSignOnService', BINDING_POST) };
  const ssoBinding = ssoUrls.redirect ? 'redirect' : 'post';
  const ssoUrl = ssoUrls.redirect ?? ssoUrls.post;
  if (!ssoUrl) throw refuse('there is no HTTP-Redirect or HTTP-POST SingleSignOnService endpoint');
  for (const url of [ssoUrls.redirect, ssoUrls.post, endpoint('SingleLogoutService', BINDING_REDIRECT)]) {
    if (url !== undefined && !/^https?:\/\//.test(url)) throw refuse('an endpoint Location is not an http(s) URL');
  }

  const certificates: string[] = [];
  for (const kd of childElements(idp, NS.metadata, 'KeyDescriptor')) {
    const use = attr(kd, 'use');
    if (use !== null && use !== 'signing') continue;
    for (const x509 of descendants(kd, NS.dsig, 'X509Certificate')) {
      try {
        const pem = certificateFromBase64(x509.textContent ?? '');
        if (!certificates.includes(pem)) certificates.push(pem);
      } catch (err) {
        if (isAppError(err)) throw refuse('a signing certificate could not be read');
        throw err;
      }
    }
  }
  if (certificates.length === 0) throw refuse('there is no signing certificate');
  const warnings: string[] = [];
  if (certificates.length > 2) warnings.push(`${certificates.length} signing certificates listed; the first two are used`);
  return {
    entityId,
    ssoUrl,
    ssoBinding,
    ssoUrls: Object.fromEntries(Object.entries(ssoUrls).filter(([, v]) => v !== undefined)),
    sloUrl: endpoint('SingleLogoutService', BINDING_REDIRECT),
    signingCertificates: certificates.slice(0, 2),
    wantAuthnRequestsSigned: attr(idp, 'WantAuthnRequestsSigned') === 'true' || attr(idp, 'WantAuthnRequestsSigned') === '1',
    warnings,
  };
}

/**
 * Applies parsed metadata to a tenant's SSO settings (pure). The AuthnRequest binding stays the tenant's
 * choice when the metadata offers it, else becomes the one the metadata offers (a POST-only IdP: post).
 */
export function applyIdpMetadata(sso: SsoSettings, metadata: IdpMetadata, xml?: string): SsoSettings {
  const wanted = sso.saml?.authnRequestBinding ?? 'redirect';
  const binding = metadata.ssoUrls?.[wanted] ? wanted : metadata.ssoBinding;
  return {
    ...sso,
    webLoginUrl: metadata.ssoUrls?.[binding] ?? metadata.ssoUrl,
    saml: {
      allowUnsolicited: false,
      allowSha1: false,
      ...sso.saml,
      ...(binding === 'post' || sso.saml?.authnRequestBinding ? { authnRequestBinding: binding } : {}),
      // An IdP that wants signed requests gets them; otherwise the admin's choice stands.
      signAuthnRequests: metadata.wantAuthnRequestsSigned || (sso.saml?.signAuthnRequests ?? false),
      idpEntityId: metadata.entityId,
      idpCertificates: metadata.signingCertificates,
      idpSloUrl: metadata.sloUrl,
      idpMetadataXml: xml,
    },
  };
}
