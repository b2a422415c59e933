import { createHash } from 'node:crypto';

/**
 * Every key idp-bridge writes is built here. Layout: `idpb:{<domain>}:<namespace>:<id>`. The braces
 * are a Redis Cluster hash tag, so all keys of one tenant live in one slot and multi-key operations
 * on a tenant work on Cluster. Keys that are looked up without knowing the tenant (web sessions by
 * cookie) carry no tag. Each namespace that expires names its TTL next to it.
 */
const tag = (domain: string): string => `idpb:{${domain}}`;

/** A stored identifier derived from a secret (session id) or from attacker-chosen text (assertion id). */
export function digestForKey(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

export const keys = {
  /** Set of all tenant domains. No TTL. */
  tenantIndex: (): string => 'idpb:tenants',
  /** Tenant record (JSON). No TTL. */
  tenant: (domain: string): string => `${tag(domain)}:tenant`,
  /** Member record (JSON). No TTL. */
  member: (domain: string, id: string): string => `${tag(domain)}:member:${id}`,
  /** Set of member ids of a tenant. No TTL. */
  memberIds: (domain: string): string => `${tag(domain)}:members`,
  /** Hash lower-cased account → member id. No TTL. */
  memberByAccount: (domain: string): string => `${tag(domain)}:members:by-account`,
  /** Hash external key → member id. No TTL. */
  memberByExternalKey: (domain: string): string => `${tag(domain)}:members:by-external-key`,
  /** Login transaction (JSON). TTL: loginTransaction.ttlSeconds (30 min). Single use (GETDEL). */
  loginTransaction: (domain: string, id: string): string => `${tag(domain)}:txn:${id}`,
  /** SAML assertion ids already used (S-8 replay cache). TTL: until the assertion expires (+ skew). */
  samlAssertionSeen: (domain: string, issuer: string, assertionId: string): string =>
    `${tag(domain)}:saml-seen:${digestForKey(`${issuer}\n${assertionId}`)}`,
  /** Web session (JSON), by the SHA-256 of the cookie's secret id. TTL: the session's lifetime. */
  webSession: (sessionIdDigest: string): string => `idpb:session:${sessionIdDigest}`,
  /** Set of session digests of one member, to end them all (SSO switch, logout). TTL: refreshed on write. */
  memberSessions: (domain: string, memberId: string): string => `${tag(domain)}:member-sessions:${memberId}`,
  /** A finished app login awaiting the app's session check (S-18), by SHA-256 of the sessionKey. TTL: 10 min. Single use. */
  appLoginCheck: (sessionKeyDigest: string): string => `idpb:app-login:${sessionKeyDigest}`,
  /** Fixed-window rate-limit counter. TTL: the window. */
  rateLimit: (bucket: string, subjectDigest: string): string => `idpb:rl:${bucket}:${subjectDigest}`,
  /** SP-initiated SAML logout in flight (target after the IdP's LogoutResponse). TTL: 10 min. Single use. */
  logoutTransaction: (id: string): string => `idpb:logout-txn:${id}`,
  /** SAML logout message ids already processed (replay). TTL: skew window. */
  samlLogoutSeen: (domain: string, messageIdDigest: string): string => `${tag(domain)}:saml-logout-seen:${messageIdDigest}`,
  /** Set of tenant domains whose SAML IdP has this entity ID (IdP-initiated SLO finds the tenant). No TTL. */
  samlIdpTenants: (entityIdDigest: string): string => `idpb:saml-idp:${entityIdDigest}`,
  /** Admin API key (tenant-scoped), by SHA-256 of the key. No TTL. */
  adminApiKey: (keyDigest: string): string => `idpb:admin-key:${keyDigest}`,
  /** Hash key id → digest of a tenant's admin API keys. No TTL. */
  adminApiKeysOf: (domain: string): string => `${tag(domain)}:admin-keys`,
  /** Hash invitation id → invitation (JSON) of a tenant. No TTL (each invitation carries its expiry). */
  invitations: (domain: string): string => `${tag(domain)}:invitations`,
  /** Invitation token digest → "domain id" (accepting an invitation by link). TTL: the invitation's. */
  invitationByToken: (tokenDigest: string): string => `idpb:invitation:${tokenDigest}`,
  /** The SSO switch in progress (JSON: target, cursor, phase); gone when complete. No TTL. */
  ssoSwitchJob: (domain: string): string => `${tag(domain)}:sso-switch`,
  /** Hash of effect counts of the SSO switch in progress. */
  ssoSwitchCounts: (domain: string): string => `${tag(domain)}:sso-switch:counts`,
  /** Lock held by the process running a tenant's SSO switch. TTL: 30 s, renewed per batch. */
  ssoSwitchLock: (domain: string): string => `${tag(domain)}:sso-switch:lock`,
  /** External-key CSV import being staged or applied (JSON job: state, batches, next batch, counts). No TTL: the next external-key request finishes (or, if never committed, discards) it. */
  externalKeyImportJob: (domain: string): string => `${tag(domain)}:ext-key-import`,
  /** One staged batch of an import's validated plan (hash member id → "<release 0|1>\t<new key>"). No TTL: deleted in the MULTI that applies it, or with its uncommitted job. */
  externalKeyImportBatch: (domain: string, jobId: string, n: number): string => `${tag(domain)}:ext-key-import:${jobId}:${n}`,
  /** Lock held by the request changing a tenant's external keys in bulk (S-27, S-28). TTL: 30 s, renewed every 10 s while held. */
  externalKeysLock: (domain: string): string => `${tag(domain)}:ext-keys:lock`,
  /** Failed password logins of one account (lockout). TTL: the lockout window. */
  passwordFailures: (domain: string, accountDigest: string): string => `${tag(domain)}:pw-fail:${accountDigest}`,
  /** Audit trail of a tenant (capped list, newest first). No TTL. */
  audit: (domain: string): string => `${tag(domain)}:audit`,
  /** Audit trail of events with no tenant (unknown domain probes …). */
  auditGlobal: (): string => 'idpb:audit:global',
} as const;

export const APP_LOGIN_CHECK_TTL_MS = 10 * 60_000;
export const LOGOUT_TRANSACTION_TTL_MS = 10 * 60_000;

/** Capped size of each audit list. */
export const AUDIT_MAX_ENTRIES = 100_000;
