/**
 * A real SAML IdP the project did not write, for tests: Debian's SimpleSAMLphp 1.19 (`apt-get install
 * simplesamlphp`), served by `php -S` from /usr/share/simplesamlphp/www on a free loopback port.
 *
 * Nothing under /etc or /usr is touched: every start writes a private config directory in a temp folder
 * (SIMPLESAMLPHP_CONFIG_DIR, which SimpleSAMLphp 1.19 honours instead of its own config/ →
 * /etc/simplesamlphp) holding config.php, authsources.php (exampleauth:UserPass with the given users),
 * metadata/saml20-idp-hosted.php (a fresh RSA-2048 key and self-signed certificate, RSA-SHA256),
 * metadata/saml20-sp-remote.php (the gateway SP), and the IdP's cert, log, data, temp and PHP-session
 * directories. `stop()` kills the server and deletes the folder.
 *
 * Quirks a test author must know:
 * - The IdP's origin is http://127.0.0.1:<port>. The gateway refuses loopback outbound calls (metadata
 *   by URL) unless the test opts in with LOOPBACK_IDPS (test/helpers/gateway.ts).
 * - Its session cookie (`SimpleSAMLSessionID`) is host-only, not Secure, SameSite=Lax: SimpleSAMLphp's
 *   default of SameSite=None would be dropped by Chromium over http. The login form posts back to the
 *   same origin, so Lax is enough; the IdP never needs its cookie on a cross-site request.
 * - The SAMLResponse comes back in an auto-submitting HTML form (action = the ACS URL of the
 *   AuthnRequest, which must be one of `acsUrl`); the gateway's ACS receives it as a cross-site POST.
 * - The NameID is the user's `nameIdAttribute` attribute (default `uid`), format `nameIdFormat`
 *   (default unspecified), whatever NameIDPolicy the AuthnRequest asks for.
 * - SimpleSAMLphp checks the AuthnRequest's Issuer against `spEntityId` and its
 *   AssertionConsumerServiceURL against `acsUrl`; it does not require signed AuthnRequests.
 * - It keeps an SSO session per browser: a second login with the same cookies skips the login form and
 *   answers with the auto-submit form at once. A fresh cookie jar / browser context shows the form.
 * - It stamps assertions with the real time: a gateway test must not move its FakeClock far from now.
 * - Debian's package needs PHP's dom and mbstring extensions without depending on them
 *   (apt-get install php-xml php-mbstring); `simpleSamlPhpMissing()` says what is lacking.
 * - `php -S` runs with 4 workers in its own process group; `stop()` (or the test process's exit)
 *   kills the group. `output()` has php -S's access lines and SimpleSAMLphp's log (DEBUG, on stderr):
 *   print it when a login fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis.js';

export const SIMPLESAMLPHP_DIR = process.env.SIMPLESAMLPHP_DIR ?? '/usr/share/simplesamlphp';
const PHP = process.env.PHP_BINARY ?? 'php';

const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';
const HTTP_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const HTTP_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

/** Why SimpleSAMLphp cannot run here, or false when it can (php and Debian's package are there). */
export function simpleSamlPhpMissing(): string | false {
  if (!existsSync(join(SIMPLESAMLPHP_DIR, 'www', 'saml2', 'idp', 'SSOService.php'))) {
    return `no SimpleSAMLphp at ${SIMPLESAMLPHP_DIR} (apt-get install simplesamlphp, or set SIMPLESAMLPHP_DIR)`;
  }
  if (spawnSync(PHP, ['-v']).status !== 0) return `no working '${PHP}' (apt-get install php-cli)`;
  // Debian's simplesamlphp does not depend on the PHP extensions it needs (DOMDocument, mb_*).
  const lacking = ['dom', 'mbstring', 'openssl'].filter((ext) => spawnSync(PHP, ['-r', `exit(extension_loaded('${ext}') ? 0 : 1);`]).status !== 0);
  if (lacking.length) return `PHP lacks ${lacking.join(', ')} (apt-get install php-xml php-mbstring)`;
  return false;
}

export interface SimpleSamlPhpUser {
  username: string;
  password: string;
  /** SAML attributes of the user; the one named by `nameIdAttribute` becomes the NameID. */
  attributes: Record<string, string | string[]>;
}

export interface SimpleSamlPhpOptions {
  /** The SP's entity ID (the AuthnRequest Issuer, the Audience of the assertions). */
  spEntityId: string;
  /** The SP's ACS URL(s), HTTP-POST binding; the first is the default. */
  acsUrl: string | string[];
  /** The SP's SLO URL (HTTP-Redirect), when the SP has one. */
  sloUrl?: string;
  users: SimpleSamlPhpUser[];
  /** The attribute whose (first) value is sent as the NameID. Default `uid`. */
  nameIdAttribute?: string;
  /** The NameID Format sent. Default urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified. */
  nameIdFormat?: string;
  /** What the IdP signs (RSA-SHA256): the assertion, the whole response, or both (the default). */
  sign?: 'assertion' | 'response' | 'both';
  /** Port of the php -S server; default a free one. */
  port?: number;
  /** The SingleSignOnService bindings the metadata lists (d-saml-authn: a POST-only IdP). Default both. */
  ssoBindings?: Array<'redirect' | 'post'>;
}

export interface SimpleSamlPhp {
  /** http://127.0.0.1:<port>/ (ends with a slash, as SimpleSAMLphp's baseurlpath). */
  baseUrl: string;
  /** The IdP's metadata document, http://127.0.0.1:<port>/saml2/idp/metadata.php. */
  metadataUrl: string;
  /** The IdP's entity ID (= metadataUrl, SimpleSAMLphp's convention). */
  entityId: string;
  /** The IdP's SSO endpoint (HTTP-Redirect), /saml2/idp/SSOService.php. */
  ssoUrl: string;
  /** The IdP's signing certificate, PEM. */
  certificate: string;
  /** The private config folder (config.php, metadata/, cert/, log/ …). */
  dir: string;
  /** Fetches the metadata XML from the running IdP. */
  metadataXml: () => Promise<string>;
  /** What php -S and SimpleSAMLphp (logging to stderr) wrote so far: access lines and log lines. */
  output: () => string;
  stop: () => Promise<void>;
}

/** Signals the php -S master and its workers (its process group, spawned detached); quiet when already gone. */
function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // already gone
  }
}

/** A PHP literal for a JSON-like value: single-quoted strings, short arrays. */
function php(value: unknown, indent = ''): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const inner = `${indent}    `;
  if (Array.isArray(value)) return `[\n${value.map((v) => `${inner}${php(v, inner)},\n`).join('')}${indent}]`;
  const entries = Object.entries(value as Record<string, unknown>);
  return `[\n${entries.map(([k, v]) => `${inner}${php(k)} => ${php(v, inner)},\n`).join('')}${indent}]`;
}

const phpFile = (name: string, value: unknown): string => `<?php\n// Written by test/helpers/simplesamlphp.ts\n$${name} = ${php(value)};\n`;

/** An RSA-2048 key and a self-signed certificate (10 years), made by PHP's openssl extension. */
function generateKeyPair(certDir: string): { key: string; cert: string } {
  const script = `
$key = openssl_pkey_new(['private_key_bits' => 2048, 'private_key_type' => OPENSSL_KEYTYPE_RSA]);
$csr = openssl_csr_new(['commonName' => 'SimpleSAMLphp test IdP', 'organizationName' => 'idp-bridge tests'], $key, ['digest_alg' => 'sha256']);
$crt = openssl_csr_sign($csr, null, $key, 3650, ['digest_alg' => 'sha256'], random_int(1, PHP_INT_MAX));
openssl_pkey_export_to_file($key, $argv[1] . '/idp.key') or exit(1);
openssl_x509_export_to_file($crt, $argv[1] . '/idp.crt') or exit(1);
`;
  const run = spawnSync(PHP, ['-r', script, '--', certDir], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`SimpleSAMLphp helper: key generation failed: ${run.stderr || run.stdout}`);
  return { key: readFileSync(join(certDir, 'idp.key'), 'utf8'), cert: readFileSync(join(certDir, 'idp.crt'), 'utf8') };
}

export async function startSimpleSamlPhp(options: SimpleSamlPhpOptions): Promise<SimpleSamlPhp> {
  const missing = simpleSamlPhpMissing();
  if (missing) throw new Error(`SimpleSAMLphp helper: ${missing}`);
  for (const u of options.users) {
    // exampleauth:UserPass keys its users by "<username>:<password>", split at the first colon.
    if (u.username.includes(':') || !u.username || !u.password) throw new Error(`SimpleSAMLphp helper: unusable username/password for '${u.username}'`);
  }
  const acsUrls = Array.isArray(options.acsUrl) ? options.acsUrl : [options.acsUrl];
  const sign = options.sign ?? 'both';
  const port = options.port ?? (await freePort());
  const baseUrl = `http://127.0.0.1:${port}/`;
  const metadataUrl = `${baseUrl}saml2/idp/metadata.php`;
  const entityId = metadataUrl;

  const dir = mkdtempSync(join(tmpdir(), 'idpb-simplesamlphp-'));
  const sub = (name: string): string => {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true });
    return p;
  };
  const [configDir, metadataDir, certDir, logDir, dataDir, tempDir, sessionDir] = ['config', 'config/metadata', 'cert', 'log', 'data', 'tmp', 'sessions'].map(sub) as [string, string, string, string, string, string, string];

  let child: ChildProcess | undefined;
  let killOnExit: (() => void) | undefined;
  try {
    const { cert } = generateKeyPair(certDir);

    writeFileSync(
      join(configDir, 'config.php'),
      phpFile('config', {
        baseurlpath: baseUrl,
        certdir: `${certDir}/`,
        loggingdir: `${logDir}/`,
        datadir: `${dataDir}/`,
        tempdir: tempDir,
        metadatadir: `${metadataDir}/`,
        'metadata.sources': [{ type: 'flatfile', directory: `${metadataDir}/` }],
        technicalcontact_name: 'idp-bridge tests',
        technicalcontact_email: 'tests@idp-bridge.invalid',
        secretsalt: randomBytes(24).toString('hex'),
        'auth.adminpassword': randomBytes(12).toString('hex'),
        'admin.protectindexpage': false,
        'admin.protectmetadata': false,
        timezone: 'UTC',
        'logging.level': 7, // SimpleSAML\Logger::DEBUG
        'logging.handler': 'stderr',
        'logging.processname': 'simplesamlphp',
        debug: { saml: false, backtraces: true, validatexml: false },
        showerrors: true,
        errorreporting: false,
        'enable.saml20-idp': true,
        'enable.shib13-idp': false,
        'module.enable': { exampleauth: true, core: true, saml: true, admin: true, preprodwarning: false },
        'store.type': 'phpsession',
        'session.duration': 8 * 60 * 60,
        'session.cookie.name': 'SimpleSAMLSessionID',
        'session.cookie.path': '/',
        'session.cookie.domain': null,
        'session.cookie.secure': false,
        // Chromium drops SameSite=None cookies that are not Secure (http://127.0.0.1).
        'session.cookie.samesite': 'Lax',
        'session.phpsession.cookiename': 'SimpleSAMLSessionID',
        'session.phpsession.savepath': sessionDir,
        'session.phpsession.httponly': true,
        'session.authtoken.cookiename': 'SimpleSAMLAuthToken',
        'language.cookie.secure': false,
        'language.cookie.samesite': 'Lax',
        'language.default': 'en',
        'language.available': ['en'],
        'theme.use': 'default',
        'usenewui': false,
        'production': false,
      }),
    );

    const users: Record<string, unknown> = {};
    for (const u of options.users) {
      users[`${u.username}:${u.password}`] = Object.fromEntries(Object.entries(u.attributes).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
    }
    writeFileSync(
      join(configDir, 'authsources.php'),
      phpFile('config', {
        admin: ['core:AdminPassword'],
        'example-userpass': { 0: 'exampleauth:UserPass', ...users },
      }),
    );

    const signing = {
      'signature.algorithm': RSA_SHA256,
      'saml20.sign.assertion': sign !== 'response',
      'saml20.sign.response': sign !== 'assertion',
    };
    writeFileSync(
      join(metadataDir, 'saml20-idp-hosted.php'),
      phpFile(`metadata[${php(entityId)}]`, {
        host: '__DEFAULT__',
        privatekey: 'idp.key',
        certificate: 'idp.crt',
        auth: 'example-userpass',
        ...signing,
        'SingleSignOnServiceBinding': (options.ssoBindings ?? ['redirect', 'post']).map((b) => (b === 'post' ? HTTP_POST : HTTP_REDIRECT)),
        'SingleLogoutServiceBinding': [HTTP_REDIRECT],
        NameIDFormat: options.nameIdFormat ?? NAMEID_UNSPECIFIED,
      }),
    );
    writeFileSync(
      join(metadataDir, 'saml20-sp-remote.php'),
      phpFile(`metadata[${php(options.spEntityId)}]`, {
        AssertionConsumerService: acsUrls.map((Location, index) => ({ Binding: HTTP_POST, Location, index, ...(index === 0 ? { isDefault: true } : {}) })),
        ...(options.sloUrl ? { SingleLogoutService: [{ Binding: HTTP_REDIRECT, Location: options.sloUrl }] } : {}),
        NameIDFormat: options.nameIdFormat ?? NAMEID_UNSPECIFIED,
        'simplesaml.nameidattribute': options.nameIdAttribute ?? 'uid',
        'simplesaml.attributes': true,
        'attributes.NameFormat': 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic',
        ...signing,
        'validate.authnrequest': false,
        'assertion.encryption': false,
        'nameid.encryption': false,
      }),
    );

    const out: string[] = [];
    let outLength = 0;
    const collect = (chunk: Buffer): void => {
      out.push(chunk.toString('utf8'));
      outLength += chunk.length;
      while (outLength > 1_000_000 && out.length > 1) outLength -= out.shift()!.length;
    };
    const proc = spawn(PHP, ['-S', `127.0.0.1:${port}`, '-t', join(SIMPLESAMLPHP_DIR, 'www')], {
      // Several workers, so a browser fetching the login page's CSS and images is not served one by one.
      env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: configDir, PHP_CLI_SERVER_WORKERS: '4' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: the workers outlive a killed master, so stop() signals the whole group.
      detached: true,
    });
    child = proc;
    proc.stdout.on('data', collect);
    proc.stderr.on('data', collect);
    const output = (): string => out.join('');
    let exited = false;
    proc.on('exit', () => {
      exited = true;
    });
    // A test process that ends without stop() (a failed before(), an uncaught error) still ends the IdP.
    const onExit = (): void => killGroup(proc, 'SIGKILL');
    killOnExit = onExit;
    process.once('exit', onExit);

    const deadline = Date.now() + 15_000;
    for (;;) {
      if (exited) throw new Error(`SimpleSAMLphp helper: php -S exited: ${output().slice(-2000)}`);
      try {
        const res = await fetch(metadataUrl, { signal: AbortSignal.timeout(2000) });
        const text = await res.text();
        if (res.ok && text.includes('EntityDescriptor')) break;
        if (Date.now() > deadline) throw new Error(`metadata answered ${res.status}: ${text.slice(0, 500)}`);
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`SimpleSAMLphp helper: no metadata at ${metadataUrl}: ${String(err)}\n${output().slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }

    return {
      baseUrl,
      metadataUrl,
      entityId,
      ssoUrl: `${baseUrl}saml2/idp/SSOService.php`,
      certificate: cert,
      dir,
      metadataXml: async () => {
        const res = await fetch(metadataUrl);
        if (!res.ok) throw new Error(`SimpleSAMLphp metadata answered ${res.status}`);
        return res.text();
      },
      output,
      stop: async () => {
        process.removeListener('exit', onExit);
        if (!exited) {
          const gone = new Promise((r) => proc.once('exit', r));
          killGroup(proc, 'SIGTERM');
          await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
        }
        killGroup(proc, 'SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (killOnExit) process.removeListener('exit', killOnExit);
    if (child) killGroup(child, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
