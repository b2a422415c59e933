/**
 * `npm run bench`, step 1: installs the benchmark-only packages (bench/package.json: the SAML Jackson peer,
 * autocannon) into bench/node_modules with `npm ci`, unless they are already installed from this very
 * lockfile (a stamp in bench/node_modules holds the lockfile's hash). The product's own `npm ci` never
 * installs them.
 *
 * Install scripts are not run: the bench uses Jackson's Redis engine only, so the SQL drivers it depends
 * on (better-sqlite3 and its native build) are never loaded, and the install needs neither a compiler nor a
 * download of prebuilt binaries.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const stamp = join(benchDir, 'node_modules', '.idpb-bench-lock.sha256');
const lockHash = createHash('sha256')
  .update(readFileSync(join(benchDir, 'package.json')))
  .update(readFileSync(join(benchDir, 'package-lock.json')))
  .digest('hex');

if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === lockHash) {
  console.log('bench: benchmark packages are current (bench/node_modules)');
} else {
  console.log('bench: installing the benchmark packages (npm ci in bench/)');
  // Under `npm run`, npm_execpath is the npm that runs us; otherwise the npm on PATH.
  const npmCli = process.env.npm_execpath;
  const args = ['--prefix', benchDir, 'ci', '--ignore-scripts', '--no-audit', '--no-fund'];
  const result = npmCli?.endsWith('.js')
    ? spawnSync(process.execPath, [npmCli, ...args], { stdio: 'inherit' })
    : spawnSync('npm', args, { stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) {
    console.error(`bench: npm ci in bench/ failed (${result.error?.message ?? `exit ${String(result.status)}`})`);
    process.exit(1);
  }
  writeFileSync(stamp, `${lockHash}\n`);
}
