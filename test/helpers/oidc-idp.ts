import { createHash, createHmac, generateKeyPairSync, randomBytes, sign as rsaSign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Provider, type InteractionResults } from 'oidc-provider';
import { PUBLIC_URL } from './gateway.js';

/**
 * Customer IdPs for the OIDC profile (S-16, S-17):
 * - `startOidcIdp`: a REAL OpenID Provider (oidc-provider v9) on a loopback port, with headless
 *   interactions: each authorization logs in the account the test chose and grants `openid`.
 * - `startFakeOidcIdp`: a tiny hand-written IdP whose token endpoint returns whatever ID token the test
 *   crafts (wrong iss / aud / nonce, expired, `alg: none`, HS256 key confusion, a foreign key…).
 */

export const BRIDGE_CLIENT_ID = 'bridge-oidc';
export const BRIDGE_CLIENT_SECRET = 'bridge-oidc-secret-0123456789abcdef';
export const OTHER_CLIENT_ID = 'other-client';
export const OTHER_CLIENT_SECRET = 'other-client-secret-0123456789abcdef';
export const OTHER_REDIRECT_URI = 'https://other-rp.example/cb';

export const callbackUrlOf = (domain: string): string => `${PUBLIC_URL}/oauth/callback/${domain}`;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function rsaKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

// ---------------------------------------------------------------------------------------------------
// The real OpenID Provider

/** What the next interaction does: log in an account, or answer with an OAuth error. */
export type LoginOutcome = string | { error: string; error_description?: string };

export interface OidcIdp {
  issuer: string;
  provider: Provider;
  /** TCP connections the IdP has accepted (the SSRF tests check that a refused call opened none). */
  connections(): number;
  /** The account (or error) the next authorization ends with; afterwards `emp-200` again. */
  nextLogin(outcome: LoginOutcome): void;
  close(): Promise<void>;
}

export interface OidcIdpOptions {
  /** Extra redirect URIs for the gateway's client (e.g. a second tenant's callback). */
  extraRedirectUris?: string[];
  /** The `sub` the UserInfo endpoint answers with for an account (default: the account's own; a broken OP answers another). */
  userinfoSub?: (accountId: string) => string;
}

export async function startOidcIdp(options: OidcIdpOptions = {}): Promise<OidcIdp> {
  const server = createServer();
  let connections = 0;
  server.on('connection', () => connections++);
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const signingKey = { ...rsaKeyPair().privateKey.export({ format: 'jwk' }), kid: 'idp-sig-1', use: 'sig', alg: 'RS256' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: BRIDGE_CLIENT_ID,
        client_secret: BRIDGE_CLIENT_SECRET,
        redirect_uris: [callbackUrlOf('oidc.example'), ...(options.extraRedirectUris ?? [])],
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
      {
        client_id: OTHER_CLIENT_ID,
        client_secret: OTHER_CLIENT_SECRET,
        redirect_uris: [OTHER_REDIRECT_URI],
        token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['authorization_code'],
        response_types: ['code'],
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // PKCE is optional here (as at many IdPs for confidential clients), so the tests can mint codes
    // without it and show the gateway cannot redeem them. v9 knows only S256.
    pkce: { required: () => false },
    features: { devInteractions: { enabled: false } },
    // RFC 9207: v9 always adds `iss` to authorization responses and advertises
    // `authorization_response_iss_parameter_supported: true`; there is no switch for it.
    conformIdTokenClaims: true,
    clientBasedCORS: () => false,
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // The `email` scope releases `email`; with conformIdTokenClaims (OIDC Core 5.4) only from UserInfo when an access token is issued.
    claims: { openid: ['sub'], email: ['email'] },
    findAccount: (_ctx: unknown, sub: string, token?: { kind?: string }) => {
      // oidc-provider answers UserInfo with the `sub` of the account found for the access token.
      const accountId = token?.kind === 'AccessToken' && options.userinfoSub ? options.userinfoSub(sub) : sub;
      return { accountId, claims: () => ({ sub: accountId, email: `${sub}@idp.example` }) };
    },
    renderError: (ctx: { type: string; body: string; status: number }, out: Record<string, unknown>) => {
      ctx.type = 'json';
      ctx.body = JSON.stringify(out);
    },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 600, Grant: 600 },
  });

  let next: LoginOutcome | undefined;
  const callback = provider.callback();

  const interaction = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const details = await provider.interactionDetails(req, res);
    const outcome = next ?? 'emp-200';
    next = undefined;
    if (typeof outcome !== 'string') {
      await provider.interactionFinished(req, res, { ...outcome }, { mergeWithLastSubmission: false });
      return;
    }
    const accountId = details.prompt.name === 'login' ? outcome : (details.session?.accountId ?? outcome);
    const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
    // The scopes the client asked for (openid, and email when a tenant asks for it).
    grant.addOIDCScope(typeof details.params.scope === 'string' ? details.params.scope : 'openid');
    const grantId = await grant.save();
    const result: InteractionResults = { consent: { grantId } };
    if (details.prompt.name === 'login') result.login = { accountId };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'GET' && /^\/interaction\/[\w-]+$/.test((req.url ?? '').split('?')[0]!)) {
      interaction(req, res).catch((err: unknown) => {
        res.statusCode = 400;
        res.end(`interaction failed: ${err instanceof Error ? err.message : String(err)}`);
      });
      return;
    }
    callback(req, res);
  });

  return {
    issuer,
    provider,
    connections: () => connections,
    nextLogin: (outcome) => {
      next = outcome;
    },
    close: () => stop(server),
  };
}

/**
 * Plays the browser between the IdP's authorization endpoint and the relying party: follows the
 * IdP's redirects (carrying its cookies) until a Location leaves the IdP's origin, and returns that
 * URL (the gateway's callback with code, state and iss, or another client's redirect URI).
 */
export async function followAuthorization(authorizationUrl: string | URL, maxHops = 10): Promise<URL> {
  let url = new URL(authorizationUrl);
  const origin = url.origin;
  const jar = new Map<string, string>();
  for (let hop = 0; hop < maxHops; hop++) {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now()));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) {
      throw new Error(`IdP answered ${res.status} at ${url.pathname}: ${(await res.text()).slice(0, 300)}`);
    }
    await res.body?.cancel();
    url = new URL(location, url);
    if (url.origin !== origin) return url;
  }
  throw new Error(`more than ${maxHops} redirects at the IdP`);
}

/** A PKCE pair for authorizations the tests send to the IdP directly. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

// ---------------------------------------------------------------------------------------------------
// The fake IdP that hands out crafted ID tokens

export type JwtAlg = 'RS256' | 'HS256' | 'none';

export interface SignOptions {
  alg?: JwtAlg;
  /** RS256: the private key (default: the one in the JWKS). HS256: the HMAC secret. */
  key?: KeyObject | Buffer | string;
  /** Default: the published key's kid (omitted for `none`). */
  kid?: string | null;
}

export interface TokenRequest {
  headers: IncomingMessage['headers'];
  form: URLSearchParams;
}

export interface FakeOidcIdp {
  issuer: string;
  kid: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Every form the token endpoint received. */
  tokenRequests: TokenRequest[];
  /** TCP connections the IdP has accepted. */
  connections(): number;
  /** The ID token the next token response carries (the endpoint answers invalid_grant otherwise). */
  nextIdToken(make: (request: TokenRequest) => string): void;
  /** Valid claims for this IdP and the gateway's client; `nowMs` is the gateway's notion of now. */
  claims(nonce: string, nowMs: number, overrides?: Record<string, unknown>): Record<string, unknown>;
  sign(claims: Record<string, unknown>, options?: SignOptions): string;
  close(): Promise<void>;
}

export interface FakeOidcIdpOptions {
  /** `id_token_signing_alg_values_supported` in the metadata (default ['RS256']). */
  idTokenAlgs?: string[];
  clientId?: string;
  /** `token_endpoint` / `jwks_uri` in the metadata, when not this IdP's own (the SSRF tests point them elsewhere). */
  tokenEndpoint?: string;
  jwksUri?: string;
}

export async function startFakeOidcIdp(options: FakeOidcIdpOptions = {}): Promise<FakeOidcIdp> {
  const server = createServer();
  let connections = 0;
  server.on('connection', () => connections++);
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey, publicKey } = rsaKeyPair();
  const kid = 'fake-sig-1';
  const clientId = options.clientId ?? BRIDGE_CLIENT_ID;
  const tokenRequests: TokenRequest[] = [];
  let next: ((request: TokenRequest) => string) | undefined;

  const metadata = {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: options.tokenEndpoint ?? `${issuer}/token`,
    jwks_uri: options.jwksUri ?? `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: options.idTokenAlgs ?? ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
  };
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/.well-known/openid-configuration') return json(res, 200, metadata);
    if (req.method === 'GET' && path === '/jwks') {
      return json(res, 200, { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] });
    }
    if (req.method === 'POST' && path === '/token') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const request = { headers: req.headers, form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')) };
        tokenRequests.push(request);
        const make = next;
        next = undefined;
        if (!make) return json(res, 400, { error: 'invalid_grant' });
        json(res, 200, { access_token: randomBytes(16).toString('hex'), token_type: 'Bearer', expires_in: 600, id_token: make(request) });
      });
      return;
    }
    json(res, 404, { error: 'not_found' });
  });

  const sign = (claims: Record<string, unknown>, o: SignOptions = {}): string => {
    const alg = o.alg ?? 'RS256';
    const header: Record<string, unknown> = { alg, typ: 'JWT' };
    const headerKid = o.kid === undefined ? (alg === 'none' ? null : kid) : o.kid;
    if (headerKid !== null) header.kid = headerKid;
    const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    let signature = '';
    if (alg === 'RS256') signature = rsaSign('sha256', Buffer.from(input), (o.key as KeyObject | undefined) ?? privateKey).toString('base64url');
    else if (alg === 'HS256') signature = createHmac('sha256', o.key as Buffer | string).update(input).digest('base64url');
    return `${input}.${signature}`;
  };

  return {
    issuer,
    kid,
    privateKey,
    publicKey,
    tokenRequests,
    connections: () => connections,
    nextIdToken: (make) => {
      next = make;
    },
    claims: (nonce, nowMs, overrides = {}) => {
      const now = Math.floor(nowMs / 1000);
      return { iss: issuer, sub: 'emp-200', aud: clientId, iat: now, exp: now + 600, nonce, ...overrides };
    },
    sign,
    close: () => stop(server),
  };
}

/** A fresh RSA key registered nowhere (an attacker's). */
export const foreignRsaKey = (): KeyObject => rsaKeyPair().privateKey;
