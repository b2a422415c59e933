import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { createApp, type CreatedApp } from '../../../src/app.js';
import { loadConfig } from '../../../src/config/index.js';
import { createLogger } from '../../../src/observability/logger.js';
import { FakeClock } from '../../helpers/clock.js';
import { seedStandardTenants, signed, b64, responseSpec, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { createTestRedisStore, freePort } from '../../helpers/redis.js';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { inflateRawSync } from 'node:zlib';

const MOBILE_REDIRECT = 'idpbridge.mobile:/oauth2redirect';
const WEB_REDIRECT = 'https://board.example.net/oidc/callback';
const WEB_SECRET = 'web-service-secret-0123456789abcdef';
const OPERATOR = 'Bearer DEV-ONLY-admin-api-key-change-me-000000000000000';

/** A browser: follows redirects by hand, keeps cookies by name, stops at a URL outside the gateway. */
class Browser {
  private readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}
  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: this.cookieHeader() } });
    this.keep(res);
    return res;
  }
  /** Follows redirects while they stay on the gateway; returns the first outside URL (or the last response). */
  async follow(url: string, init: RequestInit = {}): Promise<{ url: string; res: Response }> {
    let res = await this.request(url, init);
    let current = url;
    for (let i = 0; i < 20 && res.status >= 300 && res.status < 400; i++) {
      current = new URL(res.headers.get('location')!, current).href;
      if (!current.startsWith(this.base)) return { url: current, res };
      res = await this.request(current);
    }
    return { url: current, res };
  }
}

/** O-1 … O-4 driven by openid-client playing the mobile app and a web service. */
describe('the bridge as OpenID Provider', () => {
  let created: CreatedApp;
  let gw: Pick<Gateway, 'clock'> & { services: CreatedApp['services'] };
  let server: Server;
  let base: string;
  let cleanup: () => Promise<void>;
  let mobile: client.Configuration;
  let web: client.Configuration;

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const owned = await createTestRedisStore();
    cleanup = owned.cleanup;
    const { config } = loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: {
        publicUrl: base,
        serviceOrigins: ['https://board.example.net'],
        defaultServiceUrl: 'https://board.example.net/home',
        seedFile: undefined,
        demo: { enabled: false },
        oidc: {
          clients: [
            { client_id: 'mobile', redirect_uris: [MOBILE_REDIRECT], token_endpoint_auth_method: 'none', application_type: 'native', grant_types: ['authorization_code', 'refresh_token'] },
            { client_id: 'board', client_secret: WEB_SECRET, redirect_uris: [WEB_REDIRECT], token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code', 'refresh_token'] },
          ],
        },
      },
    });
    const clock = new FakeClock();
    created = createApp({ config, store: owned.store, logger: createLogger({ level: 'silent' }), clock });
    gw = { clock, services: created.services };
    await seedStandardTenants(created.services);
    server = createServer(created.app);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    const insecure = { execute: [client.allowInsecureRequests] };
    mobile = await client.discovery(new URL(`${base}/oidc`), 'mobile', { token_endpoint_auth_method: 'none' }, client.None(), insecure);
    web = await client.discovery(new URL(`${base}/oidc`), 'board', WEB_SECRET, client.ClientSecretBasic(WEB_SECRET), insecure);
  });
  after(async () => {
    server.close();
    await created.services.outbound.close();
    await cleanup();
  });

  /** Runs a full authorization: OP → interaction → tenant SAML IdP (a signed response we build) → back. */
  async function authorize(config: client.Configuration, redirectUri: string, params: Record<string, string>, browser = new Browser(base)) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...params,
    });
    let { url: out } = await browser.follow(url.href);
    if (out.startsWith(idps.a.ssoUrl)) {
      // The tenant's IdP: answer the AuthnRequest with a signed response for emp-001.
      const idpUrl = new URL(out);
      const xml = inflateRawSync(Buffer.from(idpUrl.searchParams.get('SAMLRequest')!, 'base64')).toString();
      const requestId = /\sID="([^"]+)"/.exec(xml)![1]!;
      const spec = { ...responseSpec(gw as unknown as Gateway, 'a.example', idps.a, requestId, 'emp-001'), destination: `${base}/acs/a.example`, recipient: `${base}/acs/a.example`, audience: `${base}/saml/metadata` };
      const response = b64(signed(buildSamlResponseXml(spec), idps.a));
      ({ url: out } = await browser.follow(`${base}/acs/a.example`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ SAMLResponse: response, RelayState: idpUrl.searchParams.get('RelayState')! }).toString(),
      }));
    }
    return { callback: new URL(out), verifier, state, browser };
  }

  it('publishes discovery with PKCE S256, introspection and revocation', () => {
    const meta = mobile.serverMetadata();
    assert.equal(meta.issuer, `${base}/oidc`);
    assert.ok(meta.code_challenge_methods_supported?.includes('S256'));
    assert.ok(meta.introspection_endpoint);
    assert.ok(meta.revocation_endpoint);
  });

  it('signs the mobile app in through the tenant IdP (domain=), with PKCE, and tokens carry sub, domain, account', async () => {
    const { callback, verifier, state } = await authorize(mobile, MOBILE_REDIRECT, { domain: 'a.example' });
    assert.ok(callback.href.startsWith(MOBILE_REDIRECT), callback.href);
    const tokens = await client.authorizationCodeGrant(mobile, callback, { pkceCodeVerifier: verifier, expectedState: state });
    const claims = tokens.claims()!;
    assert.equal(claims.sub, 'a.example:m-a-active');
    assert.equal(claims.domain, 'a.example');
    assert.equal(claims.account, 'active@a.example');
    assert.ok(tokens.refresh_token, 'the mobile app gets a refresh token');
    assert.ok((tokens.expires_in ?? 0) <= 600, 'mobile access tokens live at most 10 minutes (M-4)');

    // Refresh rotates the refresh token; the old one no longer works.
    const refreshed = await client.refreshTokenGrant(mobile, tokens.refresh_token);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    await assert.rejects(client.refreshTokenGrant(mobile, tokens.refresh_token));
  });

  it('refuses a mobile authorization request without PKCE', async () => {
    const url = client.buildAuthorizationUrl(mobile, { redirect_uri: MOBILE_REDIRECT, scope: 'openid', state: 's', domain: 'a.example' });
    const { url: out } = await new Browser(base).follow(url.href);
    const back = new URL(out);
    assert.ok(out.startsWith(MOBILE_REDIRECT), out);
    assert.equal(back.searchParams.get('error'), 'invalid_request');
  });

  it('reuses a live bridge session (login_hint) without a new IdP round trip, and introspects and revokes for a web service', async () => {
    const first = await authorize(web, WEB_REDIRECT, { login_hint: 'active@a.example' });
    assert.ok(first.callback.href.startsWith(WEB_REDIRECT));
    // A second authorization in the same browser: no IdP hop (the bridge session is reused).
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(web, { redirect_uri: WEB_REDIRECT, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state: 'x', login_hint: 'active@a.example', prompt: 'login' });
    const { url: out } = await first.browser.follow(url.href);
    assert.ok(out.startsWith(WEB_REDIRECT), `expected straight back to the service, got ${out}`);
    const tokens = await client.authorizationCodeGrant(web, new URL(out), { pkceCodeVerifier: verifier, expectedState: 'x' });

    const info = await client.tokenIntrospection(web, tokens.access_token);
    assert.equal(info.active, true);
    assert.equal(info.sub, 'a.example:m-a-active');
    assert.equal(info.domain, 'a.example');
    assert.equal(info.account, 'active@a.example');
    await client.tokenRevocation(web, tokens.access_token);
    assert.equal((await client.tokenIntrospection(web, tokens.access_token)).active, false);
  });

  it('O-4: switching SSO off revokes every token and grant of the tenant', async () => {
    const { callback, verifier, state } = await authorize(mobile, MOBILE_REDIRECT, { domain: 'a.example' });
    const tokens = await client.authorizationCodeGrant(mobile, callback, { pkceCodeVerifier: verifier, expectedState: state });
    assert.equal((await client.tokenIntrospection(web, tokens.access_token)).active, true);
    const res = await fetch(`${base}/admin/v1/domains/a.example/sso`, {
      method: 'PUT',
      headers: { authorization: OPERATOR, 'content-type': 'application/json' },
      body: JSON.stringify({ enabled: false }),
    });
    const body = (await res.json()) as { effects: { sessionsEnded: number } };
    assert.equal(res.status, 200);
    assert.ok(body.effects.sessionsEnded >= 1);
    assert.equal((await client.tokenIntrospection(web, tokens.access_token)).active, false, 'the access token is revoked');
    await assert.rejects(client.refreshTokenGrant(mobile, tokens.refresh_token!), 'the refresh token is revoked');
  });
});
