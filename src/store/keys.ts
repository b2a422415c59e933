import { createHash } from 'node:crypto';

/**
 * Every key idp-bridge writes is built here. Layout: `idpb:{<domain>}:<namespace>:<id>`. The braces
 * are a Redis Cluster hash tag, so all keys of one tenant live in one slot and multi-key operations
 * on a tenant work on Cluster. Keys that are looked up without knowing the tenant (web sessions by
 * cookie) carry no tag, so they spread over the cluster; they never share a multi-key call (both
 * stores enforce it, see hash-slot.ts). A builder's domain parameter comes first, so the tenant's tag
 * is the first `{…}` whatever ids follow (test/integration/scale/store-config.test.ts checks every
 * builder). Each namespace that expires names its TTL next to it.
 */
const tag = (domain: string): string => `idpb:{${domain}}`;

/** A stored identifier derived from a secret (session id) or from attacker-chosen text (assertion id). */
export function digestForKey(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/**
 * The slot name of the operator's console sessions (keys.consoleSession(OPERATOR_SLOT, …)): the
 * operator belongs to no tenant. Not a DNS name (no dot), so no tenant's tag is ever the same.
 */
export const OPERATOR_SLOT = 'operator';

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
  /**
   * Member search indexes (src/domain/member-index.ts): sorted sets of score-0 members, ordered by their
   * bytes. By account: `<account>\0<id>`; by name: `<suffix of the lower-cased name's words>\0<id>` (one
   * per word: "kim min-jun" gives "kim min-jun" and "min-jun"); by external key: `<lower-cased key>\0<id>`.
   * Written in the same MULTI as the member record; entries are checked against the record when read.
   * No TTL.
   */
  memberSearchByAccount: (domain: string): string => `${tag(domain)}:members:ix:account`,
  memberSearchByName: (domain: string): string => `${tag(domain)}:members:ix:name`,
  memberSearchByExternalKey: (domain: string): string => `${tag(domain)}:members:ix:external-key`,
  /** Set ("1") once the search indexes hold every member (built once for tenants older than them). No TTL. */
  memberSearchReady: (domain: string): string => `${tag(domain)}:members:ix:ready`,
  /** Lock held by the request building a tenant's member search indexes. TTL: 30 s, renewed per batch. */
  memberSearchBuildLock: (domain: string): string => `${tag(domain)}:members:ix:lock`,
  /** Login transaction (JSON). TTL: loginTransaction.ttlSeconds (30 min). Single use (GETDEL). */
  loginTransaction: (domain: string, id: string): string => `${tag(domain)}:txn:${id}`,
  /** SAML assertion ids already used (S-8 replay cache). TTL: until the assertion expires (+ skew). */
  samlAssertionSeen: (domain: string, issuer: string, assertionId: string): string =>
    `${tag(domain)}:saml-seen:${digestForKey(`${issuer}\n${assertionId}`)}`,
  /** Web session (JSON), by the SHA-256 of the cookie's secret id. TTL: the session's lifetime. */
  webSession: (sessionIdDigest: string): string => `idpb:session:${sessionIdDigest}`,
  /** Set of session digests of one member, to end them all (SSO switch, logout). TTL: refreshed on write. */
  memberSessions: (domain: string, memberId: string): string => `${tag(domain)}:member-sessions:${memberId}`,
  /**
   * An app login in flight, awaiting the IdP's session check (S-18), by SSO type (`SAML`|`OAUTH`) and the
   * SHA-256 of the sessionKey (SAML: the AuthnRequest ID; OAuth: the app's sessionKey). TTL: the login
   * transaction's. Single use (GETDEL); the transaction's consumption deletes it.
   */
  appLoginCheck: (ssoType: string, sessionKeyDigest: string): string => `idpb:app-login:${ssoType}:${sessionKeyDigest}`,
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
  /**
   * Console session (JSON: member id, CSRF token, times), by the SHA-256 of the cookie's secret. In the
   * tenant's slot (the cookie names the domain), with its last-use key, so both are written and ended in
   * one MULTI on Redis Cluster. TTL: console.absoluteTimeoutSeconds.
   */
  consoleSession: (domain: string, sessionIdDigest: string): string => `${tag(domain)}:console-session:${sessionIdDigest}`,
  /** When a console session was last used (ms), slid on use. TTL: console.idleTimeoutSeconds, renewed on use. */
  consoleSessionSeen: (domain: string, sessionIdDigest: string): string => `${tag(domain)}:console-session:${sessionIdDigest}:seen`,
  /** Hash invitation id → invitation (JSON) of a tenant. No TTL (each invitation carries its expiry). */
  invitations: (domain: string): string => `${tag(domain)}:invitations`,
  /** Invitation token digest → "domain id" (accepting an invitation by link). TTL: the invitation's. */
  invitationByToken: (tokenDigest: string): string => `idpb:invitation:${tokenDigest}`,
  /** The SSO switch in progress (JSON: target, cursor, phase); gone when complete. No TTL. */
  ssoSwitchJob: (domain: string): string => `${tag(domain)}:sso-switch`,
  /** Hash of effect counts of the SSO switch in progress. */
  ssoSwitchCounts: (domain: string): string => `${tag(domain)}:sso-switch:counts`,
  /** Set of member ids the SSO switch in progress has finished (a resumed switch skips them). No TTL; deleted with the job. */
  ssoSwitchDone: (domain: string): string => `${tag(domain)}:sso-switch:done`,
  /** Lock held by the process running a tenant's SSO switch (a LeaseLock: 5 s lease, renewed every second and per batch). */
  ssoSwitchLock: (domain: string): string => `${tag(domain)}:sso-switch:lock`,
  /** A test sign-in of the tenant's configured IdP (JSON record: status, outcome). TTL: TEST_SIGN_IN_RECORD_TTL_MS (1 h) from its creation. */
  ssoTestSignIn: (domain: string, id: string): string => `${tag(domain)}:sso-test:${id}`,
  /** A test sign-in link's token, by SHA-256 of the token → "domain id". TTL: TEST_SIGN_IN_TOKEN_TTL_MS (10 min). Single use (GETDEL). */
  ssoTestSignInToken: (tokenDigest: string): string => `idpb:sso-test-token:${tokenDigest}`,
  /** External-key CSV import being staged or applied (JSON job: state, batches, next batch, counts). No TTL: the next external-key request finishes (or, if never committed, discards) it. */
  externalKeyImportJob: (domain: string): string => `${tag(domain)}:ext-key-import`,
  /** One staged batch of an import's validated plan (hash member id → "<release 0|1>\t<new key>"). No TTL: deleted in the MULTI that applies it, or with its uncommitted job. */
  externalKeyImportBatch: (domain: string, jobId: string, n: number): string => `${tag(domain)}:ext-key-import:${jobId}:${n}`,
  /** Lock held by the request changing a tenant's external keys in bulk (S-27, S-28) or importing members.csv (a LeaseLock: 5 s lease, renewed every second while held). */
  externalKeysLock: (domain: string): string => `${tag(domain)}:ext-keys:lock`,
  /**
   * Members CSV imports (`POST …/members.csv`) under way or interrupted: hash job id → JSON {id, startedAt,
   * lock (the tenant-lock value of the request running it), written (batches)}. Written before the first
   * batch and again in every batch's MULTI. No TTL: deleted when the import completes, or rolled back (with
   * its members) by the next members.csv request or members listing that holds the tenant's lock.
   */
  membersImportJobs: (domain: string): string => `${tag(domain)}:members-import`,
  /** Set of the member ids one members CSV import wrote (added in the MULTI that writes them). No TTL: deleted with its job. */
  membersImportJobMembers: (domain: string, jobId: string): string => `${tag(domain)}:members-import:${jobId}`,
  /** MDM settings of a tenant (JSON: mode, restrictOtherDomains). No TTL. */
  mdmSettings: (domain: string): string => `${tag(domain)}:mdm`,
  /** Hash MDM key id → key record (JSON; the value sealed, never plain). No TTL; ended keys beyond the kept history are deleted. */
  mdmKeys: (domain: string): string => `${tag(domain)}:mdm:keys`,
  /** Hash MDM key id → when it last passed a check (ms). No TTL; deleted with the key. */
  mdmKeyLastPresented: (domain: string): string => `${tag(domain)}:mdm:last-presented`,
  /** Hash grant id → {deviceId, expiresAt} of the mobile sessions one MDM key admitted. No TTL: expired entries are pruned when counted; deleted when the sessions end. */
  mdmKeyAdmissions: (domain: string, keyId: string): string => `${tag(domain)}:mdm:admissions:${keyId}`,
  /** Hash grant id → the MDM key id that admitted it. No TTL; cleaned with the admissions. */
  mdmAdmittedBy: (domain: string): string => `${tag(domain)}:mdm:admitted-by`,
  /** Hash id → built-in MDM exception setting (JSON). No TTL; deleted when 3rd-party MDM sync is switched on. */
  mdmBuiltinExceptions: (domain: string): string => `${tag(domain)}:mdm:builtin-exceptions`,
  /** Lock held while a tenant's MDM settings or keys change (a LeaseLock: 5 s lease, renewed while held). */
  mdmLock: (domain: string): string => `${tag(domain)}:mdm:lock`,
  /** Set of domains holding an active MDM key with this keyed digest (HMAC) of its value (M-7). No TTL; entries are verified on read and stale ones dropped. */
  mdmKeyDigest: (digest: string): string => `idpb:mdm-key-digest:${digest}`,
  /** Lock serialising uniqueness checks of custom MDM key values across tenants (a LeaseLock: 5 s lease, renewed while held). */
  mdmKeyIndexLock: (): string => 'idpb:mdm-key-digest-lock',
  /** Hash OP grant id → {domain, group, restrictedBy} of the mobile sessions on one device, across tenants (M-7 (b)–(d)), by SHA-256 of the device id. TTL: DEVICE_SESSIONS_TTL_MS, refreshed on write; ended grants are pruned on read. */
  deviceSessions: (deviceIdDigest: string): string => `idpb:device:${deviceIdDigest}:sessions`,
  /** Failed password logins of one account (lockout). TTL: the lockout window. */
  passwordFailures: (domain: string, accountDigest: string): string => `${tag(domain)}:pw-fail:${accountDigest}`,
  /** An oidc-provider model (AccessToken, RefreshToken, Grant, Session, Interaction …). TTL: the model's expiresIn. */
  opModel: (model: string, id: string): string => `idpb:op:${model}:${id}`,
  /** Keys of every model row of one OP grant (revokeByGrantId). TTL: the longest row's. */
  opGrantRows: (grantId: string): string => `idpb:op:grant-rows:${grantId}`,
  /** OP session uid → session id. TTL: the session's. */
  opSessionUid: (uid: string): string => `idpb:op:session-uid:${uid}`,
  /** OP user code → device code id. TTL: the code's. */
  opUserCode: (userCode: string): string => `idpb:op:user-code:${userCode}`,
  /** Set of OP grant ids of one member (O-4 revocation). No TTL; stale ids are harmless. */
  opMemberGrants: (domain: string, memberId: string): string => `${tag(domain)}:op-grants:${memberId}`,
  /** Set of OP grant ids of a tenant (O-4: revoke every token of the tenant). No TTL. */
  opTenantGrants: (domain: string): string => `${tag(domain)}:op-grants`,
  /** Set of OP session ids of one member. No TTL; stale ids are harmless. */
  opMemberSessions: (domain: string, memberId: string): string => `${tag(domain)}:op-sessions:${memberId}`,
  /** The demo OAuth IdP's authorization code (user id), by SHA-256 of the code; never in production. TTL: 60 s. Single use (GETDEL). */
  demoOAuthCode: (codeDigest: string): string => `idpb:demo-oauth:code:${codeDigest}`,
  /** The demo OAuth IdP's access token (user id), by SHA-256 of the token; never in production. TTL: its expires_in (1 h). */
  demoOAuthToken: (tokenDigest: string): string => `idpb:demo-oauth:token:${tokenDigest}`,
  /** When a member of the tenant last signed in successfully (ms; one SET per login, for the operator's domain list). No TTL. */
  tenantLastLogin: (domain: string): string => `${tag(domain)}:last-login`,
  /** Lock held while the operator creates a tenant with its first super admin. TTL: 30 s. */
  tenantCreateLock: (domain: string): string => `${tag(domain)}:create-lock`,
  /** Hash worker id → its last heartbeat (ms): the gateway processes serving now (health). No TTL: stale fields are pruned when read. */
  workerHeartbeats: (): string => 'idpb:workers',
  /** Hash client_id → OP service client added through the admin API (JSON; the secret sealed). No TTL. */
  opClients: (): string => 'idpb:op-clients',
  /** Audit trail of a tenant before the stream (capped list, newest first): read after the stream, never written. No TTL. */
  audit: (domain: string): string => `${tag(domain)}:audit`,
  /** Audit trail of events with no tenant before the stream (capped list): read, never written. */
  auditGlobal: (): string => 'idpb:audit:global',
  /** Audit trail of a tenant: a stream (XADD, one entry per event, id `<ms>-<seq>` by the gateway's clock). Trimmed to audit.retentionDays on write (MINID ~). */
  auditStream: (domain: string): string => `${tag(domain)}:audit:stream`,
  /** Audit trail of events with no tenant (unknown domain probes, logout messages no tenant's IdP signed): a stream, trimmed as a tenant's. */
  auditGlobalStream: (): string => 'idpb:audit:global:stream',
  /** Sign-in counters of a tenant for one UTC day (YYYY-MM-DD): hash `<saml|oauth|password>:<success|failure>` and `reason:<reason>` → count. TTL: LOGIN_ACTIVITY_TTL_MS (32 days), set on each increment. */
  loginActivity: (domain: string, day: string): string => `${tag(domain)}:login-activity:${day}`,
  // j-events
  /** Events of a tenant (sign-ins and audit entries, docs/spec.md §11 events): a stream, id `<ms>-<seq>`, oldest first is delivery order. Trimmed to audit.retentionDays on write (MINID ~). */
  events: (domain: string): string => `${tag(domain)}:events`,
  /** Hash of the tenant's webhook: url, secret (sealed), createdAt. No TTL. */
  webhook: (domain: string): string => `${tag(domain)}:webhook`,
  /** Hash of the tenant's webhook delivery state: cursor (last delivered event id), attempts, nextAt (ms), lastError. No TTL. */
  webhookState: (domain: string): string => `${tag(domain)}:webhook:state`,
  /** Lease of the worker delivering the tenant's events now (one at a time, in order). TTL: the lease (renewed per batch). */
  webhookLease: (domain: string): string => `${tag(domain)}:webhook:lease`,
  /** Hash delivery id → failed delivery (JSON: event ids, attempts, last error). At most WEBHOOK_FAILED_MAX entries. No TTL. */
  webhookFailed: (domain: string): string => `${tag(domain)}:webhook:failed`,
  /** Set of the domains with a webhook: what the delivery loop walks. No TTL. */
  webhookDomains: (): string => 'idpb:webhook-domains',
  // c-saml-meta
  /** Scheduled refresh of a tenant's IdP metadata URL: last success, last error, failures in a row, next due time (JSON). No TTL; removed with the URL. */
  idpMetadataRefresh: (domain: string): string => `${tag(domain)}:idp-metadata:refresh`,
  /** Claim of one due time of that refresh (SET NX PX): the one gateway process that wins it fetches. TTL: IDP_METADATA_CLAIM_TTL_MS. */
  idpMetadataRefreshClaim: (domain: string, dueAt: number): string => `${tag(domain)}:idp-metadata:claim:${dueAt}`,
  // g-scim
  /** SCIM bearer token (JSON {id, domain, name, createdAt, rotatedAt}) by the SHA-256 of the token. No TTL (revoked by deleting). Not tagged: looked up before the tenant is known. */
  scimToken: (tokenDigest: string): string => `idpb:scim-token:${tokenDigest}`,
  /** Hash SCIM token id → token digest, of one tenant. No TTL. */
  scimTokensOf: (domain: string): string => `${tag(domain)}:scim-tokens`,
  /** A member's SCIM-only attributes (JSON: name parts, emails, enterprise extension …, lastModified). Written in the member's MULTI; deleted with it. No TTL. */
  scimUser: (domain: string, memberId: string): string => `${tag(domain)}:scim:user:${memberId}`,
  /** A SCIM group (JSON {id, displayName, externalId, created, lastModified, version}). No TTL. */
  scimGroup: (domain: string, groupId: string): string => `${tag(domain)}:scim:group:${groupId}`,
  /** Set of the tenant's SCIM group ids. No TTL. */
  scimGroupIds: (domain: string): string => `${tag(domain)}:scim:groups`,
  /** Hash lower-cased displayName → group id (uniqueness, and Entra's `displayName eq` check). No TTL. */
  scimGroupByName: (domain: string): string => `${tag(domain)}:scim:groups:by-name`,
  /** Set of member ids of one SCIM group (SSCAN-paged). No TTL. */
  scimGroupMembers: (domain: string, groupId: string): string => `${tag(domain)}:scim:group-members:${groupId}`,
  /** Set of SCIM group ids a member belongs to (so deleting a member leaves no dangling membership). No TTL. */
  scimMemberGroups: (domain: string, memberId: string): string => `${tag(domain)}:scim:member-groups:${memberId}`,

  // o-lock-release
  /**
   * Hash lock key → lock value of the LeaseLocks one gateway instance (INSTANCE_ID) holds now; read at its
   * next boot to release what a crashed previous boot held. Per-key operations only (Cluster: other slots). No TTL.
   */
  lockRegistry: (instanceId: string): string => `idpb:instance:${instanceId}:locks`,
} as const;

export const LOGOUT_TRANSACTION_TTL_MS = 10 * 60_000;
/** How long a test sign-in link may be opened. */
export const TEST_SIGN_IN_TOKEN_TTL_MS = 10 * 60_000;
/** How long a test sign-in's record (and its outcome) can be read: the link's 10 min plus a login transaction's 30 min, rounded up. */
export const TEST_SIGN_IN_RECORD_TTL_MS = 60 * 60_000;
/** How long a device's session index outlives its last mobile token request (longer than any refresh token). */
export const DEVICE_SESSIONS_TTL_MS = 90 * 24 * 3600_000;

/** A worker beats every WORKER_HEARTBEAT_MS; one silent for WORKER_STALE_MS is no longer counted as serving. */
export const WORKER_HEARTBEAT_MS = 10_000;
export const WORKER_STALE_MS = 30_000;

/** Capped size of each audit list (the trail before the stream). */
export const AUDIT_MAX_ENTRIES = 100_000;
/** How long a day's sign-in counters are kept: the 30 days the console shows, plus two. */
export const LOGIN_ACTIVITY_TTL_MS = 32 * 24 * 3600_000;

// j-events
/** At most this many failed webhook deliveries are kept per tenant; later failures are only logged. */
export const WEBHOOK_FAILED_MAX = 1000;
// c-saml-meta
/** How long a claimed metadata refresh due time stays claimed: longer than one fetch (5 s) with its writes. */
export const IDP_METADATA_CLAIM_TTL_MS = 10 * 60_000;
