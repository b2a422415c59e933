import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LOOPBACK_IDPS, PUBLIC_URL, SERVICE_ORIGIN, createGateway, errorCodeOf, lastAuditReason, rememberLoginBinding, sessionCookieOf, withBinding, type Gateway } from '../../helpers/gateway.js';
import { oidcTenant } from '../../helpers/oauth-tenants.js';
import {
  BRIDGE_CLIENT_ID,
  BRIDGE_CLIENT_SECRET,
  OTHER_CLIENT_ID,
  OTHER_REDIRECT_URI,
  callbackUrlOf,
  followAuthorization,
  foreignRsaKey,
  pkcePair,
  startFakeOidcIdp,
  startOidcIdp,
  type FakeOidcIdp,
  type OidcIdp,
} from '../../helpers/oidc-idp.js';

const NET = { timeout: 20_000 };
const TARGET = `${SERVICE_ORIGIN}/board/list?folder=42&q=a%20b`;


interface Started {
  /** The authorization URL the gateway sent the browser to. */
  location: URL;
  state: string;
  nonce: string;
}

describe('OIDC profile against a real OpenID Provider and a crafted one (S-16, S-17)', () => {
  let gw: Gateway;
  let idp: OidcIdp;
  /** Advertises RS256 only, like most IdPs. */
  let fake: FakeOidcIdp;
  /** Also lists HS256 and none in its metadata. */
  let lax: FakeOidcIdp;

  before(async () => {
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
    idp = await startOidcIdp({ extraRedirectUris: [callbackUrlOf('oidc2.example')] });
    fake = await startFakeOidcIdp();
    lax = await startFakeOidcIdp({ idTokenAlgs: ['RS256', 'HS256', 'none'] });
    const tenants: Array<[string, string]> = [
      ['oidc.example', idp.issuer],
      ['oidc2.example', idp.issuer],
      ['fake.example', fake.issuer],
      ['lax.example', lax.issuer],
    ];
    for (const [domain, issuer] of tenants) {
      await gw.services.tenants.save(oidcTenant(domain, issuer));
      await gw.services.members.save(domain, { id: `m-${domain}-200`, account: `emp200@${domain}`, name: 'Employee 200', externalKey: 'emp-200', role: 'member', status: 'in_use' });
      await gw.services.members.save(domain, { id: `m-${domain}-201`, account: `emp201@${domain}`, name: 'Employee 201', externalKey: 'emp-201', role: 'member', status: 'suspended' });
    }
  });

  // Tests that move the gateway's clock put it back here, so every test starts at the real time.
  beforeEach(() => gw.clock.set(Date.now()));

  after(async () => {
    await gw.services.outbound.close();
    await idp?.close();
    await fake?.close();
    await lax?.close();
    await gw.close();
  });

  async function start(domain: string, accessUrl = TARGET): Promise<Started> {
    const res = await gw.http.get(`/d/login/${domain}`).query({ accessUrl });
    assert.equal(res.status, 302, res.text);
    const location = new URL(res.headers.location as string);
    const state = location.searchParams.get('state');
    const nonce = location.searchParams.get('nonce');
    assert.ok(state && nonce, 'state and nonce in the authorization request');
    assert.ok(rememberLoginBinding(res, state), 'the login start sets the binding cookie');
    return { location, state, nonce };
  }

  /** GET the gateway's callback with a query (a URL from the IdP, or parameters), in the browser that started the login its state names. */
  function callback(domain: string, query: URL | Record<string, string>): ReturnType<Gateway['http']['get']> {
    const search = query instanceof URL ? query.search.slice(1) : new URLSearchParams(query).toString();
    return withBinding(gw.http.get(`/oauth/callback/${domain}?${search}`), new URLSearchParams(search).get('state') ?? undefined);
  }

  async function assertRefused(
    res: { status: number; text: string; body?: unknown; headers: Record<string, unknown> },
    domain: string,
    status: number,
    code: string,
    reason: string,
  ): Promise<void> {
    assert.equal(res.status, status, res.text.slice(0, 500));
    assert.equal(errorCodeOf(res), code);
    assert.equal(await lastAuditReason(gw, domain), reason);
    assert.equal(sessionCookieOf(res), undefined, 'no session on a refused login');
    assert.equal(res.headers.location, undefined, 'a refusal is a page, not a redirect');
  }

  /** A code issued by the real IdP for `clientId`, obtained by playing the browser directly. */
  async function codeFromIdp(params: Record<string, string>): Promise<URL> {
    const url = new URL(`${idp.issuer}/auth`);
    for (const [k, v] of Object.entries({ response_type: 'code', scope: 'openid', ...params })) url.searchParams.set(k, v);
    return followAuthorization(url);
  }

  describe('the authorization request (S-16)', () => {
    it('carries response_type=code, client_id, redirect_uri, openid, PKCE S256, an opaque state and a nonce', NET, async () => {
      const a = await start('oidc.example');
      assert.equal(a.location.origin + a.location.pathname, `${idp.issuer}/auth`);
      const q = a.location.searchParams;
      assert.equal(q.get('response_type'), 'code');
      assert.equal(q.get('client_id'), BRIDGE_CLIENT_ID);
      assert.equal(q.get('redirect_uri'), `${PUBLIC_URL}/oauth/callback/oidc.example`);
      assert.ok(q.get('scope')!.split(' ').includes('openid'));
      assert.match(q.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(q.get('code_challenge_method'), 'S256');
      assert.match(a.state, /^[A-Za-z0-9_-]{32}$/);
      assert.ok(!a.state.includes('board') && !a.location.href.includes(encodeURIComponent(TARGET)), 'the target never travels to the IdP (S-6)');
      assert.ok(a.nonce.length >= 32, 'a nonce with enough entropy');
      assert.equal(q.get('client_secret'), null, 'the secret never travels through the browser');

      const b = await start('oidc.example');
      assert.notEqual(b.state, a.state);
      assert.notEqual(b.nonce, a.nonce);
      assert.notEqual(b.location.searchParams.get('code_challenge'), q.get('code_challenge'));
    });
  });

  describe('login against the real IdP', () => {
    it('logs in: 303 to exactly the accessUrl, a session cookie, and /session names the member', NET, async () => {
      const login = await start('oidc.example');
      const cb = await followAuthorization(login.location);
      assert.equal(cb.origin + cb.pathname, callbackUrlOf('oidc.example'));
      assert.equal(cb.searchParams.get('state'), login.state);
      assert.equal(cb.searchParams.get('iss'), idp.issuer, 'the IdP sends RFC 9207 iss');
      assert.ok(cb.searchParams.get('code'));

      const res = await callback('oidc.example', cb);
      assert.equal(res.status, 303, res.text);
      assert.equal(res.headers.location, TARGET);
      const cookie = sessionCookieOf(res);
      assert.ok(cookie, 'a session cookie is set');
      const me = await gw.http.get('/session').set('Cookie', cookie);
      assert.equal(me.status, 200);
      assert.equal(me.body.member.id, 'm-oidc.example-200');
      assert.equal(me.body.member.account, 'emp200@oidc.example');
      assert.equal(me.body.session.authMethod, 'oauth');
      const [audit] = await gw.services.audit.list('oidc.example', 1);
      assert.equal(audit?.type, 'login.succeeded');
    });

    it('refuses an unknown subject with 403 member_not_found', NET, async () => {
      idp.nextLogin('nobody');
      const cb = await followAuthorization((await start('oidc.example')).location);
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 403, 'member_not_found', 'member_not_found');
    });

    it('refuses a suspended member with 403 member_not_active', NET, async () => {
      idp.nextLogin('emp-201');
      const cb = await followAuthorization((await start('oidc.example')).location);
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 403, 'member_not_active', 'member_not_active');
    });

    it('turns error=access_denied from the IdP into a failed login with a retry link, never a loop', NET, async () => {
      idp.nextLogin({ error: 'access_denied', error_description: 'The user cancelled' });
      const login = await start('oidc.example');
      const cb = await followAuthorization(login.location);
      assert.equal(cb.origin + cb.pathname, callbackUrlOf('oidc.example'));
      assert.equal(cb.searchParams.get('error'), 'access_denied');
      assert.equal(cb.searchParams.get('state'), login.state);
      const res = await callback('oidc.example', cb);
      await assertRefused(res, 'oidc.example', 400, 'oauth_login_failed', 'idp_error');
      assert.match(res.text, /href="\/d\/login\/oidc\.example"/, 'the page offers a fresh start');
      // The transaction is spent: the same answer again is no longer a live login.
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'login_transaction_invalid', 'transaction_unknown_or_used');
    });
  });

  describe('state (S-17)', () => {
    it('refuses a callback without state', NET, async () => {
      await assertRefused(await callback('oidc.example', { code: 'abc', iss: idp.issuer }), 'oidc.example', 400, 'login_transaction_invalid', 'state_missing');
      await assertRefused(await callback('oidc.example', { code: 'abc', state: '', iss: idp.issuer }), 'oidc.example', 400, 'login_transaction_invalid', 'state_missing');
    });

    it('refuses a forged state, with a real code from the IdP', NET, async () => {
      const cb = await followAuthorization((await start('oidc.example')).location);
      cb.searchParams.set('state', randomBytes(24).toString('base64url'));
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'login_transaction_invalid', 'transaction_unknown_or_used');
      cb.searchParams.set('state', 'not-a-transaction-id');
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'login_transaction_invalid', 'transaction_id_malformed');
    });

    it('refuses a replayed callback after a successful login', NET, async () => {
      const cb = await followAuthorization((await start('oidc.example')).location);
      assert.equal((await callback('oidc.example', cb)).status, 303);
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'login_transaction_invalid', 'transaction_unknown_or_used');
    });

    it('refuses a state older than 30 minutes by the injected clock', NET, async () => {
      const cb = await followAuthorization((await start('oidc.example')).location);
      gw.clock.advance(30 * 60_000);
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'login_transaction_invalid', 'transaction_expired');
    });

    it("refuses another tenant's state, and leaves that tenant's login intact", NET, async () => {
      const cb = await followAuthorization((await start('oidc2.example')).location);
      assert.equal(cb.origin + cb.pathname, callbackUrlOf('oidc2.example'));
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'login_transaction_invalid', 'transaction_unknown_or_used');
      const own = await callback('oidc2.example', cb);
      assert.equal(own.status, 303, own.text);
    });
  });

  describe('code injection and PKCE (S-16)', () => {
    it("refuses a code issued to another client ('other-client')", NET, async () => {
      const own = await start('oidc.example');
      const { challenge } = pkcePair();
      const stolen = await codeFromIdp({
        client_id: OTHER_CLIENT_ID,
        redirect_uri: OTHER_REDIRECT_URI,
        state: 'other-state',
        nonce: own.nonce,
        code_challenge: challenge,
        code_challenge_method: 'S256',
      });
      assert.equal(stolen.origin + stolen.pathname, OTHER_REDIRECT_URI);
      const res = await callback('oidc.example', { code: stolen.searchParams.get('code')!, state: own.state, iss: idp.issuer });
      await assertRefused(res, 'oidc.example', 400, 'oauth_login_failed', 'token_error');
    });

    it("refuses login A's code delivered with login B's state (PKCE verifier mismatch)", NET, async () => {
      const a = await start('oidc.example');
      const cbA = await followAuthorization(a.location);
      const b = await start('oidc.example');
      const res = await callback('oidc.example', { code: cbA.searchParams.get('code')!, state: b.state, iss: idp.issuer });
      await assertRefused(res, 'oidc.example', 400, 'oauth_login_failed', 'token_error');
    });

    it('always sends S256 and the matching verifier, with the secret in the body (client_secret_post)', NET, async () => {
      const login = await start('fake.example');
      assert.equal(login.location.searchParams.get('code_challenge_method'), 'S256');
      const challenge = login.location.searchParams.get('code_challenge');
      const before = fake.tokenRequests.length;
      fake.nextIdToken(() => fake.sign(fake.claims(login.nonce, gw.clock.now())));
      const res = await callback('fake.example', { code: 'code-1', state: login.state, iss: fake.issuer });
      assert.equal(res.status, 303, res.text);
      assert.equal(res.headers.location, TARGET);
      assert.equal(fake.tokenRequests.length, before + 1);
      const { form, headers } = fake.tokenRequests.at(-1)!;
      assert.equal(form.get('grant_type'), 'authorization_code');
      assert.equal(form.get('code'), 'code-1');
      assert.equal(form.get('redirect_uri'), callbackUrlOf('fake.example'));
      assert.equal(form.get('client_id'), BRIDGE_CLIENT_ID);
      assert.equal(form.get('client_secret'), BRIDGE_CLIENT_SECRET);
      assert.equal(headers.authorization, undefined);
      const verifier = form.get('code_verifier');
      assert.ok(verifier && /^[A-Za-z0-9._~-]{43,128}$/.test(verifier));
      assert.equal(createHash('sha256').update(verifier).digest('base64url'), challenge, 'S256(verifier) is the challenge sent');
    });

    it('cannot redeem a code the IdP issued without PKCE', NET, async () => {
      const own = await start('oidc.example');
      const cb = await codeFromIdp({
        client_id: BRIDGE_CLIENT_ID,
        redirect_uri: callbackUrlOf('oidc.example'),
        state: own.state,
        nonce: own.nonce,
      });
      assert.equal(cb.origin + cb.pathname, callbackUrlOf('oidc.example'));
      assert.ok(cb.searchParams.get('code'), 'the IdP issued a code without PKCE');
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'oauth_login_failed', 'token_error');
    });
  });

  describe('mix-up (RFC 9207)', () => {
    it('refuses a callback whose iss names another IdP, or lacks iss though the IdP sends it', NET, async () => {
      const cb = await followAuthorization((await start('oidc.example')).location);
      cb.searchParams.set('iss', fake.issuer);
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'oauth_login_failed', 'oidc_response_invalid');

      const cb2 = await followAuthorization((await start('oidc.example')).location);
      cb2.searchParams.delete('iss');
      await assertRefused(await callback('oidc.example', cb2), 'oidc.example', 400, 'oauth_login_failed', 'oidc_response_invalid');
    });
  });

  describe('ID token validation (S-16), with crafted tokens', () => {
    /** Starts a login at `domain`, lets its fake IdP answer with `idToken(nonce, now)`, and calls back. */
    async function loginWith(idpOf: FakeOidcIdp, domain: string, idToken: (nonce: string, nowMs: number) => string): Promise<Awaited<ReturnType<typeof callback>>> {
      const login = await start(domain);
      const token = idToken(login.nonce, gw.clock.now());
      idpOf.nextIdToken(() => token);
      return callback(domain, { code: randomBytes(8).toString('hex'), state: login.state, iss: idpOf.issuer });
    }

    it('accepts a correct token (the fake IdP is set up right)', NET, async () => {
      const res = await loginWith(fake, 'fake.example', (n, now) => fake.sign(fake.claims(n, now)));
      assert.equal(res.status, 303, res.text);
      assert.ok(sessionCookieOf(res));
    });

    it('accepts an iat ahead of the gateway clock within the clock skew (saml.clockSkewSeconds, 180 s)', NET, async () => {
      const res = await loginWith(fake, 'fake.example', (n, now) => fake.sign(fake.claims(n, now, { iat: Math.floor(now / 1000) + 170 })));
      assert.equal(res.status, 303, res.text);
      assert.ok(sessionCookieOf(res));
    });

    const refusals: Array<[string, string, (idpOf: FakeOidcIdp, nonce: string, now: number) => string]> = [
      ['a wrong iss', 'oidc_id_token_invalid', (f, n, now) => f.sign(f.claims(n, now, { iss: 'https://evil-idp.example' }))],
      ['a wrong aud', 'oidc_id_token_invalid', (f, n, now) => f.sign(f.claims(n, now, { aud: OTHER_CLIENT_ID }))],
      ['an extra untrusted aud without azp', 'oidc_id_token_invalid', (f, n, now) => f.sign(f.claims(n, now, { aud: [BRIDGE_CLIENT_ID, OTHER_CLIENT_ID] }))],
      ['a wrong nonce', 'oidc_id_token_invalid', (f, n, now) => f.sign(f.claims(n, now, { nonce: 'forged-nonce' }))],
      ['no nonce', 'oidc_id_token_invalid', (f, n, now) => f.sign(f.claims(n, now, { nonce: undefined }))],
      ['an expired exp', 'oidc_id_token_invalid', (f, n, now) => f.sign(f.claims(n, now, { iat: Math.floor(now / 1000) - 1200, exp: Math.floor(now / 1000) - 600 }))],
      // Finding 5b: openid-client wants a numeric iat but bounds it only from below; the gateway refuses one beyond the skew.
      ['an iat a day in the future', 'oidc_id_token_issued_in_future', (f, n, now) => f.sign(f.claims(n, now, { iat: Math.floor(now / 1000) + 86_400, exp: Math.floor(now / 1000) + 86_400 + 600 }))],
      ['an iat just beyond the 180 s clock skew', 'oidc_id_token_issued_in_future', (f, n, now) => f.sign(f.claims(n, now, { iat: Math.floor(now / 1000) + 190 }))],
      ['alg none', 'oidc_id_token_invalid', (f, n, now) => f.sign(f.claims(n, now), { alg: 'none' })],
      [
        'HS256 keyed with the IdP public key',
        'oidc_id_token_invalid',
        (f, n, now) => f.sign(f.claims(n, now), { alg: 'HS256', key: f.publicKey.export({ type: 'spki', format: 'pem' }) }),
      ],
      // S-16 "signature via JWKS": the gateway turns on openid-client's signature check (enableNonRepudiationChecks).
      ['RS256 by a key not in the JWKS (same kid)', 'oidc_id_token_invalid', (f, n, now) => f.sign(f.claims(n, now), { key: foreignRsaKey() })],
    ];
    for (const [what, reason, make] of refusals) {
      it(`refuses an ID token with ${what}`, NET, async () => {
        const res = await loginWith(fake, 'fake.example', (n, now) => make(fake, n, now));
        await assertRefused(res, 'fake.example', 400, 'oauth_login_failed', reason);
      });
    }

    // An IdP that lists HS256 and none in its metadata must not make unsigned or HMAC tokens acceptable:
    // S-16 asks for the signature to be checked against the JWKS.
    for (const [what, make] of [
      ['alg none', (f: FakeOidcIdp, n: string, now: number) => f.sign(f.claims(n, now), { alg: 'none' })],
      ['HS256 keyed with the IdP public key', (f: FakeOidcIdp, n: string, now: number) => f.sign(f.claims(n, now), { alg: 'HS256', key: f.publicKey.export({ type: 'spki', format: 'pem' }) })],
      ['RS256 by a key not in the JWKS', (f: FakeOidcIdp, n: string, now: number) => f.sign(f.claims(n, now), { key: foreignRsaKey() })],
    ] as const) {
      it(`refuses ${what} even when the IdP metadata lists HS256 and none`, NET, async () => {
        const res = await loginWith(lax, 'lax.example', (n, now) => make(lax, n, now));
        assert.equal(res.status, 400, `accepted: ${res.status} ${String(res.headers.location)}`);
        assert.equal(errorCodeOf(res), 'oauth_login_failed');
        assert.equal(sessionCookieOf(res), undefined);
        assert.match((await lastAuditReason(gw, 'lax.example'))!, /^oidc_(id_token|response)_invalid$/);
      });
    }
  });

  describe('the injected clock', () => {
    it('a 2 h jump after the IdP answered: the 30-minute transaction limit fires first', NET, async () => {
      const cb = await followAuthorization((await start('oidc.example')).location);
      gw.clock.advance(2 * 3600_000);
      await assertRefused(await callback('oidc.example', cb), 'oidc.example', 400, 'login_transaction_invalid', 'transaction_expired');
    });

    it('judges iat by the gateway clock: the real IdP\'s token, issued now, is from the future for a gateway an hour behind', NET, async () => {
      gw.clock.set(Date.now() - 3600_000);
      const cb = await followAuthorization((await start('oidc.example')).location);
      const res = await callback('oidc.example', cb);
      await assertRefused(res, 'oidc.example', 400, 'oauth_login_failed', 'oidc_id_token_issued_in_future');
      assert.ok(!res.text.includes('oidc_id_token_issued_in_future'), 'the private reason is not shown');
    });

    it('an ID token valid 10 min is expired 20 min later by the gateway clock, though the transaction is still live', NET, async () => {
      const login = await start('fake.example');
      const token = fake.sign(fake.claims(login.nonce, gw.clock.now()));
      fake.nextIdToken(() => token);
      gw.clock.advance(20 * 60_000);
      const res = await callback('fake.example', { code: 'code-late', state: login.state, iss: fake.issuer });
      await assertRefused(res, 'fake.example', 400, 'oauth_login_failed', 'oidc_id_token_invalid');
    });
  });
});
