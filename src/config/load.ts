import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { configSchema, type Config } from './schema.js';

/** A configuration problem; `main.ts` prints it and exits non-zero. The message names the key. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Loud, once-at-boot warnings (dev placeholders, in-process store …). */
  warnings: string[];
}

export const DEV_SECRET_MARKER = 'DEV-ONLY';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(out[k]) ? merge(out[k], v) : v;
  }
  return out;
}

function readJson(path: string, what: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isObject(parsed)) throw new Error('not a JSON object');
    return parsed;
  } catch (err) {
    throw new ConfigError(`${what}: ${path} is not valid JSON (${(err as Error).message})`);
  }
}

function setPath(target: Json, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]!] = value;
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Environment variables → config paths. The only place that reads process.env. */
const ENV_MAP: Record<string, { path: string[]; parse?: (v: string) => unknown }> = {
  PORT: { path: ['port'] },
  PUBLIC_URL: { path: ['publicUrl'], parse: (v) => v.replace(/\/+$/, '') },
  TRUST_PROXY: { path: ['trustProxy'], parse: (v) => (/^\d+$/.test(v) ? Number(v) : v === 'true') },
  LOG_LEVEL: { path: ['logLevel'] },
  WORKERS: { path: ['workers'], parse: (v) => (/^\d+$/.test(v.trim()) ? Number(v) : v.trim()) },
  REDIS_URL: { path: ['store', 'redisUrl'] },
  REDIS_SENTINELS: { path: ['store', 'redisSentinels'], parse: (v) => (v.trim() === '' ? undefined : list(v)) },
  REDIS_SENTINEL_NAME: { path: ['store', 'redisSentinelName'], parse: (v) => (v === '' ? undefined : v) },
  REDIS_SENTINEL_PASSWORD: { path: ['store', 'redisSentinelPassword'], parse: (v) => (v === '' ? undefined : v) },
  REDIS_CLUSTER_NODES: { path: ['store', 'redisClusterNodes'], parse: (v) => (v.trim() === '' ? undefined : list(v)) },
  REDIS_USERNAME: { path: ['store', 'redisUsername'], parse: (v) => (v === '' ? undefined : v) },
  REDIS_PASSWORD: { path: ['store', 'redisPassword'], parse: (v) => (v === '' ? undefined : v) },
  REDIS_TLS: { path: ['store', 'redisTls'], parse: (v) => v === 'true' || v === '1' },
  REDIS_KEY_PREFIX: { path: ['store', 'keyPrefix'] },
  SECRET_KEYS: { path: ['secretKeys'], parse: list },
  ADMIN_API_KEY: { path: ['adminApiKey'], parse: (v) => (v === '' ? undefined : v) },
  AUDIT_RETENTION_DAYS: { path: ['audit', 'retentionDays'], parse: (v) => (/^\s*\d+\s*$/.test(v) ? Number(v) : v) },
  METRICS_TOKEN: { path: ['metrics', 'bearerToken'], parse: (v) => (v === '' ? undefined : v) },
  SERVICE_ORIGINS: { path: ['serviceOrigins'], parse: list },
  DEFAULT_SERVICE_URL: { path: ['defaultServiceUrl'] },
  SP_ENTITY_ID: { path: ['saml', 'spEntityId'] },
  OIDC_SIGNING_KEY_FILE: { path: ['oidc', 'signingKeyFile'] },
  SP_SIGNING_KEY_FILE: { path: ['saml', 'signing', 'keyFile'], parse: (v) => (v === '' ? undefined : v) },
  SP_SIGNING_CERT_FILE: { path: ['saml', 'signing', 'certFile'], parse: (v) => (v === '' ? undefined : v) },
  SP_SIGNING_NEXT_CERT_FILE: { path: ['saml', 'signing', 'nextCertFile'], parse: (v) => (v === '' ? undefined : v) },
  SP_DECRYPTION_KEY_FILE: { path: ['saml', 'decryption', 'keyFile'], parse: (v) => (v === '' ? undefined : v) },
  SP_DECRYPTION_CERT_FILE: { path: ['saml', 'decryption', 'certFile'], parse: (v) => (v === '' ? undefined : v) },
  SP_DECRYPTION_NEXT_KEY_FILE: { path: ['saml', 'decryption', 'nextKeyFile'], parse: (v) => (v === '' ? undefined : v) },
  SP_DECRYPTION_NEXT_CERT_FILE: { path: ['saml', 'decryption', 'nextCertFile'], parse: (v) => (v === '' ? undefined : v) },
  DEMO: { path: ['demo', 'enabled'], parse: (v) => v === 'true' || v === '1' },
  OUTBOUND_ALLOW_PRIVATE_NETWORKS: { path: ['outbound', 'allowPrivateNetworks'], parse: (v) => v === 'true' || v === '1' },
  OUTBOUND_ALLOWED_HOSTS: { path: ['outbound', 'allowedHosts'], parse: list },
  SEED_FILE: { path: ['seedFile'], parse: (v) => (v === '' ? undefined : v) },
  // o-lock-release
  INSTANCE_ID: { path: ['instanceId'], parse: (v) => (v.trim() === '' ? undefined : v.trim()) },
};

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `  - ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('\n');
}

/** Reads the SP signing PEM files named in the config; a missing or non-PEM file names its key. */
function loadSigningFiles(config: Config, cwd: string): void {
  const signing = config.saml.signing;
  const read = (file: string | undefined, key: string, marker: RegExp): string | undefined => {
    if (!file) return undefined;
    let text: string;
    try {
      text = readFileSync(resolve(cwd, file), 'utf8');
    } catch (err) {
      throw new ConfigError(`Invalid configuration:\n  - saml.signing.${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!marker.test(text)) throw new ConfigError(`Invalid configuration:\n  - saml.signing.${key}: ${file} is not PEM`);
    return text;
  };
  signing.privateKey ??= read(signing.keyFile, 'keyFile', /-----BEGIN (RSA )?PRIVATE KEY-----/);
  signing.certificate ??= read(signing.certFile, 'certFile', /-----BEGIN CERTIFICATE-----/);
  signing.nextCertificate ??= read(signing.nextCertFile, 'nextCertFile', /-----BEGIN CERTIFICATE-----/);
  if (Boolean(signing.privateKey) !== Boolean(signing.certificate)) {
    throw new ConfigError('Invalid configuration:\n  - saml.signing: a signing key needs its certificate (and the other way round)');
  }
}

/**
 * Reads the SP decryption PEM files (saml.decryption) and checks each pair at boot: an RSA private key
 * of at least 2048 bits, a readable certificate, and the certificate's public key is the key's own (an
 * IdP encrypting to a certificate whose key we do not hold would make every login fail). Error messages
 * name the config key and file, never the key's contents.
 */
function loadDecryptionFiles(config: Config, cwd: string): void {
  const d = config.saml.decryption;
  const fail = (key: string, why: string): never => {
    throw new ConfigError(`Invalid configuration:\n  - saml.decryption.${key}: ${why}`);
  };
  const read = (file: string | undefined, key: string, marker: RegExp): string | undefined => {
    if (!file) return undefined;
    let text: string;
    try {
      text = readFileSync(resolve(cwd, file), 'utf8');
    } catch (err) {
      return fail(key, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!marker.test(text)) fail(key, `${file} is not PEM`);
    return text;
  };
  const KEY = /-----BEGIN (RSA )?PRIVATE KEY-----/;
  const CERT = /-----BEGIN CERTIFICATE-----/;
  d.privateKey ??= read(d.keyFile, 'keyFile', KEY);
  d.certificate ??= read(d.certFile, 'certFile', CERT);
  d.nextPrivateKey ??= read(d.nextKeyFile, 'nextKeyFile', KEY);
  d.nextCertificate ??= read(d.nextCertFile, 'nextCertFile', CERT);
  const pair = (keyPem: string | undefined, certPem: string | undefined, name: string): void => {
    if (Boolean(keyPem) !== Boolean(certPem)) fail(name, 'a decryption key needs its certificate (and the other way round)');
    if (!keyPem || !certPem) return;
    let key: KeyObject;
    let cert: X509Certificate;
    try {
      key = createPrivateKey(keyPem);
    } catch {
      return fail(name, 'the private key cannot be read (PEM, unencrypted PKCS#1 or PKCS#8)');
    }
    try {
      cert = new X509Certificate(certPem);
    } catch {
      return fail(name, 'the certificate cannot be read');
    }
    if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) fail(name, 'must be an RSA key of at least 2048 bits (RSA-OAEP key transport)');
    if (!cert.checkPrivateKey(key)) fail(name, 'the certificate does not belong to the private key');
  };
  pair(d.privateKey, d.certificate, 'keyFile');
  pair(d.nextPrivateKey, d.nextCertificate, 'nextKeyFile');
  if (d.nextPrivateKey && !d.privateKey) fail('nextKeyFile', 'a next key needs a current one (keyFile, certFile)');
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Extra values merged last (tests use this instead of environment variables). */
  overrides?: Json;
}

/**
 * Loads `config/default.json`, then the file named by IDPB_CONFIG, then environment variables, then
 * `overrides`; validates the result and deep-freezes it. Throws ConfigError naming the bad key.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  let raw = readJson(resolve(cwd, 'config/default.json'), 'config/default.json');
  if (env.IDPB_CONFIG) raw = merge(raw, readJson(resolve(cwd, env.IDPB_CONFIG), 'IDPB_CONFIG'));

  const fromEnv: Json = {};
  for (const [name, { path, parse }] of Object.entries(ENV_MAP)) {
    const value = env[name];
    if (value !== undefined) setPath(fromEnv, path, parse ? parse(value) : value);
  }
  raw = merge(raw, fromEnv);
  if (options.overrides) raw = merge(raw, options.overrides);

  const nodeEnv = env.NODE_ENV;
  raw.env = nodeEnv === 'production' || nodeEnv === 'test' ? nodeEnv : 'development';

  // Derived defaults: the public URL follows the port, and outside production the gateway's own
  // origin is an allowed service origin so the demo landing page works out of the box (the demo's
  // /welcome is the default service URL only while the demo is mounted, below).
  const port = Number(raw.port ?? 3000);
  if (raw.publicUrl === undefined) raw.publicUrl = `http://localhost:${port}`;

  if (isObject(raw.admin) && raw.admin.allowPrivateMetadataUrls !== undefined) {
    throw new ConfigError(
      'Invalid configuration:\n  - admin.allowPrivateMetadataUrls: removed; one policy now covers every outbound call: list on-premises hosts in outbound.allowedHosts (or, for closed networks and tests, set outbound.allowPrivateNetworks)',
    );
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`Invalid configuration:\n${formatIssues(parsed.error)}`);
  }
  const config = parsed.data;
  const warnings: string[] = [];
  const isProd = config.env === 'production';
  const signing = config.saml.signing;
  // Before any key file is read: the production image has no config/dev-only, and "set X" says more than ENOENT.
  if (isProd && config.oidc.signingKeyFile?.includes('dev-only')) {
    throw new ConfigError('Invalid configuration:\n  - oidc.signingKeyFile: the dev-only OP key cannot be used in production; set OIDC_SIGNING_KEY_FILE');
  }
  if (isProd && [signing.keyFile, signing.certFile].some((f) => f?.includes('dev-only'))) {
    throw new ConfigError('Invalid configuration:\n  - saml.signing: the dev-only SP signing key cannot be used in production; set SP_SIGNING_KEY_FILE and SP_SIGNING_CERT_FILE (or "" to sign nothing)');
  }
  loadSigningFiles(config, cwd);
  loadDecryptionFiles(config, cwd);
  if (!config.oidc.signingKey && config.oidc.signingKeyFile) {
    try {
      config.oidc.signingKey = readFileSync(resolve(cwd, config.oidc.signingKeyFile), 'utf8');
    } catch (err) {
      throw new ConfigError(`Invalid configuration:\n  - oidc.signingKeyFile: cannot read ${config.oidc.signingKeyFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (!signing.privateKey) warnings.push('No SP signing key (saml.signing): AuthnRequests go unsigned and SAML single logout is off.');
  else if (signing.keyFile?.includes('dev-only')) warnings.push('saml.signing uses the DEV-ONLY SP key: set SP_SIGNING_KEY_FILE before real use.');

  const usesRedis = Boolean(config.store.redisUrl ?? config.store.redisSentinels ?? config.store.redisClusterNodes);
  const devSecret = config.secretKeys.some((k) => k.includes(DEV_SECRET_MARKER));
  const devAdminKey = config.adminApiKey?.includes(DEV_SECRET_MARKER) ?? false;
  if (isProd) {
    if (devAdminKey) throw new ConfigError('Invalid configuration:\n  - adminApiKey: the DEV-ONLY placeholder cannot be used in production; set ADMIN_API_KEY (or leave it empty for tenant keys only)');
    if (devSecret) throw new ConfigError('Invalid configuration:\n  - secretKeys: the DEV-ONLY placeholder cannot be used in production; set SECRET_KEYS');
    if (!usesRedis) throw new ConfigError('Invalid configuration:\n  - store.redisUrl: production needs Redis; set REDIS_URL, REDIS_SENTINELS and REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES');
    if (!config.publicUrl.startsWith('https://')) throw new ConfigError('Invalid configuration:\n  - publicUrl: production needs an https PUBLIC_URL');
    config.demo.enabled = false;
  } else {
    if (!config.serviceOrigins.includes(config.publicUrl)) config.serviceOrigins.push(config.publicUrl);
    if (devSecret) warnings.push('secretKeys holds the DEV-ONLY placeholder: set SECRET_KEYS before real use.');
    if (devAdminKey) warnings.push('adminApiKey is the DEV-ONLY placeholder: set ADMIN_API_KEY before real use.');
    if (config.demo.enabled) {
      // The demo OAuth IdP is served by the gateway itself: its token and user-info calls go to this origin.
      const own = new URL(config.publicUrl);
      const entry = `${own.hostname}:${own.port || (own.protocol === 'https:' ? '443' : '80')}`;
      if (!config.outbound.allowedHosts.includes(entry)) config.outbound.allowedHosts.push(entry);
      warnings.push(`Demo IdPs are mounted at /demo-idp (never in production); outbound calls may reach the gateway's own ${entry} for them.`);
      // The demo's landing page, /welcome, exists only while the demo is mounted (app.ts).
      config.defaultServiceUrl ??= `${config.publicUrl}/welcome`;
    }
  }
  if (config.defaultServiceUrl === undefined) {
    warnings.push('No defaultServiceUrl (DEFAULT_SERVICE_URL): a login without accessUrl is refused, and a tenant may allow IdP-initiated SAML logins only with its own defaultServiceUrl.');
  }
  if (config.outbound.allowPrivateNetworks) {
    warnings.push(
      'outbound.allowPrivateNetworks is on: any tenant administrator can make the gateway call loopback, private and link-local addresses (its own network). List on-premises IdPs in outbound.allowedHosts instead.',
    );
  }
  if (config.trustProxy === true) {
    warnings.push('trustProxy is true: the client IP is the left-most X-Forwarded-For address, which a client can write itself when a proxy appends to the header; per-client rate limits and audit IPs then trust it. Set TRUST_PROXY to the number of proxies in front of the gateway.');
  }
  if (!usesRedis) {
    warnings.push('No Redis is configured (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES): using the IN-PROCESS store. State is lost on restart and not shared between processes. NOT FOR PRODUCTION.');
  }
  return { config: deepFreeze(config), warnings };
}
