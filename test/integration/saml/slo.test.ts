import assert from 'node:assert/strict';
import { createPublicKey, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { DOMParser } from '@xmldom/xmldom';
import type supertest from 'supertest';
import { SignedXml } from 'xml-crypto';
import { DIGEST_SHA1, DIGEST_SHA256, ENVELOPED_SIGNATURE as ENVELOPED, EXC_C14N, SIG_RSA_SHA1, SIG_RSA_SHA256, newSamlId, xmlEscape } from '../../../src/demo/saml-response.js';
import type { TenantInput as Tenant } from '../../../src/domain/tenant.js';
import { HOSTILE_FILLERS, hostileLogoutRequest } from '../../helpers/hostile-xml.js';
import { keys } from '../../../src/store/index.js';
import { idps, type TestIdpKeys } from '../../helpers/keys.js';
import {
  OPERATOR_AUTH,
  PUBLIC_URL,
  b64,
  beginLogin,
  createGateway,
  errorCodeOf,
  postAcs,
  sessionCookieOf,
  standardTenants,
  statusRecorder,
  validResponse,
  type Gateway,
} from '../../helpers/gateway.js';

const SP_CERT = readFileSync('config/dev-only/sp-signing.crt.pem', 'utf8');
const NEXT_CERT = readFileSync('test/fixtures/keys/idp-b.crt.pem', 'utf8');
const IDP_SLO_URL = 'https://idp-a.test/slo';
const SLO_URL = `${PUBLIC_URL}/saml2/sp/slo`;
const SLO_CALLBACK_URL = `${PUBLIC_URL}/saml2/sp/slo/callback`;
const FINAL_TARGET = 'https://x.apps.slo.example/bye';
const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';

const pemBody = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
const iso = (ms: number): string => new Date(ms).toISOString();

/** A tenant like the standard a.example, with an IdP SLO URL and its own logout redirect domains. */
function sloTenant(domain: string, idp: TestIdpKeys, logoutRedirectDomains: string[]): Tenant {
  const base = standardTenants().find((t) => t.tenant.domain === 'a.example')!.tenant;
  return {
    ...base,
    domain,
    name: `SLO ${domain}`,
    serviceOrigins: [],
    logoutRedirectDomains,
    sso: {
      ...base.sso!,
      webLoginUrl: idp.ssoUrl,
      saml: { ...base.sso!.saml!, idpEntityId: idp.entityId, idpCertificates: [idp.certificate], idpSloUrl: IDP_SLO_URL, signAuthnRequests: true },
    },
  };
}

/** The raw (still URL-encoded) query parameters of a URL, in order. */
function rawParams(url: string): Array<[string, string]> {
  const q = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  return q
    .split('&')
    .filter(Boolean)
    .map((p) => {
      const eq = p.indexOf('=');
      return [p.slice(0, eq), p.slice(eq + 1)] as [string, string];
    });
}

/** Verifies a redirect-binding signature over the raw query bytes `field=…&RelayState=…&SigAlg=…` (SAML bindings §3.4.4.1). */
function verifyRedirectSignature(url: string, field: 'SAMLRequest' | 'SAMLResponse', certificate: string): boolean {
  const params = rawParams(url);
  const names = params.map(([n]) => n);
  const get = (n: string): string | undefined => params.find(([k]) => k === n)?.[1];
  assert.equal(names.filter((n) => n === 'Signature').length, 1, 'exactly one Signature');
  const relay = get('RelayState');
  const signed = `${field}=${get(field)}${relay === undefined ? '' : `&RelayState=${relay}`}&SigAlg=${get('SigAlg')}`;
  const signature = Buffer.from(decodeURIComponent(get('Signature')!), 'base64');
  return verify('sha256', Buffer.from(signed), createPublicKey(certificate), signature);
}

const inflateParam = (url: URL, field: string): string => inflateRawSync(Buffer.from(url.searchParams.get(field)!, 'base64')).toString('utf8');
const parse = (xml: string): Element => new DOMParser().parseFromString(xml, 'text/xml').documentElement;
const childText = (root: Element, ns: string, name: string): string | undefined => root.getElementsByTagNameNS(ns, name)[0]?.textContent ?? undefined;

interface LogoutResponseSpec {
  inResponseTo: string;
  issuer?: string;
  destination?: string | null;
  issueInstant?: number;
  status?: string;
  id?: string;
}

function logoutResponseXml(gw: Gateway, spec: LogoutResponseSpec): string {
  const dest = spec.destination === undefined ? SLO_CALLBACK_URL : spec.destination;
  return (
    `<samlp:LogoutResponse xmlns:samlp="${SAMLP}" xmlns:saml="${SAML}" ID="${spec.id ?? newSamlId()}" Version="2.0"` +
    ` IssueInstant="${iso(spec.issueInstant ?? gw.clock.now())}"${dest === null ? '' : ` Destination="${xmlEscape(dest)}"`} InResponseTo="${xmlEscape(spec.inResponseTo)}">` +
    `<saml:Issuer>${xmlEscape(spec.issuer ?? idps.a.entityId)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${spec.status ?? SUCCESS}"/></samlp:Status>` +
    `</samlp:LogoutResponse>`
  );
}

interface LogoutRequestSpec {
  id?: string;
  issuer?: string;
  destination?: string | null;
  issueInstant?: number;
  nameId?: string;
  sessionIndexes?: string[];
}

function logoutRequestXml(gw: Gateway, spec: LogoutRequestSpec = {}): { id: string; xml: string } {
  const id = spec.id ?? newSamlId();
  const dest = spec.destination === undefined ? SLO_URL : spec.destination;
  const xml =
    `<samlp:LogoutRequest xmlns:samlp="${SAMLP}" xmlns:saml="${SAML}" ID="${id}" Version="2.0"` +
    ` IssueInstant="${iso(spec.issueInstant ?? gw.clock.now())}"${dest === null ? '' : ` Destination="${xmlEscape(dest)}"`}>` +
    `<saml:Issuer>${xmlEscape(spec.issuer ?? idps.a.entityId)}</saml:Issuer>` +
    `<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">${xmlEscape(spec.nameId ?? 'emp-001')}</saml:NameID>` +
    (spec.sessionIndexes ?? ['_sess-1']).map((s) => `<samlp:SessionIndex>${xmlEscape(s)}</samlp:SessionIndex>`).join('') +
    `</samlp:LogoutRequest>`;
  return { id, xml };
}

interface RedirectSigning {
  relayState?: string;
  /** null: no SigAlg/Signature at all. */
  key?: string | null;
  sigAlg?: string;
  hash?: 'sha1' | 'sha256';
  /** Flip one byte of the signature. */
  tamper?: boolean;
}

/** HTTP-Redirect binding: deflate, base64, URL-encode; detached signature over the raw query (SAML bindings §3.4.4.1). */
function redirectQuery(field: 'SAMLRequest' | 'SAMLResponse', xml: string, opts: RedirectSigning): string {
  let q = `${field}=${encodeURIComponent(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`;
  if (opts.relayState !== undefined) q += `&RelayState=${encodeURIComponent(opts.relayState)}`;
  if (opts.key === null) return q;
  q += `&SigAlg=${encodeURIComponent(opts.sigAlg ?? SIG_RSA_SHA256)}`;
  const signature = sign(opts.hash ?? 'sha256', Buffer.from(q), opts.key ?? idps.a.privateKey);
  if (opts.tamper) signature[17]! ^= 0x01;
  return `${q}&Signature=${encodeURIComponent(signature.toString('base64'))}`;
}

/** HTTP-POST binding: an enveloped signature on the root (reference #ID, enveloped-signature + exc-c14n). */
function envelopedSign(xml: string, idp: TestIdpKeys, options: { signatureAlgorithm?: string; digestAlgorithm?: string; tamper?: boolean } = {}): string {
  const sig = new SignedXml({
    privateKey: idp.privateKey,
    publicCert: idp.certificate,
    signatureAlgorithm: options.signatureAlgorithm ?? SIG_RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
  sig.addReference({ xpath: '/*', digestAlgorithm: options.digestAlgorithm ?? DIGEST_SHA256, transforms: [ENVELOPED, EXC_C14N] });
  sig.computeSignature(xml, { prefix: 'ds', location: { reference: "/*/*[local-name(.)='Issuer']", action: 'after' } });
  const out = sig.getSignedXml();
  if (!options.tamper) return out;
  return out.replace(/<ds:SignatureValue>([^<]+)<\/ds:SignatureValue>/, (_m, value: string) => {
    const bytes = Buffer.from(value, 'base64');
    bytes[17]! ^= 0x01;
    return `<ds:SignatureValue>${bytes.toString('base64')}</ds:SignatureValue>`;
  });
}

/** idps.a's key pair under an IdP entity ID that only slo-own.example registers. */
const OWN_IDP: TestIdpKeys = { ...idps.a, entityId: 'https://idp-slo.test/saml', ssoUrl: 'https://idp-slo.test/sso' };

describe('SAML single logout (S-13)', () => {
  let gw: Gateway;
  /** Every status any request in this file got: no 5xx anywhere. */
  const { statuses, call } = statusRecorder();
  /**
   * The refusal a request left in the audit trails, found by its request id: in the trail of each tenant
   * the message concerns, or the global trail when none is known. Returns its reason and where it went.
   */
  const refusalOf = async (res: supertest.Response): Promise<{ reason: string | undefined; domains: Array<string | null> }> => {
    const requestId = res.headers['x-request-id'] as string;
    const domains = [null, ...(await gw.services.store.sMembers(keys.tenantIndex())).sort()];
    const found: Array<{ domain: string | null; reason: string | undefined }> = [];
    for (const domain of domains) {
      for (const e of await gw.services.audit.list(domain, 50)) if (e.requestId === requestId && e.type.endsWith('.rejected')) found.push({ domain, reason: e.reason });
    }
    return { reason: found[0]?.reason, domains: found.map((f) => f.domain) };
  };
  const latestGlobalReason = async (res: supertest.Response): Promise<string | undefined> => (await refusalOf(res)).reason;

  /** Logs emp-001 in at `domain` with the given SessionIndex; returns the session cookie. */
  const login = async (sessionIndex: string, domain = 'slo.example', idp: TestIdpKeys = idps.a): Promise<string> => {
    const started = await beginLogin(gw, domain);
    const res = await call('acs', postAcs(gw, domain, validResponse(gw, domain, idp, started, 'emp-001', { sessionIndex }), started.relayState));
    assert.equal(res.status, 303, res.text);
    const cookie = sessionCookieOf(res);
    assert.ok(cookie, 'a session cookie is set');
    return cookie;
  };
  const sessionStatus = async (cookie: string): Promise<number> => (await call('session', gw.http.get('/session').set('Cookie', cookie))).status;

  /** Logs in, then starts SP-initiated SLO; returns what the IdP would receive. */
  const startSpLogout = async (target = FINAL_TARGET): Promise<{ location: string; requestId: string; relayState: string; xml: string; cookie: string }> => {
    const cookie = await login('_sess-1');
    const res = await call('d/logout', gw.http.get('/d/logout').query({ redirect_uri: target }).set('Cookie', cookie));
    assert.equal(res.status, 302, res.text);
    const location = res.headers.location as string;
    const url = new URL(location);
    const xml = inflateParam(url, 'SAMLRequest');
    const requestId = parse(xml).getAttribute('ID')!;
    return { location, requestId, relayState: url.searchParams.get('RelayState')!, xml, cookie };
  };

  const expectRefused = async (label: string, res: supertest.Response, reason: string): Promise<void> => {
    assert.equal(res.status, 400, `${label}: ${res.status} ${res.headers.location ?? ''}`);
    assert.equal(errorCodeOf(res), 'saml_logout_invalid', label);
    assert.equal(res.headers.location, undefined, label);
    assert.equal(await latestGlobalReason(res), reason, label);
    assert.ok(!res.text.includes(reason), `${label}: the private reason is not on the page`);
  };

  before(async () => {
    gw = await createGateway();
    await gw.services.tenants.save(sloTenant('slo.example', idps.a, ['slo.example', '*.apps.slo.example']));
    await gw.services.members.save('slo.example', { id: 'm-slo', account: 'emp@slo.example', name: 'SLO member', externalKey: 'emp-001', role: 'member', status: 'in_use' });
    await gw.services.tenants.save(sloTenant('slo-own.example', OWN_IDP, ['slo-own.example']));
    await gw.services.members.save('slo-own.example', { id: 'm-slo-own', account: 'emp@slo-own.example', name: 'SLO own', externalKey: 'emp-001', role: 'member', status: 'in_use' });
  });
  after(async () => gw.close());

  describe('SP-initiated LogoutRequest', () => {
    it('ends the session and sends a signed (RSA-SHA256) LogoutRequest to the IdP SLO URL', async () => {
      const { location, xml, relayState, cookie } = await startSpLogout();
      const url = new URL(location);
      assert.equal(url.origin + url.pathname, IDP_SLO_URL);
      assert.deepEqual(
        rawParams(location).map(([n]) => n),
        ['SAMLRequest', 'RelayState', 'SigAlg', 'Signature', 'redirect_uri'],
      );
      assert.equal(url.searchParams.get('SigAlg'), SIG_RSA_SHA256);
      assert.match(relayState, /^[A-Za-z0-9_-]{32}$/, 'RelayState is an opaque transaction id');
      assert.ok(!relayState.includes('slo.example'), 'RelayState does not carry the final target');
      assert.equal(url.searchParams.get('redirect_uri'), FINAL_TARGET, 'the redirect names the final hop as redirect_uri (outside the signed part)');
      assert.ok(verifyRedirectSignature(location, 'SAMLRequest', SP_CERT), 'the signature verifies with the SP certificate over the raw query');
      assert.ok(!verifyRedirectSignature(location, 'SAMLRequest', idps.a.certificate), 'not with another key');

      const root = parse(xml);
      assert.equal(root.namespaceURI, SAMLP);
      assert.equal(root.localName, 'LogoutRequest');
      assert.equal(root.getAttribute('Destination'), IDP_SLO_URL);
      assert.match(root.getAttribute('ID') ?? '', /^[_A-Za-z]/);
      assert.ok(Number.isFinite(Date.parse(root.getAttribute('IssueInstant') ?? '')), 'IssueInstant is a date');
      assert.equal(childText(root, SAML, 'Issuer'), `${PUBLIC_URL}/saml/metadata`);
      assert.equal(childText(root, SAML, 'NameID'), 'emp-001');
      assert.equal(childText(root, SAMLP, 'SessionIndex'), '_sess-1');

      assert.equal(await sessionStatus(cookie), 401, 'the local session is gone before the IdP answers');
    });

    it('does not carry a disallowed final target: the callback then lands on the signed-out page', async () => {
      const { requestId, relayState } = await startSpLogout('https://evil.example/bye');
      const q = redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: requestId }), { relayState });
      const res = await call('callback', gw.http.get(`/saml2/sp/slo/callback?${q}`));
      assert.equal(res.status, 200);
      assert.equal(res.headers.location, undefined);
      assert.match(res.text, /signed out/i);
    });
  });

  describe('LogoutResponse at /saml2/sp/slo/callback', () => {
    const getCallback = (q: string): Promise<supertest.Response> => call('callback GET', gw.http.get(`/saml2/sp/slo/callback?${q}`));
    const postCallback = (form: Record<string, string>): Promise<supertest.Response> => call('callback POST', gw.http.post('/saml2/sp/slo/callback').type('form').send(form));

    it('HTTP-Redirect: a signed LogoutResponse completes the logout at the allowed final target', async () => {
      const { requestId, relayState } = await startSpLogout();
      const q = redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: requestId }), { relayState });
      const res = await getCallback(q);
      assert.equal(res.status, 302, res.text);
      assert.equal(res.headers.location, FINAL_TARGET);
      const audit = await gw.services.audit.list('slo.example', 1);
      assert.equal(audit[0]?.type, 'saml_logout.completed');
    });

    it('HTTP-POST: an enveloped-signed LogoutResponse completes the logout', async () => {
      const { requestId, relayState } = await startSpLogout();
      const xml = envelopedSign(logoutResponseXml(gw, { inResponseTo: requestId }), idps.a);
      const res = await postCallback({ SAMLResponse: b64(xml), RelayState: relayState });
      assert.equal(res.status, 302, res.text);
      assert.equal(res.headers.location, FINAL_TARGET);
    });

    it('HTTP-Redirect refusals', async () => {
      const cases: Array<[string, (t: { requestId: string; relayState: string }) => string, string]> = [
        ['tampered signature', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId }), { relayState: t.relayState, tamper: true }), 'signature_invalid'],
        ['no SigAlg, no Signature', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId }), { relayState: t.relayState, key: null }), 'signature_missing'],
        [
          'SigAlg without Signature',
          (t) => `${redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId }), { relayState: t.relayState, key: null })}&SigAlg=${encodeURIComponent(SIG_RSA_SHA256)}`,
          'signature_missing',
        ],
        ['signed by the attacker key', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId }), { relayState: t.relayState, key: idps.attacker.privateKey }), 'signature_invalid'],
        ['signed by another tenant IdP (b)', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId }), { relayState: t.relayState, key: idps.b.privateKey }), 'signature_invalid'],
        ['RSA-SHA1', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId }), { relayState: t.relayState, sigAlg: SIG_RSA_SHA1, hash: 'sha1' }), 'weak_algorithm'],
        ['wrong InResponseTo', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: '_not-our-request' }), { relayState: t.relayState }), 'in_response_to_mismatch'],
        ['unknown RelayState', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId }), { relayState: 'A'.repeat(32) }), 'logout_transaction_invalid'],
        ['no RelayState', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId }), {}), 'logout_transaction_invalid'],
        ['wrong Destination', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId, destination: `${PUBLIC_URL}/acs/slo.example` }), { relayState: t.relayState }), 'destination_mismatch'],
        ['IssueInstant 20 minutes old', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId, issueInstant: gw.clock.now() - 20 * 60_000 }), { relayState: t.relayState }), 'message_expired'],
        ['Issuer of another IdP', (t) => redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: t.requestId, issuer: idps.b.entityId }), { relayState: t.relayState, key: idps.b.privateKey }), 'issuer_unknown'],
      ];
      for (const [label, build, reason] of cases) {
        const t = await startSpLogout();
        await expectRefused(label, await getCallback(build(t)), reason);
      }
    });

    it('HTTP-Redirect: a replayed good response is refused (the logout transaction is used up)', async () => {
      const { requestId, relayState } = await startSpLogout();
      const q = redirectQuery('SAMLResponse', logoutResponseXml(gw, { inResponseTo: requestId }), { relayState });
      assert.equal((await getCallback(q)).status, 302);
      await expectRefused('replay', await getCallback(q), 'logout_transaction_invalid');
    });

    it('HTTP-POST refusals', async () => {
      const ok = (t: { requestId: string }, extra: Partial<LogoutResponseSpec> = {}): string => logoutResponseXml(gw, { inResponseTo: t.requestId, ...extra });
      const cases: Array<[string, (t: { requestId: string; relayState: string }) => Record<string, string>, string]> = [
        ['tampered signature', (t) => ({ SAMLResponse: b64(envelopedSign(ok(t), idps.a, { tamper: true })), RelayState: t.relayState }), 'signature_invalid'],
        ['content changed after signing', (t) => ({ SAMLResponse: b64(envelopedSign(ok(t), idps.a).replace(SUCCESS, 'urn:oasis:names:tc:SAML:2.0:status:Requester')), RelayState: t.relayState }), 'signature_invalid'],
        ['unsigned', (t) => ({ SAMLResponse: b64(ok(t)), RelayState: t.relayState }), 'signature_missing'],
        ['signed by the attacker key', (t) => ({ SAMLResponse: b64(envelopedSign(ok(t), idps.attacker)), RelayState: t.relayState }), 'signature_invalid'],
        ['RSA-SHA1', (t) => ({ SAMLResponse: b64(envelopedSign(ok(t), idps.a, { signatureAlgorithm: SIG_RSA_SHA1, digestAlgorithm: DIGEST_SHA1 })), RelayState: t.relayState }), 'weak_algorithm'],
        ['wrong InResponseTo', (t) => ({ SAMLResponse: b64(envelopedSign(ok({ requestId: '_not-ours' }), idps.a)), RelayState: t.relayState }), 'in_response_to_mismatch'],
        ['unknown RelayState', (t) => ({ SAMLResponse: b64(envelopedSign(ok(t), idps.a)), RelayState: 'B'.repeat(32) }), 'logout_transaction_invalid'],
        ['wrong Destination', (t) => ({ SAMLResponse: b64(envelopedSign(ok(t, { destination: SLO_URL }), idps.a)), RelayState: t.relayState }), 'destination_mismatch'],
        ['IssueInstant 20 minutes old', (t) => ({ SAMLResponse: b64(envelopedSign(ok(t, { issueInstant: gw.clock.now() - 20 * 60_000 }), idps.a)), RelayState: t.relayState }), 'message_expired'],
        ['a LogoutRequest instead of a LogoutResponse', (t) => ({ SAMLResponse: b64(envelopedSign(logoutRequestXml(gw).xml, idps.a)), RelayState: t.relayState }), 'message_malformed'],
        ['no SAMLResponse', (t) => ({ RelayState: t.relayState }), 'message_missing'],
      ];
      for (const [label, build, reason] of cases) {
        const t = await startSpLogout();
        await expectRefused(label, await postCallback(build(t)), reason);
      }
    });

    it('HTTP-POST: a replayed good response is refused', async () => {
      const { requestId, relayState } = await startSpLogout();
      const form = { SAMLResponse: b64(envelopedSign(logoutResponseXml(gw, { inResponseTo: requestId }), idps.a)), RelayState: relayState };
      assert.equal((await postCallback(form)).status, 302);
      await expectRefused('replay', await postCallback(form), 'logout_transaction_invalid');
    });
  });

  describe('IdP-initiated LogoutRequest at /saml2/sp/slo', () => {
    // The flow is checked on slo-own.example, whose IdP entity ID no other tenant registers;
    // slo.example shares its IdP entity ID with a.example and three more standard tenants (see the
    // last test of this block).
    const D = 'slo-own.example';
    const loginHere = (sessionIndex: string): Promise<string> => login(sessionIndex, D, OWN_IDP);
    const req = (spec: LogoutRequestSpec = {}): { id: string; xml: string } => logoutRequestXml(gw, { issuer: OWN_IDP.entityId, ...spec });
    const getSlo = (q: string, cookie?: string): Promise<supertest.Response> => {
      const t = gw.http.get(`/saml2/sp/slo?${q}`);
      return call('slo GET', cookie ? t.set('Cookie', cookie) : t);
    };
    const postSlo = (form: Record<string, string>): Promise<supertest.Response> => call('slo POST', gw.http.post('/saml2/sp/slo').type('form').send(form));

    /** Checks the LogoutResponse the SP sends back to the IdP. */
    const assertLogoutResponse = (res: supertest.Response, requestId: string, relayState: string | undefined): void => {
      assert.equal(res.status, 302, `${res.status}: ${res.text.slice(0, 200)}`);
      const location = res.headers.location as string;
      const url = new URL(location);
      assert.equal(url.origin + url.pathname, IDP_SLO_URL);
      assert.equal(url.searchParams.get('SigAlg'), SIG_RSA_SHA256);
      assert.equal(url.searchParams.get('RelayState') ?? undefined, relayState, 'RelayState is echoed');
      assert.ok(url.searchParams.get('Signature'), 'a Signature parameter');
      assert.ok(verifyRedirectSignature(location, 'SAMLResponse', SP_CERT), 'the LogoutResponse signature verifies with the SP certificate over the raw query');
      const root = parse(inflateParam(url, 'SAMLResponse'));
      assert.equal(root.localName, 'LogoutResponse');
      assert.equal(root.namespaceURI, SAMLP);
      assert.equal(root.getAttribute('InResponseTo'), requestId);
      assert.equal(root.getAttribute('Destination'), IDP_SLO_URL);
      assert.equal(childText(root, SAML, 'Issuer'), `${PUBLIC_URL}/saml/metadata`);
      assert.equal(root.getElementsByTagNameNS(SAMLP, 'StatusCode')[0]?.getAttribute('Value'), SUCCESS);
    };

    it('HTTP-Redirect: ends the session with that SessionIndex (cookie not sent) and answers with a signed LogoutResponse', async () => {
      const cookie = await loginHere('_sess-1');
      const other = await loginHere('_sess-2');
      assert.equal(await sessionStatus(cookie), 200);
      const { id, xml } = req({ sessionIndexes: ['_sess-1'] });
      const res = await getSlo(redirectQuery('SAMLRequest', xml, { relayState: 'idp-relay-1' }));
      assertLogoutResponse(res, id, 'idp-relay-1');
      assert.equal(await sessionStatus(cookie), 401, 'the session named by SessionIndex ended');
      assert.equal(await sessionStatus(other), 200, 'a session with another SessionIndex survives');
      const audit = await gw.services.audit.list(D, 1);
      assert.equal(audit[0]?.type, 'saml_logout.received');
    });

    it('a LogoutRequest naming an allowed redirect_uri ends there; one naming another host gets the signed LogoutResponse', async () => {
      const cookie = await loginHere('_sess-1');
      const allowed = req();
      const there = await getSlo(`${redirectQuery('SAMLRequest', allowed.xml, {})}&redirect_uri=${encodeURIComponent('https://slo-own.example/bye')}`);
      assert.equal(there.status, 302);
      assert.equal(there.headers.location, 'https://slo-own.example/bye');
      assert.equal(await sessionStatus(cookie), 401, 'the session ended all the same');
      const posted = req();
      const viaPost = await postSlo({ SAMLRequest: b64(envelopedSign(posted.xml, OWN_IDP)), redirect_uri: 'https://slo-own.example/bye2' });
      assert.equal(viaPost.headers.location, 'https://slo-own.example/bye2', 'HTTP-POST too');
      const other = req();
      const res = await getSlo(`${redirectQuery('SAMLRequest', other.xml, { relayState: 'r-9' })}&redirect_uri=${encodeURIComponent('https://evil.example/phish')}`);
      assertLogoutResponse(res, other.id, 'r-9');
    });

    it('HTTP-Redirect: a RelayState with spaces and sub-delimiters comes back under a signature valid over the raw query', async () => {
      await loginHere('_sess-1');
      const relayState = 'idp state ~(1)!*';
      const { id, xml } = req();
      const res = await getSlo(redirectQuery('SAMLRequest', xml, { relayState }));
      assertLogoutResponse(res, id, relayState);
    });

    it("refused LogoutRequests land in the tenant's audit trail with their private reason, readable through the admin API", async () => {
      // Signed by the tenant's IdP, refused after the signature: the tenant is known.
      const replayed = req({ sessionIndexes: ['_sess-r'] });
      await getSlo(redirectQuery('SAMLRequest', replayed.xml, {}));
      const again = await getSlo(redirectQuery('SAMLRequest', replayed.xml, {}));
      assert.deepEqual(await refusalOf(again), { reason: 'message_replayed', domains: [D] });
      // Signed by someone else under the tenant's IdP entity ID: the tenants registered with that IdP are told.
      const forged = await getSlo(redirectQuery('SAMLRequest', req({ sessionIndexes: ['_x'] }).xml, { key: idps.attacker.privateKey }));
      assert.deepEqual(await refusalOf(forged), { reason: 'signature_invalid', domains: [D] });
      // An IdP no tenant registers: the global trail.
      const stranger = await getSlo(redirectQuery('SAMLRequest', logoutRequestXml(gw, { issuer: 'https://nobody.test/idp' }).xml, {}));
      assert.deepEqual(await refusalOf(stranger), { reason: 'issuer_unknown', domains: [null] });
      const listed = await call(
        'audit',
        gw.http.get(`/admin/v1/domains/${D}/audit`).query({ type: 'saml_logout.rejected', result: 'failure' }).set('Authorization', OPERATOR_AUTH),
      );
      assert.equal(listed.status, 200, listed.text);
      const events = (listed.body as { events: Array<{ reason: string; requestId: string }> }).events;
      assert.deepEqual(events.slice(0, 2).map((e) => e.reason), ['signature_invalid', 'message_replayed']);
      assert.equal(events[0]!.requestId, forged.headers['x-request-id']);
      assert.ok(!forged.text.includes('signature_invalid') && !again.text.includes('message_replayed'), 'never on the page');
    });

    it('a LogoutRequest without SessionIndex ends every session of the member', async () => {
      const c1 = await loginHere('_sess-1');
      const c2 = await loginHere('_sess-2');
      const { id, xml } = req({ sessionIndexes: [] });
      const res = await getSlo(redirectQuery('SAMLRequest', xml, {}));
      assertLogoutResponse(res, id, undefined);
      assert.equal(await sessionStatus(c1), 401);
      assert.equal(await sessionStatus(c2), 401);
    });

    it('also ends the session of the cookie sent along with the request', async () => {
      const cookie = await loginHere('_sess-9');
      const { id, xml } = req({ sessionIndexes: ['_sess-9'] });
      const res = await getSlo(redirectQuery('SAMLRequest', xml, { relayState: 'r' }), cookie);
      assertLogoutResponse(res, id, 'r');
      assert.equal(await sessionStatus(cookie), 401);
    });

    it('HTTP-POST with an enveloped signature works too', async () => {
      const cookie = await loginHere('_sess-1');
      const other = await loginHere('_sess-2');
      const { id, xml } = req({ sessionIndexes: ['_sess-1'] });
      const res = await postSlo({ SAMLRequest: b64(envelopedSign(xml, OWN_IDP)), RelayState: 'post-relay' });
      assertLogoutResponse(res, id, 'post-relay');
      assert.equal(await sessionStatus(cookie), 401);
      assert.equal(await sessionStatus(other), 200);
    });

    it('HTTP-POST: a processing instruction added to the SessionIndex after signing is refused, never read as another value', async () => {
      const cookie = await loginHere('_sess-pi');
      const { xml } = req({ sessionIndexes: ['_sess-pi'] });
      // xml-crypto's exc-c14n renders an empty PI as nothing, so a verifier that reads the posted DOM
      // saw a valid signature and a SessionIndex of two text nodes around a PI ('' after plainText):
      // the session silently survived while the IdP was told it had ended.
      const tampered = envelopedSign(xml, OWN_IDP).replace('<samlp:SessionIndex>_sess-pi<', '<samlp:SessionIndex>_sess<?x?>-pi<');
      assert.ok(tampered.includes('<?x?>'));
      const res = await postSlo({ SAMLRequest: b64(tampered), RelayState: 'pi' });
      await expectRefused('PI in a signed SessionIndex', res, 'signature_invalid');
      assert.equal(await sessionStatus(cookie), 200, 'nothing was ended, and the IdP was not told otherwise');
    });

    it('HTTP-Redirect: a NameID or SessionIndex holding a comment or processing instruction is refused', async () => {
      const cookie = await loginHere('_sess-c');
      for (const [label, xml, reason] of [
        ['comment in NameID', req({ sessionIndexes: ['_sess-c'] }).xml.replace('>emp-001<', '>emp<!-- x -->-001<'), 'name_id_invalid'],
        ['PI in SessionIndex', req({ sessionIndexes: ['_sess-c'] }).xml.replace('>_sess-c<', '>_sess<?x?>-c<'), 'session_index_invalid'],
      ] as const) {
        const res = await getSlo(redirectQuery('SAMLRequest', xml, {}));
        await expectRefused(label, res, reason);
      }
      assert.equal(await sessionStatus(cookie), 200, 'nothing was ended');
    });

    it('refuses deep, namespace-heavy and wide LogoutRequests on both bindings before any costly work', async () => {
      for (const [name, filler] of Object.entries(HOSTILE_FILLERS)) {
        const xml = hostileLogoutRequest(filler(40_000), OWN_IDP.entityId);
        const post = await postSlo({ SAMLRequest: b64(xml) });
        assert.equal(errorCodeOf(post), 'saml_logout_invalid', name);
        assert.ok(['message_too_complex', 'signature_invalid'].includes((await latestGlobalReason(post))!), `${name}: ${await latestGlobalReason(post)}`);
        const get = await getSlo(`SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}`);
        assert.equal(errorCodeOf(get), 'saml_logout_invalid', name);
      }
      // A redirect message that inflates past the cap is refused while inflating.
      const bomb = deflateRawSync(Buffer.from(hostileLogoutRequest(`<x>${' '.repeat(2_000_000)}</x>`, OWN_IDP.entityId))).toString('base64');
      await expectRefused('deflate bomb', await getSlo(`SAMLRequest=${encodeURIComponent(bomb)}`), 'message_too_complex');
    });

    it('refuses forged, unsigned, stale, replayed and misdirected LogoutRequests, ending nothing', async () => {
      const cookie = await loginHere('_sess-1');
      const sloCookie = await login('_sess-1');
      const replayedQuery = redirectQuery('SAMLRequest', req({ sessionIndexes: ['_sess-unused'] }).xml, { relayState: 'x' });
      assert.equal((await getSlo(replayedQuery)).status, 302, 'first delivery accepted');
      const replayedForm = { SAMLRequest: b64(envelopedSign(req({ sessionIndexes: ['_sess-unused'] }).xml, OWN_IDP)) };
      assert.equal((await postSlo(replayedForm)).status, 302, 'first delivery accepted');

      const x = (spec: LogoutRequestSpec = {}): string => req(spec).xml;
      /** Issuer = the IdP entity ID slo.example (and a.example …) registers. */
      const shared = (spec: LogoutRequestSpec = {}): string => logoutRequestXml(gw, spec).xml;
      const getCases: Array<[string, string, string]> = [
        ['GET unsigned', redirectQuery('SAMLRequest', x(), { relayState: 'x', key: null }), 'signature_missing'],
        ['GET unsigned, shared IdP entity', redirectQuery('SAMLRequest', shared(), { relayState: 'x', key: null }), 'signature_missing'],
        ['GET SigAlg without Signature', `${redirectQuery('SAMLRequest', x(), { key: null })}&SigAlg=${encodeURIComponent(SIG_RSA_SHA256)}`, 'signature_missing'],
        ['GET tampered signature', redirectQuery('SAMLRequest', x(), { tamper: true }), 'signature_invalid'],
        ['GET attacker key', redirectQuery('SAMLRequest', x(), { key: idps.attacker.privateKey }), 'signature_invalid'],
        ['GET attacker key, shared IdP entity', redirectQuery('SAMLRequest', shared(), { key: idps.attacker.privateKey }), 'signature_invalid'],
        ['GET slo.example IdP Issuer signed with tenant b.example IdP key', redirectQuery('SAMLRequest', shared(), { key: idps.b.privateKey }), 'signature_invalid'],
        ['GET RSA-SHA1', redirectQuery('SAMLRequest', x(), { sigAlg: SIG_RSA_SHA1, hash: 'sha1' }), 'weak_algorithm'],
        ['GET unknown Issuer', redirectQuery('SAMLRequest', x({ issuer: 'https://unknown-idp.test/saml' }), {}), 'issuer_unknown'],
        ['GET replayed request id', replayedQuery, 'message_replayed'],
        ['GET wrong Destination', redirectQuery('SAMLRequest', x({ destination: SLO_CALLBACK_URL }), {}), 'destination_mismatch'],
        ['GET signed but without Destination', redirectQuery('SAMLRequest', x({ destination: null }), {}), 'destination_mismatch'],
        ['GET IssueInstant 20 minutes old', redirectQuery('SAMLRequest', x({ issueInstant: gw.clock.now() - 20 * 60_000 }), {}), 'message_expired'],
        ['GET IssueInstant 20 minutes ahead', redirectQuery('SAMLRequest', x({ issueInstant: gw.clock.now() + 20 * 60_000 }), {}), 'message_expired'],
        ['GET repeated SAMLRequest', `${redirectQuery('SAMLRequest', x(), {})}&SAMLRequest=x`, 'message_malformed'],
        ['GET no SAMLRequest', 'RelayState=x', 'message_missing'],
        ['GET not deflated', `SAMLRequest=${encodeURIComponent(b64(x()))}`, 'message_malformed'],
      ];
      for (const [label, q, reason] of getCases) await expectRefused(label, await getSlo(q), reason);

      const postCases: Array<[string, Record<string, string>, string]> = [
        ['POST unsigned', { SAMLRequest: b64(x()), RelayState: 'x' }, 'signature_missing'],
        ['POST unsigned, shared IdP entity', { SAMLRequest: b64(shared()) }, 'signature_missing'],
        ['POST tampered signature', { SAMLRequest: b64(envelopedSign(x(), OWN_IDP, { tamper: true })) }, 'signature_invalid'],
        ['POST NameID changed after signing', { SAMLRequest: b64(envelopedSign(x({ nameId: 'emp-009' }), OWN_IDP).replace('emp-009', 'emp-001')) }, 'signature_invalid'],
        ['POST attacker key', { SAMLRequest: b64(envelopedSign(x(), idps.attacker)) }, 'signature_invalid'],
        ['POST slo.example IdP Issuer signed with tenant b.example IdP key', { SAMLRequest: b64(envelopedSign(shared(), idps.b)) }, 'signature_invalid'],
        ['POST RSA-SHA1', { SAMLRequest: b64(envelopedSign(x(), OWN_IDP, { signatureAlgorithm: SIG_RSA_SHA1, digestAlgorithm: DIGEST_SHA1 })) }, 'weak_algorithm'],
        ['POST unknown Issuer', { SAMLRequest: b64(envelopedSign(x({ issuer: 'https://unknown-idp.test/saml' }), OWN_IDP)) }, 'issuer_unknown'],
        ['POST replayed request id', replayedForm, 'message_replayed'],
        ['POST wrong Destination', { SAMLRequest: b64(envelopedSign(x({ destination: `${PUBLIC_URL}/d/logout` }), OWN_IDP)) }, 'destination_mismatch'],
        ['POST signed but without Destination', { SAMLRequest: b64(envelopedSign(x({ destination: null }), OWN_IDP)) }, 'destination_mismatch'],
        ['POST IssueInstant 20 minutes old', { SAMLRequest: b64(envelopedSign(x({ issueInstant: gw.clock.now() - 20 * 60_000 }), OWN_IDP)) }, 'message_expired'],
        ['POST a LogoutResponse', { SAMLRequest: b64(envelopedSign(logoutResponseXml(gw, { inResponseTo: '_x', destination: SLO_URL, issuer: OWN_IDP.entityId }), OWN_IDP)) }, 'message_malformed'],
        ['POST DOCTYPE', { SAMLRequest: b64(`<!DOCTYPE x [<!ENTITY e "emp-001">]>${x()}`) }, 'message_malformed'],
      ];
      for (const [label, form, reason] of postCases) await expectRefused(label, await postSlo(form), reason);

      assert.equal(await sessionStatus(cookie), 200, 'no refused message ended the slo-own.example session');
      assert.equal(await sessionStatus(sloCookie), 200, 'no refused message ended the slo.example session');
    });

    it("a LogoutRequest from tenant b.example's IdP (its own Issuer and key) never ends a slo.example session", async () => {
      const cookie = await login('_sess-1');
      const { xml } = logoutRequestXml(gw, { issuer: idps.b.entityId, sessionIndexes: [] });
      const res = await getSlo(redirectQuery('SAMLRequest', xml, { key: idps.b.privateKey }));
      // It is b.example's own IdP: accepted for b.example (no member emp-001 there, no IdP SLO URL, so no LogoutResponse).
      assert.equal(res.status, 200, res.text.slice(0, 200));
      assert.equal(res.headers.location, undefined);
      assert.equal(await sessionStatus(cookie), 200, 'the slo.example session survives');
    });

    it('slo.example (IdP entity ID shared with a.example and others): the LogoutRequest ends the slo.example session and answers to its IdP', async () => {
      const cookie = await login('_sess-1');
      const { id, xml } = logoutRequestXml(gw, { sessionIndexes: ['_sess-1'] });
      const res = await getSlo(redirectQuery('SAMLRequest', xml, { relayState: 'shared-idp' }));
      assert.equal(await sessionStatus(cookie), 401, 'the slo.example session with SessionIndex _sess-1 ended');
      assertLogoutResponse(res, id, 'shared-idp');
    });
  });

  it('SP-initiated logout without an allowed final target names the neutral signed-out page as redirect_uri', async () => {
    const { location } = await startSpLogout('https://evil.example/x');
    assert.equal(new URL(location).searchParams.get('redirect_uri'), `${PUBLIC_URL}/d/signed-out`);
    assert.ok(verifyRedirectSignature(location, 'SAMLRequest', SP_CERT));
  });

  it('publishes the SP signing certificate as a PEM file without authentication, per tenant like the metadata', async () => {
    const res = await gw.http.get('/saml/sp-certificate/slo.example');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/x-pem-file/);
    assert.match(String(res.headers['content-disposition']), /slo\.example-sp-certificate\.pem/);
    assert.equal(pemBody(res.text), pemBody(SP_CERT));
    assert.equal((await gw.http.get('/saml/sp-certificate/no-such.example')).status, 404);
  });

  describe('SP metadata with SLO (S-11)', () => {
    const signingCerts = (xml: string): string[] => {
      const doc = new DOMParser().parseFromString(xml, 'text/xml');
      return Array.from(doc.getElementsByTagNameNS(MD, 'KeyDescriptor'))
        .filter((k) => k.getAttribute('use') === 'signing')
        .map((k) => k.getElementsByTagNameNS(DSIG, 'X509Certificate')[0]?.textContent?.replace(/\s+/g, '') ?? '');
    };

    it('announces signed AuthnRequests, the SP signing certificate and both SLO bindings', async () => {
      const res = await call('metadata', gw.http.get('/saml/metadata/slo.example'));
      assert.equal(res.status, 200);
      const doc = new DOMParser().parseFromString(res.text, 'text/xml');
      const sp = doc.getElementsByTagNameNS(MD, 'SPSSODescriptor')[0]!;
      assert.equal(sp.getAttribute('AuthnRequestsSigned'), 'true');
      assert.deepEqual(signingCerts(res.text), [pemBody(SP_CERT)]);
      const slo = Array.from(sp.getElementsByTagNameNS(MD, 'SingleLogoutService'));
      assert.deepEqual(
        slo.map((e) => e.getAttribute('Binding')).sort(),
        ['urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect'],
      );
      for (const e of slo) {
        assert.equal(e.getAttribute('Location'), SLO_URL);
        assert.equal(e.getAttribute('ResponseLocation'), SLO_CALLBACK_URL);
      }
    });

    it('publishes the next certificate beside the current one, and signs AuthnRequests with the current key', async () => {
      const rolled = await createGateway({
        overrides: {
          saml: {
            signing: { keyFile: 'config/dev-only/sp-signing.key.pem', certFile: 'config/dev-only/sp-signing.crt.pem', nextCertFile: 'test/fixtures/keys/idp-b.crt.pem' },
          },
        },
      });
      try {
        const res = await call('metadata (rollover)', rolled.http.get('/saml/metadata/a.example'));
        assert.equal(res.status, 200);
        assert.deepEqual(signingCerts(res.text), [pemBody(SP_CERT), pemBody(NEXT_CERT)]);
        // By default a tenant's AuthnRequests go unsigned, and its metadata says so.
        assert.match(res.text, /AuthnRequestsSigned="false"/);
        assert.equal((await beginLogin(rolled, 'a.example')).redirect.searchParams.get('Signature'), null);
        const tenant = (await rolled.services.tenants.find('a.example'))!;
        await rolled.services.tenants.save({ ...tenant, sso: { ...tenant.sso, saml: { ...tenant.sso.saml!, signAuthnRequests: true } } });
        assert.match((await rolled.http.get('/saml/metadata/a.example')).text, /AuthnRequestsSigned="true"/);
        const login = await beginLogin(rolled, 'a.example');
        const location = login.redirect.href;
        assert.equal(login.redirect.searchParams.get('SigAlg'), SIG_RSA_SHA256);
        assert.ok(verifyRedirectSignature(location, 'SAMLRequest', SP_CERT), 'the AuthnRequest is signed with the current key');
        assert.ok(!verifyRedirectSignature(location, 'SAMLRequest', NEXT_CERT), 'not with the next one');
      } finally {
        await rolled.close();
      }
    });
  });

  it('is still healthy afterwards, and nothing answered 5xx', async () => {
    const res = await call('healthz', gw.http.get('/healthz'));
    assert.equal(res.status, 200);
    assert.ok(statuses.length > 50, 'the file made many requests');
    assert.deepEqual(
      statuses.filter(([, s]) => s >= 500),
      [],
    );
  });
});
