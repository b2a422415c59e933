import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LOOPBACK_IDPS, SERVICE_ORIGIN, createGateway, errorCodeOf, lastAuditReason, rememberLoginBinding, sessionCookieOf, withBinding, type Gateway } from '../../helpers/gateway.js';
import { oauthTenant } from '../../helpers/oauth-tenants.js';
import { BRIDGE_CLIENT_ID, BRIDGE_CLIENT_SECRET, callbackUrlOf, followAuthorization, startOidcIdp, type OidcIdp } from '../../helpers/oidc-idp.js';

/**
 * The user key from UserInfo (OIDC Core 5.4): a real oidc-provider with `conformIdTokenClaims` (its
 * default) releases the claims asked for by scope (here `email`) only from its UserInfo endpoint once an
 * access token is issued, so the ID token has `sub` alone. The gateway asks UserInfo for the configured
 * claim, and refuses an answer about another subject.
 */

const NET = { timeout: 20_000 };
const TARGET = `${SERVICE_ORIGIN}/board`;

describe('OIDC user key from UserInfo (OIDC Core 5.4)', () => {
  let gw: Gateway;
  let op: OidcIdp;
  /** An OP whose UserInfo answers about another subject than the ID token. */
  let broken: OidcIdp;
  const idTokens: string[] = [];

  const tenant = (domain: string, issuer: string, userKeyClaim: string) =>
    oauthTenant(domain, { profile: 'oidc', clientId: BRIDGE_CLIENT_ID, clientSecret: BRIDGE_CLIENT_SECRET, issuer, userKeyClaim, scopes: ['openid', 'email'] });

  before(async () => {
    op = await startOidcIdp({ extraRedirectUris: [callbackUrlOf('mail.example'), callbackUrlOf('phone.example')] });
    broken = await startOidcIdp({ extraRedirectUris: [callbackUrlOf('broken.example')], userinfoSub: (sub) => `${sub}-someone-else` });
    // The ID tokens the OP issues, to show the claim really is not in them.
    op.provider.on('grant.success', (ctx: unknown) => {
      const idToken = (ctx as { body?: { id_token?: unknown } }).body?.id_token;
      if (typeof idToken === 'string') idTokens.push(idToken);
    });
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
    await gw.services.tenants.save(tenant('mail.example', op.issuer, 'email'));
    await gw.services.tenants.save(tenant('phone.example', op.issuer, 'phone_number'));
    await gw.services.tenants.save(tenant('broken.example', broken.issuer, 'email'));
    for (const domain of ['mail.example', 'phone.example', 'broken.example']) {
      await gw.services.members.save(domain, { id: `m-${domain}`, account: `a@${domain}`, name: 'A', externalKey: 'emp-200@idp.example', role: 'member', status: 'in_use' });
    }
  });

  after(async () => {
    await gw.services.outbound.close();
    await gw.close();
    await op.close();
    await broken.close();
  });

  async function login(domain: string) {
    const start = await gw.http.get(`/d/login/${domain}`).query({ accessUrl: TARGET });
    assert.equal(start.status, 302, start.text);
    const location = new URL(start.headers.location as string);
    const state = location.searchParams.get('state')!;
    rememberLoginBinding(start, state);
    assert.deepEqual(location.searchParams.get('scope')!.split(' ').sort(), ['email', 'openid']);
    const cb = await followAuthorization(location);
    return withBinding(gw.http.get(`/oauth/callback/${domain}${cb.search}`), state);
  }

  const claimsOf = (jwt: string): Record<string, unknown> => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

  it('signs in with the claim UserInfo holds and the ID token does not', NET, async () => {
    idTokens.length = 0;
    const res = await login('mail.example');
    assert.equal(res.status, 303, res.text.slice(0, 300));
    assert.equal(res.headers.location, TARGET);
    const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(res)!);
    assert.equal(me.body.member.id, 'm-mail.example');
    assert.equal(idTokens.length, 1, 'the OP issued one ID token');
    const claims = claimsOf(idTokens[0]!);
    assert.equal(claims.sub, 'emp-200');
    assert.equal(claims.email, undefined, 'the ID token carries no email (OIDC Core 5.4)');
  });

  it('refuses a UserInfo answer about another subject (oidc_userinfo_subject_mismatch)', NET, async () => {
    const res = await login('broken.example');
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.equal(errorCodeOf(res), 'oauth_login_failed');
    assert.equal(sessionCookieOf(res), undefined);
    assert.equal(await lastAuditReason(gw, 'broken.example'), 'oidc_userinfo_subject_mismatch');
  });

  it('still refuses a claim neither the ID token nor UserInfo holds (oidc_user_key_missing)', NET, async () => {
    const res = await login('phone.example');
    assert.equal(res.status, 400, res.text.slice(0, 300));
    assert.equal(errorCodeOf(res), 'oauth_login_failed');
    assert.equal(await lastAuditReason(gw, 'phone.example'), 'oidc_user_key_missing');
  });
});
