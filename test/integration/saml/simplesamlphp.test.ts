/**
 * Interoperability with a real SAML IdP this project did not write: Debian's SimpleSAMLphp 1.19, run
 * by test/helpers/simplesamlphp.ts under `php -S` on a loopback port. The tenant is configured the way
 * an administrator does it — IdP metadata imported by URL through the admin API, then SSO switched on —
 * and a person logs in with a plain HTTP client: the gateway's redirect, SimpleSAMLphp's login form
 * (its PHP session cookie kept in a hand-written cookie jar), its auto-submitting form with the
 * SAMLResponse, posted to the gateway's ACS with the gateway's login binding cookie.
 *
 * Without SimpleSAMLphp (apt-get install simplesamlphp php-xml php-mbstring) the file skips, saying
 * so — except in CI, where that is a failure (.ci/run installs it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NewMember } from '../../../src/domain/members.js';
import type { TenantInput } from '../../../src/domain/tenant.js';
import {
  LOOPBACK_IDPS,
  OPERATOR_AUTH,
  SERVICE_ORIGIN,
  SP_ENTITY_ID,
  acsUrlOf,
  beginLogin,
  createGateway,
  errorCodeOf,
  postAcs,
  sessionCookieOf,
  type Gateway,
} from '../../helpers/gateway.js';
import { simpleSamlPhpMissing, startSimpleSamlPhp, type SimpleSamlPhp, type SimpleSamlPhpOptions } from '../../helpers/simplesamlphp.js';

const missing = simpleSamlPhpMissing();
const inCi = Boolean(process.env.CI);
if (missing && !inCi) process.stderr.write(`SimpleSAMLphp interop tests skipped: ${missing}\n`);

// ---------------------------------------------------------------------------------------------
// A browser, by hand: a cookie jar and the two HTML forms SimpleSAMLphp shows.

/** Cookies by name for one origin (SimpleSAMLphp's cookies are host-only, Path=/). */
class CookieJar {
  private readonly cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || value === 'deleted' || /;\s*max-age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  names(): string[] {
    return [...this.cookies.keys()];
  }
}

const decodeHtml = (s: string): string =>
  s
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&quot;/g, '"')
    .replace(/&#039;|&apos;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

interface HtmlForm {
  action: string;
  fields: Record<string, string>;
}

/** The first <form> of a page: its action and its named <input>s (value-less ones as ''). */
function formOf(html: string): HtmlForm | undefined {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return undefined;
  const attr = (tag: string, name: string): string | undefined => {
    const m = new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
    return m ? decodeHtml(m[2] ?? m[3] ?? '') : undefined;
  };
  const fields: Record<string, string> = {};
  for (const input of form[2]!.match(/<input\b[^>]*>/gi) ?? []) {
    const name = attr(input, 'name');
    if (name && !/type\s*=\s*["']?(checkbox|submit)/i.test(input)) fields[name] = attr(input, 'value') ?? '';
  }
  return { action: attr(form[1]!, 'action') ?? '', fields };
}

interface IdpAnswer {
  /** Where SimpleSAMLphp's auto-submitting form posts (the ACS URL). */
  action: string;
  SAMLResponse: string;
  RelayState: string | undefined;
  /** The cookie names SimpleSAMLphp set on the way. */
  idpCookies: string[];
}

/**
 * Plays the browser at SimpleSAMLphp from the gateway's redirect to the SAMLResponse form: follows
 * the IdP's redirects (same origin only), fills in the login form, returns the auto-submit form.
 */
async function loginAtIdp(idp: SimpleSamlPhp, start: URL, username: string, password: string): Promise<IdpAnswer> {
  const jar = new CookieJar();
  const origin = new URL(idp.baseUrl).origin;
  const go = async (url: URL, init: RequestInit = {}): Promise<{ url: URL; html: string }> => {
    let current = url;
    let request = init;
    for (let hops = 0; hops < 10; hops++) {
      assert.equal(current.origin, origin, `the IdP sent the browser off its origin before answering: ${current.href}`);
      const res = await fetch(current, { ...request, redirect: 'manual', headers: { ...(request.headers as Record<string, string>), cookie: jar.header() } });
      jar.store(res);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        current = new URL(location, current);
        request = {};
        continue;
      }
      const html = await res.text();
      assert.equal(res.status, 200, `SimpleSAMLphp answered ${res.status} at ${current.pathname}: ${html.slice(0, 500)}\n${idp.output().slice(-3000)}`);
      return { url: current, html };
    }
    throw new Error('too many redirects at the IdP');
  };

  const loginPage = await go(start);
  const loginForm = formOf(loginPage.html);
  assert.ok(loginForm && 'username' in loginForm.fields && 'password' in loginForm.fields, `a login form: ${loginPage.html.slice(0, 500)}`);
  assert.ok(jar.names().includes('SimpleSAMLSessionID'), `SimpleSAMLphp set its session cookie (got ${jar.names().join(', ')})`);
  const body = new URLSearchParams({ ...loginForm.fields, username, password });
  const answer = await go(new URL(loginForm.action || '?', loginPage.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: body.toString(),
  });
  const form = formOf(answer.html);
  if (!form?.fields.SAMLResponse) {
    // The login page again, with its error in <strong> under an "Error" heading (a wrong password), or an error page.
    const error = /<h2>Error<\/h2>\s*<p><strong>\s*([^<]*?)\s*<\/strong>/.exec(answer.html)?.[1];
    throw new Error(`no SAMLResponse form from SimpleSAMLphp: ${error ?? answer.html.slice(0, 800)}`);
  }
  return { action: new URL(form.action, answer.url).href, SAMLResponse: form.fields.SAMLResponse, RelayState: form.fields.RelayState, idpCookies: jar.names() };
}

// ---------------------------------------------------------------------------------------------

const xmlOf = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

/** A tenant with SSO off and nothing configured yet: the administrator sets it up below. */
function freshTenant(domain: string, userKey: 'externalKey' | 'account'): TenantInput {
  return {
    domain,
    name: `SimpleSAMLphp ${domain}`,
    plan: 'standard',
    sso: { enabled: false, type: 'saml', userKey, setExpireTime: false },
    serviceOrigins: [],
    logoutRedirectDomains: [],
    thirdPartyAppPasswordsAllowed: false,
  };
}

describe('interoperability: SimpleSAMLphp (Debian) as the IdP, configured from its metadata', { skip: missing && !inCi ? missing : false, timeout: 120_000 }, () => {
  let gw: Gateway;
  const idpsStarted: SimpleSamlPhp[] = [];

  const admin = (method: 'get' | 'post' | 'put' | 'patch', path: string) => gw.http[method](`/admin/v1${path}`).set('Authorization', OPERATOR_AUTH);
  const lastRefusal = (): Record<string, unknown> | undefined => gw.logs.filter((l) => l.msg === 'request refused').at(-1);

  /** A tenant with `members`, a SimpleSAMLphp IdP for it, its metadata imported by URL and SSO switched on. */
  async function setUp(domain: string, userKey: 'externalKey' | 'account', members: NewMember[], idpOptions: Omit<SimpleSamlPhpOptions, 'spEntityId' | 'acsUrl'>): Promise<SimpleSamlPhp> {
    await gw.services.tenants.save(freshTenant(domain, userKey));
    for (const m of members) await gw.services.members.save(domain, m);
    // What the administrator gives the IdP: the SP entity ID and the ACS URL of the domain.
    const idp = await startSimpleSamlPhp({ spEntityId: SP_ENTITY_ID, acsUrl: acsUrlOf(domain), ...idpOptions });
    idpsStarted.push(idp);

    const imported = await admin('post', `/domains/${domain}/saml/idp-metadata`).send({ url: idp.metadataUrl });
    assert.equal(imported.status, 200, imported.text);
    assert.equal(imported.body.entityId, idp.entityId);
    assert.equal(imported.body.ssoUrl, idp.ssoUrl);
    assert.equal(imported.body.certificates, 1, 'the signing certificate (the encryption KeyDescriptor is not a signing one)');

    const switched = await admin('put', `/domains/${domain}/sso`).send({ enabled: true });
    assert.equal(switched.status, 200, switched.text);
    assert.equal(switched.body.sso.enabled, true);
    assert.equal(switched.body.sso.webLoginUrl, idp.ssoUrl);
    return idp;
  }

  before(async () => {
    if (missing) assert.fail(`CI: ${missing}. .ci/run installs Debian's simplesamlphp.`);
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
  });
  after(async () => {
    for (const idp of idpsStarted) await idp.stop();
    await gw?.close();
  });

  it('logs in end to end: NameID = uid attribute, matched on the external key; assertion and response signed with RSA-SHA256', async () => {
    const domain = 'ssp-uid.example';
    const idp = await setUp(
      domain,
      'externalKey',
      [
        { id: 'm-ssp-alice', account: 'alice@ssp-uid.example', name: 'Alice SSP', externalKey: 'emp-1001', role: 'member', status: 'in_use' },
        { id: 'm-ssp-bob', account: 'bob@ssp-uid.example', name: 'Bob SSP', externalKey: 'emp-1002', role: 'member', status: 'in_use' },
      ],
      {
        nameIdAttribute: 'uid',
        users: [
          { username: 'alice', password: 'alice-pass', attributes: { uid: 'emp-1001', mail: 'alice@ssp-uid.example', displayName: 'Alice' } },
          { username: 'bob', password: 'bob-pass', attributes: { uid: 'emp-1002', mail: 'bob@ssp-uid.example' } },
        ],
      },
    );

    const target = `${SERVICE_ORIGIN}/board/list?folder=3`;
    const login = await beginLogin(gw, domain, target);
    assert.equal(`${login.redirect.origin}${login.redirect.pathname}`, idp.ssoUrl, 'the gateway sends the browser to the SSO URL from the metadata');

    const answer = await loginAtIdp(idp, login.redirect, 'alice', 'alice-pass');
    assert.equal(answer.action, acsUrlOf(domain));
    assert.equal(answer.RelayState, login.relayState);

    // What SimpleSAMLphp produced, as the gateway's strict checks will see it.
    const xml = xmlOf(answer.SAMLResponse);
    assert.match(xml, new RegExp(`InResponseTo="${login.requestId}"`));
    assert.match(xml, /<saml:NameID[^>]*Format="urn:oasis:names:tc:SAML:1\.1:nameid-format:unspecified"[^>]*>emp-1001<\/saml:NameID>/);
    assert.equal((xml.match(/<ds:Signature\b/g) ?? []).length, 2, 'response and assertion both signed');
    assert.match(xml, /SignatureMethod Algorithm="http:\/\/www\.w3\.org\/2001\/04\/xmldsig-more#rsa-sha256"/);
    assert.doesNotMatch(xml, /EncryptedAssertion/);

    const res = await postAcs(gw, domain, answer.SAMLResponse, answer.RelayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
    assert.equal(res.headers.location, target);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie, 'a gateway session cookie is set');
    const me = await gw.http.get('/session').set('Cookie', cookie);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.member.id, 'm-ssp-alice');
    assert.equal(me.body.session.authMethod, 'saml');

    // The same IdP, another person, another login: bob maps to bob.
    const second = await beginLogin(gw, domain);
    const bob = await loginAtIdp(idp, second.redirect, 'bob', 'bob-pass');
    const bobRes = await postAcs(gw, domain, bob.SAMLResponse, bob.RelayState);
    assert.equal(bobRes.status, 303, `${bobRes.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
    const bobMe = await gw.http.get('/session').set('Cookie', sessionCookieOf(bobRes)!);
    assert.equal(bobMe.body.member.id, 'm-ssp-bob');
  });

  it('logs in with the NameID taken from the mail attribute, matched on the account (userKey "account"), only the assertion signed', async () => {
    const domain = 'ssp-mail.example';
    const idp = await setUp(domain, 'account', [{ id: 'm-ssp-carol', account: 'carol@ssp-mail.example', name: 'Carol SSP', role: 'member', status: 'in_use' }], {
      nameIdAttribute: 'mail',
      nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
      sign: 'assertion',
      users: [{ username: 'carol', password: 'carol-pass', attributes: { uid: 'c-77', mail: 'carol@ssp-mail.example' } }],
    });
    const login = await beginLogin(gw, domain);
    const answer = await loginAtIdp(idp, login.redirect, 'carol', 'carol-pass');
    const xml = xmlOf(answer.SAMLResponse);
    assert.match(xml, /<saml:NameID[^>]*Format="urn:oasis:names:tc:SAML:1\.1:nameid-format:emailAddress"[^>]*>carol@ssp-mail\.example<\/saml:NameID>/);
    assert.equal((xml.match(/<ds:Signature\b/g) ?? []).length, 1, 'only the assertion is signed');

    const res = await postAcs(gw, domain, answer.SAMLResponse, answer.RelayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
    const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(res)!);
    assert.equal(me.body.member.id, 'm-ssp-carol');
  });

  /** A SimpleSAMLphp IdP for `domain` that signs the Response only (Shibboleth IdP's default), and one login's answer. */
  async function responseOnlyAnswer(domain: string, user: string, externalKey: string): Promise<IdpAnswer> {
    const idp = await setUp(domain, 'externalKey', [{ id: `m-ssp-${user}`, account: `${user}@${domain}`, name: `${user} SSP`, externalKey, role: 'member', status: 'in_use' }], {
      sign: 'response',
      users: [{ username: user, password: `${user}-pass`, attributes: { uid: externalKey } }],
    });
    return loginAtIdp(idp, (await beginLogin(gw, domain)).redirect, user, `${user}-pass`);
  }

  it('logs in with a SimpleSAMLphp response signed only on the Response (the SAML profile allows it)', async () => {
    const domain = 'ssp-response-only.example';
    const answer = await responseOnlyAnswer(domain, 'dave', 'd-1');
    const xml = xmlOf(answer.SAMLResponse);
    assert.equal((xml.match(/<ds:Signature\b/g) ?? []).length, 1, 'one signature');
    assert.match(xml, /<samlp:Response\b[\s\S]*?<saml:Issuer>[^<]*<\/saml:Issuer><ds:Signature\b/, 'on the Response');

    const res = await postAcs(gw, domain, answer.SAMLResponse, answer.RelayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
    const me = await gw.http.get('/session').set('Cookie', sessionCookieOf(res)!);
    assert.equal(me.body.member.id, 'm-ssp-dave');
  });

  it('refuses the same Response-only signing for a tenant that requires signed assertions, with the true reason (assertion_not_signed)', async () => {
    const domain = 'ssp-require-signed.example';
    const answer = await responseOnlyAnswer(domain, 'erin', 'e-1');
    const required = await admin('patch', `/domains/${domain}/sso`).send({ saml: { requireSignedAssertions: true } });
    assert.equal(required.status, 200, required.text);

    const res = await postAcs(gw, domain, answer.SAMLResponse, answer.RelayState);
    assert.equal(res.status, 400);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    assert.equal(sessionCookieOf(res), undefined);
    assert.equal(lastRefusal()?.reason, 'assertion_not_signed');
    const [audited] = await gw.services.audit.list(domain, 1);
    assert.equal(audited?.reason, 'assertion_not_signed');
  });

  it('refuses the SimpleSAMLphp response without the login binding cookie of the browser that started the login', async () => {
    const domain = 'ssp-uid.example';
    const idp = idpsStarted[0]!;
    const login = await beginLogin(gw, domain);
    const answer = await loginAtIdp(idp, login.redirect, 'alice', 'alice-pass');
    const res = await postAcs(gw, domain, answer.SAMLResponse, answer.RelayState, null);
    assert.ok(res.status >= 400 && res.status < 500, `refused: ${res.status}`);
    assert.ok(errorCodeOf(res), `with a public error code: ${res.text.slice(0, 200)}`);
    assert.equal(sessionCookieOf(res), undefined);
  });

  it('a wrong password at SimpleSAMLphp shows its error and yields no SAMLResponse', async () => {
    const login = await beginLogin(gw, 'ssp-uid.example');
    await assert.rejects(loginAtIdp(idpsStarted[0]!, login.redirect, 'alice', 'wrong'), /no SAMLResponse form from SimpleSAMLphp: Incorrect username or password$/);
  });

  it("follows SimpleSAMLphp's signing key rollover through the scheduled metadata refresh, with no administrator action", async () => {
    const domain = 'ssp-rollover.example';
    const idp = await setUp(domain, 'externalKey', [{ id: 'm-ssp-carol', account: 'carol@ssp-rollover.example', name: 'Carol SSP', externalKey: 'emp-3001', role: 'member', status: 'in_use' }], {
      nameIdAttribute: 'uid',
      users: [{ username: 'carol', password: 'carol-pass', attributes: { uid: 'emp-3001' } }],
    });
    const signIn = async (): Promise<number> => {
      const login = await beginLogin(gw, domain);
      const answer = await loginAtIdp(idp, login.redirect, 'carol', 'carol-pass');
      const res = await postAcs(gw, domain, answer.SAMLResponse, answer.RelayState);
      assert.equal(res.status, 303, `${res.text.slice(0, 300)} ${JSON.stringify(lastRefusal())}`);
      return res.status;
    };
    const certificates = async (): Promise<string[]> => (await gw.services.tenants.find(domain))!.sso.saml!.idpCertificates.map((c) => c.replace(/\s+/g, ''));
    const flat = (pem: string): string => pem.replace(/\s+/g, '');
    /** Runs the scheduler's pass as if `hours` had passed, then brings the gateway's clock back to SimpleSAMLphp's (real) time. */
    const refreshAfter = async (hours: number): Promise<void> => {
      gw.clock.set(Date.now() + hours * 3600_000);
      await gw.services.idpMetadata.tick();
      gw.clock.set(Date.now());
    };
    const body = (pem: string): string => pem.replace(/-----[^-]+-----|\s+/g, '');
    /** The IdP's PHP workers pick up a configuration change on their own time: wait until its metadata shows it (not what is tested here). */
    const idpPublishes = async (ready: (xml: string) => boolean): Promise<void> => {
      for (let i = 0; i < 100 && !ready((await idp.metadataXml()).replace(/\s+/g, '')); i++) await new Promise((r) => setTimeout(r, 100));
    };
    await signIn();

    // SimpleSAMLphp's key rollover (modules/saml/docs/keyrollover.md), step 1: the new certificate is published beside the current one.
    const certDir = join(idp.dir, 'cert');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '3650', '-subj', '/CN=SimpleSAMLphp next key', '-keyout', join(certDir, 'new.key'), '-out', join(certDir, 'new.crt')], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const hosted = join(idp.dir, 'config/metadata/saml20-idp-hosted.php');
    const original = readFileSync(hosted, 'utf8');
    writeFileSync(hosted, original.replace("'certificate' => 'idp.crt',", "'certificate' => 'idp.crt',\n        'new_certificate' => 'new.crt',"));
    const newCert = readFileSync(join(certDir, 'new.crt'), 'utf8');
    await idpPublishes((xml) => xml.includes(body(newCert)) && xml.includes(body(idp.certificate)));
    await refreshAfter(7);
    assert.deepEqual((await certificates()).sort(), [flat(idp.certificate), flat(newCert)].sort(), `both certificates registered from the metadata (SimpleSAMLphp lists the new one first): ${JSON.stringify(await gw.services.idpMetadata.status(domain))}`);
    await signIn();

    // Step 2: the IdP signs with the new key and publishes only its certificate.
    copyFileSync(join(certDir, 'new.key'), join(certDir, 'idp.key'));
    copyFileSync(join(certDir, 'new.crt'), join(certDir, 'idp.crt'));
    writeFileSync(hosted, original);
    await idpPublishes((xml) => xml.includes(body(newCert)) && !xml.includes(body(idp.certificate)));
    await refreshAfter(14);
    assert.deepEqual(await certificates(), [flat(newCert)], 'the retired certificate is gone');
    await signIn();
    const audit = (await gw.services.audit.list(domain, 10)).filter((e) => e.type === 'idp_metadata.refreshed');
    assert.equal(audit.length, 2, 'each change audited');
  });
});
