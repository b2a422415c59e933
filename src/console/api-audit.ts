// The audit trail and sign-in activity (docs/spec.md §11), on the shared transport of api.ts.
import { API, request } from './api';

export interface AuditEvent {
  id: string;
  at: string;
  type: string;
  domain?: string;
  actor: string;
  requestId?: string;
  ip?: string;
  /** The private reason of a refusal: present exactly when the event is a failure. */
  reason?: string;
  data?: Record<string, string | number | boolean | null>;
}

export interface AuditPage {
  events: AuditEvent[];
  /** Where the next page starts; null at the oldest event kept. A short (even empty) page may still have one. */
  nextCursor: string | null;
}

/** The filters as the API takes them (ISO 8601 instants for from / to). */
export interface AuditFilters {
  type?: string;
  actor?: string;
  member?: string;
  result?: 'success' | 'failure' | '';
  from?: string;
  to?: string;
}

export type LoginCounts = { success: number; failure: number };
export interface ActivityDay {
  date: string;
  saml: LoginCounts;
  oauth: LoginCounts;
  password: LoginCounts;
}
export interface ActivitySummary {
  from: string;
  to: string;
  days: ActivityDay[];
  topRefusalReasons: Array<{ reason: string; count: number }>;
}

export const PROTOCOLS = ['saml', 'oauth', 'password'] as const;

const d = (domain: string): string => `/domains/${encodeURIComponent(domain)}`;

function filterQuery(f: AuditFilters): Record<string, string | undefined> {
  return { type: f.type, actor: f.actor, member: f.member, result: f.result || undefined, from: f.from, to: f.to };
}

export const auditApi = {
  page: (domain: string, filters: AuditFilters, count: number, cursor: string | null) =>
    request<AuditPage>('GET', `${d(domain)}/audit`, { query: { ...filterQuery(filters), count, cursor } }),
  event: (domain: string, id: string) => request<AuditEvent>('GET', `${d(domain)}/audit/${encodeURIComponent(id)}`),
  /** A plain GET with the session cookie: the browser downloads it (Content-Disposition: attachment). */
  csvUrl: (domain: string, filters: AuditFilters): string => {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filterQuery(filters))) if (v) params.set(k, v);
    const qs = params.toString();
    return `${API}${d(domain)}/audit.csv${qs ? `?${qs}` : ''}`;
  },
  activity: (domain: string, days = 30) => request<ActivitySummary>('GET', `${d(domain)}/activity`, { query: { days } }),
};
