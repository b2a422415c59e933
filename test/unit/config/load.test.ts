import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config/index.js';

const PROD_SECRET = 'p'.repeat(40);

describe('configuration (docs/spec.md §3)', () => {
  it('loads config/default.json with derived defaults and warns about dev placeholders', () => {
    const { config, warnings } = loadConfig({ env: {} });
    assert.equal(config.port, 3000);
    assert.equal(config.publicUrl, 'http://localhost:3000');
    assert.equal(config.defaultServiceUrl, 'http://localhost:3000/welcome');
    assert.equal(config.session.cookieName, 'idpb_session');
    assert.equal(config.loginTransaction.ttlSeconds, 1800);
    assert.equal(config.saml.clockSkewSeconds, 180);
    assert.deepEqual(config.console, { idleTimeoutSeconds: 1800, absoluteTimeoutSeconds: 28_800 });
    assert.ok(warnings.some((w) => w.includes('IN-PROCESS store')));
    assert.ok(warnings.some((w) => w.includes('DEV-ONLY')));
  });

  it('has the demo\'s /welcome as default service URL only while the demo is mounted (S-9)', () => {
    assert.equal(loadConfig({ env: {}, overrides: { demo: { enabled: false } } }).config.defaultServiceUrl, undefined);
    const { config, warnings } = loadConfig({ env: {}, overrides: { demo: { enabled: false } } });
    assert.equal(config.defaultServiceUrl, undefined);
    assert.ok(warnings.some((w) => w.includes('No defaultServiceUrl')));
    assert.equal(loadConfig({ env: { DEFAULT_SERVICE_URL: 'https://portal.example/home' }, overrides: { demo: { enabled: false } } }).config.defaultServiceUrl, 'https://portal.example/home');
    assert.equal(loadConfig({ env: { DEFAULT_SERVICE_URL: 'https://portal.example/home' } }).config.defaultServiceUrl, 'https://portal.example/home', 'an operator value wins over the demo');
  });

  it('validates the console timeouts at boot: whole seconds in range, idle no longer than absolute', () => {
    const bad = [{ idleTimeoutSeconds: 30 }, { absoluteTimeoutSeconds: 10 * 86_400 }, { idleTimeoutSeconds: 7200, absoluteTimeoutSeconds: 3600 }, { idleTimeoutSeconds: 90.5 }, { idle: 60 }];
    for (const consoleConfig of bad) {
      assert.throws(() => loadConfig({ env: {}, overrides: { console: consoleConfig } }), /console/, JSON.stringify(consoleConfig));
    }
    assert.equal(loadConfig({ env: {}, overrides: { console: { idleTimeoutSeconds: 600, absoluteTimeoutSeconds: 3600 } } }).config.console.idleTimeoutSeconds, 600);
  });

  it('applies environment overrides', () => {
    const { config } = loadConfig({
      env: { PORT: '4000', REDIS_URL: 'redis://127.0.0.1:6390', SERVICE_ORIGINS: 'https://a.example, https://b.example', SECRET_KEYS: PROD_SECRET },
    });
    assert.equal(config.port, 4000);
    assert.equal(config.publicUrl, 'http://localhost:4000');
    assert.equal(config.store.redisUrl, 'redis://127.0.0.1:6390');
    assert.deepEqual(config.serviceOrigins.slice(0, 2), ['https://a.example', 'https://b.example']);
    assert.deepEqual(config.secretKeys, [PROD_SECRET]);
  });

  it('merges the file named by IDPB_CONFIG over the defaults', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idpb-'));
    writeFileSync(join(dir, 'extra.json'), JSON.stringify({ saml: { clockSkewSeconds: 60 } }));
    const { config } = loadConfig({ env: { IDPB_CONFIG: join(dir, 'extra.json') } });
    assert.equal(config.saml.clockSkewSeconds, 60);
    assert.equal(config.saml.maxResponseBytes, 262144, 'siblings keep their defaults');
  });

  it('stops with a message naming the key for bad values', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ PORT: 'eighty' }, /port/],
      [{ PORT: '70000' }, /port/],
      [{ PUBLIC_URL: 'not a url' }, /publicUrl/],
      [{ PUBLIC_URL: 'https://x.example/path' }, /publicUrl/],
      [{ SERVICE_ORIGINS: 'https://ok.example,ftp://bad' }, /serviceOrigins\.1/],
      [{ SECRET_KEYS: 'short' }, /secretKeys\.0/],
      [{ LOG_LEVEL: 'loud' }, /logLevel/],
      [{ REDIS_URL: '::::' }, /store\.redisUrl/],
    ];
    for (const [env, key] of cases) {
      assert.throws(() => loadConfig({ env }), (err: unknown) => err instanceof ConfigError && key.test(err.message), JSON.stringify(env));
    }
  });

  it('refuses unknown keys in config files (typos do not pass silently)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idpb-'));
    writeFileSync(join(dir, 'typo.json'), JSON.stringify({ saml: { clockSkewSecs: 60 } }));
    assert.throws(() => loadConfig({ env: { IDPB_CONFIG: join(dir, 'typo.json') } }), /saml/);
  });

  it('refuses dev placeholders, the in-process store and http in production, and never mounts demos there', () => {
    const noKey = { SP_SIGNING_KEY_FILE: '', SP_SIGNING_CERT_FILE: '', ADMIN_API_KEY: '', OIDC_SIGNING_KEY_FILE: 'test/fixtures/keys/idp-b.key.pem' };
    assert.throws(() => loadConfig({ env: { ...noKey, NODE_ENV: 'production', REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'https://sso.example' } }), /secretKeys/);
    assert.throws(() => loadConfig({ env: { ...noKey, NODE_ENV: 'production', SECRET_KEYS: PROD_SECRET, PUBLIC_URL: 'https://sso.example' } }), /redisUrl/);
    assert.throws(() => loadConfig({ env: { ...noKey, NODE_ENV: 'production', SECRET_KEYS: PROD_SECRET, REDIS_URL: 'redis://r:6379' } }), /publicUrl/);
    assert.throws(
      () => loadConfig({ env: { ...noKey, NODE_ENV: 'production', SECRET_KEYS: PROD_SECRET, REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'https://sso.example', ADMIN_API_KEY: 'DEV-ONLY-admin-api-key-change-me-000000000000000' } }),
      /adminApiKey/,
      'the DEV-ONLY admin key is refused in production',
    );
    assert.throws(
      () => loadConfig({ env: { NODE_ENV: 'production', SECRET_KEYS: PROD_SECRET, REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'https://sso.example', ADMIN_API_KEY: '', OIDC_SIGNING_KEY_FILE: noKey.OIDC_SIGNING_KEY_FILE } }),
      /saml\.signing/,
      'the dev-only SP signing key is refused in production',
    );
    assert.throws(
      () => loadConfig({ env: { ...noKey, OIDC_SIGNING_KEY_FILE: 'config/dev-only/op-signing.key.pem', NODE_ENV: 'production', SECRET_KEYS: PROD_SECRET, REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'https://sso.example' } }),
      /oidc\.signingKeyFile/,
      'the dev-only OP key is refused in production',
    );
    const { config } = loadConfig({ env: { ...noKey, NODE_ENV: 'production', SECRET_KEYS: PROD_SECRET, REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'https://sso.example', DEMO: 'true' } });
    assert.equal(config.demo.enabled, false);
    assert.ok(!config.serviceOrigins.includes('https://sso.example'), 'production adds no implicit service origin');
  });

  it('in a production tree without config/dev-only (the image), says which key file to set rather than ENOENT', () => {
    const dir = mkdtempSync(join(tmpdir(), 'idpb-'));
    mkdirSync(join(dir, 'config'));
    copyFileSync('config/default.json', join(dir, 'config', 'default.json'));
    const env = { NODE_ENV: 'production', SECRET_KEYS: PROD_SECRET, REDIS_URL: 'redis://r:6379', PUBLIC_URL: 'https://sso.example', ADMIN_API_KEY: '' };
    assert.throws(() => loadConfig({ cwd: dir, env: { ...env, SP_SIGNING_KEY_FILE: '', SP_SIGNING_CERT_FILE: '' } }), /oidc\.signingKeyFile: .*set OIDC_SIGNING_KEY_FILE/);
    assert.throws(() => loadConfig({ cwd: dir, env: { ...env, OIDC_SIGNING_KEY_FILE: resolve('test/fixtures/keys/idp-b.key.pem') } }), /saml\.signing: .*set SP_SIGNING_KEY_FILE/);
    const { config } = loadConfig({ cwd: dir, env: { ...env, SP_SIGNING_KEY_FILE: '', SP_SIGNING_CERT_FILE: '', OIDC_SIGNING_KEY_FILE: resolve('test/fixtures/keys/idp-b.key.pem') } });
    assert.match(config.oidc.signingKey ?? '', /PRIVATE KEY/);
  });

  it('reads the SP signing key files, and names the key when one is missing or not PEM', () => {
    const { config } = loadConfig({ env: {} });
    assert.match(config.saml.signing.privateKey ?? '', /BEGIN (RSA )?PRIVATE KEY/);
    assert.match(config.saml.signing.certificate ?? '', /BEGIN CERTIFICATE/);
    assert.throws(() => loadConfig({ env: { SP_SIGNING_KEY_FILE: 'config/nope.pem' } }), /saml\.signing\.keyFile/);
    assert.throws(() => loadConfig({ env: { SP_SIGNING_CERT_FILE: 'config/default.json' } }), /saml\.signing\.certFile/);
    assert.throws(() => loadConfig({ env: { SP_SIGNING_CERT_FILE: '' } }), /saml\.signing/);
  });

  it('reads the SP decryption keys (current and next) and refuses at boot a key without its certificate, a certificate of another key, or a small key', () => {
    const k = (name: string): string => `test/fixtures/keys/${name}`;
    const none = loadConfig({ env: {} }).config.saml.decryption;
    assert.equal(none.privateKey, undefined);
    const env = { SP_DECRYPTION_KEY_FILE: k('sp-enc.key.pem'), SP_DECRYPTION_CERT_FILE: k('sp-enc.crt.pem'), SP_DECRYPTION_NEXT_KEY_FILE: k('sp-enc-next.key.pem'), SP_DECRYPTION_NEXT_CERT_FILE: k('sp-enc-next.crt.pem') };
    const { config } = loadConfig({ env });
    assert.match(config.saml.decryption.privateKey ?? '', /PRIVATE KEY/);
    assert.match(config.saml.decryption.nextCertificate ?? '', /BEGIN CERTIFICATE/);
    assert.throws(() => loadConfig({ env: { SP_DECRYPTION_KEY_FILE: k('sp-enc.key.pem') } }), /saml\.decryption\.keyFile: a decryption key needs its certificate/);
    assert.throws(() => loadConfig({ env: { ...env, SP_DECRYPTION_CERT_FILE: k('sp-enc-next.crt.pem') } }), /saml\.decryption\.keyFile: the certificate does not belong to the private key/);
    assert.throws(() => loadConfig({ env: { ...env, SP_DECRYPTION_NEXT_CERT_FILE: 'config/default.json' } }), /saml\.decryption\.nextCertFile: .* is not PEM/);
    assert.throws(() => loadConfig({ env: { SP_DECRYPTION_NEXT_KEY_FILE: k('sp-enc-next.key.pem'), SP_DECRYPTION_NEXT_CERT_FILE: k('sp-enc-next.crt.pem') } }), /needs a current one/);
    // The message names the file, never the key's contents.
    try {
      loadConfig({ env: { ...env, SP_DECRYPTION_CERT_FILE: k('sp-enc-next.crt.pem') } });
    } catch (err) {
      assert.doesNotMatch((err as Error).message, /PRIVATE KEY|MII/);
    }
  });

  it('returns a deep-frozen object', () => {
    const { config } = loadConfig({ env: {} });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.saml));
    assert.throws(() => {
      (config.saml as { clockSkewSeconds: number }).clockSkewSeconds = 1;
    }, TypeError);
  });

  it('has per-client limits on the public routes by default, tunable per key, and warns when every proxy hop is trusted', () => {
    const { config, warnings } = loadConfig({ env: {} });
    assert.deepEqual(config.rateLimits, { loginStartPerMinute: 600, acsPerMinute: 600, oauthCallbackPerMinute: 600, samlLogoutPerMinute: 300, logoutPerMinute: 300, opAuthorizePerMinute: 600 });
    assert.ok(!warnings.some((w) => w.includes('trustProxy')));
    const tuned = loadConfig({ env: {}, overrides: { rateLimits: { loginStartPerMinute: 5000 } } }).config.rateLimits;
    assert.equal(tuned.loginStartPerMinute, 5000);
    assert.equal(tuned.acsPerMinute, 600, 'siblings keep their defaults');
    assert.throws(() => loadConfig({ env: {}, overrides: { rateLimits: { acsPerMinute: 0 } } }), /rateLimits\.acsPerMinute/);
    assert.throws(() => loadConfig({ env: {}, overrides: { rateLimits: { loginStartPerMinut: 10 } } }), /rateLimits/);
    assert.ok(loadConfig({ env: { TRUST_PROXY: 'true' } }).warnings.some((w) => w.includes('trustProxy is true')));
    assert.ok(!loadConfig({ env: { TRUST_PROXY: '1' } }).warnings.some((w) => w.includes('trustProxy')));
  });
});

// o-lock-release
describe('instanceId (INSTANCE_ID): the stable identity a restarted process releases its previous locks by', () => {
  it('is unset by default, read from INSTANCE_ID, and refused at boot when not 1–128 letters, digits, `_.:-`', () => {
    assert.equal(loadConfig({ env: {} }).config.instanceId, undefined);
    assert.equal(loadConfig({ env: { INSTANCE_ID: 'gw-eu-1.w0' } }).config.instanceId, 'gw-eu-1.w0');
    assert.equal(loadConfig({ env: { INSTANCE_ID: '  ' } }).config.instanceId, undefined, 'empty = unset');
    for (const bad of ['a/b', '-lead', 'x'.repeat(129), 'has space', '{tag}']) {
      assert.throws(() => loadConfig({ env: { INSTANCE_ID: bad } }), (err) => err instanceof ConfigError && /instanceId/.test(err.message), bad);
    }
  });
});
