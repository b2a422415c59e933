/**
 * Back-channel logout (S-19, issue 15) with real processes: the gateway runs as the README deploys it
 * (`node dist/main.js`, built if stale) with WORKERS=2 on Redis, a suite service (openid-client, code +
 * PKCE) signs in through its OP, the member signs in at the demo SAML IdP, and the service's back-channel
 * receiver (a real HTTP server) must get a logout token — checked as a relying party checks it, against the OP's JWKS — after
 * /d/logout, after the member's suspension through the admin API, and after an IdP-initiated SAML
 * LogoutRequest. Every request goes on a connection of its own, so the primary hands them to both
 * workers: a sign-in stored by one worker is ended (and its services told) by the other.
 */
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import * as client from 'openid-client';
import { newSamlId, SIG_RSA_SHA256, xmlEscape } from '../../src/demo/saml-response.js';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/provider/backchannel-logout.js';
import { Receiver } from '../helpers/backchannel.js';
import { OPERATOR_AUTH } from '../helpers/gateway.js';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';
import { buildIfStale, startGateway, type GatewayProcess } from './harness.js';

const BOARD_SECRET = 'e2e-board-service-secret-0123456789abcdef';
const REDIRECT = 'https://board.example.net/cb';
const DEMO_IDP_KEY = readFileSync('config/dev-only/demo-saml-idp.key.pem', 'utf8');

interface Reply {
  status: number;
  location: string | undefined;
  text: string;
  setCookie: string[];
}

/** One request on a connection of its own (no keep-alive): the primary hands each to the next worker. */
function call(url: string, method: 'GET' | 'POST' | 'PATCH', options: { form?: Record<string, string>; json?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
  const body = options.form ? new URLSearchParams(options.form).toString() : options.json === undefined ? undefined : JSON.stringify(options.json);
  const headers: Record<string, string | number> = { ...options.headers };
  if (options.form) headers['content-type'] = 'application/x-www-form-urlencoded';
  if (options.json !== undefined) headers['content-type'] = 'application/json';
  if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers, timeout: 15_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, text, setCookie: res.headers['set-cookie'] ?? [] }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** A person's browser: a cookie jar, redirects followed by hand, stopping at a URL outside the gateway. */
class Browser {
  private readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}
  has(name: string): boolean {
    return this.jar.has(name);
  }
  async request(url: string, method: 'GET' | 'POST' = 'GET', form?: Record<string, string>): Promise<Reply> {
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await call(url, method, { ...(form ? { form } : {}), headers: cookie ? { cookie } : {} });
    for (const c of res.setCookie) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return res;
  }
  async follow(url: string, method: 'GET' | 'POST' = 'GET', form?: Record<string, string>): Promise<{ url: string; res: Reply }> {
    let res = await this.request(url, method, form);
    let current = url;
    for (let i = 0; i < 20 && res.status >= 300 && res.status < 400; i++) {
      current = new URL(res.location!, current).href;
      if (!current.startsWith(this.base)) return { url: current, res };
      res = await this.request(current);
    }
    return { url: current, res };
  }
}

const field = (html: string, name: string): string => {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} in page:\n${html.slice(0, 1500)}`);
  return m[1]!.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c))).replace(/&amp;/g, '&').replace(/&quot;/g, '"');
};

describe('back-channel logout with the gateway as a real process (WORKERS=2 on Redis)', () => {
  let gw: GatewayProcess | undefined;
  let base: string;
  let configDir: string;
  let cleanup: () => Promise<void>;
  let board: client.Configuration;
  let jwks: ReturnType<typeof createRemoteJWKSet>;
  const receiver = new Receiver();

  const logs = (): Array<Record<string, unknown>> => gw?.logs() ?? [];
  /** Which worker served each request to `route` so far. */
  const servedBy = (route: string): unknown[] => logs().filter((l) => l.msg === 'request' && l.route === route).map((l) => l.worker);

  before(async () => {
    await buildIfStale();
    await receiver.start();
    const owned = await createTestRedisStore();
    cleanup = owned.cleanup;
    const port = await freePort();
    base = `http://localhost:${port}`;
    configDir = mkdtempSync(join(tmpdir(), 'idpb-bcl-'));
    const configFile = join(configDir, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        // The receiver listens on loopback: the outbound policy admits exactly that address.
        outbound: { allowedHosts: ['127.0.0.1'] },
        oidc: {
          clients: [
            {
              client_id: 'board',
              client_secret: BOARD_SECRET,
              redirect_uris: [REDIRECT],
              backchannel_logout_uri: receiver.url,
              backchannel_logout_session_required: true,
              grant_types: ['authorization_code', 'refresh_token'],
            },
          ],
        },
      }),
    );
    gw = await startGateway(port, {
      NODE_ENV: 'development',
      WORKERS: '2',
      REDIS_URL: await redisUrl(),
      REDIS_KEY_PREFIX: owned.prefix,
      PUBLIC_URL: base,
      IDPB_CONFIG: configFile,
      LOG_LEVEL: 'info',
    });
    board = await client.discovery(new URL(`${base}/oidc`), 'board', BOARD_SECRET, client.ClientSecretBasic(BOARD_SECRET), { execute: [client.allowInsecureRequests] });
    jwks = createRemoteJWKSet(new URL(board.serverMetadata().jwks_uri!));
  });

  after(async () => {
    await gw?.stop();
    receiver.close();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
    if (cleanup) await cleanup();
  });

  /** One OIDC authorization of the board service; `viaIdp` tells whether the demo IdP was asked. */
  async function authorize(browser: Browser, username: string): Promise<{ url: URL; viaIdp: boolean; verifier: string; state: string }> {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const auth = client.buildAuthorizationUrl(board, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, domain: 'demo.example' });
    let { url, res } = await browser.follow(auth.href);
    const viaIdp = url.startsWith(`${base}/demo-idp/saml/sso`);
    if (viaIdp) {
      assert.equal(res.status, 200, res.text.slice(0, 500));
      const answered = await browser.request(`${base}/demo-idp/saml/sso`, 'POST', { SAMLRequest: field(res.text, 'SAMLRequest'), RelayState: field(res.text, 'RelayState'), username, password: `${username}-demo-password` });
      assert.equal(answered.status, 200, answered.text.slice(0, 500));
      ({ url, res } = await browser.follow(`${base}/acs/demo.example`, 'POST', { SAMLResponse: field(answered.text, 'SAMLResponse'), RelayState: field(answered.text, 'RelayState') }));
    }
    assert.ok(url.startsWith(REDIRECT), `back at the service: ${url} (${res.status} ${res.text.slice(0, 300)})`);
    return { url: new URL(url), viaIdp, verifier, state };
  }

  /** Signs in to the board service through the OP; the ID token's sub and sid. */
  async function signIn(browser: Browser, username: string): Promise<{ sub: string; sid: string }> {
    const { url, verifier, state, viaIdp } = await authorize(browser, username);
    assert.equal(viaIdp, true, 'a new browser signs in at the IdP');
    const tokens = await client.authorizationCodeGrant(board, url, { pkceCodeVerifier: verifier, expectedState: state });
    const claims = tokens.claims()!;
    assert.equal(typeof claims.sid, 'string', 'the ID token names the OP session (sid)');
    return { sub: claims.sub, sid: claims.sid as string };
  }

  /**
   * The primary hands new connections to the workers in turn: probes /healthz (each on a connection of
   * its own) until the last probe was served by the other worker, so the next connection should go to
   * `worker`. Best effort (bounded); the test asserts where its requests were served.
   */
  async function steerNextConnectionTo(worker: number): Promise<void> {
    for (let i = 0; i < 4; i++) {
      const before = servedBy('/healthz').length;
      assert.equal((await call(`${base}/healthz`, 'GET')).status, 200);
      for (let j = 0; j < 40 && servedBy('/healthz').length === before; j++) await sleep(25);
      if (servedBy('/healthz').at(-1) !== worker) return;
    }
  }

  /** Waits (bounded) for the receiver's next logout token and takes it. */
  async function nextToken(): Promise<string> {
    for (let i = 0; i < 200 && receiver.tokens.length === 0; i++) await sleep(50);
    assert.equal(receiver.tokens.length, 1, 'one logout token reached the service');
    return receiver.tokens.splice(0)[0]!;
  }

  /** What a relying party checks of a logout token (Back-Channel Logout 1.0 §2.6), against the OP's JWKS. */
  async function verifyLogoutToken(token: string, expected: { sub: string; sid: string }): Promise<JWTPayload> {
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: `${base}/oidc`, audience: 'board', typ: 'logout+jwt', algorithms: ['RS256'] });
    assert.equal(protectedHeader.typ, 'logout+jwt');
    assert.deepEqual(payload.events, { [BACKCHANNEL_LOGOUT_EVENT]: {} });
    assert.equal(payload.nonce, undefined, 'a logout token never carries a nonce');
    assert.equal(typeof payload.jti, 'string');
    assert.equal(typeof payload.iat, 'number');
    assert.equal(payload.sub, expected.sub);
    assert.equal(payload.sid, expected.sid);
    return payload;
  }

  it('/d/logout: the service gets a verified logout token from whichever worker ended the session, and the next OIDC login goes back to the IdP', { timeout: 120_000 }, async () => {
    // Rounds until /d/logout has been served by each worker (bounded), each checked in full.
    let logoutsSent = 0;
    for (let round = 0; round < 6 && new Set(servedBy('/d/logout')).size < 2; round++) {
      const browser = new Browser(base);
      const signed = await signIn(browser, 'alice');
      assert.equal(signed.sub, 'demo.example:m-alice');
      // While the OP session lives, the service's next login returns a code without the IdP.
      const silent = await authorize(browser, 'alice');
      assert.equal(silent.viaIdp, false);
      assert.ok(silent.url.searchParams.get('code'));
      assert.equal(receiver.tokens.length, 0, 'nothing is sent before a logout');

      await steerNextConnectionTo(round % 2 === 0 ? 1 : 2);
      const out = await browser.request(`${base}/d/logout`);
      logoutsSent++;
      assert.equal(out.status, 200, out.text.slice(0, 300));
      assert.equal(browser.has('_session'), false, 'the OP session cookie is cleared');
      await verifyLogoutToken(await nextToken(), signed);

      const again = await authorize(browser, 'alice');
      assert.equal(again.viaIdp, true, 'the next login is sent to the IdP: no code is issued silently');
      const renewed = (await client.authorizationCodeGrant(board, again.url, { pkceCodeVerifier: again.verifier, expectedState: again.state })).claims()!;
      assert.notEqual(renewed.sid, signed.sid, 'a new OP session');
      assert.deepEqual(receiver.tokens, [], 'the new sign-in is not logged out');
      // And that one ends too (so no session of alice's outlives this test).
      assert.equal((await browser.request(`${base}/d/logout`)).status, 200);
      logoutsSent++;
      await verifyLogoutToken(await nextToken(), { sub: renewed.sub, sid: renewed.sid as string });
    }
    for (let i = 0; i < 40 && servedBy('/d/logout').length < logoutsSent; i++) await sleep(50);
    assert.deepEqual(new Set(servedBy('/d/logout')), new Set([1, 2]), 'a /d/logout served by each worker, each telling the service');
    assert.deepEqual(new Set(servedBy('/acs/:domain')), new Set([1, 2]), 'sign-ins finished on both workers');
  });

  it("suspending the member through the admin API tells the service (the session was stored by either worker)", { timeout: 60_000 }, async () => {
    const browser = new Browser(base);
    const signed = await signIn(browser, 'bob');
    assert.equal(signed.sub, 'demo.example:m-bob');
    const suspended = await patchMember('m-bob', 'suspended');
    assert.equal(suspended.status, 200, suspended.text);
    await verifyLogoutToken(await nextToken(), signed);
    const back = await patchMember('m-bob', 'in_use');
    assert.equal(back.status, 200, back.text);
  });

  it('an IdP-initiated SAML LogoutRequest (signed by the demo IdP) tells the service', { timeout: 60_000 }, async () => {
    const browser = new Browser(base);
    const signed = await signIn(browser, 'alice');
    const xml =
      `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${newSamlId()}" Version="2.0"` +
      ` IssueInstant="${new Date().toISOString()}" Destination="${xmlEscape(`${base}/saml2/sp/slo`)}">` +
      `<saml:Issuer>${xmlEscape(`${base}/demo-idp/saml`)}</saml:Issuer><saml:NameID>alice</saml:NameID></samlp:LogoutRequest>`;
    let q = `SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}&SigAlg=${encodeURIComponent(SIG_RSA_SHA256)}`;
    q += `&Signature=${encodeURIComponent(sign('sha256', Buffer.from(q), DEMO_IDP_KEY).toString('base64'))}`;
    // Sent without this browser's cookies (the IdP's front channel need not carry them).
    const slo = await call(`${base}/saml2/sp/slo?${q}`, 'GET');
    assert.equal(slo.status, 200, slo.text.slice(0, 500));
    await verifyLogoutToken(await nextToken(), signed);
    assert.equal((await authorize(browser, 'alice')).viaIdp, true, 'the OP session is gone');
  });

  async function patchMember(id: string, status: string): Promise<Reply> {
    return call(`${base}/admin/v1/domains/demo.example/members/${id}`, 'PATCH', { json: { status }, headers: { authorization: OPERATOR_AUTH } });
  }
});
