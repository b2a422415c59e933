import { randomBytes } from 'node:crypto';
import type { Tenant } from '../domain/tenant.js';
import type { Services } from '../services.js';
import { authnRequestUrl } from '../sso/saml/authn-request.js';
import { requireSamlSettings, samlEntryPoint } from '../sso/saml/options.js';
import type { ClientKind } from '../sso/transactions.js';

export interface LoginStart {
  /** Already checked (S-5) or built by the gateway itself (an OP interaction). */
  target: string;
  clientKind: ClientKind;
  sessionKey?: string;
  worksId?: string;
}

/**
 * Where the browser goes to sign in to a tenant: its SAML IdP (AuthnRequest), its OAuth/OIDC IdP, or,
 * without SSO, the password page (S-4). Used by /d/login and by the OP's interactions (O-2).
 */
export async function startLogin(s: Services, tenant: Tenant, input: LoginStart): Promise<string> {
  if (!tenant.sso.enabled) {
    return `/d/password-login/${tenant.domain}?${new URLSearchParams({ accessUrl: input.target }).toString()}`;
  }
  if (tenant.sso.type === 'oauth') return s.oauthLogin.start(tenant, input);
  const requestId = `_${randomBytes(20).toString('hex')}`;
  // Check the settings first: a misconfigured tenant must not leave transactions behind.
  requireSamlSettings(tenant);
  samlEntryPoint(tenant, input.clientKind);
  const txn = await s.transactions.create(tenant, { ssoType: 'saml', target: input.target, clientKind: input.clientKind, requestId, sessionKey: input.sessionKey });
  return authnRequestUrl({ tenant, sp: s.sp, clientKind: input.clientKind, requestId, relayState: txn.id, now: s.clock.now(), worksId: input.worksId, signingKey: s.sp.signing?.key });
}
