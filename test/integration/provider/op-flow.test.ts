import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { createApp, type CreatedApp } from '../../../src/app.js';
import { loadConfig } from '../../../src/config/index.js';
import { FakeClock } from '../../helpers/clock.js';
import { capturedLogger, seedStandardTenants, signed, b64, responseSpec, type Gateway, OPERATOR_AUTH as OPERATOR } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { createTestRedisStore, freePort } from '../../helpers/redis.js';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { inflateRawSync } from 'node:zlib';

const MOBILE_REDIRECT = 'idpbridge.mobile:/oauth2redirect';
const WEB_REDIRECT = 'https://board.example.net/oidc/callback';
const WEB_SECRET = 'web-service-secret-0123456789abcdef';

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
  const logs = capturedLogger('debug');
  /** Every MDM key value seen in this suite: none may reach a log line. */
  const mdmValues: string[] = [];

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
    created = createApp({ config, store: owned.store, logger: logs.logger, clock });
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

  /** The tenant SAML IdP's answer (a signed response for emp-001) to the AuthnRequest in `idpUrl`, as the form body it posts to the ACS. */
  function samlAnswer(idpUrl: URL, domain: string): string {
    const xml = inflateRawSync(Buffer.from(idpUrl.searchParams.get('SAMLRequest')!, 'base64')).toString();
    const requestId = /\sID="([^"]+)"/.exec(xml)![1]!;
    const spec = { ...responseSpec(gw as unknown as Gateway, domain, idps.a, requestId, 'emp-001'), destination: `${base}/acs/${domain}`, recipient: `${base}/acs/${domain}`, audience: `${base}/saml/metadata` };
    const response = b64(signed(buildSamlResponseXml(spec), idps.a));
    return new URLSearchParams({ SAMLResponse: response, RelayState: idpUrl.searchParams.get('RelayState')! }).toString();
  }

  /** Runs a full authorization: OP → interaction → tenant SAML IdP (a signed response we build for emp-001 of the tenant named by domain=) → back. */
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
      const domain = params.domain ?? 'a.example';
      ({ url: out } = await browser.follow(`${base}/acs/${domain}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: samlAnswer(new URL(out), domain),
      }));
    }
    return { callback: new URL(out), verifier, state, browser };
  }

  const tokenRequest = async (form: Record<string, string>, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/oidc/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const mobileCodeOf = async (domain: string) => {
    const { callback, verifier } = await authorize(mobile, MOBILE_REDIRECT, { domain });
    return { code: callback.searchParams.get('code')!, verifier };
  };
  const exchange = (c: { code: string; verifier: string }, headers: Record<string, string> = {}) =>
    tokenRequest({ grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, redirect_uri: MOBILE_REDIRECT, client_id: 'mobile' }, headers);
  const refresh = (refreshToken: unknown, headers: Record<string, string> = {}) => tokenRequest({ grant_type: 'refresh_token', refresh_token: String(refreshToken), client_id: 'mobile' }, headers);
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/admin/v1${path}`, { method, headers: { authorization: OPERATOR, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  const putMdm = (domain: string, body: Record<string, unknown>) => admin('PUT', `/domains/${domain}/mdm`, body);
  const remember = (value: string): string => {
    mdmValues.push(value);
    return value;
  };

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
    // S-10: the app session lasts appTtlSeconds (30 days), not as long as the OP's browser session (24 h).
    const stored = await gw.services.provider.RefreshToken.find(tokens.refresh_token);
    assert.ok(stored && stored.exp! - stored.iat! >= 30 * 86400 - 60, `refresh token lifetime ${stored ? stored.exp! - stored.iat! : 'none'} s`);
    assert.notEqual(stored.expiresWithSession, true, 'the refresh token does not end with the OP browser session');

    // Refresh rotates the refresh token; the old one no longer works.
    const refreshed = await client.refreshTokenGrant(mobile, tokens.refresh_token);
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
    await assert.rejects(client.refreshTokenGrant(mobile, tokens.refresh_token));
  });

  it('binds the interaction\'s IdP login to the browser: its answer posted from another browser is refused (login_not_bound)', async () => {
    const url = client.buildAuthorizationUrl(web, { redirect_uri: WEB_REDIRECT, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256', state: 'swap', domain: 'a.example' });
    const started = new Browser(base);
    const { url: out } = await started.follow(url.href);
    assert.ok(out.startsWith(idps.a.ssoUrl), out);
    const other = new Browser(base);
    const res = await other.request(`${base}/acs/a.example`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: samlAnswer(new URL(out), 'a.example') });
    assert.equal(res.status, 403);
    const page = await res.text();
    assert.match(page, /<meta name="idpb-error-code" content="login_not_bound">/);
    assert.ok(!res.headers.getSetCookie().some((c) => c.startsWith('idpb_session=')), 'no session');
    assert.equal((await created.services.audit.list('a.example', 1))[0]?.reason, 'binding_cookie_missing');
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

  it('M-4: enabling 3rd-party MDM sync ends the existing mobile sessions of the tenant at once, and leaves web sessions alone', async () => {
    const mobileSession = await exchange(await mobileCodeOf('sha1.example'), { 'x-device-id': 'device-before-mdm' });
    assert.equal(mobileSession.status, 200, JSON.stringify(mobileSession.body));
    const { callback, verifier, state } = await authorize(web, WEB_REDIRECT, { domain: 'sha1.example' });
    const webTokens = await client.authorizationCodeGrant(web, callback, { pkceCodeVerifier: verifier, expectedState: state });
    const on = await putMdm('sha1.example', { mode: 'external' });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    remember(on.body.key.value);
    assert.equal((await client.tokenIntrospection(web, String(mobileSession.body.access_token))).active, false, 'the mobile session ended');
    assert.equal((await refresh(mobileSession.body.refresh_token, { 'x-mdm-auth-code': on.body.key.value, 'x-device-id': 'device-before-mdm' })).status, 400);
    assert.equal((await client.tokenIntrospection(web, webTokens.access_token)).active, true, 'web sessions are not MDM business');
    assert.equal((await putMdm('sha1.example', { mode: 'none' })).status, 200);
  });

  describe('mobile token requests under 3rd-party MDM sync (M-4, M-5)', () => {
    let mdmKey: string;
    const mobileCode = () => mobileCodeOf('a.example');

    before(async () => {
      const res = await putMdm('a.example', { mode: 'external' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      mdmKey = remember(res.body.key.value);
    });
    after(async () => {
      // M-9: switching MDM sync off stops the checks at once (the O-4 test below uses the mobile client bare).
      assert.equal((await putMdm('a.example', { mode: 'none' })).status, 200);
    });

    it('refuses a code exchange without the MDM headers (invalid_grant, mdm_code_required) and ends that grant', async () => {
      const c = await mobileCode();
      const res = await exchange(c);
      assert.equal(res.status, 400);
      assert.equal(res.body.error, 'invalid_grant');
      assert.match(String(res.body.error_description), /^mdm_code_required/);
      const retry = await exchange(c, { 'x-mdm-auth-code': mdmKey, 'x-device-id': 'device-1' });
      assert.equal(retry.status, 400, 'the grant ended: the same code no longer works');
    });

    it('refuses a wrong code (mdm_code_mismatch)', async () => {
      const res = await exchange(await mobileCode(), { 'x-mdm-auth-code': 'not-the-key-0000000000', 'x-device-id': 'device-1' });
      assert.equal(res.status, 400);
      assert.match(String(res.body.error_description), /^mdm_code_mismatch/);
    });

    it('admits the right code; refresh needs it too; a refresh without it ends the device session; reissue ends old sessions', async () => {
      const headers = { 'x-mdm-auth-code': mdmKey, 'x-device-id': 'device-2' };
      const ok = await exchange(await mobileCode(), headers);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.ok(Number(ok.body.expires_in) <= 600);
      const refreshed = await tokenRequest({ grant_type: 'refresh_token', refresh_token: String(ok.body.refresh_token), client_id: 'mobile' }, headers);
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      const bare = await tokenRequest({ grant_type: 'refresh_token', refresh_token: String(refreshed.body.refresh_token), client_id: 'mobile' });
      assert.equal(bare.status, 400);
      assert.match(String(bare.body.error_description), /^mdm_code_required/);
      const after = await tokenRequest({ grant_type: 'refresh_token', refresh_token: String(refreshed.body.refresh_token), client_id: 'mobile' }, headers);
      assert.equal(after.status, 400, 'that device session ended');

      // A new session admitted by the current key, then a reissue without grace: it ends at once (M-4).
      const again = await exchange(await mobileCode(), { ...headers, 'x-device-id': 'device-3' });
      assert.equal(again.status, 200);
      const reissue = await fetch(`${base}/admin/v1/domains/a.example/mdm/keys:reissue`, { method: 'POST', headers: { authorization: OPERATOR, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(reissue.status, 201);
      const newKey = remember(((await reissue.json()) as { value: string }).value);
      const stale = await tokenRequest({ grant_type: 'refresh_token', refresh_token: String(again.body.refresh_token), client_id: 'mobile' }, { 'x-mdm-auth-code': newKey, 'x-device-id': 'device-3' });
      assert.equal(stale.status, 400, 'the session admitted by the replaced key ended');
      mdmKey = newKey;
    });

    it('M-6: a reissue with grace keeps the old code admitting on the token endpoint until the grace ends (injected clock)', async () => {
      const old = { 'x-mdm-auth-code': mdmKey, 'x-device-id': 'device-grace' };
      const session = await exchange(await mobileCode(), old);
      assert.equal(session.status, 200, JSON.stringify(session.body));
      const reissue = await admin('POST', '/domains/a.example/mdm/keys:reissue', { graceSeconds: 600 });
      assert.equal(reissue.status, 201, JSON.stringify(reissue.body));
      const fresh = { 'x-mdm-auth-code': remember(reissue.body.value), 'x-device-id': 'device-grace' };
      const inGrace = await refresh(session.body.refresh_token, old);
      assert.equal(inGrace.status, 200, 'the old code admits during the grace period');
      const withNew = await refresh(inGrace.body.refresh_token, fresh);
      assert.equal(withNew.status, 200, 'the MDM console may switch the device over at any time');
      gw.clock.advance(601_000);
      const late = await refresh(withNew.body.refresh_token, old);
      assert.equal(late.status, 400);
      assert.match(String(late.body.error_description), /^mdm_code_mismatch/, 'after the grace the old code fails');
      assert.equal((await exchange(await mobileCode(), fresh)).status, 200);
      mdmKey = fresh['x-mdm-auth-code'];
    });

    it('M-14: a key added with effectiveFrom in the future admits no login until the clock reaches it', async () => {
      const from = new Date(gw.clock.now() + 3600_000).toISOString();
      const added = await admin('POST', '/domains/a.example/mdm/keys', { effectiveFrom: from });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      const later = { 'x-mdm-auth-code': remember(added.body.value), 'x-device-id': 'device-later' };
      const early = await exchange(await mobileCode(), later);
      assert.equal(early.status, 400);
      assert.match(String(early.body.error_description), /^mdm_code_mismatch/);
      gw.clock.advance(3600_000 + 1000);
      assert.equal((await exchange(await mobileCode(), later)).status, 200, 'from effectiveFrom on it admits');
      assert.equal((await exchange(await mobileCode(), { ...later, 'x-mdm-auth-code': mdmKey })).status, 200, 'and the earlier key still does');
    });

    it('M-9: disabling MDM sync keeps the mobile sessions it admitted, and their refresh needs no code any more', async () => {
      const headers = { 'x-mdm-auth-code': mdmKey, 'x-device-id': 'device-off' };
      const session = await exchange(await mobileCode(), headers);
      assert.equal(session.status, 200);
      assert.equal((await putMdm('a.example', { mode: 'none' })).status, 200);
      const bare = await refresh(session.body.refresh_token);
      assert.equal(bare.status, 200, JSON.stringify(bare.body));
      // Back on (a new key): the session keeps going only with the new code.
      const on = await putMdm('a.example', { mode: 'external' });
      assert.equal(on.status, 200);
      mdmKey = remember(on.body.key.value);
      const stillBare = await refresh(bare.body.refresh_token);
      assert.equal(stillBare.status, 400);
    });

    it('M-12: rotation through the token endpoint — a second key is added, the old one revoked: its sessions end, the new key\'s go on', async () => {
      const old = { 'x-mdm-auth-code': mdmKey, 'x-device-id': 'device-rot-1' };
      const first = await exchange(await mobileCode(), old);
      assert.equal(first.status, 200);
      const before = (await admin('GET', '/domains/a.example/mdm/keys')).body.keys as Array<{ id: string; status: string }>;
      const oldId = before.find((k) => k.status === 'active')!.id;
      const added = await admin('POST', '/domains/a.example/mdm/keys', {});
      assert.equal(added.status, 201, JSON.stringify(added.body));
      const next = { 'x-mdm-auth-code': remember(added.body.value), 'x-device-id': 'device-rot-2' };
      const second = await exchange(await mobileCode(), next);
      assert.equal(second.status, 200, 'both keys admit during the rotation');
      const revoked = await admin('DELETE', `/domains/a.example/mdm/keys/${oldId}`);
      assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
      assert.ok(revoked.body.mobileSessionsEnded >= 1);
      assert.equal((await client.tokenIntrospection(web, String(first.body.access_token))).active, false, "the old key's session ended at once");
      assert.equal((await refresh(first.body.refresh_token, { ...old, 'x-mdm-auth-code': next['x-mdm-auth-code'] })).status, 400, 'even with the new code');
      assert.equal((await refresh(second.body.refresh_token, next)).status, 200, "the new key's session goes on");
      mdmKey = next['x-mdm-auth-code'];
    });

    it('leaves web clients alone', async () => {
      const { callback, verifier, state } = await authorize(web, WEB_REDIRECT, { domain: 'a.example' });
      const tokens = await client.authorizationCodeGrant(web, callback, { pkceCodeVerifier: verifier, expectedState: state });
      assert.ok(tokens.access_token);
    });
  });

  describe('M-7: restricting other-domain accounts, on a device with accounts of two groups', () => {
    // hq.example ← rollover.example, restricting; its group "grp-a" also holds unsolicited.example (no MDM).
    // sha1.example is in another group "grp-b" (no MDM). All log in through the same test IdP (emp-001).
    const A = 'rollover.example';
    const PEER = 'unsolicited.example';
    const OTHER = 'sha1.example';
    let keyA: string;
    const login = async (domain: string, headers: Record<string, string>) => exchange(await mobileCodeOf(domain), headers);
    const introspect = async (token: unknown) => (await client.tokenIntrospection(web, String(token))).active;

    before(async () => {
      for (const [domain, group] of [[A, 'grp-a'], [PEER, 'grp-a'], [OTHER, 'grp-b']] as const) {
        const tenant = (await gw.services.tenants.find(domain))!;
        await gw.services.tenants.save({ ...tenant, group });
      }
      const on = await putMdm(A, { mode: 'external' });
      assert.equal(on.status, 200, JSON.stringify(on.body));
      keyA = remember(on.body.key.value);
    });

    it('(c) with an A-group account logged in, an other-group session ends at its next refresh once the restriction is on', async () => {
      const device = { 'x-mdm-auth-code': keyA, 'x-device-id': 'shared-device-c' };
      assert.equal((await putMdm(A, { mode: 'external', restrictOtherDomains: false })).status, 200);
      const a = await login(A, device);
      const other = await login(OTHER, device);
      assert.deepEqual([a.status, other.status], [200, 200], 'no restriction yet: both accounts sign in on the device');
      const restrict = await putMdm(A, { mode: 'external', restrictOtherDomains: true });
      assert.equal(restrict.status, 200, JSON.stringify(restrict.body));
      assert.equal(await introspect(other.body.access_token), true, 'switching the restriction on ends nothing at once');

      const refused = await refresh(other.body.refresh_token, device);
      assert.equal(refused.status, 400);
      assert.match(String(refused.body.error_description), /^mdm_other_domain_restricted/);
      assert.equal(await introspect(other.body.access_token), false, 'the other-group session ended');
      assert.equal((await refresh(other.body.refresh_token, device)).status, 400);
      assert.equal((await refresh(a.body.refresh_token, device)).status, 200, "the A-group account's session goes on");
      const trail = await gw.services.audit.list(A, 20);
      assert.ok(trail.some((e) => e.type === 'mdm_check.other_domain_refused' && e.data?.kind === 'refresh'), "A's trail shows the refusal");
    });

    it('(a), (d), (b): other-group logins are refused; an existing other-group session stays until an account of the group (a group peer included) logs in, then ends at once', async () => {
      assert.equal((await putMdm(A, { mode: 'external', restrictOtherDomains: true })).status, 200);
      const deviceId = 'shared-device-abd';
      // Before the MDM pushed A's key to the device, an account of another group signed in on it.
      const other = await login(OTHER, { 'x-device-id': deviceId });
      assert.equal(other.status, 200, JSON.stringify(other.body));
      const managed = { 'x-mdm-auth-code': keyA, 'x-device-id': deviceId };

      // (a) a new login of an account outside A's group is refused on the managed device.
      const refused = await login(OTHER, managed);
      assert.equal(refused.status, 400);
      assert.match(String(refused.body.error_description), /^mdm_other_domain_restricted/);
      // (d) no A-group account is logged in: the existing other-group session stays, refresh after refresh.
      const stays = await refresh(other.body.refresh_token, managed);
      assert.equal(stays.status, 200, JSON.stringify(stays.body));
      const staysAgain = await refresh(stays.body.refresh_token, managed);
      assert.equal(staysAgain.status, 200);

      // (b) an account of A's group — here the group peer without MDM sync of its own — logs in: the
      // other-group session on this device ends at once, before its next refresh.
      const peer = await login(PEER, managed);
      assert.equal(peer.status, 200, JSON.stringify(peer.body));
      assert.equal(await introspect(staysAgain.body.access_token), false, 'ended at once');
      assert.equal((await refresh(staysAgain.body.refresh_token, managed)).status, 400);
      const ended = (await gw.services.audit.list(A, 20)).find((e) => e.type === 'mdm.other_domain_sessions_ended');
      assert.equal(ended?.data?.count, 1);
      assert.equal(ended?.data?.domains, OTHER);

      // A's own account logs in too: same group, so the peer's session is left alone.
      const a = await login(A, managed);
      assert.equal(a.status, 200);
      assert.equal(await introspect(peer.body.access_token), true, 'group peers are not ended');
      assert.equal((await refresh(peer.body.refresh_token, managed)).status, 200);
    });

    it('(d) on another device: an other-group session where no A-group account is logged in is untouched by A-group logins elsewhere', async () => {
      const other = await login(OTHER, { 'x-device-id': 'device-elsewhere' });
      assert.equal(other.status, 200);
      assert.equal((await login(A, { 'x-mdm-auth-code': keyA, 'x-device-id': 'device-a-only' })).status, 200);
      assert.equal(await introspect(other.body.access_token), true);
      assert.equal((await refresh(other.body.refresh_token, { 'x-device-id': 'device-elsewhere' })).status, 200);
    });
  });

  it('never writes an MDM code, an authorization code or a token to a log line', () => {
    const text = logs.text();
    assert.ok(text.length > 0 && mdmValues.length >= 5, `scanned ${text.length} characters for ${mdmValues.length} MDM codes`);
    for (const value of mdmValues) assert.ok(!text.includes(value), 'an MDM code reached the log');
    assert.doesNotMatch(text, /x-mdm-auth-code"\s*:\s*"[^[]/i, 'the MDM header is never logged');
    assert.doesNotMatch(text, /"(code|refresh_token|access_token|code_verifier)"\s*:\s*"[^[]/, 'no OAuth secret is logged');
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
