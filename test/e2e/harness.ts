/**
 * What the browser tests run against: the gateway built and started the way the README starts it
 * (`node dist/main.js`, here with WORKERS=2 on Redis), a small "service" on another loopback origin,
 * Debian's Chromium driven through playwright-core, and a check of every visited page (axe-core
 * accessibility rules, a screenshot).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { freePort } from '../helpers/redis.js';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Why the browser tests cannot run here, or false. Without a browser they skip — except in CI
 * (`CI` set), where a missing browser is a failure (the caller fails instead of skipping).
 */
export function browserMissing(): string | false {
  return existsSync(CHROMIUM_PATH) ? false : `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`;
}

// ---------------------------------------------------------------------------------------------
// The gateway process
// ---------------------------------------------------------------------------------------------

/** Newest modification time of the files the build reads (the server's and the console's). */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.(ts|tsx|css|json|html|svg)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk('src');
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'package.json']) newest = Math.max(newest, statSync(f).mtimeMs);
  return newest;
}

/** The build's outputs: the server, and the console when the repository has one. */
function builtOutputs(): string[] {
  return existsSync('src/console') ? ['dist/main.js', 'dist/console/index.html'] : ['dist/main.js'];
}

/** Runs a command to its end, within `timeoutMs`; rejects with its output when it fails. */
function run(command: string, args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? code}):\n${out.slice(-4000)}`));
    });
  });
}

/** `npm run build` (the server, and the console) unless every output is newer than every source file. */
export async function buildIfStale(): Promise<'built' | 'current'> {
  const newest = newestSource();
  if (builtOutputs().every((f) => existsSync(f) && statSync(f).mtimeMs >= newest)) return 'current';
  const npm = process.env.npm_execpath;
  await (npm ? run(process.execPath, [npm, 'run', 'build'], 300_000) : run('npm', ['run', 'build'], 300_000));
  return 'built';
}

export interface GatewayProcess {
  base: string;
  port: number;
  /** Everything the process wrote so far. */
  output(): string;
  /** Its JSON log lines so far. */
  logs(): Array<Record<string, unknown>>;
  /** SIGTERM (the primary drains its workers), SIGKILL to the whole process group after 8 s. */
  stop(): Promise<void>;
}

/**
 * `node dist/main.js` in a process group of its own (the primary and its workers), with exactly the
 * environment given (plus PATH and HOME): nothing from the test's own environment leaks in.
 */
export async function startGateway(port: number, env: Record<string, string>): Promise<GatewayProcess> {
  const child: ChildProcess = spawn(process.execPath, ['dist/main.js'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (): void => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  // Whatever happens to this test process, the gateway does not outlive it.
  process.once('exit', killGroup);

  const logs = (): Array<Record<string, unknown>> =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  const gateway: GatewayProcess = {
    base: `http://localhost:${port}`,
    port,
    output: () => output,
    logs,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 8_000).unref())]);
      }
      killGroup();
      process.removeListener('exit', killGroup);
    },
  };

  const workers = Number(env.WORKERS ?? 1);
  for (const end = Date.now() + 30_000; Date.now() < end; ) {
    if (logs().filter((l) => l.msg === 'idp-bridge listening').length >= workers) return gateway;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await gateway.stop();
  assert.fail(`the gateway did not start (${workers} workers listening):\n${output.slice(-4000)}`);
}

// ---------------------------------------------------------------------------------------------
// A service of the suite on another origin
// ---------------------------------------------------------------------------------------------

const esc = (v: string): string => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function servicePage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)} · Board service</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1d2433}a{color:#1d4ed8}li{margin:.4rem 0}</style></head>
<body><header><p>Board service (a service of the suite)</p></header><main>${body}</main></body></html>`;
}

export interface ServiceSite {
  /** http://127.0.0.1:<port> */
  origin: string;
  /** The OP client this service is, as the gateway's config lists it. */
  client: { client_id: string; client_secret: string; redirect_uris: string[]; token_endpoint_auth_method: 'client_secret_basic' };
  /** Points the service's links at the gateway (known once it runs). */
  useGateway(base: string): void;
  close(): Promise<void>;
}

/**
 * A service of the suite on another loopback origin (so another site than the gateway on localhost):
 * its home page links to the gateway's logins with `accessUrl` on this origin; `/app` is where those
 * land; `/oidc/start` starts an OpenID Connect login at the gateway's OP as a confidential client
 * (code flow with PKCE), and `/callback` exchanges the code server-side and shows who signed in.
 */
export async function startService(): Promise<ServiceSite> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const client = {
    client_id: 'e2e-board',
    client_secret: randomBytes(24).toString('base64url'),
    redirect_uris: [`${origin}/callback`],
    token_endpoint_auth_method: 'client_secret_basic' as const,
  };
  let gateway = '';
  const pending = new Map<string, string>(); // state → PKCE verifier

  const send = (res: ServerResponse, status: number, html: string): void => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname === '/') {
      const login = (domain: string): string => `${gateway}/d/login/${domain}?${new URLSearchParams({ accessUrl: `${origin}/app?via=${domain}` }).toString()}`;
      return send(
        res,
        200,
        servicePage(
          'Home',
          `<h1>Board service</h1><p>Sign in through the gateway:</p><ul>
<li><a href="${esc(login('demo.example'))}">Demo Company (SAML)</a></li>
<li><a href="${esc(login('xsite.example'))}">Cross-site IdP Company (SAML)</a></li>
<li><a href="${esc(login('oauth.example'))}">OAuth Company (works)</a></li>
<li><a href="${esc(login('password.example'))}">Password Company</a></li>
<li><a href="/oidc/start?domain=demo.example">Demo Company, with OpenID Connect</a></li></ul>`,
        ),
      );
    }
    if (url.pathname === '/app') {
      return send(res, 200, servicePage('Signed in', `<h1>Welcome to the board service</h1><p>You arrived signed in through <code>${esc(url.searchParams.get('via') ?? '?')}</code>.</p>`));
    }
    if (url.pathname === '/oidc/start') {
      const state = randomBytes(16).toString('base64url');
      const verifier = randomBytes(32).toString('base64url');
      pending.set(state, verifier);
      const auth = new URL(`${gateway}/oidc/auth`);
      auth.search = new URLSearchParams({
        client_id: client.client_id,
        response_type: 'code',
        redirect_uri: client.redirect_uris[0]!,
        scope: 'openid profile',
        state,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        domain: url.searchParams.get('domain') ?? '',
      }).toString();
      res.writeHead(302, { location: auth.href });
      return void res.end();
    }
    if (url.pathname === '/callback') {
      const state = url.searchParams.get('state') ?? '';
      const verifier = pending.get(state);
      pending.delete(state);
      const error = url.searchParams.get('error');
      if (error || !verifier) {
        return send(res, 400, servicePage('Sign-in failed', `<h1>Sign-in failed</h1><p>The gateway answered <code>${esc(error ?? 'unknown state')}</code>.</p>`));
      }
      const token = await fetch(`${gateway}/oidc/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: url.searchParams.get('code') ?? '', redirect_uri: client.redirect_uris[0]!, code_verifier: verifier }),
        signal: AbortSignal.timeout(5_000),
      });
      const body = (await token.json()) as { id_token?: string; error?: string };
      if (!token.ok || !body.id_token) return send(res, 502, servicePage('Sign-in failed', `<h1>Sign-in failed</h1><p>Token request: <code>${esc(body.error ?? String(token.status))}</code>.</p>`));
      const claims = JSON.parse(Buffer.from(body.id_token.split('.')[1]!, 'base64url').toString()) as { account: string; domain: string };
      return send(res, 200, servicePage('Signed in', `<h1>Welcome to the board service</h1><p>Signed in with OpenID Connect as <code>${esc(claims.account)}</code> of <code>${esc(claims.domain)}</code>.</p>`));
    }
    send(res, 404, servicePage('Not found', '<h1>Not found</h1>'));
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, servicePage('Error', `<h1>Service error</h1><p>${esc(String(err))}</p>`)));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    origin,
    client,
    useGateway: (base) => {
      gateway = base;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The browser, and what every visited page must pass
// ---------------------------------------------------------------------------------------------

export async function launchChromium(): Promise<Browser> {
  // launch() gives every run a new, empty, temporary user data dir (deleted on close).
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
}

/** A new browser profile (cookies, cache): one person's browser. Every wait is bounded. */
export async function newPerson(browser: Browser, locale = 'en-US'): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  return context;
}

export const SCREENSHOT_DIR = 'test-artifacts/screenshots';
const AXE_SOURCE = readFileSync('node_modules/axe-core/axe.min.js', 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Checks the page a person is looking at: axe-core's rules (no `serious` or `critical` violation)
 * and a screenshot to test-artifacts/screenshots/<nn>-<name>.png.
 *
 * axe is evaluated through the DevTools protocol rather than with page.addScriptTag: the gateway's
 * pages forbid inline scripts (CSP `default-src 'none'`), and the browser is not told to bypass CSP,
 * because what CSP blocks (form-action on redirects) is part of what these tests check.
 */
export class PageChecks {
  private n = 0;
  readonly visited: string[] = [];
  readonly findings: Array<{ page: string; url: string; violations: AxeViolation[] }> = [];

  constructor(private readonly dir = SCREENSHOT_DIR) {
    // This run's pictures only.
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }

  /** `waitForLoad: false` for a page whose own load never ends (a form it submitted while loading was held). */
  async check(page: Page, name: string, options: { waitForLoad?: boolean } = {}): Promise<void> {
    if (options.waitForLoad !== false) await page.waitForLoadState('domcontentloaded');
    const file = `${String(++this.n).padStart(2, '0')}-${name}.png`;
    this.visited.push(file);
    await page.screenshot({ path: join(this.dir, file), timeout: 10_000 });
    const loaded = await page.evaluate(() => typeof (globalThis as { axe?: unknown }).axe === 'object');
    if (!loaded) await page.evaluate(AXE_SOURCE);
    const violations = await page.evaluate(async () => {
      type Result = { violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }> };
      const axe = (globalThis as unknown as { axe: { run(options: object): Promise<Result> } }).axe;
      const result = await axe.run({ resultTypes: ['violations'] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }));
    });
    if (violations.length) this.findings.push({ page: name, url: page.url(), violations });
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(serious, [], `accessibility (axe) on ${name} (${page.url()})`);
  }
}
