// The console's only way to the server: /admin/v1 (and the console's own sign-in routes by navigation).
// Cookie session (credentials 'same-origin'); every non-GET carries X-CSRF-Token from GET /admin/v1/session.

export const API = '/admin/v1';

export interface FieldProblem {
  path: string;
  message: string;
}
export interface CsvRowError {
  row: number;
  column: string;
  error: string;
}

/** A JSON error body `{error, message, requestId, details}` (or a network failure: status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
    readonly requestId: string | null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
  /** 400 validation_failed: `details` is [{path, message}]. */
  get fieldProblems(): FieldProblem[] {
    return Array.isArray(this.details) ? (this.details as unknown[]).filter(isFieldProblem) : [];
  }
  /** 400 csv_invalid: `details` is {errors: [{row, column, error}], truncated}. */
  get csvErrors(): { errors: CsvRowError[]; truncated: boolean } | null {
    if (this.code !== 'csv_invalid' || typeof this.details !== 'object' || this.details === null) return null;
    const d = this.details as { errors?: unknown; truncated?: unknown };
    return { errors: Array.isArray(d.errors) ? (d.errors as CsvRowError[]) : [], truncated: d.truncated === true };
  }
}

function isFieldProblem(v: unknown): v is FieldProblem {
  return typeof v === 'object' && v !== null && typeof (v as FieldProblem).path === 'string' && typeof (v as FieldProblem).message === 'string';
}

export type Role = 'super_admin' | 'admin' | 'member';
export type MemberStatus = 'pending' | 'in_use' | 'unapproved' | 'suspended';

export interface Session {
  kind: 'operator' | 'tenant' | 'member';
  domain: string | null;
  member: { id: string; account: string; name: string; role: Role } | null;
  csrfToken: string | null;
  permissions: { read: boolean; write: boolean; super: boolean };
  idleExpiresAt: string | null;
  absoluteExpiresAt: string | null;
  breakGlass: { enabled: boolean };
}

export interface Tenant {
  domain: string;
  name: string;
  plan: 'free' | 'standard' | 'advanced';
  sso: { enabled: boolean; type: 'saml' | 'oauth' };
}

export interface Certificate {
  index: number;
  subject: string;
  issuer: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  expired: boolean;
  expiresSoon: boolean;
}

export interface SwitchProgress {
  target: boolean;
  startedAt: string;
  membersDone: number;
  membersTotal: number;
  running: boolean;
}

export interface SsoView {
  enabled: boolean;
  type: 'saml' | 'oauth';
  userKey: 'externalKey' | 'account';
  setExpireTime: boolean;
  webLoginUrl?: string;
  appLoginUrl?: string;
  logoutUrl?: string;
  saml?: {
    idpEntityId: string;
    idpCertificates: string[];
    spEntityId?: string;
    allowUnsolicited: boolean;
    signAuthnRequests: boolean;
    allowSha1: boolean;
    idpSloUrl?: string;
  };
  oauth?: {
    profile: 'works' | 'oidc';
    clientId: string;
    clientSecretSet?: boolean;
    tokenUrl?: string;
    userInfoUrl?: string;
    issuer?: string;
    userKeyClaim: string;
    scopes: string[];
  };
  certificates: Certificate[];
  sp: { entityId: string; acsUrl: string; sloUrl: string; metadataUrl: string; certificateUrl: string | null; directLoginUrl: string };
  switchInProgress: SwitchProgress | null;
}

export type SsoPatch = Partial<{
  enabled: boolean;
  type: 'saml' | 'oauth';
  userKey: 'externalKey' | 'account';
  setExpireTime: boolean;
  webLoginUrl: string;
  appLoginUrl: string;
  logoutUrl: string;
  saml: Partial<NonNullable<SsoView['saml']>>;
  oauth: Partial<NonNullable<SsoView['oauth']> & { clientSecret: string }>;
}>;

export interface SwitchEffects {
  pendingActivated: number;
  sessionsEnded: number;
  invitationsInvalidated: number;
  unapprovedDeleted: number;
  appPasswordsDeleted: number;
  tokensRevoked: number;
  passwordsDeleted: number;
}

export interface SsoPreview {
  switching: boolean;
  target: boolean;
  effects: SwitchEffects;
  problems: FieldProblem[];
  warnings: string[];
}

export interface SsoWriteResult {
  effects?: Partial<SwitchEffects>;
  switched?: boolean;
  sso?: SsoView;
  warnings?: string[];
}

export interface MetadataImport {
  entityId: string;
  ssoUrl: string;
  sloUrl: string | null;
  certificates: number;
  warnings: string[];
}

export interface TestSignInStart {
  id: string;
  url: string;
  expiresAt: string;
}
export interface TestSignIn {
  id: string;
  status: 'pending' | 'succeeded' | 'failed';
  finishedAt?: string;
  member?: { id: string; account: string; name: string; externalKey: string | null };
  assertedId?: string;
  code?: string;
  reason?: string;
  message?: string;
}

export interface Member {
  id: string;
  account: string;
  name: string;
  externalKey: string | null;
  role: Role;
  status: MemberStatus;
  hasPassword: boolean;
  appPasswords: Array<{ id: string; name: string; createdAt: string }>;
}
export interface MemberPage {
  members: Member[];
  nextCursor: string | null;
  total: number;
}
export interface MemberQuery {
  q?: string;
  status?: MemberStatus | '';
  role?: Role | '';
  hasExternalKey?: 'true' | 'false' | '';
  count?: number;
  cursor?: string | null;
}

export interface ApiKey {
  id: string;
  name: string;
  scope: 'read' | 'full';
  createdAt: string;
  expiresAt: string | null;
  expired: boolean;
}
export interface CreatedApiKey extends Omit<ApiKey, 'expired'> {
  key: string;
}

/** A SCIM bearer token as listed (never the secret). */
export interface ScimToken {
  id: string;
  name: string;
  createdAt: string;
  rotatedAt: string | null;
}
/** An issued or rotated SCIM token: the secret, shown once. */
export interface IssuedScimToken extends ScimToken {
  token: string;
  scimBaseUrl: string;
}

// --- transport -------------------------------------------------------------------------------------

let csrfToken: string | null = null;
let onUnauthorized: (() => void) | null = null;

/** Called when any request answers 401: the console shows the sign-in screen. */
export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

function errorFrom(status: number, text: string): ApiError {
  let body: { error?: unknown; message?: unknown; details?: unknown; requestId?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON (a proxy's page): keep the status
  }
  if (status === 401) onUnauthorized?.();
  return new ApiError(
    status,
    typeof body.error === 'string' ? body.error : `http_${status}`,
    typeof body.message === 'string' ? body.message : '',
    body.details,
    typeof body.requestId === 'string' ? body.requestId : null,
  );
}

async function csrf(): Promise<string> {
  if (csrfToken) return csrfToken;
  const session = await getSession();
  if (!session.csrfToken) throw new ApiError(403, 'csrf_failed', '', undefined, null);
  return session.csrfToken;
}

interface RequestOptions {
  json?: unknown;
  body?: string;
  contentType?: string;
  query?: Record<string, string | number | undefined | null>;
}

function urlOf(path: string, query?: RequestOptions['query']): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return `${API}${path}${qs ? `?${qs}` : ''}`;
}

export async function request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.body !== undefined) {
    headers['Content-Type'] = options.contentType ?? 'text/plain';
    body = options.body;
  }
  if (method !== 'GET') headers['X-CSRF-Token'] = await csrf();
  let response: Response;
  try {
    response = await fetch(urlOf(path, options.query), { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network_error', '', undefined, null);
  }
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, text);
  if (response.status === 204 || text === '') return undefined as T;
  return JSON.parse(text) as T;
}

/**
 * An upload by XMLHttpRequest, so that `onProgress` reports real bytes sent (fetch has no upload progress).
 */
export async function upload<T>(method: 'POST' | 'PUT', path: string, file: Blob, contentType: string, onProgress: (fraction: number) => void): Promise<T> {
  const token = await csrf();
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, urlOf(path));
    xhr.setRequestHeader('Content-Type', contentType);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-CSRF-Token', token);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.upload.onload = () => onProgress(1);
    xhr.onerror = () => reject(new ApiError(0, 'network_error', '', undefined, null));
    xhr.onload = () => {
      const text = xhr.responseText;
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve((text ? JSON.parse(text) : undefined) as T);
      } else {
        reject(errorFrom(xhr.status, text));
      }
    };
    xhr.send(file);
  });
}

// --- endpoints -------------------------------------------------------------------------------------

export async function getSession(): Promise<Session> {
  const session = await request<Session>('GET', '/session');
  csrfToken = session.csrfToken;
  return session;
}

export async function signOut(): Promise<void> {
  await request<void>('DELETE', '/session');
  csrfToken = null;
}

const d = (domain: string): string => `/domains/${encodeURIComponent(domain)}`;

export const api = {
  tenant: (domain: string) => request<Tenant>('GET', d(domain)),

  sso: (domain: string) => request<SsoView>('GET', `${d(domain)}/sso`),
  patchSso: (domain: string, patch: SsoPatch) => request<SsoWriteResult>('PATCH', `${d(domain)}/sso`, { json: patch }),
  previewSso: (domain: string, patch: SsoPatch) => request<SsoPreview>('POST', `${d(domain)}/sso/preview`, { json: patch }),
  resumeSwitch: (domain: string) => request<SsoWriteResult | undefined>('POST', `${d(domain)}/sso/switch/resume`, { json: {} }),
  importMetadataXml: (domain: string, xml: string) =>
    request<MetadataImport>('POST', `${d(domain)}/saml/idp-metadata`, { body: xml, contentType: 'application/xml' }),
  importMetadataUrl: (domain: string, url: string) => request<MetadataImport>('POST', `${d(domain)}/saml/idp-metadata`, { json: { url } }),
  startTestSignIn: (domain: string) => request<TestSignInStart>('POST', `${d(domain)}/sso/test-sign-ins`, { json: {} }),
  testSignIn: (domain: string, id: string) => request<TestSignIn>('GET', `${d(domain)}/sso/test-sign-ins/${encodeURIComponent(id)}`),
  spCertificateUrl: (domain: string) => `${API}${d(domain)}/saml/sp-certificate.pem`,

  members: (domain: string, query: MemberQuery) =>
    request<MemberPage>('GET', `${d(domain)}/members`, {
      query: { q: query.q, status: query.status, role: query.role, hasExternalKey: query.hasExternalKey, count: query.count, cursor: query.cursor },
    }),
  createMember: (domain: string, body: { account: string; name: string; externalKey?: string; role: Role }) =>
    request<Member>('POST', `${d(domain)}/members`, { json: body }),
  patchMember: (domain: string, id: string, body: Partial<{ account: string; name: string; externalKey: string | null; role: Role; status: MemberStatus }>) =>
    request<Member>('PATCH', `${d(domain)}/members/${encodeURIComponent(id)}`, { json: body }),
  uploadMembersCsv: (domain: string, file: Blob, onProgress: (f: number) => void) =>
    upload<{ created: number }>('POST', `${d(domain)}/members.csv`, file, 'text/csv', onProgress),

  externalKeysCsvUrl: (domain: string) => `${API}${d(domain)}/external-keys.csv`,
  uploadExternalKeysCsv: (domain: string, file: Blob, onProgress: (f: number) => void) =>
    upload<{ updated: number; removed: number; unchanged: number }>('PUT', `${d(domain)}/external-keys.csv`, file, 'text/csv', onProgress),

  apiKeys: (domain: string) => request<{ apiKeys: ApiKey[] }>('GET', `${d(domain)}/api-keys`),
  createApiKey: (domain: string, body: { name: string; scope: 'read' | 'full'; expiresAt?: string }) =>
    request<CreatedApiKey>('POST', `${d(domain)}/api-keys`, { json: body }),
  revokeApiKey: (domain: string, id: string) => request<void>('DELETE', `${d(domain)}/api-keys/${encodeURIComponent(id)}`),

  scimTokens: (domain: string) => request<{ scimBaseUrl: string; tokens: ScimToken[] }>('GET', `${d(domain)}/scim-tokens`),
  issueScimToken: (domain: string, name: string) => request<IssuedScimToken>('POST', `${d(domain)}/scim-tokens`, { json: { name } }),
  rotateScimToken: (domain: string, id: string) => request<IssuedScimToken>('POST', `${d(domain)}/scim-tokens/${encodeURIComponent(id)}/rotate`, { json: {} }),
  revokeScimToken: (domain: string, id: string) => request<void>('DELETE', `${d(domain)}/scim-tokens/${encodeURIComponent(id)}`),
};
