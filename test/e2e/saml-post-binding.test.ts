import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import * as samlify from 'samlify';
import { LOOPBACK_IDPS, OPERATOR_AUTH, createGateway, type Gateway } from '../helpers/gateway.js';
import { idps } from '../helpers/keys.js';
import { freePort } from '../helpers/redis.js';
import { simpleSamlPhpMissing, startSimpleSamlPhp, type SimpleSamlPhp } from '../helpers/simplesamlphp.js';
import { browserMissing, launchChromium, newPerson } from './harness.js';

/*
 * S-7a in a real browser: a tenant whose IdP offers only HTTP-POST. Chromium opens /d/login; the page the
 * gateway answers posts the signed AuthnRequest to the IdP by itself under the page's CSP (no violation
 * reported), or — with JavaScript off — when the person presses Continue. The IdP here is samlify behind a
 * loopback server: it verifies and parses the posted request and answers with its own auto-posting form to
 * the ACS, which signs the person in and sends them to the service page.
 */
samlify.setSchemaValidator({ validate: () => Promise.resolve('schema validation skipped in this test') });
const { Constants } = samlify;
const missing = browserMissing();
/** The gateways' loopback listeners: closed after each suite, or the test process would never end. */
const listeners: Server[] = [];
const closeListeners = (): void => {
  for (const l of listeners.splice(0)) {
    l.closeAllConnections();
    l.close();
  }
};

const readBody = (req: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });

describe('HTTP-POST AuthnRequest in Chromium (S-7a)', { skip: missing && !process.env.CI ? missing : false }, () => {
  let gw: Gateway;
  let browser: Browser;
  let idpServer: Server;
  let idpBase: string;
  let publicUrl: string;
  const received: Array<{ requestId: string }> = [];

  before(async () => {
    if (missing) throw new Error(missing);
    idpServer = createServer();
    await new Promise<void>((r) => idpServer.listen(0, '127.0.0.1', r));
    idpBase = `http://127.0.0.1:${(idpServer.address() as AddressInfo).port}`;
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    gw = await createGateway({ overrides: { publicUrl, serviceOrigins: [idpBase], defaultServiceUrl: `${idpBase}/landed` } });
    await new Promise<void>((r) => {
      listeners.push(gw.app.listen(port, '127.0.0.1', () => r()));
    });

    const idp = samlify.IdentityProvider({
      entityID: idps.b.entityId,
      privateKey: idps.b.privateKey,
      signingCert: idps.b.certificate,
      isAssertionEncrypted: false,
      wantAuthnRequestsSigned: true,
      nameIDFormat: [Constants.namespace.format.unspecified],
      singleSignOnService: [{ Binding: Constants.namespace.binding.post, Location: `${idpBase}/sso` }],
    });
    const sp = samlify.ServiceProvider({
      entityID: `${publicUrl}/saml/metadata`,
      assertionConsumerService: [{ Binding: Constants.namespace.binding.post, Location: `${publicUrl}/acs/post.example` }],
      wantAssertionsSigned: true,
      authnRequestsSigned: true,
      signingCert: gw.services.sp.signing!.certificate,
    });
    idpServer.on('request', (req, res) => {
      void (async () => {
        if (req.method === 'POST' && req.url === '/sso') {
          const form = new URLSearchParams(await readBody(req));
          const parsed = await idp.parseLoginRequest(sp, 'post', { body: { SAMLRequest: form.get('SAMLRequest') } });
          const requestId = parsed.extract.request?.id as string;
          received.push({ requestId });
          const out = await idp.createLoginResponse(sp, { extract: { request: { id: requestId } } }, 'post', { email: 'emp-777' });
          res.writeHead(200, { 'content-type': 'text/html' }).end(
            `<!doctype html><html lang="en"><body><form id="f" method="post" action="${publicUrl}/acs/post.example"><input type="hidden" name="SAMLResponse" value="${out.context}"><input type="hidden" name="RelayState" value="${form.get('RelayState') ?? ''}"><button>Back</button></form><script>document.getElementById('f').submit()</script></body></html>`,
          );
          return;
        }
        if (req.url === '/landed') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>landed</title><h1>Service</h1>');
        res.writeHead(404).end();
      })().catch(() => res.writeHead(400).end('refused'));
    });

    const created = await gw.http.post('/admin/v1/domains').set('Authorization', OPERATOR_AUTH).send({ domain: 'post.example', name: 'Post', plan: 'standard' });
    assert.equal(created.status, 201, created.text);
    await gw.services.members.save('post.example', { id: 'm-post', account: 'user@post.example', name: 'User', externalKey: 'emp-777', role: 'member', status: 'in_use' });
    const imported = await gw.http.post('/admin/v1/domains/post.example/saml/idp-metadata').set('Authorization', OPERATOR_AUTH).set('Content-Type', 'application/xml').send(idp.getMetadata());
    assert.equal(imported.status, 200, imported.text);
    assert.equal(imported.body.sso.saml.authnRequestBinding, 'post');
    assert.equal((await gw.http.patch('/admin/v1/domains/post.example/sso').set('Authorization', OPERATOR_AUTH).send({ enabled: true })).status, 200);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    idpServer?.close();
    closeListeners();
    await gw?.close();
  });

  it('with JavaScript: the form posts itself under the CSP, and the person lands signed in', async () => {
    const context = await newPerson(browser);
    const page = await context.newPage();
    const cspViolations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) cspViolations.push(m.text());
    });
    const before = received.length;
    await page.goto(`${publicUrl}/d/login/post.example?accessUrl=${encodeURIComponent(`${idpBase}/landed`)}`);
    await page.waitForURL(`${idpBase}/landed`);
    assert.equal(received.length, before + 1, 'the IdP received one posted AuthnRequest');
    assert.deepEqual(cspViolations, []);
    const cookies = await context.cookies(publicUrl);
    assert.ok(cookies.some((c) => c.name === 'idpb_session'), 'signed in');
    assert.ok(cookies.some((c) => c.name === 'idpb_login'), 'the login binding cookie was set');
    await context.close();
  });

  it('without JavaScript: the page shows a Continue button that posts the request', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    const before = received.length;
    await page.goto(`${publicUrl}/d/login/post.example`);
    assert.equal(new URL(page.url()).origin, publicUrl, 'nothing happened by itself');
    assert.equal(received.length, before);
    const button = page.getByRole('button', { name: 'Continue' });
    assert.ok(await button.isVisible());
    await Promise.all([page.waitForURL(`${idpBase}/sso`), button.click()]);
    assert.equal(received.length, before + 1, 'the IdP received the posted AuthnRequest');
    await context.close();
  });
});

const sspMissing = simpleSamlPhpMissing();

describe('HTTP-POST AuthnRequest to SimpleSAMLphp configured POST-only, in Chromium (S-7a)', { skip: (missing || sspMissing) && !process.env.CI ? (missing || sspMissing) : false, timeout: 120_000 }, () => {
  let gw: Gateway;
  let browser: Browser;
  let idp: SimpleSamlPhp;
  let publicUrl: string;

  before(async () => {
    if (missing || sspMissing) throw new Error(String(missing || sspMissing));
    const port = await freePort();
    publicUrl = `http://127.0.0.1:${port}`;
    gw = await createGateway({ overrides: { publicUrl, serviceOrigins: [publicUrl], defaultServiceUrl: `${publicUrl}/session`, ...LOOPBACK_IDPS } });
    await new Promise<void>((r) => {
      listeners.push(gw.app.listen(port, '127.0.0.1', () => r()));
    });
    idp = await startSimpleSamlPhp({
      spEntityId: `${publicUrl}/saml/metadata`,
      acsUrl: `${publicUrl}/acs/ssp-post.example`,
      ssoBindings: ['post'],
      users: [{ username: 'carol', password: 'carol-pass', attributes: { uid: 'emp-1003' } }],
    });
    const created = await gw.http.post('/admin/v1/domains').set('Authorization', OPERATOR_AUTH).send({ domain: 'ssp-post.example', name: 'SSP post', plan: 'standard' });
    assert.equal(created.status, 201, created.text);
    await gw.services.members.save('ssp-post.example', { id: 'm-carol', account: 'carol@ssp-post.example', name: 'Carol', externalKey: 'emp-1003', role: 'member', status: 'in_use' });
    const metadata = await idp.metadataXml();
    assert.doesNotMatch(metadata, /SingleSignOnService Binding="urn:oasis:names:tc:SAML:2\.0:bindings:HTTP-Redirect"/, 'the IdP offers only HTTP-POST');
    const imported = await gw.http.post('/admin/v1/domains/ssp-post.example/saml/idp-metadata').set('Authorization', OPERATOR_AUTH).send({ url: idp.metadataUrl });
    assert.equal(imported.status, 200, imported.text);
    assert.equal(imported.body.sso.saml.authnRequestBinding, 'post');
    const on = await gw.http.patch('/admin/v1/domains/ssp-post.example/sso').set('Authorization', OPERATOR_AUTH).send({ enabled: true, saml: { forceAuthn: true } });
    assert.equal(on.status, 200, on.text);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await idp?.stop();
    closeListeners();
    await gw?.close();
  });

  it('the gateway\'s page posts the AuthnRequest, SimpleSAMLphp signs carol in, and the ACS lands her on the target', async () => {
    const context = await newPerson(browser);
    const page = await context.newPage();
    await page.goto(`${publicUrl}/d/login/ssp-post.example?accessUrl=${encodeURIComponent(`${publicUrl}/session`)}`);
    await page.waitForURL((url) => url.origin === new URL(idp.baseUrl).origin);
    await page.fill('input[name="username"]', 'carol');
    await page.fill('input[name="password"]', 'carol-pass');
    await Promise.all([page.waitForURL(`${publicUrl}/session`, { timeout: 20_000 }), page.locator('input[name="password"]').press('Enter')]);
    const session = JSON.parse((await page.textContent('body')) ?? '{}') as { member?: { id?: string } };
    assert.equal(session.member?.id, 'm-carol');
    const received = idp.output();
    assert.match(received, /POST \/saml2\/idp\/SSOService\.php/, 'the AuthnRequest reached SimpleSAMLphp by POST');
    await context.close();
  });
});
