import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { TenantInput as Tenant } from '../../../src/domain/tenant.js';
import { keys } from '../../../src/store/index.js';
import { LOOPBACK_IDPS, PUBLIC_URL, SERVICE_ORIGIN, createGateway, errorCodeOf, lastAuditReason, rememberLoginBinding, sessionCookieOf, withBinding, type Gateway } from '../../helpers/gateway.js';
import { startBlackHole, startWorksIdp, type BlackHole, type RecordedRequest, type WorksIdp } from '../../helpers/works-idp.js';

const DOMAIN = 'works.example';
const DOMAIN2 = 'works2.example';
const DOMAIN_EXP = 'works-exp.example';
const DOMAIN_WRONG_SECRET = 'works-wrongsecret.example';
const DOMAIN_DOWN = 'works-down.example';
const CLIENT_ID = 'bridge-client';
const CLIENT_SECRET = `s3cret-${randomBytes(16).toString('hex')}`;
const OTHER_CLIENT_ID = 'other-client';
const OTHER_CLIENT_SECRET = `other-s3cret-${randomBytes(16).toString('hex')}`;
const TARGET = `${SERVICE_ORIGIN}/board/list-7f3a?folder=42&q=a%20b`;
const STATE_RE = /^[A-Za-z0-9_-]{32}$/;
const APP_TTL_SECONDS = 30 * 24 * 3600;

function worksTenant(domain: string, idp: WorksIdp, sso: Partial<Tenant['sso']> = {}, oauth: Partial<NonNullable<NonNullable<Tenant['sso']>['oauth']>> = {}): Tenant {
  return {
    domain,
    name: `Tenant ${domain}`,
    plan: 'standard',
    sso: {
      enabled: true,
      type: 'oauth',
      userKey: 'externalKey',
      setExpireTime: false,
      webLoginUrl: `${idp.url}/authorize`,
      appLoginUrl: `${idp.url}/app-authorize`,
      ...sso,
      oauth: {
        profile: 'works',
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        tokenUrl: idp.tokenUrl,
        userInfoUrl: idp.userInfoUrl,
        userKeyClaim: 'sub',
        scopes: ['openid'],
        ...oauth,
      },
    },
    serviceOrigins: [],
    logoutRedirectDomains: [],
    thirdPartyAppPasswordsAllowed: false,
  };
}

interface StartedOAuthLogin {
  /** Where the browser is sent (the IdP's login page). */
  location: URL;
  /** The redirect_uri the IdP would send the browser back to. */
  redirectUri: URL;
  state: string;
}

const setCookieOf = (res: { headers: Record<string, unknown> }): string | undefined =>
  ((res.headers['set-cookie'] as string[] | undefined) ?? []).find((c) => c.startsWith('idpb_session=') && !c.startsWith('idpb_session=;'));

const sortedKeys = (params: URLSearchParams): string[] => [...params.keys()].sort();

describe('OAuth `works` profile, end to end (S-14, S-15, S-17, S-18)', () => {
  let gw: Gateway;
  let idp: WorksIdp;
  const sessionKeysUsed: string[] = [];

  async function startLogin(domain: string, query: Record<string, string> = { accessUrl: TARGET }): Promise<StartedOAuthLogin> {
    const res = await gw.http.get(`/d/login/${domain}`).query(query);
    assert.equal(res.status, 302, `login start answered ${res.status}: ${res.text.slice(0, 300)}`);
    const location = new URL(res.headers.location as string);
    const raw = location.searchParams.get('redirect_uri');
    assert.ok(raw, 'redirect_uri is present');
    const redirectUri = new URL(raw);
    const state = redirectUri.searchParams.get('state');
    assert.ok(state, 'state travels inside redirect_uri');
    assert.ok(rememberLoginBinding(res, state), 'the login start sets the binding cookie');
    return { location, redirectUri, state };
  }

  /**
   * What the IdP does after the user signs in: back to redirect_uri with `&code=` (or `&error=`) added,
   * in the browser that started the login (its binding cookie goes along).
   */
  function callback(login: StartedOAuthLogin, extra: Record<string, string>, domainPath?: string): ReturnType<Gateway['http']['get']> {
    const path = domainPath ?? login.redirectUri.pathname;
    return withBinding(gw.http.get(`${path}${login.redirectUri.search}&${new URLSearchParams(extra).toString()}`), login.state);
  }

  async function loginWithCode(domain: string, userId: string, query?: Record<string, string>) {
    const login = await startLogin(domain, query);
    return { login, res: await callback(login, { code: idp.issueCode(userId) }) };
  }

  async function assertRefused(
    res: { status: number; text: string; body?: unknown; headers: Record<string, unknown> },
    status: number,
    code: string,
    domain: string,
    reason?: string,
  ): Promise<void> {
    assert.equal(res.status, status, res.text.slice(0, 500));
    assert.equal(errorCodeOf(res), code);
    assert.equal(sessionCookieOf(res), undefined, 'no session cookie on failure');
    assert.equal(res.headers.location, undefined, 'a refusal is a page, not a redirect');
    if (reason !== undefined) assert.equal(await lastAuditReason(gw, domain), reason);
  }

  /** The private detail of the latest refusal with this reason, from the operator's log. */
  const refusalDetail = (reason: string): unknown => gw.logs.filter((l) => l.reason === reason).at(-1)?.detail;

  function onlyRequest(path: string): RecordedRequest {
    const seen = idp.requestsTo(path);
    assert.equal(seen.length, 1, `exactly one request to ${path}`);
    return seen[0]!;
  }

  before(async () => {
    idp = await startWorksIdp({ clients: { [CLIENT_ID]: CLIENT_SECRET, [OTHER_CLIENT_ID]: OTHER_CLIENT_SECRET } });
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
    const { tenants, members } = gw.services;
    await tenants.save(worksTenant(DOMAIN, idp));
    await members.save(DOMAIN, { id: 'm-w-active', account: 'active@works.example', name: 'Active W', externalKey: 'emp-100', role: 'member', status: 'in_use' });
    await members.save(DOMAIN, { id: 'm-w-suspended', account: 'suspended@works.example', name: 'Suspended W', externalKey: 'emp-101', role: 'member', status: 'suspended' });
    await tenants.save(worksTenant(DOMAIN2, idp));
    await members.save(DOMAIN2, { id: 'm-w2-active', account: 'active@works2.example', name: 'Active W2', externalKey: 'emp-100', role: 'member', status: 'in_use' });
    await tenants.save(worksTenant(DOMAIN_EXP, idp, { setExpireTime: true }));
    await members.save(DOMAIN_EXP, { id: 'm-we-active', account: 'active@works-exp.example', name: 'Active WE', externalKey: 'emp-100', role: 'member', status: 'in_use' });
    await tenants.save(worksTenant(DOMAIN_WRONG_SECRET, idp, {}, { clientSecret: 'not-the-registered-secret' }));
  });

  beforeEach(() => idp.reset());

  after(async () => {
    await gw.services.outbound.close();
    await gw.close();
    await idp.close();
  });

  describe('the redirect to the IdP (S-14)', () => {
    it('carries exactly response_type, client_id and redirect_uri (state inside it, never the target), no scope', async () => {
      const login = await startLogin(DOMAIN);
      assert.equal(login.location.origin + login.location.pathname, `${idp.url}/authorize`);
      assert.deepEqual(sortedKeys(login.location.searchParams), ['client_id', 'redirect_uri', 'response_type']);
      assert.equal(login.location.searchParams.get('response_type'), 'code');
      assert.equal(login.location.searchParams.get('client_id'), CLIENT_ID);
      assert.equal(login.location.searchParams.get('scope'), null);
      assert.match(login.state, STATE_RE);
      assert.equal(login.location.searchParams.get('redirect_uri'), `${PUBLIC_URL}/oauth/callback/${DOMAIN}?state=${login.state}`);
      assert.ok(!login.location.href.includes('list-7f3a'), 'the target never travels to the IdP (S-6)');
      const again = await startLogin(DOMAIN);
      assert.notEqual(again.state, login.state, 'each login has its own state');
      assert.equal(idp.requests.length, 0, 'starting a login calls nothing at the IdP');
    });

    it('passes worksId on when given', async () => {
      const login = await startLogin(DOMAIN, { accessUrl: TARGET, worksId: 'emp-100' });
      assert.deepEqual(sortedKeys(login.location.searchParams), ['client_id', 'redirect_uri', 'response_type', 'worksId']);
      assert.equal(login.location.searchParams.get('worksId'), 'emp-100');
    });

    it('sends an app login to appLoginUrl with userAgent=LineWorks and the sessionKey', async () => {
      const sessionKey = randomBytes(24).toString('base64url');
      sessionKeysUsed.push(sessionKey);
      const login = await startLogin(DOMAIN, { accessUrl: TARGET, sessionKey });
      assert.equal(login.location.origin + login.location.pathname, `${idp.url}/app-authorize`);
      assert.deepEqual(sortedKeys(login.location.searchParams), ['client_id', 'redirect_uri', 'response_type', 'sessionKey', 'userAgent']);
      assert.equal(login.location.searchParams.get('response_type'), 'code');
      assert.equal(login.location.searchParams.get('client_id'), CLIENT_ID);
      assert.equal(login.location.searchParams.get('userAgent'), 'LineWorks');
      assert.equal(login.location.searchParams.get('sessionKey'), sessionKey);
      assert.equal(login.location.searchParams.get('redirect_uri'), `${PUBLIC_URL}/oauth/callback/${DOMAIN}?state=${login.state}`);
      assert.match(login.state, STATE_RE);
    });
  });

  describe('token exchange and user info (S-15)', () => {
    it('logs in: 303 to exactly the accessUrl, a session, and the exact wire format at the IdP', async () => {
      const { res } = await loginWithCode(DOMAIN, 'emp-100');
      assert.equal(res.status, 303, res.text);
      assert.equal(res.headers.location, TARGET);
      const cookie = sessionCookieOf(res);
      assert.ok(cookie, 'a session cookie is set');
      assert.match(setCookieOf(res)!, /Max-Age=86400/, 'web sessions last 24 h without setExpireTime (S-10)');
      const me = await gw.http.get('/session').set('Cookie', cookie);
      assert.equal(me.status, 200);
      assert.equal(me.body.member.id, 'm-w-active');
      assert.equal(me.body.member.account, 'active@works.example');
      assert.equal(me.body.session.authMethod, 'oauth');
      assert.equal((await gw.services.audit.list(DOMAIN, 1))[0]?.type, 'login.succeeded');

      const token = onlyRequest('/token');
      assert.equal(token.method, 'POST');
      assert.match(String(token.headers['content-type']), /^application\/x-www-form-urlencoded\b/);
      assert.equal(token.headers.authorization, undefined, 'the client secret travels in the body, not in an Authorization header');
      assert.deepEqual([...token.formKeys].sort(), ['client_id', 'client_secret', 'code', 'grant_type'], 'exactly these fields, once each');
      assert.equal(token.form.grant_type, 'authorization_code');
      assert.equal(token.form.client_id, CLIENT_ID);
      assert.equal(token.form.client_secret, CLIENT_SECRET);
      assert.equal(token.form.code, idp.issuedCodes.at(-1));

      const info = onlyRequest('/userinfo');
      assert.equal(info.method, 'POST');
      assert.match(String(info.headers['content-type']), /^application\/x-www-form-urlencoded\b/);
      assert.equal(info.headers.authorization, undefined);
      assert.deepEqual([...info.formKeys].sort(), ['access_token', 'client_id', 'client_secret']);
      assert.equal(info.form.client_id, CLIENT_ID);
      assert.equal(info.form.client_secret, CLIENT_SECRET);
      assert.equal(info.form.access_token, idp.issuedTokens.at(-1));
      assert.equal(idp.requests.length, 2, 'nothing else was called');
    });

    it('accepts expires_in as a string or an integer', async () => {
      for (const expiresIn of ['7200', 7200]) {
        idp.settings.expiresIn = expiresIn;
        const { res } = await loginWithCode(DOMAIN, 'emp-100');
        assert.equal(res.status, 303, `${typeof expiresIn}: ${res.text}`);
        assert.match(setCookieOf(res)!, /Max-Age=86400/, 'without setExpireTime the IdP does not set the length');
      }
    });

    it('takes the session length from expires_in with setExpireTime (S-10), string or integer', async () => {
      for (const expiresIn of ['7200', 7200]) {
        idp.settings.expiresIn = expiresIn;
        const { res } = await loginWithCode(DOMAIN_EXP, 'emp-100');
        assert.equal(res.status, 303, `${typeof expiresIn}: ${res.text}`);
        assert.match(setCookieOf(res)!, /Max-Age=7200(;|$)/, `expires_in ${JSON.stringify(expiresIn)}`);
      }
      // An unusable or absent expires_in falls back to the default length; the login still works.
      for (const expiresIn of ['soon', undefined]) {
        idp.settings.expiresIn = expiresIn;
        const { res } = await loginWithCode(DOMAIN_EXP, 'emp-100');
        assert.equal(res.status, 303, res.text);
        assert.match(setCookieOf(res)!, /Max-Age=86400(;|$)/, `expires_in ${JSON.stringify(expiresIn)}`);
      }
    });

    it('keeps the user-info error codes 101, 201, 301, 303 as distinct reasons', async () => {
      const expected = {
        '101': 'userinfo_access_denied',
        '201': 'userinfo_invalid_request',
        '301': 'userinfo_unauthorized_client',
        '303': 'userinfo_invalid_access',
      } as const;
      for (const [mode, reason] of Object.entries(expected) as Array<[keyof typeof expected, string]>) {
        idp.settings.userInfoMode = mode;
        const { res } = await loginWithCode(DOMAIN, 'emp-100');
        await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, reason);
        assert.ok(!res.text.includes(reason), 'the private reason is not shown');
      }
    });

    it('refuses user info without user_id', async () => {
      idp.settings.userInfoMode = 'no_user_id';
      const { res } = await loginWithCode(DOMAIN, 'emp-100');
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'userinfo_user_id_missing');
    });

    it('refuses a token answer with an error member', async () => {
      idp.settings.tokenMode = 'error';
      const { res } = await loginWithCode(DOMAIN, 'emp-100');
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'token_error');
      assert.equal(idp.requestsTo('/userinfo').length, 0);
    });

    it('refuses a non-2xx token answer', async () => {
      idp.settings.tokenMode = 'http_error';
      const { res } = await loginWithCode(DOMAIN, 'emp-100');
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'token_http_error');
      assert.equal(idp.requestsTo('/userinfo').length, 0);
    });

    it('refuses a token answer without access_token', async () => {
      idp.settings.tokenMode = 'no_access_token';
      const { res } = await loginWithCode(DOMAIN, 'emp-100');
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'token_access_token_missing');
      assert.equal(idp.requestsTo('/userinfo').length, 0);
    });

    it('accepts token_type Bearer in any case (S-15)', async () => {
      for (const tokenType of ['bearer', 'BEARER', 'Bearer']) {
        idp.settings.tokenType = tokenType;
        const { res } = await loginWithCode(DOMAIN, 'emp-100');
        assert.equal(res.status, 303, `${tokenType}: ${res.text.slice(0, 300)}`);
      }
    });

    it('refuses a token answer whose token_type is not Bearer, or missing, before calling user info (S-15)', async () => {
      for (const tokenType of ['mac', 'DPoP', 'Bearer2', undefined]) {
        idp.reset();
        idp.settings.tokenType = tokenType;
        const { res } = await loginWithCode(DOMAIN, 'emp-100');
        await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'token_type_not_bearer');
        assert.equal(idp.requestsTo('/userinfo').length, 0, String(tokenType));
      }
    });

    it('refuses a code issued to another client (code injection)', async () => {
      const login = await startLogin(DOMAIN);
      const res = await callback(login, { code: idp.issueCode('emp-100', OTHER_CLIENT_ID) });
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'token_error');
      assert.equal(onlyRequest('/token').form.client_id, CLIENT_ID);
      assert.equal(idp.requestsTo('/userinfo').length, 0);
    });

    it('refuses a code used twice (the IdP answers invalid_grant)', async () => {
      const code = idp.issueCode('emp-100');
      const first = await callback(await startLogin(DOMAIN), { code });
      assert.equal(first.status, 303, first.text);
      const second = await callback(await startLogin(DOMAIN), { code });
      await assertRefused(second, 400, 'oauth_login_failed', DOMAIN, 'token_error');
    });

    it('fails when the IdP does not know the client (wrong client secret)', async () => {
      const { res } = await loginWithCode(DOMAIN_WRONG_SECRET, 'emp-100');
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN_WRONG_SECRET, 'token_error');
    });

    it('refuses a callback without code', async () => {
      const login = await startLogin(DOMAIN);
      const res = await withBinding(gw.http.get(`${login.redirectUri.pathname}${login.redirectUri.search}`), login.state);
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'code_missing');
      assert.equal(idp.requests.length, 0);
    });

    it('answers 502 idp_unavailable when the token endpoint is too slow (read timeout)', { timeout: 20_000 }, async () => {
      idp.settings.tokenDelayMs = 4000;
      const { res } = await loginWithCode(DOMAIN, 'emp-100');
      // The audit trail has the coarse class (a tenant administrator reads it); the operator's log the cause.
      await assertRefused(res, 502, 'idp_unavailable', DOMAIN, 'token_idp_unreachable');
      assert.match(String(refusalDetail('token_idp_unreachable')), /^token_idp_unreachable: read_timeout/);
      assert.equal(idp.requestsTo('/userinfo').length, 0);
    });

    it('does not follow a redirect from the token endpoint', { timeout: 20_000 }, async () => {
      idp.settings.tokenMode = 'redirect';
      const { res } = await loginWithCode(DOMAIN, 'emp-100');
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'token_redirect_refused');
      assert.equal(idp.requestsTo('/elsewhere').length, 0, 'the redirect target was never called');
      assert.equal(idp.requestsTo('/token').length, 1);
    });

    describe('an IdP whose TCP connect hangs', () => {
      let hole: BlackHole;
      before(async () => {
        hole = await startBlackHole();
        await gw.services.tenants.save(worksTenant(DOMAIN_DOWN, idp, {}, { tokenUrl: `${hole.url}/token`, userInfoUrl: `${hole.url}/userinfo` }));
      });
      after(async () => hole.close());

      it('answers 502 idp_unavailable (connect timeout)', { timeout: 20_000 }, async () => {
        const { res } = await loginWithCode(DOMAIN_DOWN, 'emp-100');
        await assertRefused(res, 502, 'idp_unavailable', DOMAIN_DOWN, 'token_idp_unreachable');
        assert.match(String(refusalDetail('token_idp_unreachable')), /^token_idp_unreachable: connect_timeout/);
      });
    });

    it('still serves after the slow and broken IdPs', async () => {
      assert.equal((await gw.http.get('/healthz')).status, 200);
      const { res } = await loginWithCode(DOMAIN, 'emp-100');
      assert.equal(res.status, 303, res.text);
    });
  });

  describe('state at the callback (S-17)', () => {
    it('refuses a callback without state', async () => {
      const res = await gw.http.get(`/oauth/callback/${DOMAIN}`).query({ code: idp.issueCode('emp-100') });
      await assertRefused(res, 400, 'login_transaction_invalid', DOMAIN, 'state_missing');
      assert.equal(idp.requests.length, 0, 'no token exchange without a transaction');
    });

    it('refuses a forged state', async () => {
      const forged = randomBytes(24).toString('base64url');
      assert.match(forged, STATE_RE);
      const res = await gw.http.get(`/oauth/callback/${DOMAIN}`).query({ state: forged, code: idp.issueCode('emp-100') });
      await assertRefused(res, 400, 'login_transaction_invalid', DOMAIN);
      assert.equal(idp.requests.length, 0);
    });

    it('refuses a replayed callback', async () => {
      const login = await startLogin(DOMAIN);
      const query = { code: idp.issueCode('emp-100') };
      const first = await callback(login, query);
      assert.equal(first.status, 303, first.text);
      const second = await callback(login, query);
      await assertRefused(second, 400, 'login_transaction_invalid', DOMAIN);
      assert.equal(idp.requestsTo('/token').length, 1, 'the replay never reaches the IdP');
    });

    it('refuses an expired transaction (30 min)', async () => {
      const login = await startLogin(DOMAIN);
      const saved = gw.clock.now();
      gw.clock.advance(30 * 60_000);
      try {
        const res = await callback(login, { code: idp.issueCode('emp-100') });
        await assertRefused(res, 400, 'login_transaction_invalid', DOMAIN, 'transaction_expired');
      } finally {
        gw.clock.set(saved);
      }
      assert.equal(idp.requests.length, 0);
    });

    it("refuses another tenant's state, and leaves that tenant's login intact", async () => {
      const login = await startLogin(DOMAIN2);
      const res = await callback(login, { code: idp.issueCode('emp-100') }, `/oauth/callback/${DOMAIN}`);
      await assertRefused(res, 400, 'login_transaction_invalid', DOMAIN);
      assert.equal(idp.requests.length, 0);
      const own = await callback(login, { code: idp.issueCode('emp-100') });
      assert.equal(own.status, 303, own.text);
      const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(own)!);
      assert.equal(me.body.member.id, 'm-w2-active');
    });

    it('turns error=access_denied from the IdP into a failed login with a retry link, never a loop', async () => {
      const login = await startLogin(DOMAIN);
      const res = await callback(login, { error: 'access_denied', error_description: 'The user cancelled' });
      await assertRefused(res, 400, 'oauth_login_failed', DOMAIN, 'idp_error');
      assert.match(res.text, /<a [^>]*href="\/d\/login\/works\.example"[^>]*>Try again<\/a>/);
      assert.equal(idp.requests.length, 0, 'no token exchange after an IdP error');
      const again = await callback(login, { code: idp.issueCode('emp-100') });
      await assertRefused(again, 400, 'login_transaction_invalid', DOMAIN);
    });
  });

  describe('member mapping (S-1 … S-3)', () => {
    it('refuses an unknown user with 403 member_not_found', async () => {
      const { res } = await loginWithCode(DOMAIN, 'emp-999');
      await assertRefused(res, 403, 'member_not_found', DOMAIN, 'member_not_found');
    });

    it('refuses a suspended member with 403 member_not_active', async () => {
      const { res } = await loginWithCode(DOMAIN, 'emp-101');
      await assertRefused(res, 403, 'member_not_active', DOMAIN, 'member_not_active');
    });

    it('matches the external key case-sensitively', async () => {
      const { res } = await loginWithCode(DOMAIN, 'EMP-100');
      await assertRefused(res, 403, 'member_not_found', DOMAIN, 'member_not_found');
    });
  });

  describe('session-check API (S-18)', () => {
    const check = (sessionKey: string, form: Record<string, string> = { ssoType: 'OAUTH' }) =>
      gw.http.post(`/login/check/${encodeURIComponent(sessionKey)}`).type('form').send(form);
    const SUCCESS = { message: 'success', code: '00' };
    const INVALID = { message: 'Invalid access', code: '12' };

    async function appLogin(userId = 'emp-100'): Promise<{ sessionKey: string; res: Awaited<ReturnType<typeof callback>> }> {
      const sessionKey = randomBytes(24).toString('base64url');
      sessionKeysUsed.push(sessionKey);
      const { res } = await loginWithCode(DOMAIN, userId, { accessUrl: TARGET, sessionKey });
      return { sessionKey, res };
    }

    /** An app login started and not yet come back: what the IdP sees while it may check (S-18). */
    async function appLoginInFlight(): Promise<{ sessionKey: string; login: StartedOAuthLogin }> {
      const sessionKey = randomBytes(24).toString('base64url');
      sessionKeysUsed.push(sessionKey);
      return { sessionKey, login: await startLogin(DOMAIN, { accessUrl: TARGET, sessionKey }) };
    }

    it('answers success once while the app login is in flight, then Invalid access; the login ends as an app session', async () => {
      const { sessionKey, login } = await appLoginInFlight();
      const first = await check(sessionKey);
      assert.equal(first.status, 200);
      assert.deepEqual(first.body, SUCCESS);
      const second = await check(sessionKey);
      assert.equal(second.status, 403);
      assert.deepEqual(second.body, INVALID);

      const res = await callback(login, { code: idp.issueCode('emp-100') });
      assert.equal(res.status, 303, res.text);
      assert.equal(res.headers.location, TARGET);
      assert.match(setCookieOf(res)!, new RegExp(`Max-Age=${APP_TTL_SECONDS}(;|$)`), 'app sessions last 30 days (S-10)');
      const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(res)!);
      assert.equal(me.body.session.clientKind, 'app');
      const after = await check(sessionKey);
      assert.deepEqual(after.body, INVALID, 'and not after the login came back');
    });

    it('answers Invalid access for the wrong ssoType or none', async () => {
      const { sessionKey } = await appLoginInFlight();
      const wrong = await check(sessionKey, { ssoType: 'SAML' });
      assert.equal(wrong.status, 403);
      assert.deepEqual(wrong.body, INVALID);
      const missing = await check(sessionKey, {});
      assert.equal(missing.status, 403);
      assert.deepEqual(missing.body, INVALID);
      const lower = await check(sessionKey, { ssoType: 'oauth' });
      assert.deepEqual(lower.body, INVALID);
      // None of them spent it.
      assert.deepEqual((await check(sessionKey)).body, SUCCESS);
    });

    it('answers Invalid access for unknown and malformed keys, and for a failed app login', async () => {
      for (const key of [randomBytes(24).toString('base64url'), 'short', 'x'.repeat(200), 'has space in it 123456', 'bad*key*bad*key*bad*key']) {
        const res = await check(key);
        assert.equal(res.status, 403, key);
        assert.deepEqual(res.body, INVALID, key);
      }
      const failed = await appLogin('emp-999');
      assert.equal(failed.res.status, 403);
      const res = await check(failed.sessionKey);
      assert.equal(res.status, 403);
      assert.deepEqual(res.body, INVALID);
    });

    it('rate-limits one client to 30 checks a minute (429 rate_limited)', async () => {
      // The window is a fixed minute of wall time: 61 calls put more than 30 into one window even
      // when they straddle a window boundary.
      const statuses: number[] = [];
      let limited: Awaited<ReturnType<typeof check>> | undefined;
      for (let i = 0; i < 61; i++) {
        const res = await check(randomBytes(24).toString('base64url'));
        statuses.push(res.status);
        if (res.status === 429) limited ??= res;
      }
      assert.ok(limited, `some call was limited: ${statuses.join(',')}`);
      assert.equal(errorCodeOf(limited), 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After is set');
      assert.ok(statuses.every((s) => s === 403 || s === 429), statuses.join(','));
      assert.ok(statuses.filter((s) => s === 403).length <= 60, 'at most 30 per window got through');
    });
  });

  describe('secrets', () => {
    it('stores the client secret sealed', async () => {
      const raw = await gw.store.get(keys.tenant(DOMAIN));
      assert.ok(raw);
      assert.ok(!raw.includes(CLIENT_SECRET), 'the plain secret is not stored');
      assert.ok(raw.includes('enc:v1:'), 'the secret is sealed');
      const tenant = await gw.services.tenants.find(DOMAIN);
      assert.equal(tenant?.sso.oauth?.clientSecret, CLIENT_SECRET, 'and opens again on read');
    });

    it('keeps the client secret, codes, access tokens and session keys out of the logs', () => {
      const text = gw.logText();
      assert.ok(text.length > 0, 'the gateway logged something');
      assert.ok(idp.issuedCodes.length > 10 && idp.issuedTokens.length > 5, 'the suite exercised the IdP');
      assert.ok(!text.includes(CLIENT_SECRET), 'client secret in logs');
      assert.ok(!text.includes('not-the-registered-secret'), 'client secret in logs');
      for (const code of idp.issuedCodes) assert.ok(!text.includes(code), `code ${code} in logs`);
      for (const token of idp.issuedTokens) assert.ok(!text.includes(token), `access token ${token} in logs`);
      for (const key of sessionKeysUsed) assert.ok(!text.includes(key), `sessionKey ${key} in logs`);
    });
  });
});
