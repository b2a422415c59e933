/**
 * What a load phase is asked to do and what it measured, and how a result reads on the console: no
 * dependency on the load generator, so the bench modules that only pass results around (report.ts,
 * saml-pool.ts) type-check without the benchmark-only packages (see bench/package.json).
 */
import type { IncomingHttpHeaders } from 'node:http';

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
