import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as samlify from 'samlify';
import type { IdentityProviderInstance } from 'samlify';
import { idps, type TestIdpKeys } from '../../helpers/keys.js';
import {
  SERVICE_ORIGIN,
  SP_ENTITY_ID,
  acsUrlOf,
  beginLogin,
  createGateway,
  errorCodeOf,
  postAcs,
  sessionCookieOf,
  type Gateway,
  type StartedLogin,
} from '../../helpers/gateway.js';

/*
 * Interoperability with a SAML IdP this project did not write: samlify (https://github.com/tngan/samlify).
 * samlify plays the IdP; the gateway is the SP under test, with its ACS checks untouched.
 *
 * samlify insists on a schema validator before it parses or builds anything. We only use its IdP side
 * to *produce* responses (the gateway does all the checking), so a stub that accepts everything is
 * enough here and keeps a native/Java XSD validator out of the dev dependencies.
 */
samlify.setSchemaValidator({ validate: () => Promise.resolve('schema validation skipped in this test') });

const { Constants } = samlify;
const NAMEID_UNSPECIFIED = Constants.namespace.format.unspecified;
const RSA_SHA256 = Constants.algorithms.signature.RSA_SHA256;

/** A samlify IdP holding `keys`, signing with RSA-SHA256, not encrypting (samlify encrypting: encrypted-assertion.test.ts). */
function samlifyIdp(keys: TestIdpKeys): IdentityProviderInstance {
  return samlify.IdentityProvider({
    entityID: keys.entityId,
    privateKey: keys.privateKey,
    signingCert: keys.certificate,
    isAssertionEncrypted: false,
    requestSignatureAlgorithm: RSA_SHA256,
    wantAuthnRequestsSigned: false,
    nameIDFormat: [NAMEID_UNSPECIFIED],
    singleSignOnService: [{ Binding: Constants.namespace.binding.redirect, Location: keys.ssoUrl }],
    // Unused here; only declared so samlify does not warn about a missing SLO endpoint.
    singleLogoutService: [{ Binding: Constants.namespace.binding.redirect, Location: `${new URL(keys.ssoUrl).origin}/slo` }],
  });
}

/**
 * OUR SP as samlify sees it (what an IdP admin would enter from our metadata). `wantAssertionsSigned`
 * makes samlify sign the Assertion; `wantMessageSigned` signs the whole Response (alone when the
 * assertion is not to be signed: Shibboleth IdP's default shape).
 */
function ourSp(wantMessageSigned = false, wantAssertionsSigned = true, domain = 'a.example'): samlify.ServiceProviderInstance {
  return samlify.ServiceProvider({
    entityID: SP_ENTITY_ID,
    assertionConsumerService: [{ Binding: Constants.namespace.binding.post, Location: acsUrlOf(domain) }],
    wantAssertionsSigned,
    wantMessageSigned,
    nameIDFormat: [NAMEID_UNSPECIFIED],
  });
}

/**
 * samlify's login response to an AuthnRequest ID, base64 as the browser would POST it.
 *
 * No custom template or tag callback is needed: samlify's default login response template already
 * fills in everything the gateway checks —
 *   Response@Destination and SubjectConfirmationData@Recipient = the SP's HTTP-POST ACS location,
 *   Response@InResponseTo and SubjectConfirmationData@InResponseTo = requestInfo.extract.request.id,
 *   Audience = the SP entity ID, Issuer (Response and Assertion) = the IdP entity ID,
 *   SubjectConfirmationData@NotOnOrAfter and Conditions = now + 5 min,
 *   NameID Format = the IdP's first nameIDFormat (unspecified).
 * The one quirk: samlify takes the NameID value from `user.email`, whatever the format, so the
 * member's external key travels there. (The default template has no AuthnStatement; the gateway
 * does not require one, so this is not customised either.)
 */
async function samlifyResponse(idp: IdentityProviderInstance, sp: samlify.ServiceProviderInstance, requestId: string, nameId: string): Promise<string> {
  const out = await idp.createLoginResponse(sp, { extract: { request: { id: requestId } } }, 'post', { email: nameId });
  return out.context;
}

/** A tenant like a.example (same IdP) that requires signed assertions. */
const STRICT_DOMAIN = 'strict-a.example';

const xmlOf = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

describe('interoperability: samlify as the IdP', () => {
  let gw: Gateway;
  const idpA = samlifyIdp(idps.a);
  const sp = ourSp();

  before(async () => {
    gw = await createGateway();
    const a = await gw.services.tenants.load('a.example');
    await gw.services.tenants.save({ ...a, domain: STRICT_DOMAIN, sso: { ...a.sso, saml: { ...a.sso.saml!, requireSignedAssertions: true } } });
    await gw.services.members.save(STRICT_DOMAIN, { id: 'm-strict', account: 'emp@strict-a.example', name: 'Strict', externalKey: 'emp-001', role: 'member', status: 'in_use' });
  });
  after(async () => gw.close());

  /** The latest 'request refused' log line (private reason and detail), to explain a refusal. */
  const lastRefusal = (): { reason?: unknown; detail?: unknown } | undefined => gw.logs.filter((l) => l.msg === 'request refused').at(-1);

  it('samlify parses the gateway AuthnRequest and reads the ID the gateway chose', async () => {
    const login = await beginLogin(gw, 'a.example');
    const parsed = await idpA.parseLoginRequest(sp, 'redirect', {
      query: Object.fromEntries(login.redirect.searchParams),
    });
    assert.equal(parsed.extract.request?.id, login.requestId);
    assert.equal(parsed.extract.issuer, SP_ENTITY_ID);
    assert.equal(parsed.extract.request?.assertionConsumerServiceUrl, acsUrlOf('a.example'));
  });

  it('logs in with a samlify response (assertion signed with RSA-SHA256, default template)', async () => {
    const target = `${SERVICE_ORIGIN}/board/list?folder=7`;
    const login = await beginLogin(gw, 'a.example', target);
    const response = await samlifyResponse(idpA, sp, login.requestId, 'emp-001');

    // What samlify actually produced: the shape the gateway's strict checks look at.
    const xml = xmlOf(response);
    assert.match(xml, new RegExp(`Destination="${acsUrlOf('a.example')}"`));
    assert.match(xml, new RegExp(`Recipient="${acsUrlOf('a.example')}" InResponseTo="${login.requestId}"`));
    assert.match(xml, new RegExp(`<saml:Audience>${SP_ENTITY_ID}</saml:Audience>`));
    assert.match(xml, /SignatureMethod Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmldsig-more#rsa-sha256"/);
    assert.match(xml, />emp-001<\/saml:NameID>/);

    const res = await postAcs(gw, 'a.example', response, login.relayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
    assert.equal(res.headers.location, target);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie, 'a session cookie is set');

    const me = await gw.http.get('/session').set('Cookie', cookie);
    assert.equal(me.status, 200);
    assert.equal(me.body.member.id, 'm-a-active');
    assert.equal(me.body.session.authMethod, 'saml');
    const member = await gw.services.members.findById('a.example', 'm-a-active');
    assert.equal(member?.externalKey, 'emp-001');
  });

  it('logs in with a samlify response signed on both the Response and the Assertion (wantMessageSigned)', async () => {
    const login = await beginLogin(gw, 'a.example');
    const response = await samlifyResponse(idpA, ourSp(true), login.requestId, 'emp-001');
    assert.equal((xmlOf(response).match(/<ds:Signature /g) ?? []).length, 2, 'samlify signed both levels');
    const res = await postAcs(gw, 'a.example', response, login.relayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
    assert.ok(sessionCookieOf(res));
  });

  it('logs in with a samlify response signed only on the Response (the SAML profile allows it)', async () => {
    const login = await beginLogin(gw, 'a.example');
    const response = await samlifyResponse(idpA, ourSp(true, false), login.requestId, 'emp-001');
    const xml = xmlOf(response);
    assert.equal((xml.match(/<ds:Signature\b/g) ?? []).length, 1, 'samlify signed one level');
    assert.match(xml, /<samlp:Response\b[^>]*>(?:(?!<saml:Assertion\b)[\s\S])*<ds:Signature\b/, 'the signature is the Response\'s, before the assertion');
    const res = await postAcs(gw, 'a.example', response, login.relayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
    const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(res)!);
    assert.equal(me.body.member.id, 'm-a-active');
  });

  it('refuses that samlify shape for a tenant requiring signed assertions, with the true reason (assertion_not_signed)', async () => {
    const login = await beginLogin(gw, STRICT_DOMAIN);
    const response = await samlifyResponse(idpA, ourSp(true, false, STRICT_DOMAIN), login.requestId, 'emp-001');
    const res = await postAcs(gw, STRICT_DOMAIN, response, login.relayState);
    assert.equal(res.status, 400);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    assert.equal(lastRefusal()?.reason, 'assertion_not_signed');
    assert.equal((await gw.services.audit.list(STRICT_DOMAIN, 1))[0]?.reason, 'assertion_not_signed');
    assert.equal(sessionCookieOf(res), undefined);
    // The same tenant takes samlify's signed assertion.
    const again = await beginLogin(gw, STRICT_DOMAIN);
    const ok = await postAcs(gw, STRICT_DOMAIN, await samlifyResponse(idpA, ourSp(true, true, STRICT_DOMAIN), again.requestId, 'emp-001'), again.relayState);
    assert.equal(ok.status, 303, `${ok.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
  });

  it('refuses the same samlify response posted a second time', async () => {
    const login = await beginLogin(gw, 'a.example');
    const response = await samlifyResponse(idpA, sp, login.requestId, 'emp-001');
    const first = await postAcs(gw, 'a.example', response, login.relayState);
    assert.equal(first.status, 303);

    const again = await postAcs(gw, 'a.example', response, login.relayState);
    assert.equal(again.status, 400);
    // The first use consumed the login transaction named by RelayState; resolveTransaction runs
    // before the signature and the assertion-ID replay check, so the replay is stopped there and the
    // public code is login_transaction_invalid (not saml_response_invalid / assertion_replayed).
    assert.equal(errorCodeOf(again), 'login_transaction_invalid');
    assert.equal(lastRefusal()?.reason, 'transaction_unknown_or_used');
    assert.equal(sessionCookieOf(again), undefined);
  });

  it('refuses a samlify response made for a different login (InResponseTo of another AuthnRequest)', async () => {
    const mine = await beginLogin(gw, 'a.example');
    const other: StartedLogin = await beginLogin(gw, 'a.example');
    const forOther = await samlifyResponse(idpA, sp, other.requestId, 'emp-001');

    const res = await postAcs(gw, 'a.example', forOther, mine.relayState);
    assert.equal(res.status, 400);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    const refusal = lastRefusal();
    assert.equal(refusal?.reason, 'in_response_to_mismatch');
    assert.equal(refusal?.detail, 'Response InResponseTo');
    assert.equal(sessionCookieOf(res), undefined);

    // The response still works for the login it was made for.
    const ok = await postAcs(gw, 'a.example', forOther, other.relayState);
    assert.equal(ok.status, 303);
  });

  it('refuses a samlify IdP signing with a key the tenant does not trust', async () => {
    const attacker = samlifyIdp(idps.attacker);
    const login = await beginLogin(gw, 'a.example');
    const forged = await samlifyResponse(attacker, sp, login.requestId, 'emp-001');
    assert.match(xmlOf(forged), new RegExp(`<saml:Issuer>${idps.a.entityId}</saml:Issuer>`), 'same entity ID as idp-a: only the key differs');

    const res = await postAcs(gw, 'a.example', forged, login.relayState);
    assert.equal(res.status, 400);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    assert.equal(lastRefusal()?.reason, 'signature_invalid');
    assert.equal(sessionCookieOf(res), undefined);
  });
});
