import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  LOOPBACK_IDPS,
  SERVICE_ORIGIN,
  createGateway,
  postAcs,
  rememberLoginBinding,
  sessionCookieOf,
  standardTenants,
  validResponse,
  withBinding,
  type Gateway,
  type StartedLogin,
} from '../helpers/gateway.js';
import { idps } from '../helpers/keys.js';
import { oauthTenant, oidcTenant } from '../helpers/oauth-tenants.js';
import { callbackUrlOf, followAuthorization, startOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { startWorksIdp, type WorksIdp } from '../helpers/works-idp.js';

/**
 * S-18 from the IdP's side: while an app login is in flight, the IdP calls POST /login/check/{sessionKey}
 * (SAML: the AuthnRequest ID it received; OAuth: the `sessionKey` parameter it received) and gets 00
 * once, 12 on the repeat, and 12 once the login has come back. The route allows 30 checks a minute per
 * client, so each gateway here stays under that.
 */

const SUCCESS = { message: 'success', code: '00' };
const INVALID = { message: 'Invalid access', code: '12' };
const TARGET = `${SERVICE_ORIGIN}/board`;
const APP_LOGIN_URL = 'https://idp-a.example/app-login';
const NET = { timeout: 20_000 };

const newSessionKey = (): string => randomBytes(24).toString('base64url');

async function check(gw: Gateway, sessionKey: string, ssoType: string): Promise<{ status: number; body: unknown }> {
  const res = await gw.http.post(`/login/check/${encodeURIComponent(sessionKey)}`).type('form').send({ ssoType });
  return { status: res.status, body: res.body as unknown };
}

async function assertCheck(gw: Gateway, sessionKey: string, ssoType: string, expected: 'ok' | 'invalid', message: string): Promise<void> {
  const res = await check(gw, sessionKey, ssoType);
  assert.deepEqual(res, expected === 'ok' ? { status: 200, body: SUCCESS } : { status: 403, body: INVALID }, message);
}

describe('session-check API (S-18), as the IdP calls it', () => {
  describe('SAML: the sessionKey is the AuthnRequest ID', () => {
    let gw: Gateway;
    before(async () => {
      gw = await createGateway();
      const a = standardTenants()[0]!;
      await gw.services.tenants.save({ ...a.tenant, domain: 'app.example', sso: { ...a.tenant.sso, appLoginUrl: APP_LOGIN_URL } });
      for (const m of a.members) await gw.services.members.save('app.example', m);
    });
    after(async () => gw.close());
    beforeEach(() => gw.clock.set(Date.now()));

    /** The app's in-app browser starts a login; returns what the IdP receives. */
    async function beginAppLogin(sessionKey: string | undefined): Promise<StartedLogin> {
      const res = await gw.http.get('/d/login/app.example').query({ accessUrl: TARGET, ...(sessionKey ? { sessionKey } : {}) });
      assert.equal(res.status, 302, res.text);
      const redirect = new URL(res.headers.location as string);
      const relayState = redirect.searchParams.get('RelayState')!;
      const authnRequestXml = inflateRawSync(Buffer.from(redirect.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
      const requestId = /\sID="([^"]+)"/.exec(authnRequestXml)![1]!;
      const bindingCookie = rememberLoginBinding(res, relayState)!;
      return { relayState, requestId, redirect, authnRequestXml, bindingCookie };
    }

    it('answers 00 once during a live app login, 12 on the repeat and after the login came back', async () => {
      const login = await beginAppLogin(newSessionKey());
      assert.equal(login.redirect.origin + login.redirect.pathname, APP_LOGIN_URL, 'an app login goes to appLoginUrl');
      assert.equal(login.redirect.searchParams.get('userAgent'), 'LineWorks', 'and carries the app marker');
      await assertCheck(gw, login.requestId, 'SAML', 'ok', 'first check while the login is in flight');
      await assertCheck(gw, login.requestId, 'SAML', 'invalid', 'second check');
      const res = await postAcs(gw, 'app.example', validResponse(gw, 'app.example', idps.a, login, 'emp-001'), login.relayState);
      assert.equal(res.status, 303, res.text);
      const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(res)!);
      assert.equal(me.body.session.clientKind, 'app');
      await assertCheck(gw, login.requestId, 'SAML', 'invalid', 'after completion');
    });

    it('answers 12 after completion when the IdP never checked (completion deletes the record)', async () => {
      const login = await beginAppLogin(newSessionKey());
      const res = await postAcs(gw, 'app.example', validResponse(gw, 'app.example', idps.a, login, 'emp-001'), login.relayState);
      assert.equal(res.status, 303, res.text);
      await assertCheck(gw, login.requestId, 'SAML', 'invalid', 'after completion');
    });

    it('answers 12 once a refused login has come back, too', async () => {
      const login = await beginAppLogin(newSessionKey());
      const res = await postAcs(gw, 'app.example', validResponse(gw, 'app.example', idps.a, login, 'emp-999'), login.relayState);
      assert.equal(res.status, 403, res.text);
      await assertCheck(gw, login.requestId, 'SAML', 'invalid', 'after a refused login');
    });

    it('answers 12 for a web login, the wrong ssoType, the app sessionKey itself, and an unknown ID', async () => {
      const web = await beginAppLogin(undefined);
      assert.equal(web.redirect.searchParams.get('userAgent'), null, 'a web login carries no app marker');
      await assertCheck(gw, web.requestId, 'SAML', 'invalid', 'web login');

      const sessionKey = newSessionKey();
      const app = await beginAppLogin(sessionKey);
      await assertCheck(gw, app.requestId, 'OAUTH', 'invalid', 'wrong ssoType');
      await assertCheck(gw, sessionKey, 'SAML', 'invalid', "the app's own sessionKey is not what a SAML IdP sees");
      await assertCheck(gw, `_${randomBytes(20).toString('hex')}`, 'SAML', 'invalid', 'unknown ID');
      // None of these spent the real one.
      await assertCheck(gw, app.requestId, 'SAML', 'ok', 'the live login still checks once');
    });

    it('answers 12 once the login transaction has expired by the injected clock', async () => {
      const login = await beginAppLogin(newSessionKey());
      gw.clock.set(gw.clock.now() + 30 * 60_000);
      await assertCheck(gw, login.requestId, 'SAML', 'invalid', 'after 30 minutes');
    });

    it('answers 00 to exactly one of many concurrent checks', async () => {
      const login = await beginAppLogin(newSessionKey());
      const answers = await Promise.all(Array.from({ length: 8 }, () => check(gw, login.requestId, 'SAML')));
      assert.equal(answers.filter((a) => a.status === 200).length, 1, JSON.stringify(answers));
      assert.equal(answers.filter((a) => a.status === 403).length, 7);
    });
  });

  describe('OAuth: the sessionKey the IdP received', () => {
    let gw: Gateway;
    let works: WorksIdp;
    let op: OidcIdp;
    const WORKS_SECRET = `s3cret-${randomBytes(8).toString('hex')}`;

    before(async () => {
      works = await startWorksIdp({ clients: { 'bridge-client': WORKS_SECRET } });
      op = await startOidcIdp();
      gw = await createGateway({ overrides: LOOPBACK_IDPS });
      await gw.services.tenants.save(
        oauthTenant(
          'works-app.example',
          { profile: 'works', clientId: 'bridge-client', clientSecret: WORKS_SECRET, tokenUrl: works.tokenUrl, userInfoUrl: works.userInfoUrl, userKeyClaim: 'sub', scopes: ['openid'] },
          { webLoginUrl: `${works.url}/authorize`, appLoginUrl: `${works.url}/app-authorize` },
        ),
      );
      await gw.services.tenants.save(oidcTenant('oidc.example', op.issuer));
      for (const [domain, key] of [['works-app.example', 'emp-100'], ['oidc.example', 'emp-200']] as const) {
        await gw.services.members.save(domain, { id: `m-${domain}`, account: `a@${domain}`, name: 'A', externalKey: key, role: 'member', status: 'in_use' });
      }
    });
    after(async () => {
      await gw.services.outbound.close();
      await gw.close();
      await works.close();
      await op.close();
    });

    async function beginWorksLogin(sessionKey?: string): Promise<{ location: URL; redirectUri: URL; state: string }> {
      const res = await gw.http.get('/d/login/works-app.example').query({ accessUrl: TARGET, ...(sessionKey ? { sessionKey } : {}) });
      assert.equal(res.status, 302, res.text);
      const location = new URL(res.headers.location as string);
      const redirectUri = new URL(location.searchParams.get('redirect_uri')!);
      const state = redirectUri.searchParams.get('state')!;
      rememberLoginBinding(res, state);
      return { location, redirectUri, state };
    }

    const finishWorks = (login: { redirectUri: URL; state: string }, userId = 'emp-100') =>
      withBinding(gw.http.get(`${login.redirectUri.pathname}${login.redirectUri.search}&code=${works.issueCode(userId)}`), login.state);

    it('works profile: 00 once during the login, 12 on the repeat and after completion', async () => {
      const sessionKey = newSessionKey();
      const login = await beginWorksLogin(sessionKey);
      assert.equal(login.location.pathname, '/app-authorize');
      assert.equal(login.location.searchParams.get('userAgent'), 'LineWorks');
      assert.equal(login.location.searchParams.get('sessionKey'), sessionKey, 'the IdP receives the sessionKey it checks');
      await assertCheck(gw, sessionKey, 'SAML', 'invalid', 'wrong ssoType');
      await assertCheck(gw, sessionKey, 'OAUTH', 'ok', 'first check');
      await assertCheck(gw, sessionKey, 'OAUTH', 'invalid', 'second check');
      const res = await finishWorks(login);
      assert.equal(res.status, 303, res.text);
      await assertCheck(gw, sessionKey, 'OAUTH', 'invalid', 'after completion');
    });

    it('works profile: 12 after completion when the IdP never checked, and for an unknown key', async () => {
      const sessionKey = newSessionKey();
      const login = await beginWorksLogin(sessionKey);
      const res = await finishWorks(login);
      assert.equal(res.status, 303, res.text);
      await assertCheck(gw, sessionKey, 'OAUTH', 'invalid', 'after completion');
      await assertCheck(gw, newSessionKey(), 'OAUTH', 'invalid', 'unknown key');
    });

    it('works profile: 12 once the transaction has expired by the injected clock', async () => {
      gw.clock.set(Date.now());
      const sessionKey = newSessionKey();
      await beginWorksLogin(sessionKey);
      gw.clock.set(gw.clock.now() + 30 * 60_000 + 1);
      try {
        await assertCheck(gw, sessionKey, 'OAUTH', 'invalid', 'after 30 minutes');
      } finally {
        gw.clock.set(Date.now());
      }
    });

    it('oidc profile: the sessionKey and the marker go to the OP; 00 once during the login, 12 after', NET, async () => {
      gw.clock.set(Date.now());
      const sessionKey = newSessionKey();
      const res = await gw.http.get('/d/login/oidc.example').query({ accessUrl: TARGET, sessionKey });
      assert.equal(res.status, 302, res.text);
      const location = new URL(res.headers.location as string);
      const state = location.searchParams.get('state')!;
      rememberLoginBinding(res, state);
      assert.equal(location.searchParams.get('sessionKey'), sessionKey);
      assert.equal(location.searchParams.get('userAgent'), 'LineWorks');
      await assertCheck(gw, sessionKey, 'OAUTH', 'ok', 'first check');
      await assertCheck(gw, sessionKey, 'OAUTH', 'invalid', 'second check');
      // The real OP ignores the two parameters it does not know, and the login completes.
      const cb = await followAuthorization(location);
      assert.equal(cb.origin + cb.pathname, callbackUrlOf('oidc.example'));
      const done = await withBinding(gw.http.get(`/oauth/callback/oidc.example${cb.search}`), state);
      assert.equal(done.status, 303, done.text);
      await assertCheck(gw, sessionKey, 'OAUTH', 'invalid', 'after completion');
    });

    it('a web login (no sessionKey) is never confirmed', async () => {
      const login = await beginWorksLogin();
      assert.equal(login.location.searchParams.get('sessionKey'), null);
      assert.equal(login.location.searchParams.get('userAgent'), null);
      await assertCheck(gw, login.state, 'OAUTH', 'invalid', 'the state is not a sessionKey');
    });
  });
});
