/**
 * The ACS with tracing off and on (issue 18): bench/profile-acs.ts (in-process app on Redis, distinct
 * signed responses, ROUNDS rounds of N logins at CONCURRENCY) run twice as its own process — as
 * deployed without OTEL_* (the preload loads nothing), and with the preload and OTEL_* exporting
 * OTLP/JSON to a local sink in this process (every span of every login exported, sampler always_on).
 *
 *   node --import tsx bench/acs-tracing.ts          (N, ROUNDS, CONCURRENCY as for profile-acs.ts)
 *
 * Prints both medians and one JSON line {bench: 'acs-tracing', offLoginsPerSecond, onLoginsPerSecond,
 * ratio, spansExported} that `npm run bench` folds in.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('..', import.meta.url));

let spans = 0;
const sink = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => (body += c));
  req.on('end', () => {
    spans += (body.match(/"spanId"/g) ?? []).length;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

function profile(tracing: boolean): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, STEP_SAMPLES: '0', FLOOR_SAMPLES: '0', N: process.env.N ?? '600', ROUNDS: process.env.ROUNDS ?? '3', WARMUP: process.env.WARMUP ?? '200' };
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
  if (tracing) Object.assign(env, { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'idp-bridge-bench' });
  const args = ['--import', 'tsx', ...(tracing ? ['--import', './src/observability/tracing-preload.ts'] : []), 'bench/profile-acs.ts'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (out += c));
    child.once('error', reject);
    child.once('close', (code) => {
      for (const l of out.split('\n')) if (/^round |logins in/.test(l)) console.log(`  tracing ${tracing ? 'on ' : 'off'} | ${l}`);
      const line = out.split('\n').find((l) => l.startsWith('{') && l.includes('"medianLoginsPerSecond"'));
      if (code !== 0 || !line) return reject(new Error(`profile-acs (tracing ${tracing ? 'on' : 'off'}) failed (${code})`));
      resolve((JSON.parse(line) as { medianLoginsPerSecond: number }).medianLoginsPerSecond);
    });
  });
}

try {
  const off = await profile(false);
  const on = await profile(true);
  // Let the last batch arrive.
  await new Promise((r) => setTimeout(r, 1_000));
  console.log(`ACS logins/s: tracing off ${off}, on ${on} (${((on / off) * 100).toFixed(0)} %), ${spans} spans exported`);
  console.log(JSON.stringify({ bench: 'acs-tracing', offLoginsPerSecond: off, onLoginsPerSecond: on, ratio: Number((on / off).toFixed(3)), spansExported: spans }));
} finally {
  sink.closeAllConnections();
  sink.close();
}
