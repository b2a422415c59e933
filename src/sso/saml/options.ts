import type { KeyObject } from 'node:crypto';
import type { SamlConfig } from '@node-saml/node-saml';
import { ValidateInResponseTo } from '@node-saml/node-saml';
import './xml-crypto-sha384.js';
import { AppError } from '../../errors/index.js';
import type { NameIdFormat, SamlSettings, Tenant } from '../../domain/tenant.js';
import type { ClientKind } from '../transactions.js';

const NO_CACHE = {
  saveAsync: () => Promise.resolve(null),
  getAsync: () => Promise.resolve(null),
  removeAsync: () => Promise.resolve(null),
};

export const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';

/** The URN of each NameID format a tenant may ask for (SAML core §8.3). */
export const NAMEID_FORMAT_URNS: Readonly<Record<NameIdFormat, string>> = {
  unspecified: NAMEID_UNSPECIFIED,
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
};

/** What one tenant's AuthnRequests ask for, every default resolved (S-7, S-7a). */
export interface AuthnRequestOptions {
  /** NameIDPolicy Format URN. */
  nameIdFormat: string;
  forceAuthn: boolean;
  requestedAuthnContext: { classRefs: readonly string[]; comparison: 'exact' | 'minimum' | 'better' | 'maximum' } | null;
  binding: 'redirect' | 'post';
  /** Signed with the SP key (redirect: over the query string; post: an enveloped XML signature). */
  sign: boolean;
}

/** Pure: the tenant's AuthnRequest options; the defaults (those before S-7a existed) in this one literal. */
export function buildAuthnRequestOptions(saml: SamlSettings, sp: SpContext): AuthnRequestOptions {
  return {
    nameIdFormat: NAMEID_FORMAT_URNS[saml.nameIdFormat ?? 'unspecified'],
    forceAuthn: saml.forceAuthn ?? false,
    requestedAuthnContext: saml.requestedAuthnContext ? { classRefs: saml.requestedAuthnContext.classRefs, comparison: saml.requestedAuthnContext.comparison ?? 'exact' } : null,
    binding: saml.authnRequestBinding ?? 'redirect',
    sign: Boolean(saml.signAuthnRequests && sp.signing),
  };
}

export interface SpSigning {
  privateKey: string;
  /** The same key, parsed once: it signs every AuthnRequest. */
  key: KeyObject;
  certificate: string;
  /** Published in metadata ahead of a rollover; not used to sign. */
  nextCertificate?: string;
}

/** What the SP side needs from the gateway configuration. */
export interface SpContext {
  publicUrl: string;
  /** Gateway-wide SP entity ID; a tenant may override it. */
  spEntityId?: string;
  /** Signs AuthnRequests and logout messages; without it SLO is off. */
  signing?: SpSigning;
  /** Decrypt EncryptedAssertions (current first, then next); none: an EncryptedAssertion is refused. */
  decryption?: readonly SpDecryptionKey[];
}

/** One SP decryption key (saml.decryption), its certificate published in SP metadata for encryption. */
export interface SpDecryptionKey {
  /** Which configured pair: named in logs and audit detail instead of anything about the key. */
  id: 'current' | 'next';
  /** Parsed once; never logged. */
  key: KeyObject;
  /** The PEM text, for node-saml's `decryptionPvk` (the second gate). */
  privateKey: string;
  certificate: string;
}

export const sloUrl = (ctx: SpContext): string => `${ctx.publicUrl}/saml2/sp/slo`;
export const sloCallbackUrl = (ctx: SpContext): string => `${ctx.publicUrl}/saml2/sp/slo/callback`;

export function acsUrl(ctx: SpContext, domain: string): string {
  return `${ctx.publicUrl}/acs/${domain}`;
}

export function spEntityId(ctx: SpContext, tenant: Tenant): string {
  return tenant.sso.saml?.spEntityId ?? ctx.spEntityId ?? `${ctx.publicUrl}/saml/metadata`;
}

/** The tenant's SAML settings, or `sso_misconfigured` when a login cannot work with them. */
export function requireSamlSettings(tenant: Tenant): SamlSettings & { idpCertificates: string[] } {
  const saml = tenant.sso.saml;
  if (!saml || saml.idpCertificates.length === 0) {
    throw new AppError('sso_misconfigured', { detail: `tenant ${tenant.domain} has no SAML IdP certificate` });
  }
  return saml;
}

/** Where AuthnRequests go: the tenant's app login URL for app logins, else its web login URL (S-7). */
export function samlEntryPoint(tenant: Tenant, clientKind: ClientKind): string {
  const entryPoint = clientKind === 'app' ? (tenant.sso.appLoginUrl ?? tenant.sso.webLoginUrl) : tenant.sso.webLoginUrl;
  if (!entryPoint) throw new AppError('sso_misconfigured', { detail: `tenant ${tenant.domain} has no webLoginUrl` });
  return entryPoint;
}

/**
 * Test seam only (AppDeps.samlSecondGateOptions, applied in passport-seam.ts): changes the node-saml
 * options the builder made for the ACS's second gate, so a test can make node-saml refuse what the
 * strict verifier accepts and see the login refused.
 */
export type SecondGateOptionsHook = (options: SamlConfig, tenant: Tenant) => SamlConfig;

export interface SamlOptionsInput {
  tenant: Tenant;
  sp: SpContext;
  /** The LogoutRequest ID to use (we choose it, so the logout transaction can hold it). */
  requestId?: string;
}

/**
 * Pure: the node-saml options for one tenant's SP-initiated logout (slo.ts), every default resolved
 * in one literal. node-saml builds and signs our LogoutRequests only: AuthnRequests are built in
 * `authn-request.ts`, and the ACS (`acs.ts`) verifies responses itself on the document it parsed
 * (`enveloped-signature.ts`) with our injected clock and transaction, so node-saml's own checks stay
 * switched off here rather than half-used.
 */
export function buildSamlOptions(input: SamlOptionsInput): SamlConfig {
  const { tenant, sp } = input;
  const saml = requireSamlSettings(tenant);
  const requestId = input.requestId;
  return {
    issuer: spEntityId(sp, tenant),
    callbackUrl: acsUrl(sp, tenant.domain),
    // node-saml requires one even for logout messages (those go to logoutUrl).
    entryPoint: samlEntryPoint(tenant, 'web'),
    idpCert: saml.idpCertificates,
    idpIssuer: saml.idpEntityId,
    identifierFormat: NAMEID_FORMAT_URNS[saml.nameIdFormat ?? 'unspecified'],
    // As the strict verifier (acs.ts): a signed assertion, or a signed Response covering it (the
    // profile allows either), unless the tenant requires the assertion itself to be signed. node-saml
    // checks the assertion's signature whenever the Response's is missing or invalid.
    wantAssertionsSigned: saml.requireSignedAssertions === true,
    wantAuthnResponseSigned: false,
    // Ours, with the injected clock and the Redis transaction (see acs.ts):
    acceptedClockSkewMs: -1,
    audience: false,
    validateInResponseTo: ValidateInResponseTo.never,
    // Request ids live in the Redis login transaction (bound to tenant and RelayState), not in
    // node-saml's per-process cache, which therefore stores nothing.
    cacheProvider: NO_CACHE,
    generateUniqueId: requestId ? () => requestId : undefined,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    // LogoutRequests carry an RSA-SHA256 redirect-binding signature.
    ...(sp.signing ? { privateKey: sp.signing.privateKey } : {}),
    logoutUrl: saml.idpSloUrl,
  };
}
