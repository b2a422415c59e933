import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import supertest from 'supertest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { applySeed, readSeed } from '../../src/seed.js';
import { MemoryStore } from '../../src/store/index.js';
import { FakeClock } from '../helpers/clock.js';
import { freePort } from '../helpers/redis.js';

const field = (html: string, name: string): string => {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} in page`);
  return m[1]!.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)));
};

/** The gateway's login binding cookie among Set-Cookie lines, as a Cookie header value. */
const bindingCookie = (setCookie: string[]): string | undefined => setCookie.find((c) => c.startsWith('idpb_login='))?.split(';')[0];

/** Follows the demo login the way a browser does (the login binding cookie goes back with the ACS post), against any HTTP client. */
async function demoLogin(
  get: (path: string, cookie?: string) => Promise<{ status: number; location?: string; text: string; setCookie: string[] }>,
  post: (path: string, form: Record<string, string>, cookie?: string) => Promise<{ status: number; location?: string; text: string; setCookie: string[] }>,
  publicUrl: string,
  username: string,
  password: string,
): Promise<{ status: number; location?: string; text: string; cookie?: string }> {
  const start = await get(`/d/login/demo.example?accessUrl=${encodeURIComponent(`${publicUrl}/welcome`)}`);
  assert.equal(start.status, 302);
  const binding = bindingCookie(start.setCookie);
  assert.ok(binding, 'the login start sets the login binding cookie');
  const idpUrl = new URL(start.location!);
  assert.equal(idpUrl.origin + idpUrl.pathname, `${publicUrl}/demo-idp/saml/sso`);
  const form = await get(idpUrl.pathname + idpUrl.search);
  assert.equal(form.status, 200);
  const posted = await post('/demo-idp/saml/sso', {
    SAMLRequest: field(form.text, 'SAMLRequest'),
    RelayState: field(form.text, 'RelayState'),
    username,
    password,
  });
  if (posted.status !== 200) return posted;
  assert.match(posted.text, new RegExp(`action="${publicUrl}/acs/demo.example"`));
  const acs = await post('/acs/demo.example', { SAMLResponse: field(posted.text, 'SAMLResponse'), RelayState: field(posted.text, 'RelayState') }, binding);
  const cookie = acs.setCookie.find((c) => c.startsWith('idpb_session=') && !c.startsWith('idpb_session=;'))?.split(';')[0];
  return { ...acs, cookie };
}

describe('demo tenants and demo SAML IdP (npm start)', () => {
  const publicUrl = 'http://localhost:3000';
  const { config } = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { logLevel: 'silent', serviceOrigins: ['https://board.example.net'] } });
  const store = new MemoryStore();
  const seed = readSeed('config/demo-tenants.json', publicUrl);
  let http: ReturnType<typeof supertest>;

  before(async () => {
    const { app, services } = createApp(
      { config, store, logger: createLogger({ level: 'silent' }), clock: new FakeClock() },
      {
        samlIdp: {
          privateKey: readFileSync('config/dev-only/demo-saml-idp.key.pem', 'utf8'),
          certificate: readFileSync('config/dev-only/demo-saml-idp.crt.pem', 'utf8'),
          users: seed.demoIdp!.users,
        },
      },
    );
    await applySeed(seed, services);
    http = supertest(app);
  });
  after(async () => store.close());

  const get = async (path: string, cookie?: string) => {
    const r = cookie ? await http.get(path).set('Cookie', cookie) : await http.get(path);
    return { status: r.status, location: r.headers.location, text: r.text, setCookie: (r.headers['set-cookie'] as unknown as string[]) ?? [] };
  };
  const post = async (path: string, form: Record<string, string>, cookie?: string) => {
    const r = await (cookie ? http.post(path).set('Cookie', cookie) : http.post(path)).type('form').send(form);
    return { status: r.status, location: r.headers.location, text: r.text, setCookie: (r.headers['set-cookie'] as unknown as string[]) ?? [] };
  };

  it('logs alice in through the demo IdP and lands on /welcome', async () => {
    const res = await demoLogin(get, post, publicUrl, 'alice', 'alice-demo-password');
    assert.equal(res.status, 303, res.text);
    assert.equal(res.location, `${publicUrl}/welcome`);
    const welcome = await get('/welcome', res.cookie);
    assert.match(welcome.text, /alice@demo\.example/);
  });

  it('refuses a wrong password at the demo IdP', async () => {
    const res = await demoLogin(get, post, publicUrl, 'alice', 'wrong');
    assert.equal(res.status, 401);
  });

  it('refuses a suspended member and an unknown one with clear codes', async () => {
    const carol = await demoLogin(get, post, publicUrl, 'carol', 'carol-demo-password');
    assert.equal(carol.status, 403);
    assert.match(carol.text, /member_not_active/);
    const mallory = await demoLogin(get, post, publicUrl, 'mallory', 'mallory-demo-password');
    assert.equal(mallory.status, 403);
    assert.match(mallory.text, /member_not_found/);
  });

  it('the auto-post page lets the browser follow the ACS to the services and the OP clients (Chromium applies form-action to redirects); nothing else loads', async () => {
    const start = await get(`/d/login/demo.example?accessUrl=${encodeURIComponent('https://board.example.net/home')}`);
    const idpUrl = new URL(start.location!);
    const form = await get(idpUrl.pathname + idpUrl.search);
    const r = await http
      .post('/demo-idp/saml/sso')
      .type('form')
      .send({ SAMLRequest: field(form.text, 'SAMLRequest'), RelayState: field(form.text, 'RelayState'), username: 'alice', password: 'alice-demo-password' });
    assert.equal(r.status, 200);
    const csp = Object.fromEntries(
      String(r.headers['content-security-policy'])
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .map(([name, ...values]) => [name!, values]),
    );
    // The ACS, the S-5 service origins (global and the tenant's), and the OP clients' redirect URIs (the mobile app's scheme).
    assert.deepEqual(new Set(csp['form-action']), new Set([publicUrl, 'https://board.example.net', 'idpbridge.mobile:']));
    assert.deepEqual(csp['default-src'], ["'none'"]);
    assert.deepEqual(csp['frame-ancestors'], ["'none'"]);
    assert.deepEqual(csp['base-uri'], ["'none'"]);
    const nonce = /<script nonce="([^"]+)">/.exec(r.text)?.[1];
    assert.deepEqual(csp['script-src'], [`'nonce-${nonce}'`]);
  });

  it('signs only for this gateway: an AuthnRequest naming another ACS is refused', async () => {
    const { deflateRawSync } = await import('node:zlib');
    const req = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" AssertionConsumerServiceURL="https://evil.example/acs"><saml:Issuer>https://evil.example</saml:Issuer></samlp:AuthnRequest>`;
    const res = await get(`/demo-idp/saml/sso?SAMLRequest=${encodeURIComponent(deflateRawSync(req).toString('base64'))}`);
    assert.equal(res.status, 400);
  });
});

describe('demo OAuth IdP (works profile) behind several processes', () => {
  const publicUrl = 'http://localhost:3000';
  const { config } = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { logLevel: 'silent' } });
  const seed = readSeed('config/demo-tenants.json', publicUrl);
  const store = new MemoryStore();
  /** Two gateway processes (two workers) on one store. */
  const workers = [0, 1].map(() =>
    supertest(
      createApp(
        { config, store, logger: createLogger({ level: 'silent' }), clock: new FakeClock() },
        {
          samlIdp: { privateKey: readFileSync('config/dev-only/demo-saml-idp.key.pem', 'utf8'), certificate: readFileSync('config/dev-only/demo-saml-idp.crt.pem', 'utf8'), users: seed.demoIdp!.users },
          oauthIdp: { users: seed.demoIdp!.users, client: seed.demoIdp!.oauthClient! },
        },
      ).app,
    ),
  );
  after(async () => store.close());
  const client = seed.demoIdp!.oauthClient!;

  it('keeps codes and tokens in the shared store: a code issued by one worker is redeemed at the other, once', async () => {
    const [a, b] = workers as [ReturnType<typeof supertest>, ReturnType<typeof supertest>];
    const signedIn = await a
      .post('/demo-idp/oauth/authorize')
      .type('form')
      .send({ response_type: 'code', client_id: client.clientId, redirect_uri: `${publicUrl}/oauth/callback/oauth.example?state=s`, username: 'erin', password: 'erin-demo-password' });
    assert.equal(signedIn.status, 302);
    const code = new URL(signedIn.headers.location!).searchParams.get('code')!;
    const redeem = (w: typeof a) => w.post('/demo-idp/oauth/token').type('form').send({ grant_type: 'authorization_code', code, client_id: client.clientId, client_secret: client.clientSecret });
    const token = await redeem(b);
    assert.equal(token.status, 200, token.text);
    const accessToken = (token.body as { access_token: string }).access_token;
    const again = await redeem(a);
    assert.equal(again.status, 400);
    assert.equal((again.body as { error: string }).error, 'invalid_grant');
    const info = await a.post('/demo-idp/oauth/userinfo').type('form').send({ access_token: accessToken, client_id: client.clientId, client_secret: client.clientSecret });
    assert.deepEqual(info.body, { user_id: 'erin@oauth.example' });
    const unknown = await b.post('/demo-idp/oauth/userinfo').type('form').send({ access_token: 'nope', client_id: client.clientId, client_secret: client.clientSecret });
    assert.equal((unknown.body as { error: string }).error, '303');
  });
});

describe('npm start (the built gateway as a process)', () => {
  let child: ChildProcess;
  let base: string;
  let output = '';

  before(async () => {
    const port = await freePort();
    base = `http://localhost:${port}`;
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), LOG_LEVEL: 'info' };
    delete env.REDIS_URL;
    delete env.NODE_ENV;
    delete env.PUBLIC_URL;
    child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    for (let i = 0; i < 200 && !output.includes('idp-bridge listening'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(output.includes('idp-bridge listening'), output);
  });
  after(() => {
    child.kill('SIGTERM');
  });

  it('serves the demo login with no environment, on the in-process store, warning loudly', async () => {
    assert.match(output, /IN-PROCESS store/);
    const cookieJar: string[] = [];
    const toRes = async (r: Response) => ({ status: r.status, location: r.headers.get('location') ?? undefined, text: await r.text(), setCookie: r.headers.getSetCookie() });
    const res = await demoLogin(
      async (path, cookie) => toRes(await fetch(base + path, { redirect: 'manual', headers: cookie ? { cookie } : {} })),
      async (path, form, cookie) => toRes(await fetch(base + path, { method: 'POST', redirect: 'manual', body: new URLSearchParams(form), headers: cookie ? { cookie } : {} })),
      base,
      'bob',
      'bob-demo-password',
    );
    assert.equal(res.status, 303, res.text);
    cookieJar.push(res.cookie!);
    const session = await fetch(`${base}/session`, { headers: { cookie: cookieJar[0]! } });
    assert.equal(session.status, 200);
    assert.equal(((await session.json()) as { member: { account: string } }).member.account, 'bob@demo.example');
    assert.ok(!output.includes('PHNhbWxwOlJlc3BvbnNl'), 'no SAMLResponse in the process output');
  });

  it('serves the demo OAuth (works profile) login: the gateway calls the demo IdP token and user-info APIs', async () => {
    const start = await fetch(`${base}/d/login/oauth.example?accessUrl=${encodeURIComponent(`${base}/welcome`)}`, { redirect: 'manual' });
    assert.equal(start.status, 302);
    const binding = bindingCookie(start.headers.getSetCookie());
    assert.ok(binding, 'the login start sets the login binding cookie');
    // http://localhost: browsers accept Secure cookies there, so the cookie can be SameSite=None.
    assert.match(start.headers.getSetCookie().find((c) => c.startsWith('idpb_login='))!, /; SameSite=None/i);
    const authorize = new URL(start.headers.get('location')!);
    assert.equal(authorize.pathname, '/demo-idp/oauth/authorize');
    const formPage = await (await fetch(authorize)).text();
    const hidden = Object.fromEntries([...formPage.matchAll(/type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)))]));
    const signedIn = await fetch(`${base}/demo-idp/oauth/authorize`, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ ...hidden, username: 'erin', password: 'erin-demo-password' }),
    });
    assert.equal(signedIn.status, 302);
    const callback = new URL(signedIn.headers.get('location')!);
    assert.equal(callback.pathname, '/oauth/callback/oauth.example');
    const done = await fetch(callback, { redirect: 'manual', headers: { cookie: binding } });
    assert.equal(done.status, 303, await done.text());
    assert.equal(done.headers.get('location'), `${base}/welcome`);
    const cookie = done.headers.getSetCookie().find((c) => c.startsWith('idpb_session='))!.split(';')[0]!;
    const me = (await (await fetch(`${base}/session`, { headers: { cookie } })).json()) as { member: { account: string }; session: { authMethod: string } };
    assert.equal(me.member.account, 'erin@oauth.example');
    assert.equal(me.session.authMethod, 'oauth');
    assert.ok(!output.includes('DEV-ONLY-demo-oauth-client-secret'), 'the client secret is never logged');
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
