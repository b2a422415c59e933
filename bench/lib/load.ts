/**
 * One load phase with autocannon: a fixed number of keep-alive connections against one route for a
 * fixed time. Requests that must be distinct (signed responses, refresh tokens) come from a pool, each
 * used once (`amount` caps the phase at the pool; a timer stops it at the duration); a stateless floor
 * may cycle its pool. Every status is counted; a sample of responses can be checked in detail.
 */
import type { IncomingHttpHeaders } from 'node:http';
import autocannon from 'autocannon';

export interface PoolItem {
  body: string;
  headers?: Record<string, string>;
}

export interface LoadSpec {
  title: string;
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Distinct requests, each sent once (unless `cyclePool`). */
  pool?: PoolItem[];
  /** The pool may be reused (stateless floors). */
  cyclePool?: boolean;
  durationS: number;
  connections: number;
  /** The status every response must have. */
  expectStatus: number;
  /** Checks every `sampleEvery`-th response with the expected status in detail; returns an error text or null. */
  check?: (status: number, body: string, headers: IncomingHttpHeaders) => string | null;
  sampleEvery?: number;
}

export interface PhaseResult {
  title: string;
  /** Responses with the expected status per second. */
  reqPerSec: number;
  /** All responses per second. */
  allReqPerSec: number;
  /** The busiest one-second sample (all responses). */
  peakPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  durationS: number;
  completed: number;
  expected: number;
  /** Share of responses with the expected status. */
  successRate: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  connections: number;
  pool: number | null;
  /** Pool items sent twice (single-use pools only; should be 0). */
  reused: number;
  /** The pool ran out before the duration ended. */
  poolExhausted: boolean;
  samplesChecked: number;
  sampleFailures: string[];
}

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

/** One line for the console. */
export function describePhase(r: PhaseResult): string {
  const statuses = Object.entries(r.statuses)
    .map(([k, v]) => `${k}×${v}`)
    .join(' ');
  const extra = [
    r.errors ? `errors ${r.errors}` : '',
    r.timeouts ? `timeouts ${r.timeouts}` : '',
    r.reused ? `REUSED ${r.reused} single-use requests` : '',
    r.poolExhausted ? `pool of ${r.pool} ran out after ${r.durationS} s` : '',
    r.samplesChecked ? `${r.samplesChecked} sampled${r.sampleFailures.length ? `, FAILED: ${r.sampleFailures[0]}` : ' ok'}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${r.title}: ${r.reqPerSec} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms over ${r.durationS} s; statuses ${statuses || 'none'}${extra ? `; ${extra}` : ''}`;
}
