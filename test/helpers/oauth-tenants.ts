import type { TenantInput } from '../../src/domain/tenant.js';
import { BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET } from './oidc-idp.js';

type OAuthSettings = NonNullable<NonNullable<TenantInput['sso']>['oauth']>;

/** A tenant whose SSO is OAuth with these settings (external-key mapping, no origins). */
export function oauthTenant(domain: string, oauth: OAuthSettings, sso: Partial<NonNullable<TenantInput['sso']>> = {}): TenantInput {
  return {
    domain,
    name: `Tenant ${domain}`,
    plan: 'standard',
    sso: { enabled: true, type: 'oauth', userKey: 'externalKey', setExpireTime: false, ...sso, oauth },
    serviceOrigins: [],
    logoutRedirectDomains: [],
    thirdPartyAppPasswordsAllowed: false,
  };
}

/** An OIDC tenant of the test OpenID Provider at `issuer` (the bridge's client there). */
export function oidcTenant(domain: string, issuer: string): TenantInput {
  return oauthTenant(domain, { profile: 'oidc', clientId: BRIDGE_CLIENT_ID, clientSecret: BRIDGE_CLIENT_SECRET, issuer, userKeyClaim: 'sub', scopes: ['openid'] });
}

/** A `works`-profile tenant: the browser goes to `webLoginUrl`, the gateway calls `tokenUrl` and `userInfoUrl`. */
export function worksTenant(domain: string, urls: { webLoginUrl: string; tokenUrl: string; userInfoUrl: string }, client: { clientId: string; clientSecret: string }): TenantInput {
  return oauthTenant(
    domain,
    { profile: 'works', clientId: client.clientId, clientSecret: client.clientSecret, tokenUrl: urls.tokenUrl, userInfoUrl: urls.userInfoUrl, userKeyClaim: 'sub', scopes: ['openid'] },
    { webLoginUrl: urls.webLoginUrl },
  );
}
