import * as oidc from 'openid-client';
import type { Clock } from '../../domain/clock.js';
import { mapAssertedIdentity } from '../../domain/identity-mapping.js';
import type { Member } from '../../domain/member.js';
import type { MemberRepository } from '../../domain/members.js';
import type { OAuthSettings, Tenant } from '../../domain/tenant.js';
import { AppError } from '../../errors/index.js';
import { APP_USER_AGENT } from '../app-login-checks.js';
import type { ClientKind, LoginTransaction, LoginTransactions } from '../transactions.js';
import { OutboundError, type OutboundHttp } from './outbound-http.js';

export interface OAuthLoginDeps {
  http: OutboundHttp;
  transactions: LoginTransactions;
  members: MemberRepository;
  clock: Clock;
  /** Tolerated clock difference to the IdP (the SAML checks' `saml.clockSkewSeconds`): bounds the ID token's `iat`. */
  clockSkewMs: number;
  publicUrl: string;
  /** Outside production, http IdPs are allowed (tests, demo). */
  allowHttp: boolean;
  discoveryTtlMs?: number;
}

export interface OAuthStart {
  target: string;
  clientKind: ClientKind;
  sessionKey?: string;
  worksId?: string;
  /** The starting browser's login binding cookie (raw); the transaction keeps its digest. */
  browserBinding: string;
  /** An administrator's test sign-in (see LoginTransaction.testSignInId). */
  testSignInId?: string;
}

export interface OAuthResult {
  tenant: Tenant;
  member: Member;
  transaction: LoginTransaction;
  /** The identifier the IdP asserted (user_id or the configured ID token claim). */
  userKey: string;
  /** now + expires_in, when the IdP sent one (S-10). */
  idpExpiresAt?: number;
}

const PRINTABLE = /^[\x21-\x7e]+$/;
const USER_ID_MAX = 256;

function fail(reason: string, detail?: string): AppError {
  return new AppError('oauth_login_failed', { reason, detail: detail ?? reason });
}

/**
 * A call that did not complete. The reason (audited) names the step and the coarse failure only
 * (`token_idp_unreachable`, `oidc_outbound_refused` …); the specific cause is in `detail`, which only
 * the operator's log shows.
 */
function outboundFailure(step: 'token' | 'userinfo' | 'oidc', err: OutboundError): AppError {
  const reason = `${step}_${err.failure}`;
  return new AppError(err.failure === 'idp_unreachable' ? 'idp_unavailable' : 'oauth_login_failed', { reason, detail: `${reason}: ${err.message}` });
}

/** S-15: `expires_in` as an integer or a string of digits; anything else counts as absent. */
export function parseExpiresIn(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,10}$/.test(value.trim()) ? Number(value.trim()) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

const USERINFO_ERRORS: Record<string, string> = {
  '101': 'userinfo_access_denied',
  access_denied: 'userinfo_access_denied',
  '201': 'userinfo_invalid_request',
  invalid_request: 'userinfo_invalid_request',
  '301': 'userinfo_unauthorized_client',
  unauthorized_client: 'userinfo_unauthorized_client',
  '303': 'userinfo_invalid_access',
  invalid_access: 'userinfo_invalid_access',
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An IdP error code as a short printable string, whatever JSON type it came as. */
const errorCode = (v: unknown): string => {
  const text = typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v);
  return text.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);
};

/** A user key from an IdP: a non-empty string of at most 256 characters without control characters. */
function checkUserKey(value: unknown, reason: string): string {
  if (typeof value !== 'string') throw fail(reason);
  const v = value.trim();
  if (v.length === 0 || v.length > USER_ID_MAX || /[\u0000-\u001f\u007f]/.test(v)) throw fail(reason, `${reason}: unusable value`);
  return v;
}

/**
 * OAuth 2.0 logins (S-14 … S-17): the suite's `works` profile, and standard OpenID Connect through
 * openid-client (discovery, code + PKCE S256 + state + nonce, ID token validation, RFC 9207 `iss`).
 */
export class OAuthLogin {
  private readonly discovered = new Map<string, { metadata: oidc.ServerMetadata; at: number; jwks?: oidc.ExportedJWKSCache }>();

  constructor(private readonly deps: OAuthLoginDeps) {}

  callbackUrl(domain: string): string {
    return `${this.deps.publicUrl}/oauth/callback/${domain}`;
  }

  static settings(tenant: Tenant): OAuthSettings {
    const oauth = tenant.sso.oauth;
    const missing = (what: string): AppError => new AppError('sso_misconfigured', { detail: `tenant ${tenant.domain}: OAuth ${what} missing` });
    if (!oauth) throw missing('settings');
    if (oauth.profile === 'works') {
      if (!tenant.sso.webLoginUrl) throw missing('webLoginUrl');
      if (!oauth.tokenUrl) throw missing('tokenUrl');
      if (!oauth.userInfoUrl) throw missing('userInfoUrl');
    } else if (!oauth.issuer) throw missing('issuer');
    return oauth;
  }

  private newTransaction(tenant: Tenant, input: OAuthStart, oidcChecks: { codeVerifier?: string; nonce?: string } = {}): Promise<LoginTransaction> {
    return this.deps.transactions.create(
      tenant,
      {
        ssoType: 'oauth',
        target: input.target,
        clientKind: input.clientKind,
        sessionKey: input.sessionKey,
        ...(input.testSignInId ? { testSignInId: input.testSignInId } : {}),
        ...oidcChecks,
      },
      input.browserBinding,
    );
  }

  /** S-14 / S-16: creates the login transaction and returns the IdP URL to send the browser to. */
  async start(tenant: Tenant, input: OAuthStart): Promise<string> {
    const oauth = OAuthLogin.settings(tenant);
    if (oauth.profile === 'works') {
      const txn = await this.newTransaction(tenant, input);
      const loginUrl = input.clientKind === 'app' ? (tenant.sso.appLoginUrl ?? tenant.sso.webLoginUrl!) : tenant.sso.webLoginUrl!;
      const url = new URL(loginUrl);
      // The state travels inside redirect_uri (the profile has no state parameter of its own).
      const redirectUri = `${this.callbackUrl(tenant.domain)}?${new URLSearchParams({ state: txn.id }).toString()}`;
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', oauth.clientId);
      url.searchParams.set('redirect_uri', redirectUri);
      if (input.worksId) url.searchParams.set('worksId', input.worksId);
      if (input.clientKind === 'app') {
        url.searchParams.set('userAgent', APP_USER_AGENT);
        url.searchParams.set('sessionKey', input.sessionKey!);
      }
      return url.href;
    }
    const config = await this.oidcConfig(oauth);
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const nonce = oidc.randomNonce();
    const txn = await this.newTransaction(tenant, input, { codeVerifier, nonce });
    const params: Record<string, string> = {
      redirect_uri: this.callbackUrl(tenant.domain),
      scope: [...new Set(['openid', ...oauth.scopes])].join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: txn.id,
      nonce,
    };
    if (input.worksId) params.login_hint = input.worksId;
    // S-18: as in the works profile, an app login carries the marker and the sessionKey the IdP may check
    // (extra authorization parameters, which an OP that does not know them ignores: OIDC Core 3.1.2.1).
    if (input.clientKind === 'app' && input.sessionKey) {
      params.userAgent = APP_USER_AGENT;
      params.sessionKey = input.sessionKey;
    }
    return oidc.buildAuthorizationUrl(config, params).href;
  }

  /**
   * S-17: the IdP's answer at /oauth/callback/{domain}. `state` must name a live transaction of this
   * tenant started by this browser (`browserBinding`: the request's login binding cookie), consumed
   * (single use); `error=` is a failed login; then the profile's exchange.
   */
  async finish(tenant: Tenant, query: Record<string, unknown>, rawQuery: string, browserBinding: string | undefined): Promise<OAuthResult> {
    const oauth = OAuthLogin.settings(tenant);
    if (typeof query.state !== 'string' || query.state === '') throw new AppError('login_transaction_invalid', { reason: 'state_missing' });
    const txn = await this.deps.transactions.consume(tenant, query.state, browserBinding);
    let userKey: string | undefined;
    try {
      if (txn.ssoType !== 'oauth') throw new AppError('login_transaction_invalid', { reason: 'transaction_not_oauth' });
      if (query.error !== undefined) {
        const code = typeof query.error === 'string' && PRINTABLE.test(query.error) ? query.error.slice(0, 64) : 'malformed';
        throw fail('idp_error', `idp_error: ${code}`);
      }
      const answer = oauth.profile === 'works' ? await this.finishWorks(oauth, query) : await this.finishOidc(tenant.domain, oauth, txn, rawQuery);
      userKey = answer.userKey;
      const member = await mapAssertedIdentity(tenant, userKey, this.deps.members);
      return {
        tenant,
        member,
        userKey,
        transaction: txn,
        idpExpiresAt: answer.expiresIn === undefined ? undefined : this.deps.clock.now() + answer.expiresIn * 1000,
      };
    } catch (err) {
      // A test sign-in's refusal is its outcome (the callback records it): say which test, and what the IdP asserted.
      if (err instanceof AppError && txn.testSignInId) err.testSignIn = { id: txn.testSignInId, ...(userKey !== undefined ? { assertedId: userKey } : {}) };
      throw err;
    }
  }

  // S-15: token exchange and user info, form POSTs with the client secret in the body.
  private async finishWorks(oauth: OAuthSettings, query: Record<string, unknown>): Promise<{ userKey: string; expiresIn?: number }> {
    const code = query.code;
    if (typeof code !== 'string' || code.length === 0 || code.length > 4096 || !PRINTABLE.test(code)) throw fail('code_missing');
    let token;
    try {
      token = await this.deps.http.postForm(oauth.tokenUrl!, {
        grant_type: 'authorization_code',
        client_id: oauth.clientId,
        client_secret: oauth.clientSecret,
        code,
      });
    } catch (err) {
      if (err instanceof OutboundError) throw outboundFailure('token', err);
      throw err;
    }
    if (!isObject(token.body)) throw fail('token_http_error', `token endpoint answered ${token.status} with a non-object`);
    if (token.body.error !== undefined) throw fail('token_error', `token endpoint error ${errorCode(token.body.error)}`);
    if (token.status < 200 || token.status >= 300) throw fail('token_http_error', `token endpoint answered ${token.status}`);
    const accessToken = token.body.access_token;
    if (typeof accessToken !== 'string' || accessToken.length === 0) throw fail('token_access_token_missing');
    // The access token is presented to userInfoUrl as a bearer token: any other type (or none) is refused (RFC 6749 5.1, case-insensitive).
    const tokenType = token.body.token_type;
    if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') {
      throw fail('token_type_not_bearer', `token endpoint answered token_type ${typeof tokenType === 'string' ? errorCode(tokenType) : typeof tokenType}`);
    }
    const expiresIn = parseExpiresIn(token.body.expires_in);

    let info;
    try {
      info = await this.deps.http.postForm(oauth.userInfoUrl!, {
        client_id: oauth.clientId,
        client_secret: oauth.clientSecret,
        access_token: accessToken,
      });
    } catch (err) {
      if (err instanceof OutboundError) throw outboundFailure('userinfo', err);
      throw err;
    }
    if (!isObject(info.body)) throw fail('userinfo_http_error', `user info answered ${info.status} with a non-object`);
    if (info.body.error !== undefined) {
      const code = errorCode(info.body.error);
      throw fail(USERINFO_ERRORS[code] ?? 'userinfo_error', `user info error ${code}`);
    }
    if (info.status < 200 || info.status >= 300) throw fail('userinfo_http_error', `user info answered ${info.status}`);
    return { userKey: checkUserKey(info.body.user_id, 'userinfo_user_id_missing'), expiresIn };
  }

  // S-16: openid-client validates state, iss (RFC 9207), PKCE, and the ID token (iss, aud, exp, nonce, signature, iat present); iat's upper bound is ours.
  private async finishOidc(domain: string, oauth: OAuthSettings, txn: LoginTransaction, rawQuery: string): Promise<{ userKey: string; expiresIn?: number }> {
    const config = await this.oidcConfig(oauth);
    const currentUrl = new URL(`${this.callbackUrl(domain)}?${rawQuery}`);
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: txn.codeVerifier,
        expectedState: txn.id,
        expectedNonce: txn.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw this.oidcFailure(err);
    }
    const jwks = oidc.getJwksCache(config);
    const entry = this.discovered.get(oauth.issuer!);
    if (jwks && entry) entry.jwks = jwks;
    const claims = tokens.claims();
    if (!claims) throw fail('oidc_id_token_invalid', 'no ID token');
    // openid-client requires a numeric iat but sets it no upper bound: a token "issued" in the future is
    // refused beyond the clock skew the SAML checks allow, by the injected clock.
    const latestIatMs = this.deps.clock.now() + this.deps.clockSkewMs;
    if (claims.iat * 1000 > latestIatMs) {
      throw fail('oidc_id_token_issued_in_future', `iat ${claims.iat} is after ${Math.floor(latestIatMs / 1000)} (now + ${this.deps.clockSkewMs / 1000} s skew)`);
    }
    let userKey = claims[oauth.userKeyClaim];
    // OIDC Core 5.4: claims asked for by scope (email, profile …) may come only from the UserInfo
    // endpoint when an access token is issued. Ask it, for the subject of this ID token.
    if (userKey === undefined && config.serverMetadata().userinfo_endpoint !== undefined) {
      userKey = (await this.oidcUserInfo(config, tokens.access_token, claims.sub))[oauth.userKeyClaim];
    }
    return { userKey: checkUserKey(userKey, 'oidc_user_key_missing'), expiresIn: parseExpiresIn(tokens.expires_in) };
  }

  /** The UserInfo claims (openid-client: Bearer access token; the answer's `sub` must be the ID token's). */
  private async oidcUserInfo(config: oidc.Configuration, accessToken: string, subject: string): Promise<oidc.UserInfoResponse> {
    try {
      return await oidc.fetchUserInfo(config, accessToken, subject);
    } catch (err) {
      const cause = err instanceof OutboundError ? err : (err as { cause?: unknown }).cause;
      if (cause instanceof OutboundError) throw outboundFailure('userinfo', cause);
      // oauth4webapi's JSON_ATTRIBUTE_COMPARISON: the only attribute a UserInfo answer is compared on is `sub`.
      if ((err as { code?: string }).code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') {
        throw fail('oidc_userinfo_subject_mismatch', 'the UserInfo response names another subject than the ID token');
      }
      const message = err instanceof Error ? err.message : String(err);
      throw fail('oidc_userinfo_invalid', `${(err as { code?: string }).code ?? 'unknown'}: ${message}`.slice(0, 300));
    }
  }

  private oidcFailure(err: unknown): AppError {
    if (err instanceof OutboundError) return outboundFailure('oidc', err);
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof OutboundError) return outboundFailure('oidc', cause);
    if (err instanceof oidc.AuthorizationResponseError) return fail('idp_error', `idp_error: ${err.error}`);
    if (err instanceof oidc.ResponseBodyError) return fail('token_error', `token endpoint error ${err.error}`);
    const code = (err as { code?: string }).code ?? 'unknown';
    // openid-client wraps the specific reason (bad alg, missing nonce …) in a generic message; read both.
    const inner = cause instanceof Error ? cause.message : '';
    const message = [err instanceof Error ? err.message : String(err), inner].filter(Boolean).join(': ');
    const idToken = /id_token|JWT|"(iss|aud|exp|nonce|iat)" claim|signature|alg/i.test(message);
    return fail(idToken ? 'oidc_id_token_invalid' : 'oidc_response_invalid', `${code}: ${message}`.slice(0, 300));
  }

  private async oidcConfig(oauth: OAuthSettings): Promise<oidc.Configuration> {
    const issuer = oauth.issuer!;
    const ttl = this.deps.discoveryTtlMs ?? 3600_000;
    let entry = this.discovered.get(issuer);
    if (!entry || Date.now() - entry.at > ttl) {
      try {
        const found = await oidc.discovery(new URL(issuer), oauth.clientId, undefined, undefined, {
          [oidc.customFetch]: this.deps.http.fetch,
          execute: this.deps.allowHttp ? [oidc.allowInsecureRequests] : [],
          timeout: 5,
        });
        entry = { metadata: found.serverMetadata(), at: Date.now() };
        this.discovered.set(issuer, entry);
      } catch (err) {
        const cause = err instanceof OutboundError ? err : (err as { cause?: unknown }).cause;
        if (cause instanceof OutboundError) throw outboundFailure('oidc', cause);
        throw fail('oidc_discovery_failed', err instanceof Error ? err.message.slice(0, 300) : 'discovery failed');
      }
    }
    const config = new oidc.Configuration(
      entry.metadata,
      oauth.clientId,
      {
        client_secret: oauth.clientSecret,
        // The injected clock drives ID token exp/iat checks.
        [oidc.clockSkew]: Math.round((this.deps.clock.now() - Date.now()) / 1000),
      },
      oidc.ClientSecretPost(oauth.clientSecret),
    );
    config[oidc.customFetch] = this.deps.http.fetch;
    if (this.deps.allowHttp) oidc.allowInsecureRequests(config);
    // S-16: verify the ID token's signature against the IdP's JWKS. openid-client skips this by default
    // for code-flow tokens (TLS to the token endpoint); we do not rely on that. The JWKS is cached with
    // the discovery document and refreshed by openid-client when an unknown kid appears.
    oidc.enableNonRepudiationChecks(config);
    if (entry.jwks) oidc.setJwksCache(config, entry.jwks);
    return config;
  }
}
