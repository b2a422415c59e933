import { z } from 'zod';

/** A lower-case DNS name: the tenant id (`example.com`). */
export const DOMAIN_RE = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

export const domainSchema = z.string().regex(DOMAIN_RE, 'must be a lower-case DNS name such as example.com');

/** Accepts a DNS host (`sub.example.com`) or a wildcard written `*.example.com` (S-19). */
const hostPatternSchema = z
  .string()
  .regex(/^(\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a host name, or *.host');

/** An origin like `https://board.example.com` (scheme, host, optional port; nothing else). */
export const originSchema = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === v && !u.username && !u.password;
  } catch {
    return false;
  }
}, 'must be an origin such as https://service.example.com (no path, no trailing slash)');

/** NameID formats a tenant may ask its IdP for (d-saml-authn). */
export const NAME_ID_FORMATS = ['unspecified', 'emailAddress', 'persistent'] as const;
export type NameIdFormat = (typeof NAME_ID_FORMATS)[number];

export const samlSettingsSchema = z.strictObject({
  /** The IdP's entity ID; the assertion's Issuer must equal it. */
  idpEntityId: z.string().min(1).max(1024),
  /** PEM certificates the IdP signs with; two may be registered at once for rollover. */
  idpCertificates: z.array(z.string()).max(2).default([]),
  /** Overrides the gateway-wide SP entity ID for this tenant. */
  spEntityId: z.string().min(1).max(1024).optional(),
  /**
   * S-9: accept IdP-initiated responses (then the target is the tenant's default service URL). Off by
   * default: an unsolicited response answers no login transaction, so it cannot be bound to the browser
   * that started the login, and anyone could push their own valid response into a victim's browser and
   * sign the victim in as themselves (login CSRF).
   */
  allowUnsolicited: z
    .boolean()
    .default(false)
    .describe('Accept IdP-initiated SAML responses. Off by default: they answer no login transaction, so they cannot be bound to the browser, and anyone could sign a victim in as themselves (login CSRF).'),
  /**
   * S-7, S-11: sign AuthnRequests (HTTP-Redirect, RSA-SHA256) with the SP key. For IdPs that require it
   * (metadata WantAuthnRequestsSigned="true" turns it on at import); Okta, Entra ID, Google and Keycloak
   * do not by default. Off by default: the request carries nothing secret and the IdP answers only to
   * its registered ACS, while a signature costs the most CPU of a login start.
   */
  signAuthnRequests: z.boolean().default(false),
  /** S-8: accept RSA-SHA1 / SHA-1 digests. Off by default; only for legacy IdPs. */
  allowSha1: z.boolean().default(false),
  /** The IdP's single logout URL (HTTP-Redirect), from metadata or set by hand. */
  idpSloUrl: z.string().url().optional(),
  /** S-12: IdP metadata XML; entity ID, SSO URL and certificates are taken from it when given. */
  idpMetadataXml: z.string().optional(),
  // b-saml-enc
  /**
   * Refuse a plaintext assertion: the IdP must encrypt it to the SP's encryption certificate (published
   * in SP metadata; needs saml.decryption). Off (absent) by default: encryption is the IdP administrator's choice.
   */
  requireEncryptedAssertions: z.boolean().optional(),
  /**
   * S-8: refuse a response whose assertion is not itself signed (private reason `assertion_not_signed`).
   * Absent means false: the SAML Web Browser SSO profile allows a signed Response to cover its
   * assertion, and Shibboleth IdP signs only the Response unless told otherwise.
   */
  requireSignedAssertions: z
    .boolean()
    .optional()
    .describe('Refuse responses whose assertion is not itself signed (a signature on the Response only). Default false: the SAML profile allows it, and Shibboleth IdP signs only the Response by default.'),
  // c-saml-meta
  /**
   * Where the IdP publishes its metadata: kept from an import by URL, refreshed on a schedule
   * (src/admin/idp-metadata-refresh.ts) so that certificates the IdP rolls are picked up. Absent: the
   * metadata is never fetched again.
   */
  idpMetadataUrl: z.string().url().optional(),
  /** Refuse a fetched metadata document unless its root carries a valid enveloped signature by `metadataSigningCertificate`. */
  requireSignedMetadata: z.boolean().optional(),
  /** PEM certificate the IdP signs its metadata with (pinned; the document's KeyInfo is never trusted). */
  metadataSigningCertificate: z.string().optional(),
  // d-saml-authn: what the AuthnRequest asks for (S-7a). Left out, each keeps the behaviour from before it existed.
  /** NameIDPolicy Format asked of the IdP (and the SP metadata's NameIDFormat). Default `unspecified`. */
  nameIdFormat: z.enum(NAME_ID_FORMATS).optional().describe('NameIDPolicy Format of the AuthnRequest and the SP metadata NameIDFormat: unspecified (default), emailAddress or persistent.'),
  /** AuthnRequest ForceAuthn="true": the IdP must authenticate the user again rather than reuse its session. Default false. */
  forceAuthn: z.boolean().optional().describe('ForceAuthn="true" in every AuthnRequest: the IdP re-authenticates the user instead of reusing its session. Default false.'),
  /** AuthnRequest RequestedAuthnContext: the authentication context classes asked for, and how they compare. */
  requestedAuthnContext: z
    .strictObject({
      classRefs: z.array(z.string().regex(/^[\x21-\x7e]{1,1024}$/, 'must be a URI without spaces')).min(1).max(10),
      comparison: z.enum(['exact', 'minimum', 'better', 'maximum']).default('exact'),
    })
    .optional()
    .describe('RequestedAuthnContext of the AuthnRequest: AuthnContextClassRef URIs and the Comparison (default exact). Left out, none is sent.'),
  /** How the AuthnRequest travels: HTTP-Redirect (default) or HTTP-POST (an auto-submitting form; IdPs that offer only POST). */
  authnRequestBinding: z.enum(['redirect', 'post']).optional().describe('Binding of the AuthnRequest: redirect (default) or post (an auto-submitting form, for IdPs whose metadata offers only HTTP-POST; metadata import chooses it then).'),
});
export type SamlSettings = z.infer<typeof samlSettingsSchema>;

export const oauthSettingsSchema = z.strictObject({
  /** `works`: the suite's documented OAuth profile (S-14, S-15); `oidc`: standard OpenID Connect (S-16). */
  profile: z.enum(['works', 'oidc']).default('works'),
  clientId: z.string().min(1).max(512),
  /** Stored encrypted with the gateway's secret keys (`enc:v1:…`); plain text only on input. */
  clientSecret: z.string().min(1).max(4096),
  /** works: the IdP's Access Token Return API. */
  tokenUrl: z.string().url().optional(),
  /** works: the IdP's Return User Information API. */
  userInfoUrl: z.string().url().optional(),
  /** oidc: the issuer identifier (discovery at {issuer}/.well-known/openid-configuration). */
  issuer: z.string().url().optional(),
  /** oidc: the ID token claim holding the user key (default `sub`). */
  userKeyClaim: z.string().min(1).max(200).default('sub'),
  /** oidc: scopes to ask for (always includes openid). */
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).default(['openid']),
});
export type OAuthSettings = z.infer<typeof oauthSettingsSchema>;

export const ssoSettingsSchema = z.strictObject({
  enabled: z.boolean().default(false),
  type: z.enum(['saml', 'oauth']).default('saml'),
  /** S-1: which member field the IdP's identifier is matched against. */
  userKey: z.enum(['externalKey', 'account']).default('externalKey'),
  /** S-10: take the session length from the IdP (SessionNotOnOrAfter / expires_in). */
  setExpireTime: z.boolean().default(false),
  webLoginUrl: z.string().url().optional(),
  appLoginUrl: z.string().url().optional(),
  logoutUrl: z.string().url().optional(),
  saml: samlSettingsSchema.optional(),
  oauth: oauthSettingsSchema.optional(),
});
export type SsoSettings = z.infer<typeof ssoSettingsSchema>;

export const tenantSchema = z.strictObject({
  domain: domainSchema,
  name: z.string().min(1).max(200),
  plan: z.enum(['free', 'standard', 'advanced']).default('free'),
  group: z.string().min(1).max(100).optional(),
  sso: ssoSettingsSchema.default({
    enabled: false,
    type: 'saml',
    userKey: 'externalKey',
    setExpireTime: false,
  }),
  /** S-5: origins added to the global accessUrl allowlist for this tenant. */
  serviceOrigins: z.array(originSchema).default([]),
  /** S-19: hosts the final logout redirect may go to. */
  logoutRedirectDomains: z.array(hostPatternSchema).default([]),
  /** Where a login without accessUrl (or an allowed unsolicited response) lands; else the global default. */
  defaultServiceUrl: z.string().url().optional(),
  thirdPartyAppPasswordsAllowed: z.boolean().default(false),
  passwordPolicy: z
    .strictObject({
      minLength: z.number().int().min(8).max(128).default(10),
      requireMixedCase: z.boolean().default(false),
      requireDigit: z.boolean().default(true),
    })
    .default({ minLength: 10, requireMixedCase: false, requireDigit: true }),
  /** How long a password login keeps the member signed in (days). */
  loginRetentionDays: z.number().int().min(1).max(90).default(1),
  /** S-23: the super admin may still sign in with a password while SSO is on (audited break-glass). */
  superAdminBreakGlass: z.boolean().default(true),
  /** Bumped by every SSO switch: login transactions and tokens of an older epoch are void. */
  ssoEpoch: z.number().int().min(0).default(0),
});
export type Tenant = z.infer<typeof tenantSchema>;
/** A tenant as written by config or the admin API: defaults not yet applied. */
export type TenantInput = z.input<typeof tenantSchema>;
