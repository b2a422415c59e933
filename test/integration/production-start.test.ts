/**
 * The production start path exactly as the image runs it, without a container engine:
 *
 * - the Dockerfile's final stage is read and laid out in a temp dir as its COPY lines say: plain COPY sources
 *   must exist and must not be excluded by .dockerignore (docker refuses both); `--from=` a stage that runs
 *   `npm run build` gives that build, compiled from only what the build stage copies; `--from=` a stage that
 *   runs `npm ci --omit=dev …` gives that very install (cached in the temp dir under a hash of package.json,
 *   package-lock.json and the command, so only the first run after a dependency change pays for it — and a
 *   dist/ import of a dev-only package fails the start). Any other instruction in the final stage fails the test.
 * - the README's "Docker" section is run as written in bash, in a temp dir, with a function standing in for
 *   `docker` (it records its arguments) and for `curl`: the key and secret generation is real (openssl), and the
 *   gateway's `docker run` line gives the environment (its -e variables, its -v mounts mapped to host paths).
 * - the process runs the image's CMD in that layout with the image's ENV, the README's variables and nothing
 *   else, except: REDIS_URL points at the test Redis (the README's names a container), PORT at a free port (the
 *   container's 3000 may be taken here), and REDIS_KEY_PREFIX keeps the keys of this test apart on a shared Redis.
 *
 * Then: the configuration loads from what the image holds, /healthz and /readyz answer 200, the image's
 * HEALTHCHECK command passes, a tenant created with the README's ADMIN_API_KEY has SP metadata, and SIGTERM
 * makes it exit 0.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { createTestRedisStore, freePort, redisUrl } from '../helpers/redis.js';

const ROOT = resolve(import.meta.dirname, '../..');

// ---- Dockerfile --------------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string | undefined;
  instructions: Instruction[];
}

/** The stages of a Dockerfile (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((pending + line).trim());
    pending = '';
  }
  const stages: Stage[] = [];
  for (const line of logical.filter(Boolean)) {
    const [op = '', ...rest] = line.split(/\s+/);
    const args = line.slice(op.length).trim();
    if (op.toUpperCase() === 'FROM') {
      const m = /\s+AS\s+(\S+)$/i.exec(args);
      stages.push({ name: m?.[1], instructions: [] });
    } else if (stages.length) {
      stages.at(-1)!.instructions.push({ op: op.toUpperCase(), args: rest.length ? args : '' });
    }
  }
  return stages;
}

/** COPY [--from=x] [--chown=…] src… dest */
function parseCopy(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  const dest = words.pop()!;
  return { from, sources: words, dest };
}

/** ENV a=b c= d="e f" */
function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("[^"]*"|\S*)/g)) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  return out;
}

/** A .dockerignore pattern as a regular expression over context paths (`**` any depth, `*` and `?` within a name). */
function ignorePattern(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (pattern.startsWith('**/', i)) {
      re += '(?:.*/)?';
      i += 2;
    } else if (pattern.startsWith('**', i)) {
      re += '.*';
      i += 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern that names a directory excludes everything under it.
  return new RegExp(`^${re}(?:/.*)?$`);
}

/** True when .dockerignore keeps `path` (relative, posix) out of the build context (the last matching line decides). */
function dockerIgnored(path: string, patterns: string[]): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const pattern = posix.normalize((negate ? raw.slice(1) : raw).replace(/^\/+/, ''));
    if (ignorePattern(pattern).test(path)) ignored = !negate;
  }
  return ignored;
}

// ---- README ------------------------------------------------------------------------------------

/** The shell blocks of the README's "## Docker" section, as one script. */
function readmeDockerScript(readme: string): string {
  const start = readme.indexOf('\n## Docker\n');
  assert.ok(start >= 0, 'the README has a "## Docker" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length > 0, 'the Docker section has a sh block');
  return blocks.join('\n');
}

interface DockerRun {
  env: Record<string, string>;
  mounts: Array<{ source: string; target: string }>;
  image: string;
  /** What follows the image (replaces its CMD). */
  command: string[];
}

/** The arguments of `docker run` (after `run`), as the README's shell expanded them. */
function parseDockerRun(argv: string[]): DockerRun {
  const run: DockerRun = { env: {}, mounts: [], image: '', command: [] };
  const withValue = new Set(['--name', '--network', '-p', '--publish', '-e', '--env', '-v', '--volume', '--user', '-u', '--cpus', '--memory']);
  const flags = new Set(['-d', '--detach', '--rm', '-i', '-t', '-it', '--init']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-')) {
      run.image = a;
      run.command = argv.slice(i + 1);
      break;
    }
    if (flags.has(a)) continue;
    assert.ok(withValue.has(a), `docker run: the test does not know the option ${a}`);
    const value = argv[++i]!;
    if (a === '-e' || a === '--env') {
      const eq = value.indexOf('=');
      assert.ok(eq > 0, `docker run -e ${value}: the test needs NAME=value (not a variable passed through from the host)`);
      run.env[value.slice(0, eq)] = value.slice(eq + 1);
    }
    if (a === '-v' || a === '--volume') {
      const [source = '', target = ''] = value.split(':');
      run.mounts.push({ source, target });
    }
  }
  return run;
}

/** Runs the README's docker section in `dir` with `docker` and `curl` as recording functions; returns every `docker …` argv. */
function runReadmeScript(script: string, dir: string): string[][] {
  const prelude = [
    'set -euo pipefail',
    'n=0',
    // A real docker would build, create networks and start containers; this one writes down what it was asked.
    'docker() { n=$((n+1)); printf "%s\\0" "$@" > "$IDPB_DOCKER_LOG/docker-$(printf %03d $n)"; }',
    'curl() { :; }',
  ].join('\n');
  const log = join(dir, '.docker-calls');
  mkdirSync(log);
  const result = spawnSync('bash', ['-c', `${prelude}\n${script}`], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, IDPB_DOCKER_LOG: log }, encoding: 'utf8' });
  assert.equal(result.status, 0, `the README's Docker section failed in bash:\n${result.stderr}`);
  return readdirSync(log)
    .sort()
    .map((f) => readFileSync(join(log, f), 'utf8').split('\0').slice(0, -1));
}

// ---- the image's /app --------------------------------------------------------------------------

function sha256(...parts: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

/** The production install a stage's `npm ci --omit=dev …` makes, cached per lockfile and command. */
function productionNodeModules(command: string): string {
  const pkg = readFileSync(join(ROOT, 'package.json'));
  const lock = readFileSync(join(ROOT, 'package-lock.json'));
  const dir = join(tmpdir(), `idpb-prod-deps-${sha256(pkg, lock, command)}`);
  if (existsSync(join(dir, '.complete'))) return join(dir, 'node_modules');
  const work = mkdtempSync(`${dir}.tmp-`);
  writeFileSync(join(work, 'package.json'), pkg);
  writeFileSync(join(work, 'package-lock.json'), lock);
  const result = spawnSync('sh', ['-c', command], { cwd: work, encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error' } });
  assert.equal(result.status, 0, `${command} failed:\n${result.stderr}`);
  writeFileSync(join(work, '.complete'), command);
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true }); // another run finished first: use its install
  }
  return join(dir, 'node_modules');
}

interface Image {
  app: string;
  env: Record<string, string>;
  cmd: string[];
  healthcheck: string[];
  user: string | undefined;
}

/** Lays out the final stage of the Dockerfile in a temp dir as its instructions say. */
function layOutImage(work: string): Image {
  const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const copyFromContext = (sources: string[], dest: string, into: string): void => {
    for (const source of sources) {
      const rel = posix.normalize(source).replace(/\/$/, '');
      assert.ok(existsSync(join(ROOT, rel)), `Dockerfile: COPY ${source}: not in the repository`);
      assert.ok(!dockerIgnored(rel, ignore), `Dockerfile: COPY ${source}: .dockerignore keeps it out of the build context`);
      const target = dest.endsWith('/') || sources.length > 1 ? join(into, dest, basename(rel)) : join(into, dest);
      cpSync(join(ROOT, rel), target, { recursive: true });
    }
  };
  const runsOf = (stage: Stage): string[] => stage.instructions.filter((i) => i.op === 'RUN').map((i) => i.args);

  const final = stages.at(-1)!;
  const image: Image = { app: join(work, 'app'), env: {}, cmd: [], healthcheck: [], user: undefined };
  mkdirSync(image.app);
  for (const { op, args } of final.instructions) {
    if (op === 'ENV') Object.assign(image.env, parseEnv(args));
    else if (op === 'WORKDIR') assert.equal(args, '/app', 'the test lays out WORKDIR /app');
    else if (op === 'USER') image.user = args;
    else if (op === 'CMD') image.cmd = JSON.parse(args) as string[];
    else if (op === 'HEALTHCHECK') image.healthcheck = JSON.parse(args.slice(args.indexOf('CMD') + 3)) as string[];
    else if (op === 'EXPOSE' || op === 'STOPSIGNAL' || op === 'ARG' || op === 'LABEL') continue;
    else if (op === 'COPY') {
      const copy = parseCopy(args);
      if (!copy.from) {
        copyFromContext(copy.sources, copy.dest, image.app);
        continue;
      }
      const stage = stages.find((s) => s.name === copy.from);
      assert.ok(stage, `Dockerfile: COPY --from=${copy.from}: no such stage`);
      assert.equal(copy.sources.length, 1);
      const source = copy.sources[0]!;
      const install = runsOf(stage)
        .flatMap((r) => r.split('&&').map((c) => c.trim()))
        .find((c) => /^npm ci\b/.test(c));
      if (source === '/app/node_modules' && install) {
        // Only the install itself: the stage's `npm cache clean` would empty this machine's npm cache.
        assert.match(install, /--omit=dev/, `stage ${copy.from}: the runtime's node_modules must be a production install`);
        symlinkSync(productionNodeModules(install), join(image.app, copy.dest));
      } else if (source === '/app/dist' && runsOf(stage).includes('npm run build')) {
        // The build stage from only what it copies; its own `npm ci` is this checkout's (the tests run after one).
        const build = join(work, `stage-${copy.from}`);
        mkdirSync(build);
        for (const i of stage.instructions.filter((x) => x.op === 'COPY')) {
          const c = parseCopy(i.args);
          assert.equal(c.from, undefined, `stage ${copy.from}: COPY --from is not laid out by the test`);
          copyFromContext(c.sources, c.dest, build);
        }
        symlinkSync(join(ROOT, 'node_modules'), join(build, 'node_modules'));
        const result = spawnSync('npm', ['run', 'build'], { cwd: build, encoding: 'utf8' });
        assert.equal(result.status, 0, `stage ${copy.from}: npm run build failed:\n${result.stdout}\n${result.stderr}`);
        cpSync(join(build, 'dist'), join(image.app, copy.dest), { recursive: true });
      } else {
        assert.fail(`Dockerfile: COPY --from=${copy.from} ${source}: the test does not know how that stage makes it`);
      }
    } else {
      assert.fail(`Dockerfile: ${op} in the runtime stage is not laid out by the test`);
    }
  }
  return image;
}

// ---- the test ----------------------------------------------------------------------------------

describe('production start, as the image runs it (Dockerfile + README "Docker")', () => {
  let work: string;
  let image: Image;
  let env: Record<string, string>;
  let run: DockerRun;
  let base: string;
  let child: ChildProcess | undefined;
  let exited: Promise<number | null>;
  let output = '';
  let cleanup: () => Promise<void> = () => Promise.resolve();

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'idpb-prod-start-'));
    image = layOutImage(work);
    const host = join(work, 'host');
    mkdirSync(host);
    const calls = runReadmeScript(readmeDockerScript(readFileSync(join(ROOT, 'README.md'), 'utf8')), host);
    const tag = calls.find((c) => c[0] === 'build')?.find((_, i, a) => a[i - 1] === '-t');
    assert.ok(tag, 'the README builds the image with docker build -t');
    const gateway = calls.filter((c) => c[0] === 'run').map((c) => parseDockerRun(c.slice(1))).find((r) => r.image === tag);
    assert.ok(gateway, `the README runs the image ${tag}`);
    assert.deepEqual(gateway.command, [], "the README runs the image's own CMD");
    run = gateway;

    const owned = await createTestRedisStore();
    cleanup = owned.cleanup;
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // Mounted files: the container path in a variable becomes the host path the README mounts there.
    const readmeEnv = Object.fromEntries(
      Object.entries(run.env).map(([k, v]) => {
        const mount = run.mounts.find((m) => v === m.target || v.startsWith(`${m.target}/`));
        return [k, mount ? mount.source + v.slice(mount.target.length) : v];
      }),
    );
    env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...image.env,
      ...readmeEnv,
      REDIS_URL: await redisUrl(),
      REDIS_KEY_PREFIX: owned.prefix,
      PORT: String(port),
    };
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the image is production (NODE_ENV, no seed, a non-root user, a HEALTHCHECK) and the README sets every variable production requires', () => {
    assert.equal(image.env.NODE_ENV, 'production');
    assert.equal(image.env.SEED_FILE, '', 'no demo seed in the image');
    assert.ok(image.user && image.user !== 'root' && image.user !== '0', `runs as a non-root user (USER ${image.user})`);
    assert.ok(image.healthcheck.length > 0, 'HEALTHCHECK');
    assert.deepEqual(image.cmd.slice(1), ['--import', './dist/observability/tracing-preload.js', 'dist/main.js']);
    for (const name of ['REDIS_URL', 'PUBLIC_URL', 'SECRET_KEYS', 'ADMIN_API_KEY', 'OIDC_SIGNING_KEY_FILE']) {
      assert.ok(run.env[name], `the README's docker run sets ${name}`);
    }
    assert.match(run.env.PUBLIC_URL!, /^https:\/\//);
    assert.ok(run.mounts.some((m) => run.env.OIDC_SIGNING_KEY_FILE!.startsWith(`${m.target}/`)), 'the OP signing key is a mounted file');
    assert.ok(statSync(env.OIDC_SIGNING_KEY_FILE!).isFile(), 'the README generated the OP signing key');
  });

  it('loads the production configuration from what the image holds and the README sets', () => {
    let problem = '';
    try {
      const { config } = loadConfig({ cwd: image.app, env });
      assert.equal(config.env, 'production');
      assert.equal(config.demo.enabled, false);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problem = err.message;
    }
    assert.equal(problem, '', 'production configuration loading reads only files the image has or the README mounts');
  });

  it('starts (image CMD, production dependencies only), answers /healthz, /readyz and the HEALTHCHECK', async () => {
    const [node, ...args] = image.cmd;
    assert.equal(node, 'node');
    child = spawn(process.execPath, args, { cwd: image.app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = new Promise((r) => child!.once('exit', (code) => r(code)));
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    let health: Response | undefined;
    for (const end = Date.now() + 60_000; Date.now() < end && child.exitCode === null; ) {
      health = await fetch(`${base}/healthz`).catch(() => undefined);
      if (health?.ok) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(health?.status, 200, `the gateway did not come up:\n${output.slice(-3000)}`);
    const ready = await fetch(`${base}/readyz`);
    const readyText = await ready.text();
    assert.equal(ready.status, 200, readyText);
    assert.deepEqual(JSON.parse(readyText), { status: 'ready', store: 'redis' });

    const [hcNode, ...hcArgs] = image.healthcheck;
    assert.equal(hcNode, 'node');
    const hc = spawnSync(process.execPath, hcArgs, { env, encoding: 'utf8', timeout: 10_000 });
    assert.equal(hc.status, 0, `HEALTHCHECK failed: ${hc.stderr}`);
  });

  it('serves SP metadata for a tenant created with the README\'s ADMIN_API_KEY', async () => {
    const auth = { authorization: `Bearer ${env.ADMIN_API_KEY}`, 'content-type': 'application/json' };
    const created = await fetch(`${base}/admin/v1/domains`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ domain: 'prod-start.example', name: 'Production start', plan: 'standard' }),
    });
    const createdText = await created.text();
    assert.equal(created.status, 201, createdText);
    const metadata = await fetch(`${base}/saml/metadata/prod-start.example`);
    assert.equal(metadata.status, 200);
    const xml = await metadata.text();
    assert.match(xml, /EntityDescriptor/);
    assert.ok(xml.includes(run.env.PUBLIC_URL!), 'the SP metadata names the public URL');
    assert.equal((await fetch(`${base}/demo-idp/saml/sso`)).status, 404, 'no demo IdP in production');
  });

  it('exits 0 on SIGTERM', async () => {
    assert.ok(child, 'started');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output.slice(-2000));
  });
});
