import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { idps } from '../../helpers/keys.js';
import {
  PUBLIC_URL,
  SERVICE_ORIGIN,
  SP_ENTITY_ID,
  acsUrlOf,
  b64,
  beginLogin,
  bindingCookieOf,
  createGateway,
  errorCodeOf,
  lastAuditReason,
  postAcs,
  rememberLoginBinding,
  responseSpec,
  sessionCookieOf,
  signed,
  validResponse,
  type Gateway,
} from '../../helpers/gateway.js';

describe('SAML login, end to end (S-4, S-7, S-8, S-10)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  after(async () => gw.close());

  it('sends an AuthnRequest with the S-7 fields and an opaque RelayState', async () => {
    const login = await beginLogin(gw, 'a.example', `${SERVICE_ORIGIN}/board?x=1`);
    assert.equal(login.redirect.origin + login.redirect.pathname, idps.a.ssoUrl);
    assert.match(login.relayState, /^[A-Za-z0-9_-]{32}$/);
    assert.ok(!login.relayState.includes('board'), 'the target never travels in RelayState (S-6)');
    const xml = login.authnRequestXml;
    assert.match(xml, /ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"/);
    assert.match(xml, new RegExp(`AssertionConsumerServiceURL="${acsUrlOf('a.example')}"`));
    assert.match(xml, /IssueInstant="/);
    assert.match(xml, new RegExp(`<saml:Issuer[^>]*>${SP_ENTITY_ID}</saml:Issuer>`));
    assert.match(xml, /Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"/);
    const again = await beginLogin(gw, 'a.example');
    assert.notEqual(again.requestId, login.requestId, 'each AuthnRequest has a unique ID');
  });

  it('passes worksId on to the IdP as a login hint', async () => {
    const res = await gw.http.get('/d/login/a.example').query({ accessUrl: `${SERVICE_ORIGIN}/x`, worksId: 'emp-001' });
    assert.equal(res.status, 302);
    assert.equal(new URL(res.headers.location as string).searchParams.get('worksId'), 'emp-001');
  });

  it('logs in, lands at exactly the accessUrl with 303, and /session names the member', async () => {
    const target = `${SERVICE_ORIGIN}/board/list?folder=42&q=a%20b`;
    const login = await beginLogin(gw, 'a.example', target);
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 303, res.text);
    assert.equal(res.headers.location, target);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie, 'a session cookie is set');
    const setCookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('idpb_session=') && !c.startsWith('idpb_session=;'))!;
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Lax/);
    assert.match(setCookie, /Secure/, 'PUBLIC_URL is https, so the cookie is Secure');
    assert.match(setCookie, /Max-Age=86400/, 'web sessions last 24 h (S-10)');

    const me = await gw.http.get('/session').set('Cookie', cookie);
    assert.equal(me.status, 200);
    assert.equal(me.body.member.id, 'm-a-active');
    assert.equal(me.body.member.account, 'active@a.example');
    assert.equal(me.body.session.authMethod, 'saml');
    const audit = await gw.services.audit.list('a.example', 1);
    assert.equal(audit[0]?.type, 'login.succeeded');
  });

  it('accepts a response signed only on the assertion', async () => {
    const login = await beginLogin(gw, 'a.example');
    const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a, 'assertion');
    const res = await postAcs(gw, 'a.example', b64(xml), login.relayState);
    assert.equal(res.status, 303, res.text);
  });

  it('maps by account case-insensitively in account mode (S-2)', async () => {
    const login = await beginLogin(gw, 'b.example');
    const res = await postAcs(gw, 'b.example', validResponse(gw, 'b.example', idps.b, login, 'USER1@b.EXAMPLE'), login.relayState);
    assert.equal(res.status, 303, res.text);
  });

  it('matches external keys case-sensitively (S-2)', async () => {
    const login = await beginLogin(gw, 'a.example');
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'EMP-001'), login.relayState);
    assert.equal(res.status, 403);
    assert.equal(errorCodeOf(res), 'member_not_found');
    assert.equal(sessionCookieOf(res), undefined);
  });

  it('refuses members that are not in_use (S-3), pending included', async () => {
    for (const key of ['emp-002', 'emp-003']) {
      const login = await beginLogin(gw, 'a.example');
      const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, key), login.relayState);
      assert.equal(res.status, 403);
      assert.equal(errorCodeOf(res), 'member_not_active');
      assert.equal(sessionCookieOf(res), undefined);
    }
    assert.equal(await lastAuditReason(gw, 'a.example'), 'member_not_active');
  });

  it('accepts either of two registered certificates (rollover) and honours SessionNotOnOrAfter with setExpireTime (S-10)', async () => {
    for (const idp of [idps.a, idps.aNext]) {
      const login = await beginLogin(gw, 'rollover.example');
      const res = await postAcs(
        gw,
        'rollover.example',
        validResponse(gw, 'rollover.example', idp, login, 'emp-001', { sessionNotOnOrAfter: gw.clock.now() + 2 * 3600_000 }),
        login.relayState,
      );
      assert.equal(res.status, 303, res.text);
      const setCookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('idpb_session=') && !c.startsWith('idpb_session=;'))!;
      assert.match(setCookie, /Max-Age=7200/);
    }
  });

  it('sends a login without accessUrl to the default service URL', async () => {
    const res = await gw.http.get('/d/login/a.example');
    rememberLoginBinding(res);
    const relayState = new URL(res.headers.location as string).searchParams.get('RelayState')!;
    const requestId = /\sID="([^"]+)"/.exec((await import('node:zlib')).inflateRawSync(Buffer.from(new URL(res.headers.location as string).searchParams.get('SAMLRequest')!, 'base64')).toString())![1]!;
    const out = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, { relayState, requestId } as never, 'emp-001'), relayState);
    assert.equal(out.status, 303);
    assert.equal(out.headers.location, `${SERVICE_ORIGIN}/home`);
  });

  it('redirects tenants without SSO to the password login page with the target (S-4)', async () => {
    const res = await gw.http.get('/d/login/nosso.example').query({ accessUrl: `${SERVICE_ORIGIN}/mail` });
    assert.equal(res.status, 302);
    const loc = new URL(res.headers.location as string, PUBLIC_URL);
    assert.equal(loc.pathname, '/d/password-login/nosso.example');
    assert.equal(loc.searchParams.get('accessUrl'), `${SERVICE_ORIGIN}/mail`);
    assert.equal(bindingCookieOf(res), undefined, 'no login transaction, so no login binding cookie');
  });

  it('answers 404 tenant_not_found for unknown or malformed domains', async () => {
    for (const d of ['nope.example', 'UPPER..example', '%2e%2e', 'a'.repeat(300)]) {
      const res = await gw.http.get(`/d/login/${d}`);
      assert.equal(res.status, 404, d);
      assert.equal(errorCodeOf(res), 'tenant_not_found');
    }
  });

  it('ends the session on /d/logout and redirects only inside logoutRedirectDomains (S-19)', async () => {
    const login = await beginLogin(gw, 'a.example');
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001'), login.relayState);
    const cookie = sessionCookieOf(res)!;
    const out = await gw.http.get('/d/logout').query({ redirect_uri: 'https://x.portal.a.example/bye' }).set('Cookie', cookie);
    assert.equal(out.status, 302);
    assert.equal(out.headers.location, 'https://x.portal.a.example/bye');
    assert.equal((await gw.http.get('/session').set('Cookie', cookie)).status, 401);

    const login2 = await beginLogin(gw, 'a.example');
    const cookie2 = sessionCookieOf(await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login2, 'emp-001'), login2.relayState))!;
    const evil = await gw.http.get('/d/logout').query({ redirect_uri: 'https://evil.example/a.example' }).set('Cookie', cookie2);
    assert.equal(evil.status, 200, 'a host outside the list gets the neutral signed-out page');
    assert.match(evil.text, /signed out/i);
    assert.equal((await gw.http.get('/session').set('Cookie', cookie2)).status, 401);
  });

  it('answers GET /session with 401 not_authenticated without a session', async () => {
    const res = await gw.http.get('/session');
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'not_authenticated');
    const forged = await gw.http.get('/session').set('Cookie', 'idpb_session=' + 'A'.repeat(43));
    assert.equal(forged.status, 401);
  });
});
