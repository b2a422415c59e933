// The operator's calls (GET /admin/v1/domains, /op-clients, /health), on the console's request().
import { request, type Member, type Tenant } from './api';

export type MdmMode = 'none' | 'builtin' | 'external';

export interface DomainSummary {
  domain: string;
  name: string;
  plan: Tenant['plan'];
  group: string | null;
  sso: { enabled: boolean; type: 'saml' | 'oauth' };
  mdm: { mode: MdmMode };
  memberCount: number;
  lastLoginAt: string | null;
}

export interface DomainPage {
  domains: DomainSummary[];
  nextCursor: string | null;
  total: number;
}

export interface NewDomain {
  domain: string;
  name: string;
  plan: Tenant['plan'];
  superAdmin: { account: string; name: string; password?: string };
}

export interface CreatedDomain extends Tenant {
  superAdmin: Member;
  invitation: { id: string; url: string; expiresAt: string } | null;
}

export interface OpClient {
  clientId: string;
  name: string | null;
  source: 'config' | 'api';
  readOnly: boolean;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  tokenEndpointAuthMethod: string;
  grantTypes: string[];
  createdAt: string | null;
  updatedAt: string | null;
}

export interface NewOpClient {
  clientId: string;
  name: string;
  redirectUris: string[];
  tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post';
}

export interface Health {
  status: 'ok' | 'degraded';
  checkedAt: string;
  store: { status: 'ok' | 'unavailable'; mode: 'memory' | 'standalone' | 'sentinel' | 'cluster'; latencyMs: number | null; error: string | null };
  workers: { serving: number; heartbeatSeconds: number; list: Array<{ id: string; lastBeatAt: string }> };
  certificates: { withinDays: number; expiring: Array<{ domain: string; ssoEnabled: boolean; index: number; subject: string; notAfter: string; expired: boolean; daysLeft: number }> };
  resumableRuns: Array<{ domain: string; kind: 'sso_switch' | 'external_key_import'; startedAt: string; detail: Record<string, unknown> }>;
  tenantsChecked: number;
  truncated: boolean;
}

export const operatorApi = {
  domains: (query: { cursor?: string | null; count?: number } = {}) => request<DomainPage>('GET', '/domains', { query: { cursor: query.cursor, count: query.count } }),
  createDomain: (body: NewDomain) => request<CreatedDomain>('POST', '/domains', { json: body }),
  setPlan: (domain: string, plan: Tenant['plan']) => request<Tenant>('PATCH', `/domains/${encodeURIComponent(domain)}`, { json: { plan } }),
  clients: () => request<{ clients: OpClient[] }>('GET', '/op-clients'),
  createClient: (body: NewOpClient) => request<OpClient & { clientSecret: string }>('POST', '/op-clients', { json: body }),
  updateClient: (clientId: string, body: { redirectUris: string[] }) => request<OpClient>('PATCH', `/op-clients/${encodeURIComponent(clientId)}`, { json: body }),
  deleteClient: (clientId: string) => request<void>('DELETE', `/op-clients/${encodeURIComponent(clientId)}`),
  health: () => request<Health>('GET', '/health'),
};
