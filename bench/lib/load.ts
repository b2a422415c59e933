/**
 * One load phase with autocannon: a fixed number of keep-alive connections against one route for a
 * fixed time. Requests that must be distinct (signed responses, refresh tokens) come from a pool, each
 * used once (`amount` caps the phase at the pool; a timer stops it at the duration); a stateless floor
 * may cycle its pool. Every status is counted; a sample of responses can be checked in detail.
 */
import type { IncomingHttpHeaders } from 'node:http';
import autocannon from 'autocannon';
import type { LoadSpec, PhaseResult } from './phase.js';

export { describePhase, type LoadSpec, type PhaseResult, type PoolItem } from './phase.js';

const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;

export async function runLoad(spec: LoadSpec): Promise<PhaseResult> {
  const pool = spec.pool;
  let next = 0;
  let reused = 0;
  let responses = 0;
  let samplesChecked = 0;
  const sampleFailures: string[] = [];
  const sampleEvery = spec.sampleEvery ?? 50;
  const headers = { ...spec.headers };

  const request: autocannon.Request = { method: spec.method ?? 'GET', path: new URL(spec.url).pathname + new URL(spec.url).search, headers };
  if (spec.body !== undefined) request.body = spec.body;
  if (pool) {
    if (pool.length === 0) throw new Error(`${spec.title}: empty pool`);
    request.setupRequest = (req: autocannon.Request): autocannon.Request => {
      if (next >= pool.length && !spec.cyclePool) reused++;
      const item = pool[next++ % pool.length]!;
      return { ...req, body: item.body, headers: item.headers ? { ...headers, ...item.headers } : headers };
    };
  }
  if (spec.check) {
    const check = spec.check;
    request.onResponse = (status: number, body: string, _context: object, resHeaders: IncomingHttpHeaders | undefined): void => {
      // Other statuses are counted (and judged) in the histogram; the sample checks what a success says.
      if (status !== spec.expectStatus || responses++ % sampleEvery !== 0) return;
      samplesChecked++;
      // autocannon hands the raw header names (as sent): compare them lower-cased.
      const lower: IncomingHttpHeaders = {};
      for (const [k, v] of Object.entries(resHeaders ?? {})) lower[k.toLowerCase()] = v;
      const problem = check(status, body, lower);
      if (problem && sampleFailures.length < 5) sampleFailures.push(problem);
    };
  }

  const singleUse = Boolean(pool && !spec.cyclePool);
  // Each connection builds one request ahead (and one at its start): keep that much of the pool spare.
  const amount = singleUse ? Math.max(spec.connections, pool!.length - 2 * spec.connections) : undefined;
  const options: autocannon.Options = {
    url: new URL(spec.url).origin,
    connections: spec.connections,
    pipelining: 1,
    duration: spec.durationS,
    timeout: 20,
    requests: [request],
    ...(amount !== undefined ? { amount } : {}),
  };
  let stopTimer: NodeJS.Timeout | undefined;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (err: Error | null, res: autocannon.Result) => (err ? reject(err) : resolve(res)));
    if (amount !== undefined) stopTimer = setTimeout(() => instance.stop(), spec.durationS * 1000);
  });
  if (stopTimer) clearTimeout(stopTimer);

  const statuses: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statuses[code] = stat.count ?? 0;
  const completed = Object.values(statuses).reduce((a, b) => a + b, 0);
  const expected = statuses[String(spec.expectStatus)] ?? 0;
  const durationS = result.duration;
  return {
    title: spec.title,
    reqPerSec: round(expected / durationS, 1),
    allReqPerSec: round(completed / durationS, 1),
    peakPerSec: result.requests.max,
    p50Ms: result.latency.p50,
    p90Ms: result.latency.p90,
    p99Ms: result.latency.p99,
    meanMs: round(result.latency.average),
    maxMs: result.latency.max,
    durationS,
    completed,
    expected,
    successRate: completed ? round(expected / completed, 4) : 0,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
    connections: spec.connections,
    pool: pool ? pool.length : null,
    reused,
    poolExhausted: singleUse && durationS < spec.durationS - 0.5,
    samplesChecked,
    sampleFailures,
  };
}
