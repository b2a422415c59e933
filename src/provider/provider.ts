import { createPrivateKey } from 'node:crypto';
import Provider from 'oidc-provider';
import type { Config } from '../config/index.js';
import { page, signedOutPage } from '../http/views.js';
import type { MemberRepository } from '../domain/members.js';
import type { Logger } from '../observability/logger.js';
import type { KeyValueStore } from '../store/index.js';
import { fromAccountId } from './account-id.js';
import type { OpClients } from './op-clients.js';
import { storeAdapterFactory } from './store-adapter.js';

export interface ProviderDeps {
  config: Config;
  store: KeyValueStore;
  members: MemberRepository;
  logger: Logger;
  /** Service clients added through the admin API, served beside the config ones. */
  clients?: Pick<OpClients, 'metadataOf'>;
}

/** M-4: access tokens of public (mobile) clients live at most 10 minutes; refresh tokens keep the app signed in. */
export const MOBILE_ACCESS_TOKEN_TTL_S = 600;

export const OP_PATH = '/oidc';
/** oidc-provider's browser session cookie (its value is the Session id) and its signature (path `/`). */
export const OP_SESSION_COOKIES = ['_session', '_session.sig'] as const;

interface OpClient {
  clientId: string;
  clientAuthMethod?: string;
}

/**
 * The bridge as OpenID Provider (O-1 … O-3): oidc-provider mounted at /oidc, its storage on the
 * project's store, clients from config and from the admin API (op-clients.ts), interactions handled by our own routes (which sign the member
 * in through the tenant's IdP or password login), tokens that carry `sub`, `domain` and `account`.
 */
export function createProvider(deps: ProviderDeps): Provider {
  const { config, members } = deps;
  if (!config.oidc.signingKey) throw new Error('oidc.signingKey is not configured');
  const jwk = { ...createPrivateKey(config.oidc.signingKey).export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'idpb-op-1' };

  const loadClaims = async (accountId: string): Promise<Record<string, unknown> | undefined> => {
    const parsed = fromAccountId(accountId);
    const member = parsed ? await members.findById(parsed.domain, parsed.memberId) : null;
    if (!parsed || !member || member.status !== 'in_use') return undefined;
    return { sub: accountId, domain: parsed.domain, account: member.account, name: member.name };
  };
  // One member read per request: a token request asks for the account and then for each token's claims.
  const perRequest = new WeakMap<object, Map<string, Promise<Record<string, unknown> | undefined>>>();
  const accountClaims = (ctx: unknown, accountId: string): Promise<Record<string, unknown> | undefined> => {
    if (typeof ctx !== 'object' || ctx === null) return loadClaims(accountId);
    let memo = perRequest.get(ctx);
    if (!memo) {
      memo = new Map<string, Promise<Record<string, unknown> | undefined>>();
      perRequest.set(ctx, memo);
    }
    let claims = memo.get(accountId);
    if (!claims) memo.set(accountId, (claims = loadClaims(accountId)));
    return claims;
  };

  const provider = new Provider(`${config.publicUrl}${OP_PATH}`, {
    adapter: storeAdapterFactory(deps.store, { grantRowsTtlMs: config.session.appTtlSeconds * 1000, findClient: deps.clients ? (id) => deps.clients!.metadataOf(id) : undefined }),
    clients: config.oidc.clients.map((c) => ({ ...c, response_types: ['code'] })),
    // Every client is registered for the code flow only: discovery advertises just that (no implicit, no id_token).
    responseTypes: ['code'],
    jwks: { keys: [jwk] },
    cookies: { keys: [...config.secretKeys], long: { signed: true }, short: { signed: true } },
    claims: { openid: ['sub', 'domain', 'account'], profile: ['name'] },
    extraParams: ['domain'],
    // Only members still in_use have an account: a suspended or deleted member's tokens stop working.
    findAccount: async (ctx: unknown, sub: string) => {
      const claims = await accountClaims(ctx, sub);
      return claims ? { accountId: sub, claims: () => claims } : undefined;
    },
    // O-3: access tokens (introspection, JWT access tokens) name the tenant and the account too.
    extraTokenClaims: async (ctx: unknown, token: { accountId?: string }) => {
      const claims = token.accountId ? await accountClaims(ctx, token.accountId) : undefined;
      return claims ? { domain: claims.domain, account: claims.account } : undefined;
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `${OP_PATH}/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      // The suite's confidential services may introspect any token (they serve the mobile app's calls);
      // the public mobile client only its own.
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx: unknown, client: OpClient, token: { clientId?: string }) => client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      // A client revokes only the tokens it was issued.
      revocation: { enabled: true, allowedPolicy: (_ctx: unknown, client: OpClient, token: { clientId?: string }) => token.clientId === client.clientId },
      // S-19: a service that starts the sign-out (end_session_endpoint, post_logout_redirect_uri registered per client);
      // confirming ends the OP session and the gateway's web session (rp-logout.ts).
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx: { type: string; body: string }, form: string) => {
          ctx.type = 'html';
          ctx.body = page(
            'Sign out',
            `<h1>Sign out?</h1><p>You will be signed out of every service of your organisation in this browser.</p>${form}<p><button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button> <button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button></p>`,
          );
        },
        postLogoutSuccessSource: (ctx: { type: string; body: string }) => {
          ctx.type = 'html';
          ctx.body = signedOutPage();
        },
      },
      // S-19: services that register backchannel_logout_uri are told when a member's OP session ends
      // (backchannel-logout.ts delivers, off the request path).
      backchannelLogout: { enabled: true },
    },
    // S-10: the mobile app's session lasts session.appTtlSeconds, not as long as the OP's browser session
    // (webTtlSeconds), with or without offline_access; web clients' tokens end with the browser session
    // unless they ask for offline_access.
    expiresWithSession: (ctx: { oidc: { client?: { clientAuthMethod?: string } } }, code: { scopes: Set<string> }) =>
      ctx.oidc.client?.clientAuthMethod !== 'none' && !code.scopes.has('offline_access'),
    // Refresh tokens for every client allowed the refresh_token grant (the mobile app), rotating for public clients.
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: (_ctx: unknown, _token: unknown, client: { clientAuthMethod?: string } | undefined) =>
        client?.clientAuthMethod === 'none' ? MOBILE_ACCESS_TOKEN_TTL_S : 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 1800,
      Session: config.session.webTtlSeconds,
      Grant: config.session.appTtlSeconds,
      RefreshToken: config.session.appTtlSeconds,
    },
    // The gateway's page layout (language, landmarks, contrast), naming only the OAuth error code.
    renderError: (ctx: { type: string; body: string }, out: Record<string, string>) => {
      ctx.type = 'html';
      ctx.body = page(
        'Sign-in problem',
        `<h1>We could not complete this request</h1><p>The service's sign-in request could not be accepted. Please go back to the service and try again.</p><p class="ref">Error code: <code>${String(out.error).replace(/[^a-z_]/g, '')}</code></p>`,
      );
    },
  });
  provider.proxy = config.trustProxy !== false;
  provider.on('server_error', (...args: unknown[]) => deps.logger.error({ err: args[1] }, 'oidc-provider server error'));
  return provider;
}
