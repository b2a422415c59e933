import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type supertest from 'supertest';
import type { TenantInput as Tenant } from '../../src/domain/tenant.js';
import { OPEN_REDIRECT_SHAPES } from '../fixtures/open-redirect-shapes.js';
import { idps, type TestIdpKeys } from '../helpers/keys.js';
import { PUBLIC_URL, beginLogin, createGateway, statusRecorder, postAcs, sessionCookieOf, standardTenants, validResponse, type Gateway } from '../helpers/gateway.js';

const IDP_LOGOUT_URL = 'https://idp-a.test/logout';
const SIGNED_OUT = `${PUBLIC_URL}/d/signed-out`;
/** The host OPEN_REDIRECT_SHAPES treat as the allowed one. */
const SHAPES_HOST = 'board.example.net';
/** Shapes that keep the allowed host but change its port or add a fragment (see the dedicated test). */
const SAME_HOST_SHAPES = new Set(['fragment on an allowed URL', 'other port on the allowed host']);

/** A SAML tenant like the standard a.example (same IdP, no IdP SLO URL), with its own logout settings. */
function tenantLike(domain: string, logoutRedirectDomains: string[], sso: Partial<Tenant['sso']> = {}): Tenant {
  const base = standardTenants().find((t) => t.tenant.domain === 'a.example')!.tenant;
  return { ...base, domain, name: `Logout ${domain}`, serviceOrigins: [], logoutRedirectDomains, sso: { ...base.sso, ...sso } };
}

describe('Logout (S-19, S-20)', () => {
  let gw: Gateway;
  /** Every status any request in this file got: no 5xx anywhere. */
  const { statuses, call } = statusRecorder();

  /** Logs emp-001 (or the given user) in at `domain`; returns the session cookie. */
  const login = async (domain: string, idp: TestIdpKeys = idps.a, nameId = 'emp-001'): Promise<string> => {
    const started = await beginLogin(gw, domain);
    const res = await call('acs', postAcs(gw, domain, validResponse(gw, domain, idp, started, nameId), started.relayState));
    assert.equal(res.status, 303, res.text);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie, 'a session cookie is set');
    return cookie;
  };
  const sessionStatus = async (cookie: string): Promise<number> => (await call('session', gw.http.get('/session').set('Cookie', cookie))).status;
  const logout = (query: Record<string, string>, cookie?: string): Promise<supertest.Response> => {
    const t = gw.http.get('/d/logout').query(query);
    return call('d/logout', cookie ? t.set('Cookie', cookie) : t);
  };
  const idpLogout = (query: Record<string, string>, cookie?: string): Promise<supertest.Response> => {
    const t = gw.http.get('/view/oauth/sso/logout').query(query);
    return call('view/oauth/sso/logout', cookie ? t.set('Cookie', cookie) : t);
  };
  const assertSignedOutPage = (res: supertest.Response, label: string): void => {
    assert.equal(res.status, 200, `${label}: ${res.status} → ${res.headers.location ?? ''}`);
    assert.equal(res.headers.location, undefined, label);
    assert.match(res.text, /signed out/i, label);
  };
  const clearsCookie = (res: supertest.Response): boolean =>
    ((res.headers['set-cookie'] as unknown as string[] | undefined) ?? []).some((c) => c.startsWith('idpb_session=;'));

  before(async () => {
    gw = await createGateway();
    // S-19: a tenant whose IdP has a logout URL.
    await gw.services.tenants.save(tenantLike('idplogout.example', ['idplogout.example', '*.apps.idplogout.example'], { logoutUrl: IDP_LOGOUT_URL }));
    await gw.services.members.save('idplogout.example', { id: 'm-il', account: 'emp@idplogout.example', name: 'IL', externalKey: 'emp-001', role: 'member', status: 'in_use' });
    // A tenant that allows the host OPEN_REDIRECT_SHAPES treat as the allowed one.
    await gw.services.tenants.save(tenantLike('shapes.example', [SHAPES_HOST]));
    await gw.services.members.save('shapes.example', { id: 'm-sh', account: 'emp@shapes.example', name: 'SH', externalKey: 'emp-001', role: 'member', status: 'in_use' });
  });
  after(async () => gw.close());

  describe('GET /d/logout (S-19)', () => {
    it("forwards to the tenant's logoutUrl with the allowed final target, ending the session", async () => {
      const cookie = await login('idplogout.example');
      const target = 'https://x.apps.idplogout.example/bye?lang=en';
      const res = await logout({ redirect_uri: target }, cookie);
      assert.equal(res.status, 302, res.text);
      const url = new URL(res.headers.location as string);
      assert.equal(url.origin + url.pathname, IDP_LOGOUT_URL);
      assert.deepEqual([...url.searchParams.keys()], ['redirect_uri']);
      assert.equal(url.searchParams.get('redirect_uri'), target);
      assert.ok(clearsCookie(res), 'the cookie is cleared');
      assert.equal(await sessionStatus(cookie), 401);
    });

    it("forwards to the tenant's logoutUrl with the signed-out page when the final target is not allowed (or missing)", async () => {
      for (const query of [{ redirect_uri: 'https://evil.example/bye' } as Record<string, string>, { redirect_uri: '//idplogout.example/' }, { redirect_uri: 'https://idplogout.example.evil.example/' }, {}]) {
        const cookie = await login('idplogout.example');
        const res = await logout(query, cookie);
        assert.equal(res.status, 302, JSON.stringify(query));
        const url = new URL(res.headers.location as string);
        assert.equal(url.origin + url.pathname, IDP_LOGOUT_URL);
        assert.equal(url.searchParams.get('redirect_uri'), SIGNED_OUT, JSON.stringify(query));
        assert.equal(await sessionStatus(cookie), 401, 'the session is ended either way');
      }
    });

    it('without a logoutUrl: redirects to an allowed host, else shows the signed-out page; the session ends either way', async () => {
      const cookie = await login('a.example');
      const ok = await logout({ redirect_uri: 'https://a.example/bye' }, cookie);
      assert.equal(ok.status, 302);
      assert.equal(ok.headers.location, 'https://a.example/bye');
      assert.equal(await sessionStatus(cookie), 401);

      const cookie2 = await login('a.example');
      assertSignedOutPage(await logout({ redirect_uri: 'https://portal.a.example/' }, cookie2), '*.host does not include the bare host');
      assert.equal(await sessionStatus(cookie2), 401);

      const cookie3 = await login('a.example');
      assertSignedOutPage(await logout({}, cookie3), 'no redirect_uri');
      assert.equal(await sessionStatus(cookie3), 401);
    });

    it('the final hop: no open-redirect shape is followed, an allowed host is', async () => {
      for (const [name, shape] of OPEN_REDIRECT_SHAPES) {
        if (SAME_HOST_SHAPES.has(name)) continue;
        // No session: the tenant comes from ?domain=.
        assertSignedOutPage(await logout({ domain: 'shapes.example', redirect_uri: shape }), `${name} (domain=)`);
      }
      for (const [name, shape] of OPEN_REDIRECT_SHAPES.slice(0, 8)) {
        const cookie = await login('shapes.example');
        assertSignedOutPage(await logout({ redirect_uri: shape }, cookie), `${name} (session)`);
        assert.equal(await sessionStatus(cookie), 401, name);
      }
      for (const [name, shape] of OPEN_REDIRECT_SHAPES) {
        const cookie = await login('a.example');
        assertSignedOutPage(await logout({ redirect_uri: shape }, cookie), `${name} (a.example session)`);
      }
      const ok = await logout({ domain: 'shapes.example', redirect_uri: `https://${SHAPES_HOST}/bye` });
      assert.equal(ok.status, 302);
      assert.equal(ok.headers.location, `https://${SHAPES_HOST}/bye`);
      const cookie = await login('shapes.example');
      const ok2 = await logout({ redirect_uri: `https://${SHAPES_HOST}/bye` }, cookie);
      assert.equal(ok2.headers.location, `https://${SHAPES_HOST}/bye`);
    });

    it('the final hop: the allowed host on another port, or with a fragment, is not followed either', async () => {
      const followed: string[] = [];
      for (const [name, shape] of OPEN_REDIRECT_SHAPES.filter(([n]) => SAME_HOST_SHAPES.has(n))) {
        const res = await logout({ domain: 'shapes.example', redirect_uri: shape });
        if (res.status !== 200 || res.headers.location !== undefined) followed.push(`${name} → ${res.status} ${res.headers.location ?? ''}`);
      }
      assert.deepEqual(followed, [], 'S-19: only the exact allowed host (default port), and no fragment, as for S-5');
    });

    it('a repeated redirect_uri is not followed', async () => {
      const res = await call('d/logout', gw.http.get(`/d/logout?domain=shapes.example&redirect_uri=${encodeURIComponent(`https://${SHAPES_HOST}/`)}&redirect_uri=${encodeURIComponent('https://evil.example/')}`));
      assertSignedOutPage(res, 'repeated');
    });

    it('unknown or missing domain without a session: the signed-out page', async () => {
      assertSignedOutPage(await logout({ domain: 'nope.example', redirect_uri: `https://${SHAPES_HOST}/` }), 'unknown domain');
      assertSignedOutPage(await logout({ redirect_uri: `https://${SHAPES_HOST}/` }), 'no domain');
      assertSignedOutPage(await logout({ domain: '../shapes.example', redirect_uri: `https://${SHAPES_HOST}/` }), 'malformed domain');
    });
  });

  describe('GET /view/oauth/sso/logout (S-20)', () => {
    it("ends the cookie's session of that tenant and redirects within its logoutRedirectDomains", async () => {
      const cookie = await login('a.example');
      const res = await idpLogout({ redirect_uri: 'https://x.portal.a.example/bye', domain: 'a.example' }, cookie);
      assert.equal(res.status, 302, res.text);
      assert.equal(res.headers.location, 'https://x.portal.a.example/bye');
      assert.ok(clearsCookie(res), 'the cookie is cleared');
      assert.equal(await sessionStatus(cookie), 401);
    });

    it('shows the signed-out page for a target outside the list, still ending the session', async () => {
      const cookie = await login('a.example');
      assertSignedOutPage(await idpLogout({ redirect_uri: 'https://evil.example/a.example', domain: 'a.example' }, cookie), 'foreign host');
      assert.equal(await sessionStatus(cookie), 401);
    });

    it('follows no open-redirect shape, an allowed host only', async () => {
      for (const [name, shape] of OPEN_REDIRECT_SHAPES) {
        if (SAME_HOST_SHAPES.has(name)) continue;
        assertSignedOutPage(await idpLogout({ redirect_uri: shape, domain: 'shapes.example' }), name);
        assertSignedOutPage(await idpLogout({ redirect_uri: shape, domain: 'a.example' }), `${name} (a.example)`);
      }
      const ok = await idpLogout({ redirect_uri: `https://${SHAPES_HOST}/bye`, domain: 'shapes.example' });
      assert.equal(ok.status, 302);
      assert.equal(ok.headers.location, `https://${SHAPES_HOST}/bye`);
      // Another tenant's list does not count.
      assertSignedOutPage(await idpLogout({ redirect_uri: `https://${SHAPES_HOST}/bye`, domain: 'a.example' }), "shapes.example's host for a.example");
      assertSignedOutPage(await idpLogout({ redirect_uri: 'https://x.portal.a.example/bye', domain: 'shapes.example' }), "a.example's host for shapes.example");
    });

    it('follows neither the allowed host on another port nor one with a fragment', async () => {
      const followed: string[] = [];
      for (const [name, shape] of OPEN_REDIRECT_SHAPES.filter(([n]) => SAME_HOST_SHAPES.has(n))) {
        const res = await idpLogout({ redirect_uri: shape, domain: 'shapes.example' });
        if (res.status !== 200 || res.headers.location !== undefined) followed.push(`${name} → ${res.status} ${res.headers.location ?? ''}`);
      }
      assert.deepEqual(followed, [], 'S-20: same allowlist rule as S-19');
    });

    it("leaves a session of another tenant alone (domain names a.example, the cookie is b.example's)", async () => {
      const cookie = await login('b.example', idps.b, 'User1@B.example');
      const res = await idpLogout({ redirect_uri: 'https://x.portal.a.example/bye', domain: 'a.example' }, cookie);
      assert.equal(res.status, 302);
      assert.equal(res.headers.location, 'https://x.portal.a.example/bye');
      assert.ok(!clearsCookie(res), "the other tenant's cookie is not cleared");
      assert.equal(await sessionStatus(cookie), 200, 'the b.example session survives');
    });

    it('missing or unknown domain: the signed-out page, no redirect, nothing ended', async () => {
      const cookie = await login('a.example');
      for (const query of [
        { redirect_uri: 'https://x.portal.a.example/bye' } as Record<string, string>,
        { redirect_uri: 'https://x.portal.a.example/bye', domain: 'unknown.example' },
        { redirect_uri: 'https://x.portal.a.example/bye', domain: '' },
        { redirect_uri: 'https://x.portal.a.example/bye', domain: 'A.EXAMPLE/../x' },
      ]) {
        assertSignedOutPage(await idpLogout(query, cookie), JSON.stringify(query));
      }
      assert.equal(await sessionStatus(cookie), 200, 'the a.example session was not named, so it survives');
    });
  });

  it('GET /d/signed-out is the signed-out page', async () => {
    const res = await call('signed-out', gw.http.get('/d/signed-out'));
    assertSignedOutPage(res, 'signed-out');
  });

  it('is still healthy afterwards, and nothing answered 5xx', async () => {
    assert.equal((await call('healthz', gw.http.get('/healthz'))).status, 200);
    assert.ok(statuses.length > 100, 'the file made many requests');
    assert.deepEqual(
      statuses.filter(([, s]) => s >= 500),
      [],
    );
  });
});
