import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import * as client from 'openid-client';
import { createApp, type CreatedApp } from '../../../src/app.js';
import { loadConfig } from '../../../src/config/index.js';
import { buildSamlResponseXml, newSamlId, SIG_RSA_SHA256, xmlEscape } from '../../../src/demo/saml-response.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../../src/provider/backchannel-logout.js';
import { FakeClock } from '../../helpers/clock.js';
import { LOOPBACK_IDPS, OPERATOR_AUTH, b64, capturedLogger, responseSpec, seedStandardTenants, signed, type Gateway } from '../../helpers/gateway.js';
import { Browser, Receiver } from '../../helpers/backchannel.js';
import { idps } from '../../helpers/keys.js';
import { createTestRedisStore, freePort } from '../../helpers/redis.js';

const BOARD_SECRET = 'board-service-secret-0123456789abcdef';
const MOBILE_REDIRECT = 'idpbridge.mobile:/oauth2redirect';
const LEDGER_SECRET = 'ledger-service-secret-0123456789abcdef';

/** S-19 and OpenID Connect Back-Channel Logout 1.0: services signed in through the OP hear of every way a sign-in ends. */
describe('sign-out reaches every service (back-channel logout, S-19)', () => {
  let created: CreatedApp;
  let gw: Pick<Gateway, 'clock'> & { services: CreatedApp['services'] };
  let server: Server;
  let base: string;
  let cleanup: () => Promise<void>;
  let board: client.Configuration;
  let ledger: client.Configuration;
  let mobile: client.Configuration;
  let jwks: ReturnType<typeof createRemoteJWKSet>;
  const boardRp = new Receiver();
  const ledgerRp = new Receiver();
  const mobileRp = new Receiver();
  const logs = capturedLogger('debug');

  before(async () => {
    await boardRp.start();
    await ledgerRp.start();
    await mobileRp.start();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const owned = await createTestRedisStore();
    cleanup = owned.cleanup;
    const { config } = loadConfig({
      env: { NODE_ENV: 'test' },
      overrides: {
        ...LOOPBACK_IDPS,
        publicUrl: base,
        serviceOrigins: ['http://127.0.0.1'],
        defaultServiceUrl: 'http://127.0.0.1/home',
        seedFile: undefined,
        demo: { enabled: false },
        oidc: {
          clients: [
            { client_id: 'board', client_secret: BOARD_SECRET, redirect_uris: ['https://board.example.net/cb'], post_logout_redirect_uris: ['https://board.example.net/bye'], backchannel_logout_uri: boardRp.url, backchannel_logout_session_required: true, grant_types: ['authorization_code', 'refresh_token'] },
            { client_id: 'mobile', redirect_uris: [MOBILE_REDIRECT], token_endpoint_auth_method: 'none', application_type: 'native', backchannel_logout_uri: mobileRp.url, grant_types: ['authorization_code', 'refresh_token'] },
            { client_id: 'ledger', client_secret: LEDGER_SECRET, redirect_uris: ['https://ledger.example.net/cb'], backchannel_logout_uri: ledgerRp.url, grant_types: ['authorization_code', 'refresh_token'] },
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
    board = await client.discovery(new URL(`${base}/oidc`), 'board', BOARD_SECRET, client.ClientSecretBasic(BOARD_SECRET), insecure);
    ledger = await client.discovery(new URL(`${base}/oidc`), 'ledger', LEDGER_SECRET, client.ClientSecretBasic(LEDGER_SECRET), insecure);
    mobile = await client.discovery(new URL(`${base}/oidc`), 'mobile', { token_endpoint_auth_method: 'none' }, client.None(), insecure);
    jwks = createRemoteJWKSet(new URL(board.serverMetadata().jwks_uri!));
  });
  after(async () => {
    created.services.backchannelLogout.close();
    server.closeAllConnections();
    server.close();
    boardRp.close();
    ledgerRp.close();
    mobileRp.close();
    await created.services.outbound.close();
    await cleanup();
  });

  /** The tenant IdP's signed answer (emp-001 of a.example) to the AuthnRequest in `idpUrl`. */
  function samlAnswer(idpUrl: URL): string {
    const xml = inflateRawSync(Buffer.from(idpUrl.searchParams.get('SAMLRequest')!, 'base64')).toString();
    const requestId = /\sID="([^"]+)"/.exec(xml)![1]!;
    const spec = { ...responseSpec(gw as unknown as Gateway, 'a.example', idps.a, requestId, 'emp-001'), destination: `${base}/acs/a.example`, recipient: `${base}/acs/a.example`, audience: `${base}/saml/metadata` };
    return new URLSearchParams({ SAMLResponse: b64(signed(buildSamlResponseXml(spec), idps.a)), RelayState: idpUrl.searchParams.get('RelayState')! }).toString();
  }

  /** One authorization of `rp` in `browser`; `viaIdp` tells whether the tenant IdP was visited on the way. */
  async function authorize(rp: client.Configuration, redirectUri: string, browser: Browser): Promise<{ url: URL; viaIdp: boolean; verifier: string; state: string }> {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(rp, { redirect_uri: redirectUri, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, domain: 'a.example' });
    let { url: out } = await browser.follow(url.href);
    const viaIdp = out.startsWith(idps.a.ssoUrl);
    if (viaIdp) {
      ({ url: out } = await browser.follow(`${base}/acs/a.example`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: samlAnswer(new URL(out)) }));
    }
    return { url: new URL(out), viaIdp, verifier, state };
  }

  /**
   * Signs `browser` in to the service and returns its ID token claims: `sid` (the one the logout token
   * must carry) when the service registered backchannel_logout_session_required.
   */
  async function signIn(rp: client.Configuration, redirectUri: string, browser: Browser): Promise<{ sub: string; sid: string | undefined; idToken: string }> {
    const { url, verifier, state } = await authorize(rp, redirectUri, browser);
    assert.ok(url.href.startsWith(redirectUri), url.href);
    const tokens = await client.authorizationCodeGrant(rp, url, { pkceCodeVerifier: verifier, expectedState: state });
    const claims = tokens.claims()!;
    if (rp === board) assert.equal(typeof claims.sid, 'string', 'the ID token names the session (sid)');
    return { sub: claims.sub, sid: typeof claims.sid === 'string' ? claims.sid : undefined, idToken: tokens.id_token! };
  }

  /** What a relying party checks of a logout token (Back-Channel Logout 1.0 §2.6). */
  async function verifyLogoutToken(token: string, audience: string): Promise<JWTPayload> {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: `${base}/oidc`, audience, typ: 'logout+jwt', algorithms: ['RS256'] });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.deepEqual(payload.events, { [BACKCHANNEL_LOGOUT_EVENT]: {} });
    assert.equal(payload.nonce, undefined, 'a logout token never carries a nonce');
    assert.equal(typeof payload.jti, 'string');
    assert.equal(typeof payload.iat, 'number');
    return payload;
  }

  /** Waits for every queued delivery, then takes the tokens each receiver got. */
  async function delivered(): Promise<{ board: string[]; ledger: string[]; mobile: string[] }> {
    await created.services.backchannelLogout.idle();
    return { board: boardRp.tokens.splice(0), ledger: ledgerRp.tokens.splice(0), mobile: mobileRp.tokens.splice(0) };
  }

  const metric = async (result: string): Promise<number> => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const m = new RegExp(`^idpb_backchannel_logout_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };

  it('/d/logout ends the OP session: both services get a signed logout token (sub, sid, events), and the next OIDC login goes back to the IdP', async () => {
    const browser = new Browser(base);
    const atBoard = await signIn(board, 'https://board.example.net/cb', browser);
    const atLedger = await signIn(ledger, 'https://ledger.example.net/cb', browser);
    assert.equal(atBoard.sub, 'a.example:m-a-active');
    // While the OP session lives, a service's login returns a code at once (the case S-19 closes).
    const silent = await authorize(board, 'https://board.example.net/cb', browser);
    assert.equal(silent.viaIdp, false);
    assert.ok(silent.url.searchParams.get('code'));
    assert.deepEqual(await delivered(), { board: [], ledger: [], mobile: [] }, 'nothing is sent before a logout');

    const out = await browser.request(`${base}/d/logout`);
    assert.equal(out.status, 200);
    assert.equal(browser.has('_session'), false, 'the OP session cookie is cleared');
    const got = await delivered();
    assert.equal(got.board.length, 1);
    assert.equal(got.ledger.length, 1);
    const boardToken = await verifyLogoutToken(got.board[0]!, 'board');
    assert.equal(boardToken.sub, atBoard.sub);
    assert.equal(boardToken.sid, atBoard.sid);
    const ledgerToken = await verifyLogoutToken(got.ledger[0]!, 'ledger');
    assert.equal(ledgerToken.sub, atLedger.sub);
    assert.equal(atLedger.sid, undefined, 'ledger did not ask for sid in its ID tokens');
    await assert.rejects(verifyLogoutToken(got.board[0]!, 'ledger'), 'the token is for its own audience only');

    const again = await authorize(board, 'https://board.example.net/cb', browser);
    assert.equal(again.viaIdp, true, 'the next login is sent to the IdP, no code is issued silently');
    assert.ok(again.url.searchParams.get('code'));
    await created.services.opRevocation.revokeMember('a.example', 'm-a-active');
    await delivered();
  });

  it("an IdP-initiated SAML LogoutRequest ends the member's OP sessions and tells the services", async () => {
    const browser = new Browser(base);
    const atBoard = await signIn(board, 'https://board.example.net/cb', browser);
    const id = newSamlId();
    const xml =
      `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0"` +
      ` IssueInstant="${new Date(gw.clock.now()).toISOString()}" Destination="${xmlEscape(`${base}/saml2/sp/slo`)}">` +
      `<saml:Issuer>${xmlEscape(idps.a.entityId)}</saml:Issuer><saml:NameID>emp-001</saml:NameID></samlp:LogoutRequest>`;
    let q = `SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}&SigAlg=${encodeURIComponent(SIG_RSA_SHA256)}`;
    q += `&Signature=${encodeURIComponent(sign('sha256', Buffer.from(q), idps.a.privateKey).toString('base64'))}`;
    // Sent by another browser (the IdP's front channel need not carry this browser's cookies).
    const res = await fetch(`${base}/saml2/sp/slo?${q}`, { redirect: 'manual' });
    assert.equal(res.status, 200, await res.clone().text());
    const got = await delivered();
    assert.equal(got.board.length, 1);
    const token = await verifyLogoutToken(got.board[0]!, 'board');
    assert.equal(token.sub, atBoard.sub);
    assert.equal(token.sid, atBoard.sid);
    assert.equal((await authorize(board, 'https://board.example.net/cb', browser)).viaIdp, true, 'the OP session is gone');
    await created.services.opRevocation.revokeMember('a.example', 'm-a-active');
    await delivered();
  });

  it("the OAuth IdP's logout route (S-20) ends the tenant's OP session in this browser and tells the services", async () => {
    const browser = new Browser(base);
    const atLedger = await signIn(ledger, 'https://ledger.example.net/cb', browser);
    // Another tenant's logout leaves this session alone.
    await browser.request(`${base}/view/oauth/sso/logout?domain=b.example`);
    assert.deepEqual(await delivered(), { board: [], ledger: [], mobile: [] });
    await browser.request(`${base}/view/oauth/sso/logout?domain=a.example`);
    const got = await delivered();
    assert.equal(got.ledger.length, 1);
    const token = await verifyLogoutToken(got.ledger[0]!, 'ledger');
    assert.equal(token.sub, atLedger.sub);
    await created.services.opRevocation.revokeMember('a.example', 'm-a-active');
    await delivered();
  });

  it("a receiver that hangs or fails neither holds nor breaks the logout page; its failure shows in /metrics", async () => {
    const browser = new Browser(base);
    await signIn(board, 'https://board.example.net/cb', browser);
    await signIn(ledger, 'https://ledger.example.net/cb', browser);
    const failedBefore = await metric('failed');
    const retriedBefore = await metric('retried');
    ledgerRp.mode = 'hold';
    const out = await browser.request(`${base}/d/logout`);
    assert.equal(out.status, 200);
    assert.match(await out.text(), /signed out/i);
    // The page has been answered while the ledger's delivery is still open: the logout did not wait for it.
    await ledgerRp.arrived();
    assert.equal(ledgerRp.heldCount(), 1);
    assert.equal(await metric('retried'), retriedBefore, 'no delivery attempt has ended yet');
    ledgerRp.mode = 'fail';
    ledgerRp.release(500);
    const got = await delivered();
    assert.equal(got.board.length, 1, 'the other service is told all the same');
    assert.equal(got.ledger.length, 3, 'three attempts, then given up');
    assert.equal(await metric('retried'), retriedBefore + 2);
    assert.equal(await metric('failed'), failedBefore + 1);
    assert.ok((await metric('delivered')) >= 1);
    ledgerRp.mode = 'ok';
    assert.ok(!logs.text().includes(got.ledger[0]!), 'no logout token in the logs');
  });

  it('suspending the member through the admin API ends its OP sessions and grants and tells the services', async () => {
    const browser = new Browser(base);
    const atBoard = await signIn(board, 'https://board.example.net/cb', browser);
    const res = await fetch(`${base}/admin/v1/domains/a.example/members/m-a-active`, {
      method: 'PATCH',
      headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'suspended' }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const got = await delivered();
    assert.equal(got.board.length, 1);
    const token = await verifyLogoutToken(got.board[0]!, 'board');
    assert.equal(token.sub, atBoard.sub);
    assert.equal(token.sid, atBoard.sid);
    const back = await fetch(`${base}/admin/v1/domains/a.example/members/m-a-active`, {
      method: 'PATCH',
      headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'in_use' }),
    });
    assert.equal(back.status, 200);
  });

  it("RP-initiated logout (end_session_endpoint): confirmed, it ends the OP session and the gateway's web session, tells every service, and returns to the registered post_logout_redirect_uri", async () => {
    const browser = new Browser(base);
    const atBoard = await signIn(board, 'https://board.example.net/cb', browser);
    await signIn(ledger, 'https://ledger.example.net/cb', browser);
    const webSession = browser.value('idpb_session');
    assert.ok(webSession && (await created.services.sessions.find(webSession)), 'a gateway web session');
    const endUrl = client.buildEndSessionUrl(board, { id_token_hint: atBoard.idToken, post_logout_redirect_uri: 'https://board.example.net/bye', state: 'bye-1' });
    const page = await browser.request(endUrl.href);
    assert.equal(page.status, 200);
    const html = await page.text();
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(xsrf, 'a confirmation form');
    assert.doesNotMatch(html, /googleapis/, 'the gateway layout, nothing loaded from elsewhere');
    const confirm = await browser.request(`${base}/oidc/session/end/confirm`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ xsrf, logout: 'yes' }).toString() });
    assert.equal(confirm.status, 303);
    assert.equal(confirm.headers.get('location'), 'https://board.example.net/bye?state=bye-1');
    assert.equal(await created.services.sessions.find(webSession), null, 'the gateway web session ended');
    assert.equal(browser.has('idpb_session'), false, 'and its cookie is cleared');
    const got = await delivered();
    assert.equal(got.board.length, 1);
    assert.equal(got.ledger.length, 1);
    assert.equal((await verifyLogoutToken(got.board[0]!, 'board')).sid, atBoard.sid);
    assert.equal((await verifyLogoutToken(got.ledger[0]!, 'ledger')).sub, atBoard.sub);
    assert.equal((await authorize(board, 'https://board.example.net/cb', browser)).viaIdp, true, 'the next login goes to the IdP');
    await created.services.opRevocation.revokeMember('a.example', 'm-a-active');
    await delivered();
  });

  it("MDM revocation (3rd-party MDM sync turned on) ends the tenant's mobile grants and tells the app's back-channel receiver", async () => {
    const browser = new Browser(base);
    const { url, verifier, state } = await authorize(mobile, MOBILE_REDIRECT, browser);
    assert.ok(url.href.startsWith(MOBILE_REDIRECT), url.href);
    const tokens = await client.authorizationCodeGrant(mobile, url, { pkceCodeVerifier: verifier, expectedState: state });
    const mdm = (mode: string) =>
      fetch(`${base}/admin/v1/domains/a.example/mdm`, { method: 'PUT', headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ mode }) });
    assert.equal((await mdm('external')).status, 200);
    const got = await delivered();
    assert.equal(got.mobile.length, 1);
    const token = await verifyLogoutToken(got.mobile[0]!, 'mobile');
    assert.equal(token.sub, tokens.claims()!.sub);
    assert.equal(token.sid, undefined, 'a grant ended outside a session: by subject only');
    assert.deepEqual([got.board, got.ledger], [[], []], 'web services are not MDM business');
    assert.equal((await mdm('none')).status, 200);
    await created.services.opRevocation.revokeMember('a.example', 'm-a-active');
    await delivered();
  });

  it('a service client added through the admin API registers its back-channel logout URI (checked; null removes it) and gets logout tokens with sid', async () => {
    const wikiRp = new Receiver();
    await wikiRp.start();
    try {
      const admin = async (method: string, path: string, body: unknown) => {
        const res = await fetch(`${base}/admin/v1${path}`, { method, headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: res.status, body: (res.status === 204 ? {} : await res.json()) as Record<string, unknown> };
      };
      const refused = await admin('POST', '/op-clients', { clientId: 'wiki', name: 'Wiki', redirectUris: ['https://wiki.example.net/cb'], backchannelLogoutUri: 'ftp://wiki.example.net/bc' });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error, 'validation_failed');
      assert.match(JSON.stringify(refused.body), /backchannelLogoutUri/);
      const made = await admin('POST', '/op-clients', { clientId: 'wiki', name: 'Wiki', redirectUris: ['https://wiki.example.net/cb'], backchannelLogoutUri: wikiRp.url });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      assert.equal(made.body.backchannelLogoutUri, wikiRp.url);
      const secret = String(made.body.clientSecret);
      const wiki = await client.discovery(new URL(`${base}/oidc`), 'wiki', secret, client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests] });

      const browser = new Browser(base);
      const { url, verifier, state } = await authorize(wiki, 'https://wiki.example.net/cb', browser);
      const claims = (await client.authorizationCodeGrant(wiki, url, { pkceCodeVerifier: verifier, expectedState: state })).claims()!;
      assert.equal(typeof claims.sid, 'string', 'API-made clients with a back-channel URI get sid in their ID tokens');
      await browser.request(`${base}/d/logout`);
      await created.services.backchannelLogout.idle();
      assert.equal(wikiRp.tokens.length, 1);
      const token = await verifyLogoutToken(wikiRp.tokens[0]!, 'wiki');
      assert.equal(token.sid, claims.sid);
      assert.equal(token.sub, claims.sub);

      const cleared = await admin('PATCH', '/op-clients/wiki', { backchannelLogoutUri: null });
      assert.equal(cleared.status, 200);
      assert.equal(cleared.body.backchannelLogoutUri, null);
      assert.equal((await admin('DELETE', '/op-clients/wiki', undefined)).status, 204);
    } finally {
      wikiRp.close();
    }
  });

  it("turning the tenant's SSO off (S-22) signs every member out of the OP and tells the services", async () => {
    const browser = new Browser(base);
    const atBoard = await signIn(board, 'https://board.example.net/cb', browser);
    const res = await fetch(`${base}/admin/v1/domains/a.example/sso`, { method: 'PUT', headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ enabled: false }) });
    assert.equal(res.status, 200, await res.clone().text());
    const got = await delivered();
    assert.equal(got.board.length, 1);
    const token = await verifyLogoutToken(got.board[0]!, 'board');
    assert.equal(token.sub, atBoard.sub);
    assert.equal(token.sid, atBoard.sid);
  });
});
