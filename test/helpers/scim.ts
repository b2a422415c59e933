import type supertest from 'supertest';
import type { TenantInput } from '../../src/domain/tenant.js';
import { OPERATOR_AUTH, type Gateway } from './gateway.js';

export const SCIM_TYPE = 'application/scim+json';
export const ERROR_URN = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const PATCH_URN = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const USER_URN = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_URN = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_URN = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** A tenant with SSO off, account as user key (SCIM tests that are not about SSO). */
export const plainTenant = (domain: string): TenantInput => ({
  domain,
  name: `Tenant ${domain}`,
  plan: 'standard',
  sso: { enabled: false, type: 'saml', userKey: 'account', setExpireTime: false },
  serviceOrigins: [],
  logoutRedirectDomains: [],
  thirdPartyAppPasswordsAllowed: false,
});

/** Issues a SCIM token for `domain` through the admin API (operator); returns the token. */
export async function issueScimToken(gw: Gateway, domain: string, name = 'entra'): Promise<{ id: string; token: string }> {
  const res = await gw.http.post(`/admin/v1/domains/${domain}/scim-tokens`).set('Authorization', OPERATOR_AUTH).send({ name });
  if (res.status !== 201) throw new Error(`SCIM token issue answered ${res.status}: ${res.text}`);
  return { id: res.body.id as string, token: res.body.token as string };
}

/** A SCIM client of one domain over supertest: `call(method, path, body?)` with the bearer token and application/scim+json. */
export function scimClient(gw: Gateway, domain: string, token: string) {
  return (method: 'get' | 'post' | 'put' | 'patch' | 'delete', path: string, body?: unknown, headers: Record<string, string> = {}): supertest.Test => {
    let t = gw.http[method](`/scim/v2/${domain}${path}`).set('Authorization', `Bearer ${token}`);
    for (const [k, v] of Object.entries(headers)) t = t.set(k, v);
    return body === undefined ? t : t.set('Content-Type', SCIM_TYPE).send(JSON.stringify(body));
  };
}

export const patchOp = (...Operations: Array<Record<string, unknown>>): Record<string, unknown> => ({ schemas: [PATCH_URN], Operations });
