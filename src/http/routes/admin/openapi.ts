import { z } from 'zod';
import type { ERROR_CODES } from '../../../errors/index.js';
import { domainBodies } from './domains.js';
import { memberBodies } from './members.js';
import { ssoBodies } from './sso.js';

/** One admin API operation, as documented. Request bodies come from the very zod schemas the routes parse with. */
export interface AdminOperation {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** OpenAPI path below /admin/v1, e.g. `/domains/{domain}/sso`. */
  path: string;
  summary: string;
  operatorOnly?: boolean;
  body?: z.ZodType | 'xml-or-json' | 'csv' | 'members-csv';
  success: number;
  /** Extra error codes worth naming for this operation. */
  errors?: Array<keyof typeof ERROR_CODES>;
}

/** Every admin route. A test keeps this list and the Express router in step, both ways. */
const operations: AdminOperation[] = [
  {
    method: 'post',
    path: '/domains',
    summary:
      'Register a tenant (SSO off); with `superAdmin` {account, name, password?} also its first super admin, in one MULTI of the tenant: with a password (the new tenant\'s policy) in use at once, without pending with an invitation `{id, url, expiresAt}` shown once. Answers the tenant, plus `superAdmin` and `invitation` when asked',
    operatorOnly: true,
    body: domainBodies.create,
    success: 201,
    errors: ['conflict', 'forbidden', 'password_policy_violation'],
  },
  {
    method: 'get',
    path: '/domains',
    summary:
      'The tenants this caller may see, a page at a time in domain order (`cursor` = the previous `nextCursor`, `count` 1–200, default 100): `{domains: [{domain, name, plan, group, sso: {enabled, type}, mdm: {mode}, memberCount, lastLoginAt}], nextCursor, total}`',
    success: 200,
  },
  { method: 'get', path: '/domains/{domain}', summary: 'Read a tenant (SSO secrets never included)', success: 200 },
  { method: 'patch', path: '/domains/{domain}', summary: 'Update name, plan (operator), group, default service URL, app-password switch (S-24), break-glass (super)', body: domainBodies.patch, success: 200, errors: ['sso_required', 'forbidden'] },
  { method: 'put', path: '/domains/{domain}/origins', summary: 'Service origins (accessUrl allowlist) and logout redirection domains (S-24: only while SSO is on)', body: domainBodies.origins, success: 200, errors: ['sso_required'] },
  { method: 'put', path: '/domains/{domain}/password-policy', summary: 'Password policy (S-23: refused while SSO is on)', body: domainBodies.passwordPolicy, success: 200, errors: ['sso_enabled'] },
  { method: 'put', path: '/domains/{domain}/login-retention', summary: 'Login retention in days (S-23: refused while SSO is on)', body: domainBodies.loginRetention, success: 200, errors: ['sso_enabled'] },
  { method: 'get', path: '/domains/{domain}/api-keys', summary: 'List tenant API keys with `scope`, `expiresAt` (null: never) and `expired` (never the keys themselves)', success: 200 },
  {
    method: 'post',
    path: '/domains/{domain}/api-keys',
    summary: 'Create a tenant API key (super): `scope` read|full (default full), optional `expiresAt` in the future and at most 366 days ahead; the key is shown once',
    body: domainBodies.apiKey,
    success: 201,
    errors: ['forbidden'],
  },
  { method: 'delete', path: '/domains/{domain}/api-keys/{keyId}', summary: 'Revoke a tenant API key (super)', success: 204, errors: ['forbidden', 'not_found'] },
  {
    method: 'get',
    path: '/domains/{domain}/sso',
    summary: 'SSO settings in the shape PUT/PATCH accept (no secret: oauth.clientSecretSet), plus read-only certificates (subject, fingerprint, expiry), sp (entity ID, ACS, SLO, metadata and certificate URLs, direct login URL) and switchInProgress',
    success: 200,
  },
  {
    method: 'put',
    path: '/domains/{domain}/sso',
    summary: 'SSO settings (saml / oauth given replace the stored ones; saml.idpMetadataXml is applied); switching on or off (super) runs every side effect of S-21/S-22 and returns their counts; idempotent and resumable',
    body: ssoBodies.put,
    success: 200,
    errors: ['certificate_not_pem', 'certificate_invalid', 'idp_metadata_invalid', 'forbidden', 'sso_switch_in_progress', 'store_unavailable'],
  },
  {
    method: 'patch',
    path: '/domains/{domain}/sso',
    summary: 'Change some SSO settings: any subset of the PUT body, saml and oauth merged field by field, null clears an optional URL; a change of enabled (super) switches as PUT does',
    body: ssoBodies.patch,
    success: 200,
    errors: ['certificate_not_pem', 'certificate_invalid', 'idp_metadata_invalid', 'forbidden', 'sso_switch_in_progress', 'store_unavailable'],
  },
  {
    method: 'post',
    path: '/domains/{domain}/sso/preview',
    summary: 'What a PATCH with this body would do, without doing it: {switching, target, effects (counts), problems, warnings}',
    body: ssoBodies.patch,
    success: 200,
  },
  { method: 'post', path: '/domains/{domain}/sso/switch/resume', summary: 'Finish an interrupted SSO switch (super); 409 conflict when there is none or it is running', success: 200, errors: ['conflict', 'forbidden', 'store_unavailable'] },
  { method: 'get', path: '/domains/{domain}/saml/sp-certificate.pem', summary: "The gateway's SP signing certificate as a PEM file (404 when the gateway has none)", success: 200, errors: ['not_found'] },
  {
    method: 'post',
    path: '/domains/{domain}/sso/test-sign-ins',
    summary: 'Start a test sign-in at the configured IdP, even while SSO is off: {id, url (single use, 10 min), expiresAt}; the login at url records its outcome instead of creating a session',
    body: ssoBodies.testSignIn,
    success: 201,
    errors: ['forbidden'],
  },
  { method: 'get', path: '/domains/{domain}/sso/test-sign-ins/{id}', summary: 'A test sign-in: {id, status pending|succeeded|failed, finishedAt?, member?, assertedId?, code?, reason?, message?} (kept 1 h)', success: 200, errors: ['not_found'] },
  { method: 'post', path: '/domains/{domain}/saml/idp-metadata', summary: 'Import IdP metadata: XML body, or {"url"} fetched behind an SSRF guard (S-12); a URL is kept as saml.idpMetadataUrl and refreshed on a schedule', body: 'xml-or-json', success: 200, errors: ['idp_metadata_invalid', 'metadata_fetch_failed', 'idp_metadata_unsigned', 'idp_metadata_signature_invalid'] },
  {
    method: 'post',
    path: '/domains/{domain}/sso/saml/idp-metadata/refresh',
    summary: "Fetch the tenant's IdP metadata URL now (the scheduled refresh, asked for): {result unchanged|updated, added, removed (certificate SHA-256 fingerprints), sso}; a failed fetch keeps the stored certificates, is audited and answers its error",
    body: ssoBodies.refresh,
    success: 200,
    errors: ['idp_metadata_url_missing', 'metadata_fetch_failed', 'idp_metadata_invalid', 'idp_metadata_unsigned', 'idp_metadata_signature_invalid'],
  },
  {
    method: 'get',
    path: '/domains/{domain}/members',
    summary:
      'Search members: `q` (prefix of the account, of the name from any word, or of the external key; case-insensitive), `status`, `role`, `hasExternalKey` true|false, `count` 1–100 (default 50), `cursor` → {members, nextCursor, total}; a page may be short with a nextCursor',
    success: 200,
    errors: ['conflict'],
  },
  { method: 'post', path: '/domains/{domain}/members', summary: 'Add a member (S-25: externalKey required while SSO is on; S-23: no password while SSO is on; role super_admin needs super)', body: memberBodies.create, success: 201, errors: ['forbidden', 'external_key_required', 'external_key_conflict', 'account_conflict', 'sso_enabled', 'password_policy_violation'] },
  {
    method: 'post',
    path: '/domains/{domain}/members.csv',
    summary:
      'Add members from a CSV file (text/csv; header account,name,externalKey,role; UTF-8, BOM accepted; up to 100,000 rows): validated whole, then all added (status pending, role member by default) or none → {created}; errors as 400 csv_invalid {errors:[{row,column,error}],truncated}',
    body: 'members-csv',
    success: 200,
    errors: ['csv_invalid', 'unsupported_media_type', 'payload_too_large', 'conflict'],
  },
  { method: 'get', path: '/domains/{domain}/members/{id}', summary: 'Read a member', success: 200, errors: ['unknown_member'] },
  { method: 'patch', path: '/domains/{domain}/members/{id}', summary: 'Update a member; externalKey set, changed or removed with null (S-26); giving or taking super_admin, or changing a super admin, needs super', body: memberBodies.patch, success: 200, errors: ['forbidden', 'unknown_member', 'external_key_conflict', 'external_key_required'] },
  { method: 'delete', path: '/domains/{domain}/members/{id}', summary: 'Delete a member and end its sessions (a super admin: super)', success: 204, errors: ['unknown_member', 'forbidden'] },
  { method: 'put', path: '/domains/{domain}/members/{id}/password', summary: "Set a member's password (S-23: refused while SSO is on)", body: memberBodies.password, success: 204, errors: ['sso_enabled', 'password_policy_violation'] },
  { method: 'post', path: '/domains/{domain}/members/{id}/invitations', summary: 'Invite a pending member; the link is shown once (S-23: refused while SSO is on)', success: 201, errors: ['sso_enabled', 'conflict'] },
  { method: 'post', path: '/domains/{domain}/members/{id}/app-passwords', summary: 'Create a third-party app password; shown once (S-23: refused while SSO is on)', body: memberBodies.appPassword, success: 201, errors: ['sso_enabled', 'forbidden'] },
  { method: 'delete', path: '/domains/{domain}/members/{id}/app-passwords/{appPasswordId}', summary: 'Delete a third-party app password', success: 204 },
  // h-ops: the configuration document's operations are registered by domain-config.ts (it needs mdm.ts's schema).
];

/** Other route modules add their operations here (external keys …). */
export function registerAdminOperations(extra: AdminOperation[]): void {
  operations.push(...extra);
}

export function adminOperations(): readonly AdminOperation[] {
  return operations;
}

const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string', description: 'A code of docs/errors.md' }, message: { type: 'string' }, requestId: { type: 'string' }, details: {} },
};

/** The OpenAPI 3.1 document of the admin API (served at GET /admin/v1/openapi.json, kept as docs/openapi.json). */
export function buildOpenApi(publicUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const params = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    let requestBody: unknown;
    if (op.body === 'xml-or-json') {
      requestBody = {
        required: true,
        content: {
          'application/xml': { schema: { type: 'string', description: 'SAML 2.0 EntityDescriptor' } },
          'application/json': { schema: z.toJSONSchema(ssoBodies.metadataUrl, { io: 'input', unrepresentable: 'any' }) },
        },
      };
    } else if (op.body === 'csv') {
      requestBody = { required: true, content: { 'text/csv': { schema: { type: 'string', description: 'account,name,externalKey with a header row; UTF-8, BOM accepted' } } } };
    } else if (op.body === 'members-csv') {
      requestBody = { required: true, content: { 'text/csv': { schema: { type: 'string', description: 'account,name,externalKey,role with a header row (externalKey and role optional); UTF-8, BOM accepted' } } } };
    } else if (op.body) {
      requestBody = { required: true, content: { 'application/json': { schema: z.toJSONSchema(op.body, { io: 'input', unrepresentable: 'any' }) } } };
    }
    const errorCodes = ['unauthorized', 'validation_failed', 'tenant_not_found', 'rate_limited', ...(op.method === 'get' ? [] : ['forbidden', 'csrf_failed']), ...(op.errors ?? [])];
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      ...(op.operatorOnly ? { description: 'Operator key only.' } : {}),
      parameters: params,
      ...(requestBody ? { requestBody } : {}),
      responses: {
        [String(op.success)]: { description: op.success === 204 ? 'Done' : 'OK' },
        default: {
          description: `Error: one of ${[...new Set(errorCodes)].map((c) => `\`${c}\``).join(', ')} (see docs/errors.md)`,
          content: { 'application/json': { schema: errorSchema } },
        },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'idp-bridge admin API',
      version: '1',
      description:
        'Tenant-scoped administration. A tenant key or console session reaching another tenant answers 404, as if it did not exist. Permissions: read (everyone), write (the operator, a full-scope key, an admin or super admin: every method but GET/HEAD), super (the operator, a full-scope key, a super admin). With the console cookie, every method but GET/HEAD needs X-CSRF-Token (from GET /session) and Sec-Fetch-Site, when sent, must be same-origin.',
    },
    servers: [{ url: `${publicUrl}/admin/v1` }],
    security: [{ bearer: [] }, { console: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_API_KEY (operator) or a tenant key from POST /domains/{domain}/api-keys (scope read or full; an expired key answers 401)' },
        console: {
          type: 'apiKey',
          in: 'cookie',
          name: '__Host-idpb_console',
          description: 'The console session of an administrator (`idpb_console` when the gateway is on http), set by /console/auth/complete; used only when no Authorization header is sent',
        },
      },
    },
    paths,
  };
}
