/**
 * Everything `npm run bench` can be told, from the environment (defaults keep a full run at a few
 * minutes on a 2-core machine).
 */
import { availableParallelism } from 'node:os';

const num = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number (got ${JSON.stringify(raw)})`);
  return v;
};
const list = (name: string): string[] | null => {
  const raw = process.env[name];
  return raw ? raw.split(',').map((s) => s.trim()).filter(Boolean) : null;
};

export const SCENARIOS = ['login', 'acs', 'refresh', 'sso-switch', 'csv-import', 'audit-export', 'member-search', 'hostile-input', 'scim', 'acs-tracing', 'authn-request'] as const;
export type ScenarioId = (typeof SCENARIOS)[number];
/** `per-core`: the gateway with WORKERS=1; `default`: as deployed (WORKERS unset: all cores once main.ts clusters). */
export const MODES = ['per-core', 'default'] as const;
export type Mode = (typeof MODES)[number];

function pick<T extends string>(name: string, all: readonly T[]): T[] {
  const wanted = list(name);
  if (!wanted) return [...all];
  const unknown = wanted.filter((w) => !all.includes(w as T));
  if (unknown.length) throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${all.join(', ')})`);
  return all.filter((a) => wanted.includes(a));
}

function peerSetting(raw: string | undefined): BenchSettings['peer'] {
  if (raw === undefined || raw === '' || raw === 'per-core' || raw === '1') return 'per-core';
  if (raw === 'all') return 'all';
  if (raw === '0' || raw === 'none') return 'none';
  throw new Error(`BENCH_PEER must be per-core, all or none (got ${JSON.stringify(raw)})`);
}

export interface BenchSettings {
  redisUrl: string;
  /** Seconds of each measured load phase. */
  durationS: number;
  /** Seconds of the warm-up before each measured phase (not reported). */
  warmupS: number;
  /** Concurrent HTTP connections of the load generator. */
  connections: number;
  scenarios: ScenarioId[];
  modes: Mode[];
  /** What the test IdP signs: the assertion (as Entra ID does by default) or response and assertion. */
  samlSign: 'assertion' | 'both';
  /** The gateway's log level (its default, `info`, logs one line per request, as deployed). */
  logLevel: string;
  /** Run the gateway from `dist/main.js` (after `npm run build`) instead of `src/main.ts` through tsx. */
  useDist: boolean;
  /** Where the SAML Jackson peer runs: beside the per-core gateway only (default), in every mode, or nowhere. */
  peer: 'per-core' | 'all' | 'none';
  /** Largest pool of single-use requests (signed responses, refresh tokens) prepared for one phase. */
  poolMax: number;
  /** Below this share of expected statuses a phase is invalid (its number means nothing). */
  minSuccess: number;
  /** Threads that sign SAML responses while a pool is prepared. */
  signThreads: number;
  keepTmp: boolean;
  /** How ACS pools begin the gateway's logins: in-process (LoginTransactions.create, fast) or `http` (GET /d/login). */
  acsLogins: 'in-process' | 'http';
  /**
   * The ACS rows: `both` (passport-saml's second gate on, the default `saml.secondGate: true`) and `strict`
   * (a second gateway process with `saml.secondGate: false`). Both by default; BENCH_SECOND_GATE=on or off keeps one.
   */
  acsGates: Array<'both' | 'strict'>;
}

function acsGatesSetting(raw: string | undefined): BenchSettings['acsGates'] {
  if (raw === undefined || raw === '' || raw === 'both') return ['both', 'strict'];
  if (raw === 'on') return ['both'];
  if (raw === 'off') return ['strict'];
  throw new Error(`BENCH_SECOND_GATE must be both, on or off (got ${JSON.stringify(raw)})`);
}

export function readSettings(): BenchSettings {
  return {
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    durationS: num('BENCH_DURATION', 10),
    warmupS: num('BENCH_WARMUP', 2),
    connections: Math.round(num('BENCH_CONNECTIONS', 32)),
    scenarios: pick('BENCH_ONLY', SCENARIOS),
    modes: pick('BENCH_MODES', MODES),
    samlSign: process.env.BENCH_SAML_SIGN === 'both' ? 'both' : 'assertion',
    logLevel: process.env.BENCH_LOG_LEVEL || 'info',
    useDist: process.env.BENCH_GATEWAY === 'dist',
    peer: peerSetting(process.env.BENCH_PEER),
    poolMax: Math.round(num('BENCH_POOL_MAX', 60_000)),
    minSuccess: num('BENCH_MIN_SUCCESS', 0.99),
    signThreads: Math.max(1, Math.round(num('BENCH_SIGN_THREADS', availableParallelism()))),
    keepTmp: process.env.BENCH_KEEP_TMP === '1',
    acsLogins: process.env.BENCH_ACS_LOGINS === 'http' ? 'http' : 'in-process',
    acsGates: acsGatesSetting(process.env.BENCH_SECOND_GATE),
  };
}
