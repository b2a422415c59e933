// The third-party MDM screen's calls to /admin/v1 (docs/spec.md §8, §9), on the console's request().
import { request } from './api';

export type MdmMode = 'none' | 'builtin' | 'external';

export interface MdmSettings {
  mode: MdmMode;
  restrictOtherDomains: boolean;
  configKey: string;
  valueType: string;
  activeKeys: number;
  updatedAt: string | null;
  plan: 'free' | 'standard' | 'advanced';
  available: boolean;
  unavailableReason: 'plan_required' | null;
  builtinExceptions: number;
  rules: { customValue: { minLength: number; maxLength: number; pattern: string; message: string }; maxActiveKeys: number; maxGraceSeconds: number; maxEffectiveAheadDays: number };
}

export interface MdmKey {
  id: string;
  masked: string;
  source: 'auto' | 'custom';
  status: 'active' | 'revoked' | 'inactive';
  admitting: boolean;
  createdAt: string;
  effectiveFrom: string;
  graceUntil: string | null;
  revokedAt: string | null;
  endReason: string | null;
  lastPresentedAt: string | null;
  liveSessions: number;
}

export interface MdmPreview {
  mode: MdmMode;
  previousMode: MdmMode;
  refusal: 'plan_required' | null;
  problems: Array<{ path: string; message: string }>;
  issuesKey: boolean;
  builtinExceptionsDeleted: number;
  mobileSessionsEnded: number;
  keysReplaced: number;
  keysDeactivated: number;
}

export interface MdmPutBody {
  mode: MdmMode;
  restrictOtherDomains?: boolean;
  customKey?: string;
}

export interface BuiltinException {
  id: string;
  account: string;
  note: string | null;
  createdAt: string;
}

export interface IssuedKey {
  id: string;
  value: string;
}

const m = (domain: string): string => `/domains/${encodeURIComponent(domain)}/mdm`;

export const mdmApi = {
  settings: (domain: string) => request<MdmSettings>('GET', m(domain)),
  preview: (domain: string, body: MdmPutBody) => request<MdmPreview>('POST', `${m(domain)}/preview`, { json: body }),
  put: (domain: string, body: MdmPutBody) => request<{ key?: IssuedKey; mobileSessionsEnded: number; builtinExceptionsDeleted: number }>('PUT', m(domain), { json: body }),
  keys: (domain: string) => request<{ keys: MdmKey[] }>('GET', `${m(domain)}/keys`),
  addKey: (domain: string, body: { value?: string; effectiveFrom?: string }) => request<IssuedKey & { effectiveFrom: string }>('POST', `${m(domain)}/keys`, { json: body }),
  reissue: (domain: string, body: { graceSeconds?: number; value?: string }) =>
    request<IssuedKey & { graceUntil: string | null; mobileSessionsEnded: number }>('POST', `${m(domain)}/keys:reissue`, { json: body }),
  revoke: (domain: string, id: string, replacement?: string) =>
    request<{ revoked: string; mobileSessionsEnded: number; replacement?: IssuedKey; takenOverBy?: { id: string; effectiveFrom: string } }>(
      'DELETE',
      `${m(domain)}/keys/${encodeURIComponent(id)}`,
      { query: { replacement } },
    ),
  reveal: (domain: string, id: string) => request<IssuedKey>('GET', `${m(domain)}/keys/${encodeURIComponent(id)}/value`),
  exceptions: (domain: string) => request<{ exceptions: BuiltinException[] }>('GET', `${m(domain)}/builtin-exceptions`),
  deleteException: (domain: string, id: string) => request<void>('DELETE', `${m(domain)}/builtin-exceptions/${encodeURIComponent(id)}`),
};
