import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { TenantInput } from '../../src/domain/tenant.js';
import { systemResolver, type HostResolver } from '../../src/sso/oauth/outbound-policy.js';
import { OPERATOR_AUTH, SERVICE_ORIGIN, createGateway, errorCodeOf, lastAuditReason, type Gateway, bindingCookieOf, withBinding } from '../helpers/gateway.js';
import { oidcTenant, worksTenant as worksOAuthTenant } from '../helpers/oauth-tenants.js';
import { idps } from '../helpers/keys.js';
import { startFakeOidcIdp, startOidcIdp, type FakeOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { startBlackHole, startWorksIdp, type BlackHole, type WorksIdp } from '../helpers/works-idp.js';

/**
 * SSRF by a tenant administrator (issue finding 3). A tenant administrator chooses the URLs the gateway
 * calls server-side: IdP metadata by URL, the works token and user-info APIs, OIDC discovery — and,
 * through the discovery document, the OIDC token endpoint and JWKS. With the default outbound policy
 * none of these calls reaches a loopback, private or metadata address: each is refused before a single
 * TCP connection is made (every target server here counts the connections it accepts), so the client
 * secret and the code never leave; the login fails with its usual public code, and the tenant's audit
 * trail says only `…_outbound_refused`. Calls after discovery are shown with an operator allowlist that
 * admits the discovery host:port only. A name that resolves to a public address when checked and to
 * loopback when connected (DNS rebinding) is refused at connect time. For a private server the operator
 * does admit, every way of not reaching it (closed port, hanging connect, untrusted TLS) reads the same.
 */

const NET = { timeout: 30_000 };
const SECRET = 'works-client-secret-0123456789abcdef';
const PUBLIC_ADDRESS = '93.184.215.14';

const BODY = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
const METADATA = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.onprem.test/entity"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${BODY(idps.b.certificate)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.onprem.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
const REFUSED_MESSAGE =
  "The metadata URL could not be fetched: its host is not a public address or does not resolve (private, loopback, link-local and cloud metadata addresses are refused unless the gateway's operator allows the host).";
const UNREACHABLE_MESSAGE = 'The metadata URL could not be fetched: the server could not be reached or did not answer in time.';

/** A loopback HTTP server that counts the TCP connections it accepts. */
interface Target {
  url: string;
  port: number;
  /** host:port, as an allowlist entry. */
  hostPort: string;
  connections: () => number;
  close: () => Promise<void>;
}

const answerJson = (req: IncomingMessage, res: ServerResponse): void => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"user_id":"emp-100","access_token":"x"}');
};

/** A loopback server (http, or https with a self-signed certificate) counting the TCP connections it accepts. */
async function startTarget(handler: (req: IncomingMessage, res: ServerResponse) => void = answerJson, tls = false): Promise<Target> {
  const server: Server = tls ? createHttpsServer({ key: idps.a.privateKey, cert: idps.a.certificate }, handler) : createHttpServer(handler);
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    hostPort: `127.0.0.1:${port}`,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const hostPortOf = (url: string): string => new URL(url).host;

const worksTenant = (domain: string, tokenUrl: string, userInfoUrl: string): TenantInput =>
  worksOAuthTenant(domain, { webLoginUrl: 'https://idp.example.test/login', tokenUrl, userInfoUrl }, { clientId: 'bridge', clientSecret: SECRET });

async function addMember(gw: Gateway, domain: string): Promise<void> {
  await gw.services.members.save(domain, { id: `m-${domain}`, account: `emp100@${domain}`, name: 'Employee 100', externalKey: 'emp-100', role: 'member', status: 'in_use' });
}

/** A works login up to the IdP's redirect back with `code`. */
async function worksCallback(gw: Gateway, domain: string, code = 'a-code-from-the-idp') {
  const start = await gw.http.get(`/d/login/${domain}`).query({ accessUrl: `${SERVICE_ORIGIN}/x` });
  assert.equal(start.status, 302, start.text.slice(0, 300));
  const redirectUri = new URL(new URL(start.headers.location as string).searchParams.get('redirect_uri')!);
  // The callback comes from the browser that started the login (its login binding cookie).
  return withBinding(gw.http.get(`${redirectUri.pathname}${redirectUri.search}&${new URLSearchParams({ code }).toString()}`), undefined, bindingCookieOf(start) ?? null);
}

/** An OIDC login: /d/login (discovery), then the IdP's redirect back with a code, the state and iss. */
async function oidcCallback(gw: Gateway, domain: string, issuer: string, beforeCallback: (nonce: string) => void = () => undefined) {
  const start = await gw.http.get(`/d/login/${domain}`).query({ accessUrl: `${SERVICE_ORIGIN}/x` });
  assert.equal(start.status, 302, start.text.slice(0, 300));
  const location = new URL(start.headers.location as string);
  beforeCallback(location.searchParams.get('nonce')!);
  const query = new URLSearchParams({ code: 'a-code-from-the-idp', state: location.searchParams.get('state')!, iss: issuer });
  return withBinding(gw.http.get(`/oauth/callback/${domain}?${query.toString()}`), undefined, bindingCookieOf(start) ?? null);
}

const importUrl = (gw: Gateway, url: string) => gw.http.post('/admin/v1/domains/nosso.example/saml/idp-metadata').set('Authorization', OPERATOR_AUTH).send({ url });

/** The private detail of the latest refusal with this reason, from the operator's log. */
const logDetail = (gw: Gateway, reason: string): string => String(gw.logs.filter((l) => l.reason === reason).at(-1)?.detail);

/** The tenant's audit trail names the coarse class only: no address, port, or error code of the target. */
async function assertCoarseAudit(gw: Gateway, domain: string, reason: string): Promise<void> {
  assert.equal(await lastAuditReason(gw, domain), reason);
  // Everything but the client's own IP (supertest's, 127.0.0.1 too).
  const trail = JSON.stringify((await gw.services.audit.list(domain, 20)).map(({ ip: _ip, ...entry }) => entry));
  for (const leak of ['127.0.0.1', 'resolves', 'ECONNREFUSED', 'timeout', 'CERT', 'not_public']) assert.ok(!trail.includes(leak), `the audit trail holds "${leak}": ${trail}`);
}

describe('outbound policy: no server-side call reaches loopback or private addresses unless the operator allows it (SSRF)', () => {
  /** The default policy. */
  let guarded: Gateway;
  /** An allowlist admitting the discovery / token hosts only. */
  let allowlisted: Gateway;
  /** The default policy, with DNS that lies to the check and tells the truth to the connection. */
  let rebinding: Gateway;
  let works: WorksIdp;
  let oidc: OidcIdp;
  let fakeToken: FakeOidcIdp;
  let fakeJwks: FakeOidcIdp;
  let hole: BlackHole;
  const targets: Record<'userinfo' | 'token' | 'jwks' | 'metadata' | 'metadataAllowed' | 'rebind' | 'tls' | 'closed', Target> = {} as never;
  const resolverCalls: string[] = [];
  let lieNext = false;

  before(async () => {
    targets.userinfo = await startTarget();
    targets.token = await startTarget();
    targets.jwks = await startTarget();
    targets.rebind = await startTarget();
    targets.metadata = await startTarget((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/xml' }).end(METADATA);
    });
    targets.metadataAllowed = await startTarget((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/xml' }).end(METADATA);
    });
    targets.tls = await startTarget(answerJson, true);
    targets.closed = await startTarget();
    await targets.closed.close();
    hole = await startBlackHole();

    works = await startWorksIdp({ clients: { bridge: SECRET } });
    oidc = await startOidcIdp();
    fakeToken = await startFakeOidcIdp({ tokenEndpoint: `${targets.token.url}/token` });
    fakeJwks = await startFakeOidcIdp({ jwksUri: `${targets.jwks.url}/jwks` });

    guarded = await createGateway();
    await guarded.services.tenants.save(worksTenant('works-token.example', works.tokenUrl, works.userInfoUrl));
    await guarded.services.tenants.save(oidcTenant('oidc-discovery.example', oidc.issuer));

    allowlisted = await createGateway({
      overrides: {
        outbound: {
          allowedHosts: [hostPortOf(works.url), hostPortOf(fakeToken.issuer), hostPortOf(fakeJwks.issuer), targets.metadataAllowed.hostPort, targets.tls.hostPort, targets.closed.hostPort, `127.0.0.1:${hole.port}`],
        },
      },
    });
    const a = allowlisted.services.tenants;
    await a.save(worksTenant('works-userinfo.example', works.tokenUrl, `${targets.userinfo.url}/userinfo`));
    await a.save(oidcTenant('oidc-token.example', fakeToken.issuer));
    await a.save(oidcTenant('oidc-jwks.example', fakeJwks.issuer));
    await a.save(worksTenant('allowed.example', works.tokenUrl, works.userInfoUrl));
    await addMember(allowlisted, 'allowed.example');
    await a.save(worksTenant('down-closed.example', `${targets.closed.url}/token`, `${targets.closed.url}/userinfo`));
    await a.save(worksTenant('down-hole.example', `${hole.url}/token`, `${hole.url}/userinfo`));
    await a.save(worksTenant('down-tls.example', `${targets.tls.url}/token`, `${targets.tls.url}/userinfo`));

    const lying: HostResolver = async (host) => {
      resolverCalls.push(host);
      if (lieNext) {
        lieNext = false;
        return [{ address: PUBLIC_ADDRESS, family: 4 }];
      }
      return systemResolver(host);
    };
    rebinding = await createGateway({ resolveHost: lying });
    await rebinding.services.tenants.save(worksTenant('rebind.example', `http://localhost:${targets.rebind.port}/token`, `http://localhost:${targets.rebind.port}/userinfo`));
  });

  after(async () => {
    for (const gw of [guarded, allowlisted, rebinding]) {
      await gw?.services.outbound.close();
      await gw?.close();
    }
    await works?.close();
    await oidc?.close();
    await fakeToken?.close();
    await fakeJwks?.close();
    await hole?.close();
    for (const t of Object.values(targets)) await t.close().catch(() => undefined);
  });

  describe('the default policy refuses before any connection', () => {
    it('IdP metadata by URL: loopback in every spelling, private, metadata endpoints and unresolvable names read the same', NET, async () => {
      const port = targets.metadata.port;
      const urls = [
        `http://127.0.0.1:${port}/metadata`,
        `http://localhost:${port}/metadata`,
        `http://2130706433:${port}/metadata`,
        `http://[::ffff:127.0.0.1]:${port}/metadata`,
        `http://[::ffff:7f00:1]:${port}/metadata`,
        `http://[64:ff9b::7f00:1]:${port}/metadata`,
        `http://[2002:7f00:1::]:${port}/metadata`,
        `http://[::1]:${port}/metadata`,
        `http://0.0.0.0:${port}/metadata`,
        'http://10.0.0.1/metadata',
        'http://192.168.1.10/metadata',
        'http://100.64.0.1/metadata',
        'http://[fd00::1]/metadata',
        'http://[fe80::1]/metadata',
        'http://169.254.169.254/latest/meta-data/',
        'http://[fd00:ec2::254]/latest/meta-data/',
        'http://metadata.google.internal/computeMetadata/v1/',
        'http://nowhere.invalid/metadata',
      ];
      for (const url of urls) {
        const res = await importUrl(guarded, url);
        assert.equal(res.status, 400, `${url}: ${res.text}`);
        assert.equal(res.body.error, 'metadata_fetch_failed', url);
        assert.equal(res.body.message, REFUSED_MESSAGE, url);
      }
      assert.equal(targets.metadata.connections(), 0, 'no connection reached the loopback server');
      assert.match(logDetail(guarded, 'outbound_refused'), /not a public address|does not resolve|cloud metadata/, 'the operator log has the cause');
    });

    it('works token URL: no connection, no client secret or code sent; oauth_login_failed, audited token_outbound_refused', NET, async () => {
      const res = await worksCallback(guarded, 'works-token.example');
      assert.equal(res.status, 400, res.text.slice(0, 300));
      assert.equal(errorCodeOf(res), 'oauth_login_failed');
      await assertCoarseAudit(guarded, 'works-token.example', 'token_outbound_refused');
      assert.equal(works.connections(), 0, 'the token endpoint saw no connection');
      assert.equal(works.requests.length, 0, 'so neither the client secret nor the code reached it');
      assert.match(logDetail(guarded, 'token_outbound_refused'), /resolves to 127\.0\.0\.1, which is not a public address/);
    });

    it('OIDC discovery (a real OpenID Provider on 127.0.0.1): no connection; oauth_login_failed', NET, async () => {
      const res = await guarded.http.get('/d/login/oidc-discovery.example').query({ accessUrl: `${SERVICE_ORIGIN}/x` });
      assert.equal(res.status, 400, res.text.slice(0, 300));
      assert.equal(errorCodeOf(res), 'oauth_login_failed');
      assert.equal(oidc.connections(), 0, 'the issuer saw no connection');
      assert.match(logDetail(guarded, 'oidc_outbound_refused'), /resolves to 127\.0\.0\.1/);
    });
  });

  describe('after discovery: the allowlist admits the discovery host:port only', () => {
    it('works user-info URL on another loopback port: refused, audited userinfo_outbound_refused', NET, async () => {
      const res = await worksCallback(allowlisted, 'works-userinfo.example', works.issueCode('emp-100'));
      assert.equal(res.status, 400, res.text.slice(0, 300));
      assert.equal(errorCodeOf(res), 'oauth_login_failed');
      await assertCoarseAudit(allowlisted, 'works-userinfo.example', 'userinfo_outbound_refused');
      assert.equal(works.requestsTo('/token').length, 1, 'the admitted token endpoint was called');
      assert.equal(targets.userinfo.connections(), 0, 'the user-info target saw no connection: no client secret, no access token');
    });

    it('OIDC token endpoint named by the discovery document: refused, audited oidc_outbound_refused', NET, async () => {
      const res = await oidcCallback(allowlisted, 'oidc-token.example', fakeToken.issuer);
      assert.equal(res.status, 400, res.text.slice(0, 300));
      assert.equal(errorCodeOf(res), 'oauth_login_failed');
      await assertCoarseAudit(allowlisted, 'oidc-token.example', 'oidc_outbound_refused');
      assert.ok(fakeToken.connections() > 0, 'discovery went to the admitted issuer');
      assert.equal(targets.token.connections(), 0, 'the token target saw no connection: no client secret, no code');
    });

    it('OIDC JWKS named by the discovery document: refused, audited oidc_outbound_refused', NET, async () => {
      allowlisted.clock.set(Date.now());
      const res = await oidcCallback(allowlisted, 'oidc-jwks.example', fakeJwks.issuer, (nonce) => {
        fakeJwks.nextIdToken(() => fakeJwks.sign(fakeJwks.claims(nonce, allowlisted.clock.now())));
      });
      assert.equal(res.status, 400, res.text.slice(0, 300));
      assert.equal(errorCodeOf(res), 'oauth_login_failed');
      await assertCoarseAudit(allowlisted, 'oidc-jwks.example', 'oidc_outbound_refused');
      assert.equal(fakeJwks.tokenRequests.length, 1, 'the admitted token endpoint answered with an ID token');
      assert.equal(targets.jwks.connections(), 0, 'the JWKS target saw no connection');
    });
  });

  describe('DNS rebinding: public when checked, loopback when connecting', () => {
    it('works token URL: the connect-time check refuses; the server sees no connection', NET, async () => {
      resolverCalls.length = 0;
      lieNext = true;
      const res = await worksCallback(rebinding, 'rebind.example');
      assert.equal(res.status, 400, res.text.slice(0, 300));
      assert.equal(errorCodeOf(res), 'oauth_login_failed');
      await assertCoarseAudit(rebinding, 'rebind.example', 'token_outbound_refused');
      assert.deepEqual(resolverCalls, ['localhost', 'localhost'], 'resolved for the check (public) and again to connect');
      assert.equal(targets.rebind.connections(), 0);
    });

    it('IdP metadata by URL: the connect-time check refuses; the server sees no connection', NET, async () => {
      resolverCalls.length = 0;
      lieNext = true;
      const res = await importUrl(rebinding, `http://localhost:${targets.metadata.port}/metadata`);
      assert.equal(res.status, 400, res.text);
      assert.equal(res.body.message, REFUSED_MESSAGE);
      assert.deepEqual(resolverCalls, ['localhost', 'localhost']);
      assert.equal(targets.metadata.connections(), 0);
    });
  });

  describe('what the operator allows', () => {
    it('an allowlisted host:port works; another port of the same host does not', NET, async () => {
      const ok = await importUrl(allowlisted, `${targets.metadataAllowed.url}/metadata`);
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.body.entityId, 'https://idp.onprem.test/entity');
      const other = await importUrl(allowlisted, `${targets.metadata.url}/metadata`);
      assert.equal(other.status, 400);
      assert.equal(other.body.message, REFUSED_MESSAGE);
      assert.equal(targets.metadata.connections(), 0);

      const login = await worksCallback(allowlisted, 'allowed.example', works.issueCode('emp-100'));
      assert.equal(login.status, 303, login.text.slice(0, 300));
    });

    it('an admitted private server that cannot be reached reads the same whatever the cause (closed port, hanging connect, untrusted TLS)', NET, async () => {
      const domains = ['down-closed.example', 'down-hole.example', 'down-tls.example'];
      const answers = await Promise.all(domains.map((d) => worksCallback(allowlisted, d)));
      for (const [i, res] of answers.entries()) {
        assert.equal(res.status, 502, `${domains[i]}: ${res.text.slice(0, 300)}`);
        assert.equal(errorCodeOf(res), 'idp_unavailable', domains[i]);
        await assertCoarseAudit(allowlisted, domains[i]!, 'token_idp_unreachable');
      }
      // The operator's log still tells them apart.
      const details = allowlisted.logs.filter((l) => l.reason === 'token_idp_unreachable').map((l) => String(l.detail));
      assert.ok(details.some((d) => d.includes('ECONNREFUSED')), details.join('\n'));
      assert.ok(details.some((d) => d.includes('connect_timeout')), details.join('\n'));
      assert.ok(details.some((d) => /CERT|TLS|SSL/.test(d)), details.join('\n'));

      const metadata = await Promise.all([`${targets.closed.url}/metadata`, `${targets.tls.url}/metadata`].map((u) => importUrl(allowlisted, u)));
      for (const res of metadata) {
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.message, UNREACHABLE_MESSAGE);
      }
    });
  });
});
