import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { Express } from 'express';
import type supertest from 'supertest';
import { buildSamlResponseXml } from '../../src/demo/saml-response.js';
import { OPERATOR_AUTH, beginLogin, createGateway, errorCodeOf, postAcs, tenantKeyAuth, validResponse, type Gateway } from '../helpers/gateway.js';
import { HOSTILE_FILLERS, hostileLogoutRequest, hostileResponse, injectIntoAssertion } from '../helpers/hostile-xml.js';
import { idps } from '../helpers/keys.js';

/**
 * Fuzz: every public route — the Express routes of createApp (walked from the router), the admin API
 * operations of docs/openapi.json, and the OpenID Provider's endpoints from its discovery document —
 * gets malformed input: random bytes, wrong content types and encodings, JSON of the wrong types (from
 * the operation's own schema where there is one), values just under and over the body limits, broken
 * base64 / XML / CSV / forms, path parameters with traversal, unicode, control characters and broken
 * percent-encoding, and odd query strings (arrays, nested keys, duplicates, __proto__).
 *
 * Every answer must be a deliberate one: no 5xx (503 store_unavailable is tolerated but reported; it
 * should not happen here), no hang, and every 4xx names its error — JSON `error` (OAuth endpoints'
 * OAuth error format has it too), or the error code on an HTML page; the session-check API (S-18) keeps
 * its documented `{"message","code"}`. Afterwards the gateway is healthy and a real login works.
 *
 * Reproducible: the cases come from a seeded PRNG. The seed is printed; FUZZ_SEED=<n> replays a run,
 * FUZZ_CASES=<n> changes the number of cases per route (default 14).
 */

const SEED = (process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 0x1d9b_2026) >>> 0;
const CASES_PER_ROUTE = Number(process.env.FUZZ_CASES) || 14;
const DEADLINE_MS = 10_000;
/** The tenant the fuzz never names: the final login runs on it. */
const UNTOUCHED = 'b.example';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = prng(seed);
  }
  float(): number {
    return this.next();
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  text(n: number, alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@'): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

// ------------------------------------------------------------------------------------------ routes

interface Route {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Express syntax: `:name` parameters. */
  path: string;
  /** The JSON body schema of the operation (admin API), when there is one. */
  schema?: JsonSchema;
  source: 'express' | 'openapi' | 'oidc';
}

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
}

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  rawPath?: string;
  handle?: { stack?: Layer[] };
}

/** Every route registered on the app, with the mount paths of the routers it sits in. */
function expressRoutes(app: Express): Route[] {
  const out: Route[] = [];
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) {
          if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) out.push({ method: method as Route['method'], path: `${prefix}${layer.route.path}`.replace(/\\:/g, ':'), source: 'express' });
        }
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, prefix + (layer.rawPath && layer.rawPath !== '/' ? layer.rawPath : ''));
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return out;
}

function openapiRoutes(): Route[] {
  const doc = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as {
    servers: Array<{ url: string }>;
    paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }>>;
  };
  const base = new URL(doc.servers[0]!.url).pathname.replace(/\/$/, '');
  const out: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      out.push({ method: method as Route['method'], path: `${base}${path.replace(/\{(\w+)\}/g, ':$1')}`, schema: op.requestBody?.content?.['application/json']?.schema, source: 'openapi' });
    }
  }
  return out;
}

/** The OP's endpoints and the methods oidc-provider serves them with (POST to /auth and /session/end is off). */
const OP_ENDPOINTS: Record<string, Array<Route['method']>> = {
  authorization_endpoint: ['get'],
  token_endpoint: ['post'],
  userinfo_endpoint: ['get', 'post'],
  jwks_uri: ['get'],
  introspection_endpoint: ['post'],
  revocation_endpoint: ['post'],
  end_session_endpoint: ['get'],
  pushed_authorization_request_endpoint: ['post'],
  device_authorization_endpoint: ['post'],
  registration_endpoint: ['post'],
};

async function oidcRoutes(gw: Gateway): Promise<Route[]> {
  const res = await gw.http.get('/oidc/.well-known/openid-configuration');
  assert.equal(res.status, 200, 'the OP publishes its discovery document');
  const out: Route[] = [{ method: 'get', path: '/oidc/.well-known/openid-configuration', source: 'oidc' }];
  for (const [field, methods] of Object.entries(OP_ENDPOINTS)) {
    const url = (res.body as Record<string, unknown>)[field];
    if (typeof url === 'string') for (const method of methods) out.push({ method, path: new URL(url).pathname, source: 'oidc' });
  }
  return out;
}

// ------------------------------------------------------------------------------------------ inputs

const enc = encodeURIComponent;
/** Path parameter values: a few real ones, and hostile ones (already percent-encoded where needed). */
const VALID_PARAMS: Record<string, string[]> = {
  domain: ['a.example', 'nosso.example', 'unsolicited.example', 'no-such-tenant.example'],
  id: ['m-a-active', 'm-a-pending', 'm-n', 'nobody'],
  sessionKey: ['k3y', 'x'.repeat(64)],
  token: ['A'.repeat(43), 'short'],
  uid: ['uid-1', 'A'.repeat(21)],
  keyId: ['k-1'],
  appPasswordId: ['app_1'],
};
const HOSTILE_PARAMS = [
  '..',
  '.',
  '..%2F..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e%2f',
  '..%5C..%5Cwindows',
  'a%00b',
  '%00',
  '%0d%0aSet-Cookie:%20pwned=1',
  '%1b%5b31m',
  enc('ünïcödé.example'),
  enc('日本語.example'),
  enc('💥'),
  '%F0%9F',
  '%ff%fe',
  '%',
  '%zz',
  '%25',
  '%252e%252e',
  '__proto__',
  'constructor',
  'prototype',
  enc('a.example/../b.example'),
  enc('A.EXAMPLE'),
  enc('a.example.'),
  enc(' a.example'),
  enc('<script>alert(1)</script>'),
  enc("' OR 1=1 --"),
  enc('${7*7}'),
  enc('{{7*7}}'),
  'x'.repeat(2000),
  enc('externalKey:emp-001'),
  enc('a@b@c'),
];

const QUERIES: Array<(rng: Rng) => string> = [
  () => '',
  () => '?accessUrl=https%3A%2F%2Fevil.example%2F',
  () => '?accessUrl=a&accessUrl=b',
  () => '?accessUrl=%2F%2Fevil.example&accessUrl=%2Fok',
  () => '?a[]=1&a[]=2&a[]=3',
  () => '?accessUrl[x]=1&accessUrl[y]=2',
  () => '?__proto__[admin]=1&constructor[prototype][x]=1',
  () => '?count=-1&cursor=%00',
  () => '?count=1e309&cursor=' + 'A'.repeat(500),
  () => '?count=5&count=6&hasExternalKey=maybe',
  () => '?redirect_uri=javascript%3Aalert(1)&domain=a.example',
  () => '?redirect_uri=https%3A%2F%2Fa.example%40evil.example&redirect_uri=x',
  () => '?SAMLRequest=%%%&RelayState=x&SigAlg=x&Signature=x',
  () => `?SAMLRequest=${enc(deflateRawSync('<not-saml/>').toString('base64'))}&RelayState=${'r'.repeat(100)}`,
  () => '?state=&code=&error=access_denied&error_description=%0d%0a',
  () => '?state=a&state=b&code=c&code=d',
  () => '?%=1&%zz=2&=3&&&',
  () => '?a=%E0%A4%A',
  (rng) => `?x=${'A'.repeat(rng.int(6000))}`,
  (rng) => `?${Array.from({ length: 200 }, (_, i) => `p${i}=${rng.int(10)}`).join('&')}`,
  () => '?response_type=code&client_id=mobile&redirect_uri=idpbridge.mobile%3A%2Foauth2redirect&scope=openid&code_challenge=x&code_challenge_method=plain',
  () => '?domain=a.example&login_hint=%00@a.example&prompt=none&max_age=-1',
];

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/x-www-form-urlencoded',
  'text/csv',
  'text/csv; charset=iso-8859-1',
  'application/xml',
  'text/xml',
  'application/samlmetadata+xml',
  'text/plain',
  'multipart/form-data; boundary=----x',
  'application/octet-stream',
  'application/merge-patch+json',
  'a/b/c;;;=',
  '',
];

/** Values of every JSON type, several of them hostile. */
function anyJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 9 : 11)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1e308, -0, 2 ** 53 + 1, 3.14159, 1e-300]);
    case 3:
      return rng.text(rng.int(40));
    case 4:
      return rng.pick(['', ' ', '\u0000', '\r\n', '💥', '%00', '../..', '<x/>', '=cmd|x', "'; DROP TABLE x", 'a'.repeat(1001), '__proto__']);
    case 5:
      return rng.pick(['https://10.0.0.1/x', 'http://127.0.0.1:1/', 'javascript:alert(1)', 'not a url', 'https://[::1]/m', 'file:///etc/passwd']);
    case 6:
      return rng.text(rng.int(20)) + '@a.example';
    case 7:
      return rng.pick(['2026-01-01T00:00:00Z', 'yesterday', '-1', 'NaN']);
    case 8:
      return rng.pick(['in_use', 'pending', 'super_admin', 'saml', 'oauth', 'external', 'works', 'oidc', 'externalKey', 'account']);
    case 9:
      return Array.from({ length: rng.int(4) }, () => anyJson(rng, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: rng.int(4) }, () => [rng.pick(['a', '__proto__', 'constructor', 'id', 'users', 'x']), anyJson(rng, depth + 1)]));
  }
}

function typeOf(schema: JsonSchema | undefined): string | undefined {
  const t = schema?.type ?? (schema?.anyOf ?? schema?.oneOf)?.[0]?.type;
  return Array.isArray(t) ? t[0] : t;
}

/** An object shaped like the schema — each property right or (often) of a wrong type — plus strays. */
function schemaJson(rng: Rng, schema: JsonSchema | undefined, depth = 0): unknown {
  const props = schema?.properties ?? (schema?.anyOf ?? schema?.oneOf)?.[0]?.properties;
  if (!props || depth > 3) return anyJson(rng);
  const out: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(props)) {
    if (rng.chance(0.25)) continue;
    const t = typeOf(prop);
    if (rng.chance(0.45)) out[name] = anyJson(rng);
    else if (prop.enum) out[name] = rng.pick(prop.enum);
    else if (t === 'object') out[name] = schemaJson(rng, prop, depth + 1);
    else if (t === 'array') out[name] = Array.from({ length: rng.int(3) }, () => schemaJson(rng, prop.items, depth + 1));
    else if (t === 'boolean') out[name] = rng.chance(0.5);
    else if (t === 'number' || t === 'integer') out[name] = rng.int(100);
    else out[name] = rng.chance(0.5) ? rng.text(1 + rng.int(30)) : anyJson(rng);
  }
  if (rng.chance(0.3)) out[rng.pick(['unknownKey', '__proto__', 'constructor'])] = anyJson(rng);
  return out;
}

const FIELDS_OF: Array<[RegExp, string[]]> = [
  [/^\/acs\//, ['SAMLResponse', 'RelayState']],
  [/^\/saml2\/sp\/slo/, ['SAMLRequest', 'SAMLResponse', 'RelayState', 'SigAlg', 'Signature']],
  [/^\/d\/password-login\//, ['account', 'password', 'accessUrl', '_csrf', 'csrf']],
  [/^\/login\/check\//, ['ssoType']],
  [/^\/mobile\/mdm\/check/, ['domain', 'account']],
  [/^\/api\/v1\//, ['account', 'name', 'currentPassword', 'newPassword']],
  [/^\/d\/invite\//, ['password', 'passwordConfirm', '_csrf']],
  [/^\/oidc\//, ['grant_type', 'code', 'redirect_uri', 'client_id', 'client_secret', 'refresh_token', 'code_verifier', 'token', 'token_type_hint', 'scope']],
];

const fieldsOf = (path: string): string[] => FIELDS_OF.find(([re]) => re.test(path))?.[1] ?? ['a', 'b'];

/** A signed-looking SAML response that is wrong in some way (truncated, DOCTYPE, not a Response). */
function brokenSaml(rng: Rng): string {
  const good = buildSamlResponseXml({ issuer: idps.a.entityId, destination: 'https://sso.bridge.test/acs/a.example', inResponseTo: '_x', recipient: 'https://sso.bridge.test/acs/a.example', audience: 'https://sso.bridge.test/saml/metadata', nameId: 'emp-001', now: Date.now() });
  switch (rng.int(6)) {
    case 0:
      return good.slice(0, rng.int(good.length));
    case 1:
      return `<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>${good.replace('emp-001', '&x;')}`;
    case 2:
      return good.replace(/samlp:Response/g, 'samlp:Request');
    case 3:
      return `${good}${good}`;
    case 4:
      return good.replace('<saml:NameID', '<saml:NameID><!--c--></saml:NameID><saml:NameID');
    default:
      return rng.bytes(200).toString('latin1');
  }
}

type Body = { type: string | null; data: string | Buffer; encoding?: string; kind: string };

/** One malformed body for a route; null = no body. */
function body(rng: Rng, route: Route): Body | null {
  const fields = route.schema?.properties ? Object.keys(route.schema.properties) : fieldsOf(route.path);
  const form = (values: Record<string, string>): string => new URLSearchParams(values).toString();
  const kind = rng.int(13);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return { kind: 'random bytes', type: rng.pick(CONTENT_TYPES), data: rng.bytes(1 + rng.int(3000)) };
    case 2:
    case 3:
      return { kind: 'schema-shaped JSON, wrong types', type: rng.chance(0.85) ? 'application/json' : rng.pick(CONTENT_TYPES), data: JSON.stringify(schemaJson(rng, route.schema ?? { properties: Object.fromEntries(fields.map((f) => [f, { type: 'string' }])) })) };
    case 4:
      return { kind: 'JSON of any type', type: 'application/json', data: JSON.stringify(anyJson(rng)) ?? 'null' };
    case 5:
      return { kind: 'broken JSON', type: 'application/json', data: rng.pick(['{', '{"a":', '[1,2', '{"a":1}}', "{'a':1}", '{"a":1,}', 'NaN', '\uFEFF{}', '{"a":"\\ud800"}', `${'['.repeat(5000)}${']'.repeat(5000)}`, `{"users":[${'{"id":"x","externalKey":"k"},'.repeat(60)}{}]}`]) };
    case 6: {
      // Just under and just over the usual limits (256 KiB for the ACS, 1 MB JSON/XML, small forms).
      const size = rng.pick([200 * 1024, 255 * 1024, 300 * 1024, 900 * 1024, 1100 * 1024]);
      const field = rng.pick(fields);
      return rng.chance(0.5)
        ? { kind: `huge JSON (${size})`, type: 'application/json', data: JSON.stringify({ [field]: 'A'.repeat(size) }) }
        : { kind: `huge form (${size})`, type: 'application/x-www-form-urlencoded', data: form({ [field]: 'A'.repeat(size), RelayState: 'x' }) };
    }
    case 7:
      return {
        kind: 'broken base64 / SAML in a form',
        type: 'application/x-www-form-urlencoded',
        data: form({
          [rng.pick(['SAMLResponse', 'SAMLRequest'])]: rng.pick(['%%%', 'AAAA=BBBB', '====', 'A', Buffer.from('not xml at all').toString('base64'), Buffer.from(brokenSaml(rng), 'utf8').toString('base64'), deflateRawSync(brokenSaml(rng)).toString('base64')]),
          RelayState: rng.pick(['', 'x', 'A'.repeat(43), '../../', '%00']),
          ...(rng.chance(0.3) ? { SigAlg: 'http://www.w3.org/2000/09/xmldsig#rsa-sha1', Signature: 'AAAA' } : {}),
        }),
      };
    case 8:
      return {
        kind: 'broken XML',
        type: rng.pick(['application/xml', 'text/xml', 'application/samlmetadata+xml']),
        data: rng.pick([rng.pick(Object.values(HOSTILE_FILLERS))(rng.pick([20_000, 200_000])), '<', '<a', '<a></b>', '<?xml version="1.0" encoding="UTF-7"?><a/>', '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>', '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>', brokenSaml(rng), '\uFEFF\uFEFF<a/>']),
      };
    case 9:
      return {
        kind: 'broken CSV',
        type: 'text/csv',
        data: rng.pick([
          '"unclosed',
          'account,name,externalKey\r\n"a"b",x,y',
          '\uFEFF',
          'account\n',
          `account,name,externalKey\n${'x'.repeat(70_000)},n,k`,
          'account,name,externalKey\nactive@a.example,A,=HYPERLINK("http://evil")\n',
          'account,account,externalKey\n',
          Buffer.from([0xef, 0xbb, 0xbf, 0xff, 0xfe, 0x2c, 0x0a]).toString('latin1'),
          `account,name,externalKey\n${'a@a.example,n,k\n'.repeat(3)}`,
        ]),
      };
    case 10:
      return {
        kind: 'weird form',
        type: 'application/x-www-form-urlencoded',
        data: rng.pick(['a=%zz&b=%', 'a[]=1&a[]=2', '&&&==', `${Array.from({ length: 1500 }, (_, i) => `k${i}=v`).join('&')}`, `${rng.pick(fields)}=1&${rng.pick(fields)}=2&${rng.pick(fields)}[x]=3`, '__proto__[x]=1', '\u0000=\u0000']),
      };
    case 11:
      return { kind: 'wrong encoding', type: 'application/json', data: rng.bytes(64), encoding: rng.pick(['gzip', 'deflate', 'br', 'x-unknown', 'gzip, gzip']) };
    default:
      return { kind: 'UTF-16 JSON', type: 'application/json', data: Buffer.from(JSON.stringify({ [rng.pick(fields)]: 'x' }), 'utf16le') };
  }
}

interface Case {
  n: number;
  method: Route['method'];
  url: string;
  headers: Record<string, string>;
  body: Body | null;
}

function param(rng: Rng, name: string): string {
  const valid = (VALID_PARAMS[name] ?? ['x']).filter((v) => v !== UNTOUCHED);
  return rng.chance(0.45) ? enc(rng.pick(valid)) : rng.pick(HOSTILE_PARAMS);
}

/** Real credentials the cases may carry, so the checks behind authentication are reached too. */
interface Credentials {
  /** Session cookies of members of a.example and nosso.example (no SSO: the service API works). */
  sessionCookies: string[];
  /** A tenant-scoped admin key (a.example). */
  tenantKey: string;
}

function makeCase(rng: Rng, route: Route, n: number, creds: Credentials): Case {
  const path = route.path.replace(/:(\w+)/g, (_, name: string) => param(rng, name));
  const headers: Record<string, string> = {
    // Spread per-IP rate limits over many "clients" (trust proxy is on), sometimes with junk.
    'x-forwarded-for': rng.chance(0.95) ? `10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}` : rng.pick(['not-an-ip', '::ffff:1.2.3.4, 5.6.7.8', '']),
  };
  if (route.path.startsWith('/admin/')) {
    const roll = rng.float();
    headers.authorization =
      roll < 0.65 ? OPERATOR_AUTH : roll < 0.8 ? creds.tenantKey : rng.pick(['', 'Bearer', 'Bearer ', `Bearer ${'x'.repeat(300)}`, 'Basic YTpi', 'bearer DEV-ONLY-admin-api-key-change-me-000000000000000']);
  }
  const cookie = rng.float();
  if (cookie < 0.3) headers.cookie = rng.pick(creds.sessionCookies);
  else if (cookie < 0.45) headers.cookie = rng.pick(['idpb_session=', `idpb_session=${'A'.repeat(43)}`, 'idpb_session=%', 'idpb_session=a; idpb_session=b', `idpb_session=${'x'.repeat(4000)}`, 'idpb_csrf=x; idpb_session=../..']);
  if (rng.chance(0.1)) headers.origin = rng.pick(['https://evil.example', 'null', 'https://sso.bridge.test']);
  if (rng.chance(0.1)) headers.accept = rng.pick(['text/html', 'application/json', '*/*;q=0', 'x/y']);
  const withBody = route.method !== 'get' || rng.chance(0.1);
  return { n, method: route.method, url: `${path}${rng.pick(QUERIES)(rng)}`, headers, body: withBody ? body(rng, route) : null };
}

// ------------------------------------------------------------------------------------------ the run

interface Failure {
  n: number;
  what: string;
}

function send(gw: Gateway, c: Case): supertest.Test {
  let req = gw.http[c.method](c.url).timeout(DEADLINE_MS).redirects(0);
  for (const [k, v] of Object.entries(c.headers)) if (v !== '') req = req.set(k, v);
  if (c.body) {
    if (c.body.type !== null) req = req.set('content-type', c.body.type);
    if (c.body.encoding) req = req.set('content-encoding', c.body.encoding);
    req = req.send(typeof c.body.data === 'string' ? c.body.data : c.body.data);
  }
  return req;
}

/** The verdict on one answer, or null when it is a deliberate one. */
function judge(c: Case, res: { status: number; text: string; headers: Record<string, string>; body?: unknown }): string | null {
  const type = res.headers['content-type'] ?? '';
  const code = errorCodeOf(res);
  if (res.status >= 500) return res.status === 503 && code === 'store_unavailable' ? null : `answered ${res.status} (${code ?? 'no code'})`;
  if (res.status < 400) return null;
  const path = c.url.split('?')[0]!;
  if (/^\/login\/check\//.test(path) && res.status === 403) {
    return (res.body as { code?: unknown } | undefined)?.code === '12' ? null : 'S-18 refusal without code 12';
  }
  if (type.includes('json')) return typeof code === 'string' && /^[a-z_]+$/.test(code) ? null : `${res.status} JSON without an error code: ${res.text.slice(0, 120)}`;
  if (type.includes('html')) {
    if (code) return null;
    // oidc-provider's own error page (provider.ts renderError) names the OAuth error.
    if (path.startsWith('/oidc/') && /Error code: <code>[a-z_]+<\/code>/.test(res.text)) return null;
    return `${res.status} HTML page without an error code: ${res.text.slice(0, 120)}`;
  }
  return `${res.status} ${type || 'without a content type'}: ${res.text.slice(0, 120)}`;
}

describe(`fuzz: every public route with malformed input (FUZZ_SEED=${SEED})`, () => {
  let gw: Gateway;
  let routes: Route[];
  let creds: Credentials;

  before(async () => {
    gw = await createGateway({ overrides: { trustProxy: true } });
    const session = async (domain: string, memberId: string, account: string): Promise<string> =>
      `idpb_session=${(await gw.services.sessions.create({ memberId, domain, account, authMethod: 'password', clientKind: 'web' }, 3600_000)).id}`;
    creds = {
      sessionCookies: [await session('nosso.example', 'm-n', 'n@nosso.example'), await session('a.example', 'm-a-active', 'active@a.example')],
      tenantKey: await tenantKeyAuth(gw, 'a.example', 'fuzz'),
    };
    const all = [...expressRoutes(gw.app), ...openapiRoutes(), ...(await oidcRoutes(gw))];
    const seen = new Set<string>();
    routes = all.filter((r) => {
      const key = `${r.method} ${r.path}`;
      const fresh = !seen.has(key);
      // Keep the first of a duplicate, but let the openapi one lend its body schema.
      if (!fresh && r.schema) all.find((o) => `${o.method} ${o.path}` === key && !o.schema)!.schema = r.schema;
      seen.add(key);
      return fresh;
    });
  });
  after(async () => {
    await gw.services.outbound.close();
    await gw.close();
  });

  it('found the routes: the Express routes, the admin API of openapi.json and the OP endpoints', () => {
    const has = (method: string, path: string): boolean => routes.some((r) => r.method === method && r.path === path);
    assert.ok(has('post', '/acs/:domain'));
    assert.ok(has('get', '/d/login/:domain'));
    assert.ok(has('put', '/admin/v1/domains/:domain/external-keys.csv'));
    assert.ok(has('post', '/admin/v1/domains/:domain/mdm/keys:reissue'));
    assert.ok(has('post', '/oidc/token'));
    assert.ok(routes.filter((r) => r.path.startsWith('/admin/v1/')).length >= 35, 'every admin operation');
    assert.ok(routes.length >= 70, `${routes.length} routes`);
  });

  it('answers every malformed request deliberately: no 5xx, no hang, every 4xx with its error code', { timeout: 120_000 }, async (t) => {
    console.log(`# fuzz: FUZZ_SEED=${SEED}, ${CASES_PER_ROUTE} cases per route`);
    const rng = new Rng(SEED);
    const cases: Array<{ route: Route; c: Case }> = [];
    for (const route of routes) for (let i = 0; i < CASES_PER_ROUTE; i++) cases.push({ route, c: makeCase(rng, route, cases.length, creds) });

    const failures: Failure[] = [];
    const statuses = new Map<number, number>();
    let unavailable = 0;
    for (const { route, c } of cases) {
      const label = `#${c.n} ${c.method.toUpperCase()} ${c.url.slice(0, 160)} [${route.source}; body: ${c.body?.kind ?? 'none'}${c.body ? `, ${c.body.type ?? 'no type'}` : ''}]`;
      try {
        const res = await send(gw, c);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status === 503) unavailable++;
        const verdict = judge(c, res);
        if (verdict) failures.push({ n: c.n, what: `${label}: ${verdict}` });
      } catch (err) {
        const e = err as { timeout?: number; code?: string; message?: string };
        failures.push({ n: c.n, what: `${label}: ${e.timeout ? 'no answer (hang)' : `connection failed: ${e.code ?? e.message}`}` });
      }
    }
    t.diagnostic(`FUZZ_SEED=${SEED}: ${cases.length} cases over ${routes.length} routes; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    if (unavailable) t.diagnostic(`${unavailable} answers were 503 store_unavailable (unexpected with a healthy Redis)`);
    assert.deepEqual(
      failures.slice(0, 25).map((f) => f.what),
      [],
      `${failures.length} of ${cases.length} cases failed (replay with FUZZ_SEED=${SEED})`,
    );
    const internal = gw.logs.filter((l) => l.errorCode === 'internal_error');
    assert.deepEqual(internal.map((l) => String(l.reqId)), [], 'no internal_error was logged');
  });

  it('refuses deep, namespace-heavy, wide and huge XML on every XML route with a 4xx and its code', async () => {
    const form = (values: Record<string, string>): string => new URLSearchParams(values).toString();
    const b64x = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64');
    const deflated = (xml: string): string => encodeURIComponent(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'));
    const seen: string[] = [];
    for (const [name, filler] of Object.entries(HOSTILE_FILLERS)) {
      const big = filler(150_000);
      const small = filler(9_000);
      const login = await beginLogin(gw, 'a.example');
      const signedXml = buildSamlResponseXml({ issuer: idps.a.entityId, destination: null, inResponseTo: login.requestId, recipient: null, audience: null, nameId: 'emp-001', now: gw.clock.now() });
      const requests: Array<[string, supertest.Test]> = [
        ['ACS, no transaction', gw.http.post('/acs/a.example').type('form').send(form({ SAMLResponse: b64x(hostileResponse(big)), RelayState: 'A'.repeat(32) }))],
        ['ACS, live transaction', gw.http.post('/acs/a.example').type('form').send(form({ SAMLResponse: b64x(injectIntoAssertion(signedXml, big)), RelayState: login.relayState }))],
        ['ACS, unsolicited tenant', gw.http.post('/acs/unsolicited.example').type('form').send(form({ SAMLResponse: b64x(hostileResponse(big, idps.a.entityId)) }))],
        ['SLO POST', gw.http.post('/saml2/sp/slo').type('form').send(form({ SAMLRequest: b64x(hostileLogoutRequest(filler(60_000), idps.a.entityId)) }))],
        ['SLO GET', gw.http.get(`/saml2/sp/slo?SAMLRequest=${deflated(hostileLogoutRequest(small, idps.a.entityId))}`)],
        ['SLO callback POST', gw.http.post('/saml2/sp/slo/callback').type('form').send(form({ SAMLResponse: b64x(hostileResponse(filler(60_000))), RelayState: 'A'.repeat(32) }))],
        ['SLO callback GET', gw.http.get(`/saml2/sp/slo/callback?SAMLResponse=${deflated(hostileResponse(small))}&RelayState=${'A'.repeat(32)}`)],
        ['IdP metadata upload', gw.http.post('/admin/v1/domains/a.example/saml/idp-metadata').set('Authorization', OPERATOR_AUTH).type('application/xml').send(`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">${big}</md:EntityDescriptor>`)],
      ];
      for (const [route, req] of requests) {
        const res = await req;
        const label = `${route} / ${name}: ${res.status} ${res.text.slice(0, 120)}`;
        assert.ok(res.status >= 400 && res.status < 500, label);
        assert.ok(errorCodeOf(res), `${label}: an error code`);
        seen.push(`${route}:${res.status}`);
      }
    }
    assert.equal(seen.length, Object.keys(HOSTILE_FILLERS).length * 8);
  });

  it('is alive afterwards: /healthz and /readyz answer 200 and a normal login works', async () => {
    assert.equal((await gw.http.get('/healthz')).status, 200);
    assert.equal((await gw.http.get('/readyz')).status, 200);
    const login = await beginLogin(gw, UNTOUCHED);
    const res = await postAcs(gw, UNTOUCHED, validResponse(gw, UNTOUCHED, idps.b, login, 'user1@b.example'), login.relayState);
    assert.equal(res.status, 303, res.text.slice(0, 300));
  });
});
