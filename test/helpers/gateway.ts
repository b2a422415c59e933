import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { inflateRawSync } from 'node:zlib';
import supertest from 'supertest';
import { createApp, type CreatedApp } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import type { TenantInput as Tenant } from '../../src/domain/tenant.js';
import type { NewMember } from '../../src/domain/members.js';
import { buildSamlResponseXml, signSamlResponse, type SamlResponseSpec, type SigningOptions } from '../../src/demo/saml-response.js';
import { LOGIN_BINDING_COOKIE } from '../../src/http/cookies.js';
import { createLogger } from '../../src/observability/logger.js';
import type { HostResolver } from '../../src/sso/oauth/outbound-policy.js';
import { RedisStore, type KeyValueStore } from '../../src/store/index.js';
import { FakeClock } from './clock.js';
import { idps, type TestIdpKeys } from './keys.js';
import { createTestRedisStore, scanKeys } from './redis.js';
import type { SecondGateOptionsHook } from '../../src/sso/saml/options.js';

export const PUBLIC_URL = 'https://sso.bridge.test';
/** The operator's admin API key of the test (and demo) config: config/default.json's DEV-ONLY value. */
export const OPERATOR_AUTH = 'Bearer DEV-ONLY-admin-api-key-change-me-000000000000000';
export const SERVICE_ORIGIN = 'https://board.example.net';
export const SP_ENTITY_ID = `${PUBLIC_URL}/saml/metadata`;
export const acsUrlOf = (domain: string): string => `${PUBLIC_URL}/acs/${domain}`;
/**
 * The test IdPs listen on 127.0.0.1, which the outbound policy refuses by default: a test that calls
 * them opts in through this override, as an operator lists an on-premises IdP.
 */
export const LOOPBACK_IDPS = { outbound: { allowedHosts: ['127.0.0.1'] } };

const samlTenant = (domain: string, idp: TestIdpKeys, extra: Partial<Tenant['sso']> = {}, saml: Record<string, unknown> = {}): Tenant =>
  ({
    domain,
    name: `Tenant ${domain}`,
    plan: 'standard',
    sso: {
      enabled: true,
      type: 'saml',
      userKey: 'externalKey',
      setExpireTime: false,
      webLoginUrl: idp.ssoUrl,
      ...extra,
      saml: { idpEntityId: idp.entityId, idpCertificates: [idp.certificate], allowUnsolicited: false, signAuthnRequests: false, allowSha1: false, ...saml },
    },
    serviceOrigins: [],
    logoutRedirectDomains: [],
    thirdPartyAppPasswordsAllowed: false,
  });

/** The tenants every integration test can use. */
export function standardTenants(): Array<{ tenant: Tenant; members: NewMember[] }> {
  return [
    {
      tenant: { ...samlTenant('a.example', idps.a), serviceOrigins: ['https://intranet.a.example'], logoutRedirectDomains: ['a.example', '*.portal.a.example'] },
      members: [
        { id: 'm-a-active', account: 'active@a.example', name: 'Active A', externalKey: 'emp-001', role: 'member', status: 'in_use' },
        { id: 'm-a-suspended', account: 'suspended@a.example', name: 'Suspended A', externalKey: 'emp-002', role: 'member', status: 'suspended' },
        { id: 'm-a-pending', account: 'pending@a.example', name: 'Pending A', externalKey: 'emp-003', role: 'member', status: 'pending' },
      ],
    },
    {
      tenant: samlTenant('b.example', idps.b, { userKey: 'account' }),
      members: [{ id: 'm-b-user', account: 'User1@B.example', name: 'User B', role: 'member', status: 'in_use' }],
    },
    {
      tenant: samlTenant('unsolicited.example', idps.a, {}, { allowUnsolicited: true }),
      members: [{ id: 'm-u', account: 'u@unsolicited.example', name: 'U', externalKey: 'emp-001', role: 'member', status: 'in_use' }],
    },
    {
      tenant: samlTenant('sha1.example', idps.a, {}, { allowSha1: true }),
      members: [{ id: 'm-s', account: 's@sha1.example', name: 'S', externalKey: 'emp-001', role: 'member', status: 'in_use' }],
    },
    {
      tenant: samlTenant('rollover.example', idps.a, { setExpireTime: true }, { idpCertificates: [idps.a.certificate, idps.aNext.certificate] }),
      members: [{ id: 'm-r', account: 'r@rollover.example', name: 'R', externalKey: 'emp-001', role: 'member', status: 'in_use' }],
    },
    {
      tenant: { domain: 'nosso.example', name: 'No SSO', plan: 'free', sso: { enabled: false, type: 'saml', userKey: 'account', setExpireTime: false }, serviceOrigins: [], logoutRedirectDomains: [], thirdPartyAppPasswordsAllowed: false },
      members: [{ id: 'm-n', account: 'n@nosso.example', name: 'N', role: 'member', status: 'in_use' }],
    },
  ];
}

/** A pino logger (the app's own, with its redaction) writing into memory, for tests that scan log lines. */
export function capturedLogger(level = 'info'): { logger: ReturnType<typeof createLogger>; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: createLogger({ level, destination }), lines, text: () => lines.join('') };
}

/** Writes the standard tenants and members through a gateway's repositories. */
export async function seedStandardTenants(services: CreatedApp['services']): Promise<void> {
  for (const { tenant, members } of standardTenants()) {
    await services.tenants.save(tenant);
    for (const m of members) await services.members.save(tenant.domain, m);
  }
}

export interface Gateway extends CreatedApp {
  store: KeyValueStore;
  clock: FakeClock;
  /** Every log line the gateway wrote, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Raw log text, to scan for secrets. */
  logText: () => string;
  http: ReturnType<typeof supertest>;
  /** How many keys of this gateway's Redis prefix match a pattern (a glob after the prefix). */
  countKeys: (pattern: string) => Promise<number>;
  close: () => Promise<void>;
}

export interface GatewayOptions {
  /** Share a store (two gateway instances on one Redis). */
  store?: KeyValueStore;
  clock?: FakeClock;
  overrides?: Record<string, unknown>;
  /** DNS for the gateway's outbound calls (default: the system resolver). */
  resolveHost?: HostResolver;
  /** Adjusts the ACS second gate's node-saml options (to make the two gates disagree). */
  samlSecondGateOptions?: SecondGateOptionsHook;
}

export async function createGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const { config } = loadConfig({
    env: { NODE_ENV: 'test' },
    overrides: {
      publicUrl: PUBLIC_URL,
      serviceOrigins: [SERVICE_ORIGIN],
      defaultServiceUrl: `${SERVICE_ORIGIN}/home`,
      logLevel: 'info',
      seedFile: undefined,
      demo: { enabled: false },
      ...options.overrides,
    },
  });
  const owned = options.store ? null : await createTestRedisStore();
  const store = options.store ?? owned!.store;
  const clock = options.clock ?? new FakeClock();
  const { logger, lines } = capturedLogger();
  let created: CreatedApp;
  try {
    created = createApp({ config, store, logger, clock, resolveHost: options.resolveHost, samlSecondGateOptions: options.samlSecondGateOptions });
    if (!options.store) await seedStandardTenants(created.services);
  } catch (err) {
    // Never leave a Redis connection open behind a failed setup: the test process would not exit.
    if (owned) await owned.cleanup();
    throw err;
  }
  return {
    ...created,
    store,
    clock,
    get logs() {
      return lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => lines.join(''),
    http: supertest(created.app),
    countKeys: async (pattern: string) => {
      if (!(store instanceof RedisStore)) throw new Error('countKeys needs the Redis store');
      return (await scanKeys(store, pattern)).length;
    },
    close: async () => {
      if (owned) await owned.cleanup();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// The login binding cookie. Every login start sets `idpb_login`; the ACS and the OAuth callback accept a
// transaction only with it. Tests play one browser per login unless they say otherwise: the helpers
// remember each start's cookie by its transaction id (RelayState / state) and send it back with the
// answer for that transaction. Transaction ids are random, so one map serves every gateway of a process
// (a login begun on one instance may finish on another).

const loginBindings = new Map<string, string>();

/** The `idpb_login=…` pair a response set (for a Cookie header), if it set one. */
export function bindingCookieOf(res: { headers: Record<string, unknown> }): string | undefined {
  const cookies = (res.headers['set-cookie'] as string[] | undefined) ?? [];
  return cookies.find((c) => c.startsWith(`${LOGIN_BINDING_COOKIE}=`) && !c.startsWith(`${LOGIN_BINDING_COOKIE}=;`))?.split(';')[0];
}

/** The transaction id a login start's redirect carries: SAML RelayState, OIDC state, or the works profile's state inside redirect_uri. */
export function transactionIdOf(location: string | URL): string | undefined {
  const url = new URL(location);
  const direct = url.searchParams.get('RelayState') ?? url.searchParams.get('state');
  if (direct) return direct;
  const redirectUri = url.searchParams.get('redirect_uri');
  return redirectUri ? (new URL(redirectUri).searchParams.get('state') ?? undefined) : undefined;
}

/**
 * Remembers the binding cookie of a login start (a 302 from /d/login or an OP interaction) for its
 * transaction id, or for `transactionId` when given; returns the cookie pair.
 */
export function rememberLoginBinding(res: { headers: Record<string, unknown> }, transactionId?: string): string | undefined {
  const cookie = bindingCookieOf(res);
  const id = transactionId ?? (typeof res.headers.location === 'string' ? transactionIdOf(res.headers.location) : undefined);
  if (cookie && id) loginBindings.set(id, cookie);
  return cookie;
}

/** Records a binding made outside HTTP (a transaction created through the services with `browserBinding`). */
export function recordLoginBinding(transactionId: string, browserBinding: string): string {
  const cookie = `${LOGIN_BINDING_COOKIE}=${browserBinding}`;
  loginBindings.set(transactionId, cookie);
  return cookie;
}

/** The `idpb_login=…` pair of the browser that started transaction `transactionId`, when a helper saw it start. */
export function bindingFor(transactionId: string | undefined): string | undefined {
  return transactionId === undefined ? undefined : loginBindings.get(transactionId);
}

/**
 * Sends the binding cookie of the browser that started `transactionId` (the default), another cookie
 * header (a string: another browser's), or none (`null`: a browser without one).
 */
export function withBinding(test: supertest.Test, transactionId: string | undefined, cookie?: string | null): supertest.Test {
  const header = cookie === undefined ? bindingFor(transactionId) : cookie;
  return header ? test.set('Cookie', header) : test;
}

export interface StartedLogin {
  relayState: string;
  requestId: string;
  /** The IdP URL the browser was sent to. */
  redirect: URL;
  /** The decoded AuthnRequest XML. */
  authnRequestXml: string;
  /** `idpb_login=…`: the binding cookie the start set (postAcs sends it back by RelayState). */
  bindingCookie: string;
}

/**
 * GET /d/login/{domain} and read back what the browser would carry to the IdP. `cookie` plays a
 * browser that already has cookies (e.g. a second tab).
 */
export async function beginLogin(gw: Gateway, domain: string, accessUrl = `${SERVICE_ORIGIN}/board`, cookie?: string): Promise<StartedLogin> {
  const start = gw.http.get(`/d/login/${domain}`).query({ accessUrl });
  const res = await (cookie ? start.set('Cookie', cookie) : start);
  if (res.status !== 302) throw new Error(`login start answered ${res.status}: ${res.text.slice(0, 300)}`);
  const redirect = new URL(res.headers.location as string);
  const relayState = redirect.searchParams.get('RelayState');
  const samlRequest = redirect.searchParams.get('SAMLRequest');
  if (!relayState || !samlRequest) throw new Error('no RelayState/SAMLRequest in the IdP redirect');
  const authnRequestXml = inflateRawSync(Buffer.from(samlRequest, 'base64')).toString('utf8');
  const requestId = /\sID="([^"]+)"/.exec(authnRequestXml)?.[1];
  if (!requestId) throw new Error('no ID in AuthnRequest');
  const bindingCookie = rememberLoginBinding(res, relayState);
  if (!bindingCookie) throw new Error('the login start set no login binding cookie');
  return { relayState, requestId, redirect, authnRequestXml, bindingCookie };
}

/** A valid response spec for `domain` answering `requestId`; override any field. */
export function responseSpec(gw: Gateway, domain: string, idp: TestIdpKeys, requestId: string | null, nameId: string, overrides: Partial<SamlResponseSpec> = {}): SamlResponseSpec {
  return {
    issuer: idp.entityId,
    destination: acsUrlOf(domain),
    inResponseTo: requestId,
    recipient: acsUrlOf(domain),
    audience: SP_ENTITY_ID,
    nameId,
    now: gw.clock.now(),
    ...overrides,
  };
}

export function signed(xml: string, idp: TestIdpKeys, sign: SigningOptions['sign'] = 'both', extra: Partial<SigningOptions> = {}): string {
  return signSamlResponse(xml, { privateKey: idp.privateKey, certificate: idp.certificate, sign, ...extra });
}

export const b64 = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64');

/**
 * Records the status of every request a test file makes and fails at once on a 5xx: `call(label, req)`;
 * `statuses` lets a last test check the file made many requests and none answered 5xx.
 */
export function statusRecorder(): { statuses: Array<[string, number]>; call: (label: string, t: supertest.Test) => Promise<supertest.Response> } {
  const statuses: Array<[string, number]> = [];
  const call = async (label: string, t: supertest.Test): Promise<supertest.Response> => {
    const res = await t;
    statuses.push([label, res.status]);
    assert.ok(res.status < 500, `${label}: ${res.status} ${res.text.slice(0, 300)}`);
    return res;
  };
  return { statuses, call };
}

/** A complete valid response for the login just begun, base64, signed on both levels. */
export function validResponse(gw: Gateway, domain: string, idp: TestIdpKeys, login: StartedLogin, nameId: string, overrides: Partial<SamlResponseSpec> = {}): string {
  return b64(signed(buildSamlResponseXml(responseSpec(gw, domain, idp, login.requestId, nameId, overrides)), idp));
}

/**
 * POST /acs/{domain} as the IdP's auto-post form does. The browser posting it is, by default, the one
 * that began the login RelayState names (its binding cookie goes along); `cookie` plays another browser
 * (a Cookie header value, or null for none).
 */
export function postAcs(gw: Gateway, domain: string, samlResponse: string | undefined, relayState: string | undefined, cookie?: string | null): supertest.Test {
  const form: Record<string, string> = {};
  if (samlResponse !== undefined) form.SAMLResponse = samlResponse;
  if (relayState !== undefined) form.RelayState = relayState;
  return withBinding(gw.http.post(`/acs/${domain}`), relayState, cookie).type('form').send(form);
}

/** The public error code on an HTML error page (or a JSON error body). */
export function errorCodeOf(res: { text: string; body?: unknown }): string | undefined {
  const meta = /<meta name="idpb-error-code" content="([^"]+)">/.exec(res.text)?.[1];
  if (meta) return meta;
  const body = res.body as { error?: string } | undefined;
  if (body?.error) return body.error;
  // SCIM answers RFC 7644 error bodies (application/scim+json, which supertest leaves unparsed); the
  // gateway's code rides in its extension member (src/scim/scim-errors.ts).
  if (!res.text.startsWith('{"schemas"')) return undefined;
  try {
    const scim = JSON.parse(res.text) as { 'urn:idp-bridge:error'?: { code?: string } };
    return scim['urn:idp-bridge:error']?.code;
  } catch {
    return undefined;
  }
}

/** The private reason of the latest ACS refusal, from the tenant's audit trail. */
export async function lastAuditReason(gw: Gateway, domain: string | null): Promise<string | undefined> {
  const [latest] = await gw.services.audit.list(domain, 1);
  return latest?.reason;
}

export function sessionCookieOf(res: { headers: Record<string, unknown> }): string | undefined {
  const cookies = (res.headers['set-cookie'] as string[] | undefined) ?? [];
  const c = cookies.find((x) => x.startsWith('idpb_session=') && !x.startsWith('idpb_session=;'));
  return c?.split(';')[0];
}

/** Creates a tenant-scoped admin API key through the API; returns its Authorization header value. */
export async function tenantKeyAuth(gw: Gateway, domain: string, name = 'tenant-admin'): Promise<string> {
  const created = await gw.http.post(`/admin/v1/domains/${domain}/api-keys`).set('Authorization', OPERATOR_AUTH).send({ name });
  if (created.status !== 201) throw new Error(`api key creation answered ${created.status}: ${created.text}`);
  return `Bearer ${created.body.key as string}`;
}
