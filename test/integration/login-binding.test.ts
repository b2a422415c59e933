/**
 * Login CSRF / session swap (issue finding 2). An attacker signs in at the IdP as themselves and makes a
 * victim's browser deliver the answer: their SAMLResponse + RelayState posted to /acs/{domain}, or their
 * code + state opened at /oauth/callback/{domain}. Every login transaction is bound to the browser that
 * started it (the `idpb_login` cookie; the transaction keeps its SHA-256), so the victim's browser —
 * with no cookie, or with its own from its own /d/login — is refused with 403 `login_not_bound`: no
 * session, no session cookie, no IdP call, no member touched, the private reason in the audit trail, and
 * a fresh-login link that is not the attacker's target. The attacker's own browser still signs in, and
 * one browser logging in from two tabs finishes both.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { TenantInput as Tenant } from '../../src/domain/tenant.js';
import { LOGIN_BINDING_COOKIE, loginBindingCookieSettings } from '../../src/http/cookies.js';
import { keys } from '../../src/store/index.js';
import { LOOPBACK_IDPS,
  SERVICE_ORIGIN,
  beginLogin,
  bindingCookieOf,
  createGateway,
  errorCodeOf,
  lastAuditReason,
  postAcs,
  rememberLoginBinding,
  sessionCookieOf,
  validResponse,
  withBinding,
  type Gateway,
} from '../helpers/gateway.js';
import { oidcTenant as oidcOAuthTenant, worksTenant as worksOAuthTenant } from '../helpers/oauth-tenants.js';
import { idps } from '../helpers/keys.js';
import { followAuthorization, startOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { startWorksIdp, type WorksIdp } from '../helpers/works-idp.js';

const NET = { timeout: 20_000 };
const SAML = 'a.example';
const WORKS = 'works.example';
const OIDC = 'oidc.example';
/** An allowlisted page the attacker chose for the victim to land on. */
const ATTACKER_TARGET = `${SERVICE_ORIGIN}/attacker-chosen-page`;
const VICTIM_TARGET = `${SERVICE_ORIGIN}/victim-page`;
const WORKS_CLIENT_SECRET = `s3cret-${randomBytes(16).toString('hex')}`;

type Res = { status: number; text: string; body?: unknown; headers: Record<string, unknown> };

const worksTenant = (idp: WorksIdp): Tenant => worksOAuthTenant(WORKS, { webLoginUrl: `${idp.url}/authorize`, tokenUrl: idp.tokenUrl, userInfoUrl: idp.userInfoUrl }, { clientId: 'bridge-client', clientSecret: WORKS_CLIENT_SECRET });
const oidcTenant = (issuer: string): Tenant => oidcOAuthTenant(OIDC, issuer);

const BINDING_RE = /^idpb_login=[A-Za-z0-9_-]{43}$/;

const setCookieLine = (res: Res, name: string): string | undefined => ((res.headers['set-cookie'] as string[] | undefined) ?? []).find((c) => c.startsWith(`${name}=`));

describe('login binding: a login finishes only in the browser that started it (finding 2)', () => {
  let gw: Gateway;
  let works: WorksIdp;
  let oidc: OidcIdp;

  before(async () => {
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
    works = await startWorksIdp({ clients: { 'bridge-client': WORKS_CLIENT_SECRET } });
    oidc = await startOidcIdp();
    await gw.services.tenants.save(worksTenant(works));
    await gw.services.members.save(WORKS, { id: 'm-w-attacker', account: 'attacker@works.example', name: 'Attacker', externalKey: 'emp-100', role: 'member', status: 'in_use' });
    await gw.services.tenants.save(oidcTenant(oidc.issuer));
    await gw.services.members.save(OIDC, { id: 'm-o-attacker', account: 'attacker@oidc.example', name: 'Attacker', externalKey: 'emp-200', role: 'member', status: 'in_use' });
  });
  beforeEach(() => works.reset());
  after(async () => {
    await gw.services.outbound.close();
    await works?.close();
    await oidc?.close();
    await gw.close();
  });

  const memberRecord = (domain: string, id: string): Promise<string | null> => gw.store.get(keys.member(domain, id));
  const sessionCount = (): Promise<number> => gw.countKeys('idpb:session:*');

  /**
   * The victim's browser was refused: 403 login_not_bound, a page (no redirect, no session cookie), the
   * private reason audited under the refusal type, a fresh start at /d/login/{domain} and not the
   * attacker's target, and no session made.
   */
  async function assertNotBound(res: Res, domain: string, reason: string, auditType: string, sessionsBefore: number): Promise<void> {
    assert.equal(res.status, 403, res.text.slice(0, 400));
    assert.equal(errorCodeOf(res), 'login_not_bound');
    assert.equal(sessionCookieOf(res), undefined, 'no session cookie');
    assert.equal(res.headers.location, undefined, 'a refusal is a page, not a redirect');
    assert.equal(await lastAuditReason(gw, domain), reason);
    const [latest] = await gw.services.audit.list(domain, 1);
    assert.equal(latest?.type, auditType);
    assert.match(res.text, /started in another browser/, 'the page says what happened in plain words');
    assert.match(res.text, new RegExp(`<a [^>]*href="/d/login/${domain.replace('.', '\\.')}"`), 'the page offers a fresh login');
    assert.ok(!res.text.includes('attacker-chosen-page'), "the attacker's target is not offered");
    assert.ok(!res.text.includes(reason), 'the private reason is not shown');
    assert.equal(await sessionCount(), sessionsBefore, 'no session was made');
  }

  describe('SAML: the attacker’s SAMLResponse posted from the victim’s browser', () => {
    it('is refused when the victim’s browser has no binding cookie; nothing happens, and the spent transaction stays spent', async () => {
      const attacker = await beginLogin(gw, SAML, ATTACKER_TARGET);
      const response = validResponse(gw, SAML, idps.a, attacker, 'emp-001');
      const member = await memberRecord(SAML, 'm-a-active');
      const sessions = await sessionCount();

      const res = await postAcs(gw, SAML, response, attacker.relayState, null);
      await assertNotBound(res, SAML, 'binding_cookie_missing', 'saml_response.rejected', sessions);
      assert.equal(await memberRecord(SAML, 'm-a-active'), member, 'the member was not touched');
      // Single use either way: not even the attacker's own browser can use that transaction any more.
      const again = await postAcs(gw, SAML, response, attacker.relayState);
      assert.equal(errorCodeOf(again), 'login_transaction_invalid');
      assert.equal(await lastAuditReason(gw, SAML), 'transaction_unknown_or_used');
    });

    it('is refused when the victim’s browser carries its own cookie from its own /d/login, and the victim’s own login still works', async () => {
      const victim = await beginLogin(gw, SAML, VICTIM_TARGET);
      const attacker = await beginLogin(gw, SAML, ATTACKER_TARGET);
      assert.notEqual(victim.bindingCookie, attacker.bindingCookie);
      const sessions = await sessionCount();

      const res = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, attacker, 'emp-001'), attacker.relayState, victim.bindingCookie);
      await assertNotBound(res, SAML, 'binding_mismatch', 'saml_response.rejected', sessions);

      const own = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, victim, 'emp-001'), victim.relayState, victim.bindingCookie);
      assert.equal(own.status, 303, own.text.slice(0, 300));
      assert.equal(own.headers.location, VICTIM_TARGET);
    });

    it('is refused with a malformed binding cookie', async () => {
      const attacker = await beginLogin(gw, SAML, ATTACKER_TARGET);
      const sessions = await sessionCount();
      const res = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, attacker, 'emp-001'), attacker.relayState, `${LOGIN_BINDING_COOKIE}=short`);
      await assertNotBound(res, SAML, 'binding_cookie_malformed', 'saml_response.rejected', sessions);
    });

    it('signs in the browser that started the login (the same request with the right cookie)', async () => {
      const attacker = await beginLogin(gw, SAML, ATTACKER_TARGET);
      assert.match(attacker.bindingCookie, BINDING_RE);
      const res = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, attacker, 'emp-001'), attacker.relayState, attacker.bindingCookie);
      assert.equal(res.status, 303, res.text.slice(0, 300));
      assert.equal(res.headers.location, ATTACKER_TARGET);
      assert.ok(sessionCookieOf(res));
    });

    it('refuses a transaction stored without a binding (before binding existed)', async () => {
      const login = await beginLogin(gw, SAML);
      const key = keys.loginTransaction(SAML, login.relayState);
      const stored = JSON.parse((await gw.store.get(key))!) as Record<string, unknown>;
      delete stored.browserBindingDigest;
      await gw.store.set(key, JSON.stringify(stored), { ttlMs: 60_000 });
      const sessions = await sessionCount();
      const res = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, login, 'emp-001'), login.relayState);
      await assertNotBound(res, SAML, 'transaction_unbound', 'saml_response.rejected', sessions);
    });
  });

  describe('the binding cookie', () => {
    it('is random, HttpOnly, Path=/, lives as long as a transaction, SameSite=None; Secure; the transaction keeps only its SHA-256; a failed start sets none', async () => {
      const login = await beginLogin(gw, SAML);
      const res = await gw.http.get(`/d/login/${SAML}`);
      const line = setCookieLine(res, LOGIN_BINDING_COOKIE)!;
      assert.ok(line, 'set on every login start');
      const attributes = line.split(';').slice(1).map((a) => a.trim().toLowerCase());
      assert.deepEqual([...attributes].sort(), ['httponly', 'max-age=1800', 'path=/', 'samesite=none', 'secure']);
      const raw = login.bindingCookie.slice(`${LOGIN_BINDING_COOKIE}=`.length);
      assert.match(raw, /^[A-Za-z0-9_-]{43}$/, '256 bits, base64url');
      assert.notEqual(bindingCookieOf(res), login.bindingCookie, 'a browser without one gets a new value');

      const stored = (await gw.store.get(keys.loginTransaction(SAML, login.relayState)))!;
      assert.ok(!stored.includes(raw), 'the raw value is never stored');
      assert.equal((JSON.parse(stored) as { browserBindingDigest?: string }).browserBindingDigest, createHash('sha256').update(raw).digest('base64url'));

      // A start that fails (here: a foreign accessUrl) creates no transaction and sets no cookie.
      const refused = await gw.http.get(`/d/login/${SAML}`).query({ accessUrl: 'https://evil.example/' });
      assert.equal(refused.status, 400);
      assert.equal(setCookieLine(refused, LOGIN_BINDING_COOKIE), undefined);
    });

    it('falls back to SameSite=Lax without Secure only for a plain-http PUBLIC_URL on a non-loopback host', () => {
      assert.deepEqual(loginBindingCookieSettings('https://sso.example.com', 1800), { secure: true, sameSite: 'none', maxAgeSeconds: 1800 });
      for (const local of ['http://localhost:3000', 'http://127.0.0.1:8080', 'http://[::1]:3000']) {
        assert.deepEqual(loginBindingCookieSettings(local, 600), { secure: true, sameSite: 'none', maxAgeSeconds: 600 }, local);
      }
      assert.deepEqual(loginBindingCookieSettings('http://gateway.dev.example:3000', 1800), { secure: false, sameSite: 'lax', maxAgeSeconds: 1800 });
    });

    it('is SameSite=Lax without Secure on a plain-http dev host', async () => {
      const dev = await createGateway({ overrides: { publicUrl: 'http://gateway.dev.example:3000', serviceOrigins: [SERVICE_ORIGIN] } });
      try {
        const res = await dev.http.get(`/d/login/${SAML}`);
        assert.equal(res.status, 302);
        const attributes = setCookieLine(res, LOGIN_BINDING_COOKIE)!.split(';').slice(1).map((a) => a.trim().toLowerCase());
        assert.ok(attributes.includes('samesite=lax'), attributes.join('; '));
        assert.ok(!attributes.includes('secure'), attributes.join('; '));
      } finally {
        await dev.services.outbound.close();
        await dev.close();
      }
    });
  });

  describe('two tabs in one browser', () => {
    it('SAML: the second start reuses the browser’s value, and both logins finish, in either order', async () => {
      const first = await beginLogin(gw, SAML, `${SERVICE_ORIGIN}/tab-1`);
      const second = await beginLogin(gw, SAML, `${SERVICE_ORIGIN}/tab-2`, first.bindingCookie);
      assert.match(first.bindingCookie, BINDING_RE);
      assert.equal(second.bindingCookie, first.bindingCookie, 'the browser keeps one value');
      const browser = first.bindingCookie;
      const two = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, second, 'emp-001'), second.relayState, browser);
      assert.equal(two.status, 303, two.text.slice(0, 300));
      assert.equal(two.headers.location, `${SERVICE_ORIGIN}/tab-2`);
      const one = await postAcs(gw, SAML, validResponse(gw, SAML, idps.a, first, 'emp-001'), first.relayState, browser);
      assert.equal(one.status, 303, one.text.slice(0, 300));
      assert.equal(one.headers.location, `${SERVICE_ORIGIN}/tab-1`);
    });

    it('OIDC: two starts in one browser, both complete at the real IdP', NET, async () => {
      const a = await gw.http.get(`/d/login/${OIDC}`).query({ accessUrl: `${SERVICE_ORIGIN}/tab-1` });
      const browser = bindingCookieOf(a)!;
      const b = await gw.http.get(`/d/login/${OIDC}`).query({ accessUrl: `${SERVICE_ORIGIN}/tab-2` }).set('Cookie', browser);
      assert.equal(bindingCookieOf(b), browser);
      const cbA = await followAuthorization(a.headers.location as string);
      const cbB = await followAuthorization(b.headers.location as string);
      const doneB = await gw.http.get(`/oauth/callback/${OIDC}${cbB.search}`).set('Cookie', browser);
      assert.equal(doneB.status, 303, doneB.text.slice(0, 300));
      assert.equal(doneB.headers.location, `${SERVICE_ORIGIN}/tab-2`);
      const doneA = await gw.http.get(`/oauth/callback/${OIDC}${cbA.search}`).set('Cookie', browser);
      assert.equal(doneA.status, 303, doneA.text.slice(0, 300));
      assert.equal(doneA.headers.location, `${SERVICE_ORIGIN}/tab-1`);
    });
  });

  describe('OAuth `works` profile: the attacker’s code + state opened in the victim’s browser', () => {
    /** /d/login in a browser (a cookie, or none), and the callback URL the IdP sends it back to with the attacker's code. */
    async function startWorks(target: string, cookie?: string): Promise<{ callbackPath: string; state: string; binding: string }> {
      const start = gw.http.get(`/d/login/${WORKS}`).query({ accessUrl: target });
      const res = await (cookie ? start.set('Cookie', cookie) : start);
      assert.equal(res.status, 302, res.text.slice(0, 300));
      const redirectUri = new URL(new URL(res.headers.location as string).searchParams.get('redirect_uri')!);
      const state = redirectUri.searchParams.get('state')!;
      const binding = rememberLoginBinding(res, state)!;
      return { callbackPath: `${redirectUri.pathname}${redirectUri.search}&code=${works.issueCode('emp-100')}`, state, binding };
    }

    it('is refused without the cookie, and the code is never redeemed', async () => {
      const attacker = await startWorks(ATTACKER_TARGET);
      const member = await memberRecord(WORKS, 'm-w-attacker');
      const sessions = await sessionCount();
      const res = await withBinding(gw.http.get(attacker.callbackPath), attacker.state, null);
      await assertNotBound(res, WORKS, 'binding_cookie_missing', 'oauth_callback.rejected', sessions);
      assert.equal(works.requests.length, 0, 'no token or user-info call');
      assert.equal(await memberRecord(WORKS, 'm-w-attacker'), member, 'the member was not touched');
    });

    it('is refused with the victim’s own cookie; the attacker’s browser signs in', async () => {
      const victim = await startWorks(VICTIM_TARGET);
      const attacker = await startWorks(ATTACKER_TARGET);
      const sessions = await sessionCount();
      const res = await withBinding(gw.http.get(attacker.callbackPath), attacker.state, victim.binding);
      await assertNotBound(res, WORKS, 'binding_mismatch', 'oauth_callback.rejected', sessions);
      assert.equal(works.requests.length, 0);

      const fresh = await startWorks(ATTACKER_TARGET);
      const ok = await withBinding(gw.http.get(fresh.callbackPath), fresh.state, fresh.binding);
      assert.equal(ok.status, 303, ok.text.slice(0, 300));
      assert.equal(ok.headers.location, ATTACKER_TARGET);
      assert.ok(sessionCookieOf(ok));
    });
  });

  describe('OIDC: the attacker’s callback from a real OpenID Provider opened in the victim’s browser', () => {
    async function startOidc(target: string): Promise<{ callback: URL; binding: string }> {
      const res = await gw.http.get(`/d/login/${OIDC}`).query({ accessUrl: target });
      assert.equal(res.status, 302, res.text.slice(0, 300));
      const binding = bindingCookieOf(res)!;
      assert.ok(binding);
      // The attacker completes the login at the IdP as themselves.
      return { callback: await followAuthorization(res.headers.location as string), binding };
    }
    const open = (cb: URL, cookie: string | null) => withBinding(gw.http.get(`/oauth/callback/${OIDC}${cb.search}`), undefined, cookie);

    it('is refused without the cookie and with the victim’s own; the attacker’s own browser signs in', NET, async () => {
      const member = await memberRecord(OIDC, 'm-o-attacker');
      const attacker = await startOidc(ATTACKER_TARGET);
      let sessions = await sessionCount();
      await assertNotBound(await open(attacker.callback, null), OIDC, 'binding_cookie_missing', 'oauth_callback.rejected', sessions);

      const victim = await startOidc(VICTIM_TARGET);
      const attacker2 = await startOidc(ATTACKER_TARGET);
      sessions = await sessionCount();
      await assertNotBound(await open(attacker2.callback, victim.binding), OIDC, 'binding_mismatch', 'oauth_callback.rejected', sessions);
      assert.equal(await memberRecord(OIDC, 'm-o-attacker'), member, 'the member was not touched');

      const attacker3 = await startOidc(ATTACKER_TARGET);
      const ok = await open(attacker3.callback, attacker3.binding);
      assert.equal(ok.status, 303, ok.text.slice(0, 300));
      assert.equal(ok.headers.location, ATTACKER_TARGET);
      assert.ok(sessionCookieOf(ok));
    });
  });
});
