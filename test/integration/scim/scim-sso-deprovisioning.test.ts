import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import * as client from 'openid-client';
import { createApp, type CreatedApp } from '../../../src/app.js';
import { loadConfig } from '../../../src/config/index.js';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { FakeClock } from '../../helpers/clock.js';
import { b64, capturedLogger, responseSpec, seedStandardTenants, signed, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { createTestRedisStore, freePort } from '../../helpers/redis.js';
import { patchOp, USER_URN } from '../../helpers/scim.js';

const MOBILE_REDIRECT = 'idpbridge.mobile:/oauth2redirect';
type Tokens = Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
const DOMAIN = 'a.example';

/** A browser: follows redirects by hand, keeps cookies by name, stops at a URL outside the gateway. */
class Browser {
  readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const value = pair!.slice(eq + 1);
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') this.jar.delete(pair!.slice(0, eq));
      else this.jar.set(pair!.slice(0, eq), value);
    }
    return res;
  }
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

/**
 * The product rules of SCIM provisioning (docs/spec.md §14), end to end on a listening gateway: a user
 * provisioned with an externalId signs in by SAML with that key at once (through the OP, as the mobile
 * app does), and deprovisioning (active:false, DELETE) ends the web session and the OP tokens at once.
 */
describe('SCIM provisioning joined to SSO and sessions', () => {
  let created: CreatedApp;
  let server: Server;
  let base: string;
  let cleanup: () => Promise<void>;
  let mobile: client.Configuration;
  let token: string;
  const clock = new FakeClock();

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
        oidc: { clients: [{ client_id: 'mobile', redirect_uris: [MOBILE_REDIRECT], token_endpoint_auth_method: 'none', application_type: 'native', grant_types: ['authorization_code', 'refresh_token'] }] },
      },
    });
    created = createApp({ config, store: owned.store, logger: capturedLogger().logger, clock });
    await seedStandardTenants(created.services);
    server = createServer(created.app);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    mobile = await client.discovery(new URL(`${base}/oidc`), 'mobile', { token_endpoint_auth_method: 'none' }, client.None(), { execute: [client.allowInsecureRequests] });
    token = (await created.services.scimTokens.issue(DOMAIN, 'entra')).token;
  });
  after(async () => {
    server.close();
    await created.services.outbound.close();
    await cleanup();
  });

  const scim = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${base}/scim/v2/${DOMAIN}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: res.status === 204 ? {} : ((await res.json()) as Record<string, unknown>) };
  };

  /** The tenant IdP's signed answer (NameID = `nameId`) to the AuthnRequest in `idpUrl`. */
  function samlAnswer(idpUrl: URL, nameId: string): string {
    const xml = inflateRawSync(Buffer.from(idpUrl.searchParams.get('SAMLRequest')!, 'base64')).toString();
    const requestId = /\sID="([^"]+)"/.exec(xml)![1]!;
    const spec = { ...responseSpec({ clock } as unknown as Gateway, DOMAIN, idps.a, requestId, nameId), destination: `${base}/acs/${DOMAIN}`, recipient: `${base}/acs/${DOMAIN}`, audience: `${base}/saml/metadata` };
    return new URLSearchParams({ SAMLResponse: b64(signed(buildSamlResponseXml(spec), idps.a)), RelayState: idpUrl.searchParams.get('RelayState')! }).toString();
  }

  /** The mobile app signs in through the OP; the tenant's IdP asserts `nameId`. Returns the tokens and the browser (with its web session). */
  async function signIn(nameId: string): Promise<{ tokens: Tokens; browser: Browser; refused?: string }> {
    const browser = new Browser(base);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(mobile, { redirect_uri: MOBILE_REDIRECT, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, domain: DOMAIN });
    const { url: idp } = await browser.follow(url.href);
    assert.ok(idp.startsWith(idps.a.ssoUrl), idp);
    const { url: out, res } = await browser.follow(`${base}/acs/${DOMAIN}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: samlAnswer(new URL(idp), nameId) });
    if (!out.startsWith(MOBILE_REDIRECT)) {
      const code = /<meta name="idpb-error-code" content="([^"]+)">/.exec(await res.text())?.[1];
      return { tokens: {} as Tokens, browser, refused: code ?? `status ${res.status}` };
    }
    const tokens = await client.authorizationCodeGrant(mobile, new URL(out), { pkceCodeVerifier: verifier, expectedState: state });
    return { tokens, browser };
  }

  async function provision(userName: string, externalId: string): Promise<string> {
    const res = await scim('POST', '/Users', { schemas: [USER_URN], userName, externalId, name: { givenName: 'New', familyName: 'Hire' }, active: true });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.id as string;
  }

  /** Live web sessions, and OP sessions plus grants, of the member (as the SSO switch counts them). */
  async function sessionsOf(memberId: string): Promise<{ web: number; op: number }> {
    const s = created.services;
    return { web: await s.sessions.countSessionsOfMembers(DOMAIN, [memberId]), op: await s.opRevocation.countSessionsOfMembers(DOMAIN, [memberId]) };
  }

  async function assertEnded(memberId: string, signedIn: { tokens: Tokens; browser: Browser }): Promise<void> {
    assert.deepEqual(await sessionsOf(memberId), { web: 0, op: 0 });
    assert.equal(await created.services.sessions.find(signedIn.browser.jar.get('idpb_session')), null, "the browser's web session is gone");
    assert.equal(await created.services.provider.RefreshToken.find(signedIn.tokens.refresh_token!), undefined, 'the refresh token is revoked in the OP store');
    await assert.rejects(client.fetchUserInfo(mobile, signedIn.tokens.access_token, client.skipSubjectCheck), 'the access token no longer works');
    await assert.rejects(client.refreshTokenGrant(mobile, signedIn.tokens.refresh_token!), 'the refresh token no longer works');
  }

  it('SSO while on needs an externalId (S-25): SCIM create without one is 400 invalidValue', async () => {
    const res = await scim('POST', '/Users', { schemas: [USER_URN], userName: 'nokey@a.example' });
    assert.equal(res.status, 400);
    assert.equal(res.body.scimType, 'invalidValue');
  });

  it('a user provisioned with an externalId signs in by SAML with that key at once', async () => {
    const id = await provision('new.hire@a.example', 'scim-emp-900');
    const signedIn = await signIn('scim-emp-900');
    assert.equal(signedIn.refused, undefined);
    const claims = signedIn.tokens.claims()!;
    assert.equal(claims.sub, `${DOMAIN}:${id}`);
    assert.equal(claims.account, 'new.hire@a.example');
    assert.ok(signedIn.browser.jar.get('idpb_session'), 'a web session too');
    // A key nobody was provisioned with still maps to no one.
    assert.equal((await signIn('scim-emp-unknown')).refused, 'member_not_found');
  });

  it('active:false (Entra: "False") ends the web session and every OP token at once; the next login is refused', async () => {
    const id = await provision('leaver@a.example', 'scim-emp-901');
    const signedIn = await signIn('scim-emp-901');
    assert.equal(signedIn.refused, undefined);
    const before = await sessionsOf(id);
    assert.ok(before.web >= 1 && before.op >= 1, JSON.stringify(before));
    assert.equal((await client.fetchUserInfo(mobile, signedIn.tokens.access_token, client.skipSubjectCheck)).sub, `${DOMAIN}:${id}`, 'the access token works before');
    const res = await scim('PATCH', `/Users/${id}`, patchOp({ op: 'Replace', path: 'active', value: 'False' }));
    assert.equal(res.status, 200);
    assert.equal(res.body.active, false);
    await assertEnded(id, signedIn);
    assert.equal((await signIn('scim-emp-901')).refused, 'member_not_active');
    const [deactivated] = await created.services.audit.list(DOMAIN, 10).then((t) => t.filter((e) => e.type === 'scim.user_deactivated'));
    assert.equal(deactivated?.data?.memberId, id);
    assert.ok(Number(deactivated?.data?.sessionsEnded) >= 2);
  });

  it('DELETE ends the web session and every OP token at once and removes the member', async () => {
    const id = await provision('gone@a.example', 'scim-emp-902');
    const signedIn = await signIn('scim-emp-902');
    assert.equal(signedIn.refused, undefined);
    assert.equal((await scim('DELETE', `/Users/${id}`)).status, 204);
    await assertEnded(id, signedIn);
    assert.equal(await created.services.members.findById(DOMAIN, id), null);
    assert.equal((await signIn('scim-emp-902')).refused, 'member_not_found');
  });
});
