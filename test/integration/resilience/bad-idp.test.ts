import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { TenantInput } from '../../../src/domain/tenant.js';
import { LOOPBACK_IDPS, OPERATOR_AUTH, SERVICE_ORIGIN, beginLogin, bindingCookieOf, createGateway, errorCodeOf, postAcs, validResponse, withBinding, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

/**
 * A bad IdP never blocks other tenants. Every kind of broken IdP answer — none at all, a trickle, an
 * endless stream, malformed or hostile XML, an untrusted TLS certificate — is thrown at the two places
 * the gateway calls out: the admin's IdP metadata import by URL (S-12: 5 s, 1 MB) and a tenant's OAuth
 * endpoints (S-15: connect 1 s, read 3 s, 1 MB; the works token endpoint, OIDC discovery). Each gets a
 * clear error with its code once its limit is reached, and all the while, concurrently, SAML logins of
 * another tenant keep succeeding. The bad IdPs listen on 127.0.0.1, which the operator admits here
 * (LOOPBACK_IDPS): for such a private server the admin is told only that it could not be reached — a
 * timeout and a TLS failure read the same — and the operator's log names the limit that was hit.
 */

/** What the admin is told when a server only the operator admits (here 127.0.0.1) cannot be reached, whatever the cause. */
const UNREACHABLE = /^The metadata URL could not be fetched: the server could not be reached or did not answer in time\.$/;
const BODY = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
const METADATA = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.bad.test/entity"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${BODY(idps.b.certificate)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.bad.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`;
const LAUGHS = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>${METADATA.replace('entityID="https://idp.bad.test/entity"', 'entityID="&lol3;"')}`;

/** A TCP server that accepts connections and never says a word. */
async function startSilent(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface Stub {
  url: string;
  server: Server;
  close: () => Promise<void>;
}

async function startHttp(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Stub> {
  const server = createHttpServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Answers 200 at once, then one byte every 200 ms, forever: never a pause long enough for a read timeout. */
const drip = (type: string) => (req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  res.writeHead(200, { 'content-type': type });
  res.write(type.includes('json') ? '{"access_token":"' : '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="');
  const timer = setInterval(() => res.write('x'), 200);
  res.on('close', () => clearInterval(timer));
};

/** Streams 64 KiB chunks as fast as the client takes them, forever (gigabytes if nobody stops); counts what it sent. */
function endless(): { handler: (req: IncomingMessage, res: ServerResponse) => void; sent: () => number; closed: () => number } {
  let sent = 0;
  let closed = 0;
  const chunk = Buffer.alloc(64 * 1024, 'x');
  return {
    sent: () => sent,
    closed: () => closed,
    handler: (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': req.url?.includes('well-known') || req.method === 'POST' ? 'application/json' : 'application/xml' });
      let open = true;
      res.on('close', () => {
        open = false;
        closed++;
      });
      const pump = (): void => {
        while (open && sent < 8 * 1024 ** 3) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
      };
      pump();
    },
  };
}

const oauthTenant = (domain: string, oauth: { profile: 'works' | 'oidc'; tokenUrl?: string; userInfoUrl?: string; issuer?: string }, webLoginUrl = 'https://idp.bad.test/login'): TenantInput => ({
    domain,
    name: `Tenant ${domain}`,
    plan: 'standard',
    sso: { enabled: true, type: 'oauth', userKey: 'externalKey', setExpireTime: false, webLoginUrl, oauth: { clientId: 'bridge', clientSecret: 'bridge-secret-value', userKeyClaim: 'sub', scopes: ['openid'], ...oauth } },
    serviceOrigins: [],
    logoutRedirectDomains: [],
    thirdPartyAppPasswordsAllowed: false,
  });

describe('a bad IdP never blocks other tenants (metadata by URL, OAuth endpoints)', () => {
  let gw: Gateway;
  let silent: Awaited<ReturnType<typeof startSilent>>;
  const stubs: Stub[] = [];
  const stream = endless();
  let url: Record<'drip' | 'dripJson' | 'endless' | 'malformed' | 'notXml' | 'laughs' | 'tls', string>;

  before(async () => {
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
    silent = await startSilent();
    const start = async (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> => {
      const stub = await startHttp(handler);
      stubs.push(stub);
      return stub.url;
    };
    const fixed = (type: string, body: string) => (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      res.writeHead(200, { 'content-type': type }).end(body);
    };
    const tls = createHttpsServer({ key: idps.a.privateKey, cert: idps.a.certificate }, fixed('application/xml', METADATA));
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    stubs.push({ url: '', server: tls, close: () => new Promise<void>((r) => tls.close(() => r())) });
    url = {
      drip: await start(drip('application/xml')),
      dripJson: await start(drip('application/json')),
      endless: await start(stream.handler),
      malformed: await start(fixed('application/xml', '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:IDPSSODescriptor>')),
      notXml: await start(fixed('application/json', '{"entityID":"https://idp.bad.test/entity"}')),
      laughs: await start(fixed('application/xml', LAUGHS)),
      tls: `https://127.0.0.1:${(tls.address() as { port: number }).port}`,
    };
    const { tenants } = gw.services;
    await tenants.save(oauthTenant('token-silent.example', { profile: 'works', tokenUrl: `${silent.url}/token`, userInfoUrl: `${silent.url}/userinfo` }));
    await tenants.save(oauthTenant('token-drip.example', { profile: 'works', tokenUrl: `${url.dripJson}/token`, userInfoUrl: `${url.dripJson}/userinfo` }));
    await tenants.save(oauthTenant('token-endless.example', { profile: 'works', tokenUrl: `${url.endless}/token`, userInfoUrl: `${url.endless}/userinfo` }));
    await tenants.save(oauthTenant('oidc-silent.example', { profile: 'oidc', issuer: silent.url }, undefined));
    await tenants.save(oauthTenant('oidc-endless.example', { profile: 'oidc', issuer: url.endless }, undefined));
    await tenants.save(oauthTenant('oidc-drip.example', { profile: 'oidc', issuer: url.dripJson }, undefined));
  });

  after(async () => {
    await gw.services.outbound.close();
    await gw.close();
    await silent.close();
    for (const s of stubs) await s.close();
  });

  const importUrl = (target: string) => gw.http.post('/admin/v1/domains/nosso.example/saml/idp-metadata').set('Authorization', OPERATOR_AUTH).send({ url: target });

  /** A works-profile login that reaches the token endpoint: /d/login, then the IdP's redirect back with a code. */
  async function worksCallback(domain: string) {
    const start = await gw.http.get(`/d/login/${domain}`).query({ accessUrl: `${SERVICE_ORIGIN}/x` });
    assert.equal(start.status, 302, start.text.slice(0, 300));
    const redirectUri = new URL(new URL(start.headers.location as string).searchParams.get('redirect_uri')!);
    return withBinding(gw.http.get(`${redirectUri.pathname}${redirectUri.search}&code=a-code-from-the-idp`), undefined, bindingCookieOf(start));
  }

  /** A full SAML login of a.example: 303 with a session when all is well. */
  async function samlLogin(): Promise<{ status: number; text: string }> {
    const login = await beginLogin(gw, 'a.example');
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001'), login.relayState);
    return { status: res.status, text: res.text.slice(0, 300) };
  }

  it('answers each broken IdP with a clear error and code at its limit, while another tenant signs in all along', { timeout: 60_000 }, async (t) => {
    const cases: Array<{ name: string; run: () => Promise<{ status: number; text: string; body: unknown }>; status: number; code: string; message?: RegExp; log?: RegExp }> = [
      { name: 'metadata: the server never answers', run: () => importUrl(`${silent.url}/metadata`), status: 400, code: 'metadata_fetch_failed', message: UNREACHABLE, log: /^timeout: / },
      { name: 'metadata: the server drips a byte at a time', run: () => importUrl(`${url.drip}/metadata`), status: 400, code: 'metadata_fetch_failed', message: UNREACHABLE, log: /^timeout: / },
      { name: 'metadata: gigabytes streamed', run: () => importUrl(`${url.endless}/metadata`), status: 400, code: 'metadata_fetch_failed', message: /larger than 1 MB/ },
      { name: 'metadata: malformed XML', run: () => importUrl(`${url.malformed}/metadata`), status: 400, code: 'idp_metadata_invalid' },
      { name: 'metadata: not XML at all', run: () => importUrl(`${url.notXml}/metadata`), status: 400, code: 'idp_metadata_invalid' },
      { name: 'metadata: entity expansion (DTD)', run: () => importUrl(`${url.laughs}/metadata`), status: 400, code: 'idp_metadata_invalid' },
      { name: 'metadata: self-signed TLS certificate', run: () => importUrl(`${url.tls}/metadata`), status: 400, code: 'metadata_fetch_failed', message: UNREACHABLE, log: /^tls: / },
      { name: 'works token endpoint never answers', run: () => worksCallback('token-silent.example'), status: 502, code: 'idp_unavailable' },
      { name: 'works token endpoint drips its answer', run: () => worksCallback('token-drip.example'), status: 502, code: 'idp_unavailable' },
      { name: 'works token endpoint streams gigabytes', run: () => worksCallback('token-endless.example'), status: 400, code: 'oauth_login_failed' },
      { name: 'OIDC discovery never answers', run: () => gw.http.get('/d/login/oidc-silent.example'), status: 502, code: 'idp_unavailable' },
      { name: 'OIDC discovery drips its answer', run: () => gw.http.get('/d/login/oidc-drip.example'), status: 502, code: 'idp_unavailable' },
      { name: 'OIDC discovery streams gigabytes', run: () => gw.http.get('/d/login/oidc-endless.example'), status: 400, code: 'oauth_login_failed' },
    ];
    const before = JSON.stringify((await gw.services.tenants.load('nosso.example')).sso);

    const pending = new Set(cases.map((c) => c.name));
    const logins = { ok: 0, whileEveryBadIdpHung: 0, failures: [] as string[] };
    const slowest = ['metadata: the server never answers', 'works token endpoint never answers', 'OIDC discovery never answers'];
    const loginLoop = (async () => {
      while (pending.size > 0) {
        const res = await samlLogin();
        if (res.status !== 303) logins.failures.push(`${res.status} ${res.text}`);
        else {
          logins.ok++;
          if (slowest.every((n) => pending.has(n))) logins.whileEveryBadIdpHung++;
        }
      }
    })();
    const results = await Promise.all(
      cases.map(async (c) => {
        try {
          return await c.run();
        } finally {
          pending.delete(c.name);
        }
      }),
    );
    await loginLoop;

    t.diagnostic(`another tenant signed in ${logins.ok} times meanwhile, ${logins.whileEveryBadIdpHung} of them while all three silent IdPs were still being waited for`);
    assert.deepEqual(logins.failures, [], 'every login of the other tenant succeeded');
    assert.ok(logins.whileEveryBadIdpHung >= 3, 'logins went through while the bad IdPs hung');
    cases.forEach((c, i) => {
      const res = results[i]!;
      assert.equal(res.status, c.status, `${c.name}: ${res.text.slice(0, 300)}`);
      assert.equal(errorCodeOf(res), c.code, c.name);
      if (c.message) assert.match((res.body as { message: string }).message, c.message, c.name);
      if (c.log) assert.ok(gw.logs.some((l) => l.errorCode === c.code && c.log!.test(String(l.detail))), `${c.name}: the log names the cause`);
    });
    // The endless stream was cut off early: the gateway read about 1 MB and hung up, never gigabytes.
    assert.equal(stream.closed(), 3, 'every endless answer was hung up on');
    assert.ok(stream.sent() < 3 * 32 * 1024 ** 2, `the endless server sent ${stream.sent()} bytes in all`);
    assert.equal(JSON.stringify((await gw.services.tenants.load('nosso.example')).sso), before, 'no failed import changed the tenant');
    assert.equal((await gw.http.get('/healthz')).status, 200);
  });
});
