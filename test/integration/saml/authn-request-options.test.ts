import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DOMParser } from '@xmldom/xmldom';
import * as samlify from 'samlify';
import { SignedXml } from 'xml-crypto';
import { OPERATOR_AUTH, SP_ENTITY_ID, acsUrlOf, beginLogin, bindingCookieOf, createGateway, postAcs, sessionCookieOf, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

/*
 * S-7a: per-tenant AuthnRequest options (NameIDPolicy Format, ForceAuthn, RequestedAuthnContext), set
 * through the admin API and read back from the real (inflated, signed) AuthnRequest; the HTTP-POST
 * binding for IdPs whose metadata offers only it, end to end with samlify as the IdP (it parses and
 * verifies the posted, signed AuthnRequest and answers it); NameID formats in responses.
 */
samlify.setSchemaValidator({ validate: () => Promise.resolve('schema validation skipped in this test') });
const { Constants } = samlify;
const FORMATS = Constants.namespace.format;
const POST_SSO = 'https://idp-post.test/sso';

function samlifyIdp(options: { post?: boolean; nameIdFormat?: string; wantSigned?: boolean } = {}): samlify.IdentityProviderInstance {
  return samlify.IdentityProvider({
    entityID: idps.b.entityId,
    privateKey: idps.b.privateKey,
    signingCert: idps.b.certificate,
    isAssertionEncrypted: false,
    wantAuthnRequestsSigned: options.wantSigned ?? false,
    nameIDFormat: [options.nameIdFormat ?? FORMATS.unspecified],
    singleSignOnService: [options.post ? { Binding: Constants.namespace.binding.post, Location: POST_SSO } : { Binding: Constants.namespace.binding.redirect, Location: idps.b.ssoUrl }],
    singleLogoutService: [{ Binding: Constants.namespace.binding.redirect, Location: 'https://idp-post.test/slo' }],
  });
}

/** The gateway as an IdP admin would register it: its ACS, and its signing certificate for signed AuthnRequests. */
function ourSp(gw: Gateway, domain: string, nameIdFormat = FORMATS.unspecified): samlify.ServiceProviderInstance {
  return samlify.ServiceProvider({
    entityID: SP_ENTITY_ID,
    assertionConsumerService: [{ Binding: Constants.namespace.binding.post, Location: acsUrlOf(domain) }],
    wantAssertionsSigned: true,
    authnRequestsSigned: true,
    signingCert: gw.services.sp.signing!.certificate,
    nameIDFormat: [nameIdFormat],
  });
}

const admin = (gw: Gateway, method: 'post' | 'patch' | 'get', path: string) => gw.http[method](`/admin/v1/domains${path}`).set('Authorization', OPERATOR_AUTH);

async function newTenant(gw: Gateway, domain: string): Promise<void> {
  const created = await admin(gw, 'post', '').send({ domain, name: domain, plan: 'standard' });
  assert.equal(created.status, 201, created.text);
  await gw.services.members.save(domain, { id: `m-${domain}`, account: `user@${domain}`, name: 'User', externalKey: 'emp-777', role: 'member', status: 'in_use' });
}

/** The attributes and children of the one AuthnRequest element, read with a regex over the exact XML the gateway sent. */
const attrOf = (xml: string, name: string): string | undefined => new RegExp(`<samlp:AuthnRequest [^>]*\\s${name}="([^"]*)"`).exec(xml)?.[1];

describe('per-tenant AuthnRequest options (S-7a)', () => {
  let gw: Gateway;

  before(async () => {
    gw = await createGateway();
    await newTenant(gw, 'options.example');
  });
  after(async () => gw.close());

  it('defaults as before: unspecified NameIDPolicy, no ForceAuthn, no RequestedAuthnContext, redirect', async () => {
    const login = await beginLogin(gw, 'a.example');
    assert.match(login.authnRequestXml, /<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1\.1:nameid-format:unspecified" AllowCreate="true"\/>/);
    assert.equal(attrOf(login.authnRequestXml, 'ForceAuthn'), undefined);
    assert.doesNotMatch(login.authnRequestXml, /RequestedAuthnContext/);
  });

  it('PATCH …/sso sets them; GET shows them; the signed redirect AuthnRequest carries them; SP metadata names the format', async () => {
    const idp = samlifyIdp({ wantSigned: true });
    const imported = await admin(gw, 'post', '/options.example/saml/idp-metadata').set('Content-Type', 'application/xml').send(idp.getMetadata());
    assert.equal(imported.status, 200, imported.text);
    const patched = await admin(gw, 'patch', '/options.example/sso').send({
      enabled: true,
      saml: {
        nameIdFormat: 'persistent',
        forceAuthn: true,
        requestedAuthnContext: { classRefs: ['urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract', 'urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport'], comparison: 'minimum' },
      },
    });
    assert.equal(patched.status, 200, patched.text);
    const view = await admin(gw, 'get', '/options.example/sso');
    assert.equal(view.body.saml.nameIdFormat, 'persistent');
    assert.equal(view.body.saml.forceAuthn, true);
    assert.deepEqual(view.body.saml.requestedAuthnContext.comparison, 'minimum');
    assert.equal(view.body.saml.signAuthnRequests, true, 'the metadata asked for signed requests');

    const login = await beginLogin(gw, 'options.example');
    const xml = login.authnRequestXml;
    assert.equal(attrOf(xml, 'ForceAuthn'), 'true');
    assert.match(xml, /<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2\.0:nameid-format:persistent" AllowCreate="true"\/>/);
    assert.match(
      xml,
      /<samlp:RequestedAuthnContext Comparison="minimum"><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2\.0:ac:classes:MobileTwoFactorContract<\/saml:AuthnContextClassRef><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2\.0:ac:classes:PasswordProtectedTransport<\/saml:AuthnContextClassRef><\/samlp:RequestedAuthnContext><\/samlp:AuthnRequest>$/,
    );
    // The redirect signature covers the request carrying them (SAML bindings §3.4.4.1), checked with the SP certificate…
    const raw = login.redirect.search.slice(1);
    const signedPart = raw.slice(0, raw.indexOf('&Signature='));
    const signature = Buffer.from(login.redirect.searchParams.get('Signature')!, 'base64');
    assert.ok(verify('sha256', Buffer.from(signedPart), createPublicKey(gw.services.sp.signing!.certificate), signature), 'redirect signature verifies');
    // …and by samlify, an IdP that wants signed requests, which reads the options back.
    const parsed = await idp.parseLoginRequest(ourSp(gw, 'options.example'), 'redirect', { query: Object.fromEntries(login.redirect.searchParams), octetString: signedPart });
    assert.equal(parsed.extract.request?.id, login.requestId);
    assert.equal(parsed.extract.nameIDPolicy?.format, FORMATS.persistent);

    const metadata = await gw.http.get('/saml/metadata/options.example');
    assert.match(metadata.text, /<md:NameIDFormat>urn:oasis:names:tc:SAML:2\.0:nameid-format:persistent<\/md:NameIDFormat>/);

    // null restores the defaults.
    const cleared = await admin(gw, 'patch', '/options.example/sso').send({ saml: { nameIdFormat: null, forceAuthn: null, requestedAuthnContext: null } });
    assert.equal(cleared.status, 200, cleared.text);
    const plain = await beginLogin(gw, 'options.example');
    assert.equal(attrOf(plain.authnRequestXml, 'ForceAuthn'), undefined);
    assert.match(plain.authnRequestXml, /nameid-format:unspecified/);
    assert.doesNotMatch(plain.authnRequestXml, /RequestedAuthnContext/);
  });

  it('refuses malformed options with validation_failed and changes nothing', async () => {
    const before = await gw.services.tenants.find('a.example');
    for (const saml of [
      { nameIdFormat: 'transient' },
      { forceAuthn: 'yes' },
      { requestedAuthnContext: { classRefs: [], comparison: 'exact' } },
      { requestedAuthnContext: { classRefs: ['urn:x'], comparison: 'atleast' } },
      { requestedAuthnContext: { classRefs: ['has space'] } },
      { authnRequestBinding: 'artifact' },
    ]) {
      const res = await admin(gw, 'patch', '/a.example/sso').send({ saml });
      assert.equal(res.status, 400, JSON.stringify(saml));
      assert.equal(res.body.error, 'validation_failed', JSON.stringify(saml));
    }
    assert.deepEqual(await gw.services.tenants.find('a.example'), before);
  });

  for (const [name, format] of [
    ['emailAddress', FORMATS.emailAddress],
    ['persistent', FORMATS.persistent],
  ] as const) {
    it(`accepts a response whose NameID has the ${name} format (samlify IdP)`, async () => {
      const domain = `nameid-${name.toLowerCase()}.example`;
      await newTenant(gw, domain);
      const idp = samlifyIdp({ nameIdFormat: format });
      assert.equal((await admin(gw, 'post', `/${domain}/saml/idp-metadata`).set('Content-Type', 'application/xml').send(idp.getMetadata())).status, 200);
      assert.equal((await admin(gw, 'patch', `/${domain}/sso`).send({ enabled: true, saml: { nameIdFormat: name } })).status, 200);
      const login = await beginLogin(gw, domain);
      assert.match(login.authnRequestXml, new RegExp(`NameIDPolicy Format="${format}"`));
      const out = await idp.createLoginResponse(ourSp(gw, domain, format), { extract: { request: { id: login.requestId } } }, 'post', { email: 'emp-777' });
      assert.match(Buffer.from(out.context, 'base64').toString(), new RegExp(`<saml:NameID Format="${format}">emp-777</saml:NameID>`));
      const res = await postAcs(gw, domain, out.context, login.relayState);
      assert.equal(res.status, 303, res.text.slice(0, 300));
      assert.ok(sessionCookieOf(res));
    });
  }
});

describe('HTTP-POST binding for the AuthnRequest (S-7a)', () => {
  let gw: Gateway;
  const idp = samlifyIdp({ post: true, wantSigned: true });

  before(async () => {
    gw = await createGateway();
    await newTenant(gw, 'post.example');
  });
  after(async () => gw.close());

  it('imports POST-only metadata, choosing the POST binding', async () => {
    const imported = await admin(gw, 'post', '/post.example/saml/idp-metadata').set('Content-Type', 'application/xml').send(idp.getMetadata());
    assert.equal(imported.status, 200, imported.text);
    assert.equal(imported.body.ssoUrl, POST_SSO);
    assert.equal(imported.body.sso.webLoginUrl, POST_SSO);
    assert.equal(imported.body.sso.saml.authnRequestBinding, 'post');
    assert.equal(imported.body.sso.saml.signAuthnRequests, true);
    assert.equal((await admin(gw, 'patch', '/post.example/sso').send({ enabled: true })).status, 200);
  });

  it('/d/login answers an auto-submitting form under a nonce CSP, with a visible button, and sets the binding cookie; samlify accepts the signed request and the login completes', async () => {
    const target = 'https://board.example.net/board/post';
    const start = await gw.http.get('/d/login/post.example').query({ accessUrl: target });
    assert.equal(start.status, 200, start.text.slice(0, 300));
    assert.match(String(start.headers['content-type']), /^text\/html/);
    assert.equal(start.headers['cache-control'], 'no-store');
    const csp = String(start.headers['content-security-policy']);
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    assert.ok(nonce, csp);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline'[^;]*script|script-src[^;]*unsafe/);
    const html = start.text;
    // The one script carries this response's nonce; the form works without it through a visible button.
    assert.deepEqual([...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]), [` nonce="${nonce}"`]);
    assert.match(html, /<button type="submit">Continue<\/button>/);
    const action = /<form id="saml-post" method="post" action="([^"]+)">/.exec(html)?.[1];
    assert.equal(action, POST_SSO);
    const field = (name: string): string => /value="([^"]*)"/.exec(html.slice(html.indexOf(`name="${name}"`)))![1]!;
    const samlRequest = field('SAMLRequest');
    const relayState = field('RelayState');
    const cookie = bindingCookieOf(start);
    assert.ok(cookie, 'the login binding cookie is set (§12)');

    // The POST binding carries the XML as is (no deflate), with an enveloped signature after the Issuer.
    const xml = Buffer.from(samlRequest, 'base64').toString('utf8');
    assert.match(xml, /^<samlp:AuthnRequest [^>]*Destination="https:\/\/idp-post\.test\/sso"/);
    assert.match(xml, /<\/saml:Issuer><ds:Signature /);
    const check = new SignedXml({ publicCert: gw.services.sp.signing!.certificate, getCertFromKeyInfo: () => null });
    check.loadSignature(check.findSignatures(new DOMParser().parseFromString(xml, 'text/xml'))[0]!);
    assert.ok(check.checkSignature(xml), 'the enveloped signature verifies with the SP certificate');

    // samlify, as the POST-only IdP that wants signed requests, verifies and parses it…
    const sp = ourSp(gw, 'post.example');
    const parsed = await idp.parseLoginRequest(sp, 'post', { body: { SAMLRequest: samlRequest } });
    const requestId = parsed.extract.request?.id as string;
    assert.match(requestId, /^_[0-9a-f]{40}$/);
    assert.equal(parsed.extract.request?.assertionConsumerServiceUrl, acsUrlOf('post.example'));

    // …and its answer, posted back with the RelayState by the browser that started, signs the member in.
    const out = await idp.createLoginResponse(sp, { extract: { request: { id: requestId } } }, 'post', { email: 'emp-777' });
    const res = await postAcs(gw, 'post.example', out.context, relayState, cookie);
    assert.equal(res.status, 303, res.text.slice(0, 300));
    assert.equal(res.headers.location, target);
    assert.ok(sessionCookieOf(res));
  });

  it('PATCH authnRequestBinding takes that binding\'s SSO Location from the stored metadata (Redirect and POST differ, as at Shibboleth)', async () => {
    await newTenant(gw, 'both.example');
    const both = samlify.IdentityProvider({
      entityID: idps.b.entityId,
      signingCert: idps.b.certificate,
      nameIDFormat: [FORMATS.unspecified],
      singleSignOnService: [
        { Binding: Constants.namespace.binding.redirect, Location: 'https://idp-both.test/SAML2/Redirect/SSO' },
        { Binding: Constants.namespace.binding.post, Location: 'https://idp-both.test/SAML2/POST/SSO' },
      ],
    });
    const imported = await admin(gw, 'post', '/both.example/saml/idp-metadata').set('Content-Type', 'application/xml').send(both.getMetadata());
    assert.equal(imported.body.sso.webLoginUrl, 'https://idp-both.test/SAML2/Redirect/SSO');
    const toPost = await admin(gw, 'patch', '/both.example/sso').send({ saml: { authnRequestBinding: 'post' } });
    assert.equal(toPost.status, 200, toPost.text);
    assert.equal(toPost.body.sso.webLoginUrl, 'https://idp-both.test/SAML2/POST/SSO');
    const back = await admin(gw, 'patch', '/both.example/sso').send({ saml: { authnRequestBinding: null } });
    assert.equal(back.body.sso.webLoginUrl, 'https://idp-both.test/SAML2/Redirect/SSO');
    assert.equal(back.body.sso.saml.authnRequestBinding, undefined);
    // POST-only metadata, redirect asked for: kept as set, with a warning.
    const onlyPost = await admin(gw, 'patch', '/post.example/sso').send({ saml: { authnRequestBinding: 'redirect' } });
    assert.equal(onlyPost.body.sso.webLoginUrl, POST_SSO);
    assert.ok(onlyPost.body.warnings.some((w: string) => /no HTTP-Redirect SingleSignOnService/.test(w)), JSON.stringify(onlyPost.body.warnings));
    assert.equal((await admin(gw, 'patch', '/post.example/sso').send({ saml: { authnRequestBinding: 'post' } })).status, 200);
  });

  it('a tampered posted AuthnRequest fails samlify\'s signature check', async () => {
    const start = await gw.http.get('/d/login/post.example');
    const samlRequest = /name="SAMLRequest" value="([^"]*)"/.exec(start.text)![1]!;
    const tampered = Buffer.from(Buffer.from(samlRequest, 'base64').toString('utf8').replace(acsUrlOf('post.example'), 'https://evil.test/acs')).toString('base64');
    await assert.rejects(idp.parseLoginRequest(ourSp(gw, 'post.example'), 'post', { body: { SAMLRequest: tampered } }));
  });
});
