/**
 * What a run produces: scenario records, the final table on the console, and the results file
 * (format: bench/results/README.md).
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PhaseResult } from './phase.js';
import type { Mode } from './settings.js';

export interface Comparison {
  label: string;
  processes: number;
  result: PhaseResult;
}

export interface Target {
  text: string;
  met: boolean;
}

export interface ScenarioRecord {
  /** `acs`: both gates (the default); `acs-strict`: the strict verifier alone (`saml.secondGate: false`). */
  id: 'acs' | 'acs-strict' | 'login' | 'refresh';
  label: string;
  mode: Mode;
  processes: number;
  result: PhaseResult;
  floor: Comparison | null;
  /** ours / floor (req/s). */
  ratio: number | null;
  peer: (Comparison & { oursOverPeer: number }) | null;
  target: Target | null;
  /** False when a phase's responses were not what a successful request answers: its number means nothing. */
  valid: boolean;
  notes: string[];
}

export interface FileBenchRecord {
  id: 'sso-switch' | 'csv-import' | 'audit-export' | 'member-search' | 'hostile-input' | 'scim' | 'acs-tracing' | 'authn-request';
  label: string;
  exitCode: number | null;
  /** The script's JSON line, as printed. */
  result: Record<string, unknown> | null;
  /** Wall time of the measured operation. */
  ms: number | null;
  rssGrowthMb: number | null;
  target: Target | null;
  valid: boolean;
}

export interface TableRow {
  scenario: string;
  procs: string;
  reqPerSec: string;
  p50: string;
  p99: string;
  floor: string;
  ratio: string;
  target: string;
  met: string;
}

const fmt = (n: number | null | undefined, digits = 0): string => (n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const ms = (n: number): string => `${fmt(n, n < 10 ? 1 : 0)} ms`;
const metText = (valid: boolean, target: Target | null): string => (!valid ? 'INVALID' : target ? (target.met ? 'yes' : 'NO') : '—');

export function tableRows(scenarios: ScenarioRecord[], files: FileBenchRecord[]): TableRow[] {
  const rows: TableRow[] = [];
  for (const s of scenarios) {
    rows.push({
      scenario: `${s.label} [${s.mode}]`,
      procs: String(s.processes),
      reqPerSec: fmt(s.result.reqPerSec),
      p50: ms(s.result.p50Ms),
      p99: ms(s.result.p99Ms),
      floor: s.floor ? `${fmt(s.floor.result.reqPerSec)} (${s.floor.label})` : '—',
      ratio: s.ratio === null ? '—' : fmt(s.ratio, 2),
      target: s.target?.text ?? '—',
      met: metText(s.valid, s.target),
    });
    if (s.peer) {
      rows.push({
        scenario: `  peer: ${s.peer.label}`,
        procs: String(s.peer.processes),
        reqPerSec: fmt(s.peer.result.reqPerSec),
        p50: ms(s.peer.result.p50Ms),
        p99: ms(s.peer.result.p99Ms),
        floor: '—',
        ratio: `ours/peer ${fmt(s.peer.oursOverPeer, 2)}`,
        target: '—',
        met: s.peer.result.successRate >= 0.99 ? '—' : 'INVALID',
      });
    }
  }
  for (const f of files) {
    if (f.id === 'hostile-input') {
      const r = f.result as { loginCpuMs?: number; worst?: { route: string; shape: string; cpuMs: number; ratio: number }; slowestMs?: number } | null;
      rows.push({
        scenario: r?.worst ? `${f.label}: worst ${r.worst.route} (${r.worst.shape})` : f.label,
        procs: '1',
        reqPerSec: r?.worst ? `${fmt(r.worst.cpuMs, 1)} ms CPU` : 'failed',
        p50: r?.loginCpuMs === undefined ? '—' : `login ${fmt(r.loginCpuMs, 1)} ms`,
        p99: r?.slowestMs === undefined ? '—' : `max ${fmt(r.slowestMs, 0)} ms`,
        floor: '1 valid login',
        ratio: r?.worst ? fmt(r.worst.ratio, 2) : '—',
        target: f.target?.text ?? '—',
        met: metText(f.valid, f.target),
      });
      continue;
    }
    if (f.id === 'scim') {
      const r = f.result as { users?: number; concurrency?: number; sync?: { usersPerSec: number; ms: number; rssGrowthMb: number }; groupPatch?: { members: number; requests: number; ms: number; rssGrowthMb: number } } | null;
      rows.push({
        scenario: `${f.label}: first sync, concurrency ${r?.concurrency ?? '?'}`,
        procs: '1',
        reqPerSec: r?.sync ? `${fmt(r.sync.usersPerSec)} users/s` : 'failed',
        p50: r?.sync ? `${fmt(r.sync.ms / 1000, 1)} s` : '—',
        p99: r?.sync ? `RSS +${fmt(r.sync.rssGrowthMb, 0)} MB` : '—',
        floor: '—',
        ratio: '—',
        target: f.target?.text ?? '—',
        met: metText(f.valid, f.target),
      });
      rows.push({
        scenario: `${f.label}: group of ${r?.groupPatch?.members ?? '?'} patched in ${r?.groupPatch?.requests ?? '?'} pages`,
        procs: '1',
        reqPerSec: r?.groupPatch ? `${fmt(r.groupPatch.ms / 1000, 2)} s` : 'failed',
        p50: r?.groupPatch ? `RSS +${fmt(r.groupPatch.rssGrowthMb, 0)} MB` : '—',
        p99: '—',
        floor: '—',
        ratio: '—',
        target: '—',
        met: metText(f.valid, null),
      });
      continue;
    }
    if (f.id === 'acs-tracing') {
      const r = f.result as { offLoginsPerSecond?: number; onLoginsPerSecond?: number; ratio?: number } | null;
      rows.push({
        scenario: `${f.label} (in-process, as profile-acs)`,
        procs: '1',
        reqPerSec: r?.onLoginsPerSecond === undefined ? 'failed' : `on ${fmt(r.onLoginsPerSecond, 0)}`,
        p50: '—',
        p99: '—',
        floor: r?.offLoginsPerSecond === undefined ? '—' : `off ${fmt(r.offLoginsPerSecond, 0)}`,
        ratio: r?.ratio === undefined ? '—' : fmt(r.ratio, 2),
        target: '—',
        met: metText(f.valid, f.target),
      });
      continue;
    }
    if (f.id === 'authn-request') {
      const r = f.result as { builder?: { oursRedirectUs: number; nodeSamlRedirectUs: number }; route?: { oursRatio: number; nodeSamlRatio: number } } | null;
      rows.push({
        scenario: `${f.label}: GET /d/login with node-saml building it`,
        procs: '1',
        reqPerSec: r?.route ? `${fmt(r.route.nodeSamlRatio, 2)} of hello` : 'failed',
        p50: r?.builder ? `ours ${fmt(r.builder.oursRedirectUs, 0)} µs` : '—',
        p99: r?.builder ? `node-saml ${fmt(r.builder.nodeSamlRedirectUs, 0)} µs` : '—',
        floor: 'Express hello (CPU)',
        ratio: r?.route ? `ours ${fmt(r.route.oursRatio, 2)}` : '—',
        target: f.target?.text ?? '—',
        met: metText(f.valid, f.target),
      });
      continue;
    }
    if (f.id === 'member-search') {
      const r = f.result as { slowest?: { label: string; medianMs: number; worstMs: number }; indexBuildMs?: number } | null;
      rows.push({
        scenario: r?.slowest ? `${f.label}: slowest case ${r.slowest.label}` : f.label,
        procs: '1',
        reqPerSec: r?.indexBuildMs === undefined ? 'failed' : `index ${fmt(r.indexBuildMs / 1000, 1)} s`,
        p50: r?.slowest ? `${fmt(r.slowest.medianMs, 1)} ms` : '—',
        p99: r?.slowest ? `max ${fmt(r.slowest.worstMs, 1)} ms` : '—',
        floor: '—',
        ratio: '—',
        target: f.target?.text ?? '—',
        met: metText(f.valid, f.target),
      });
      continue;
    }
    rows.push({
      scenario: f.label,
      procs: '1',
      reqPerSec: f.ms === null ? 'failed' : `${fmt(f.ms / 1000, 2)} s`,
      p50: f.rssGrowthMb === null ? '—' : `RSS +${fmt(f.rssGrowthMb, 0)} MB`,
      p99: '—',
      floor: '—',
      ratio: '—',
      target: f.target?.text ?? '—',
      met: metText(f.valid, f.target),
    });
  }
  return rows;
}

const HEADERS: Record<keyof TableRow, string> = { scenario: 'scenario', procs: 'procs', reqPerSec: 'req/s', p50: 'p50', p99: 'p99', floor: 'floor req/s', ratio: 'ratio', target: 'target', met: 'met?' };

export function renderTable(rows: TableRow[]): string {
  const keys = Object.keys(HEADERS) as Array<keyof TableRow>;
  const width = (k: keyof TableRow): number => Math.max(HEADERS[k].length, ...rows.map((r) => r[k].length));
  const line = (r: Record<keyof TableRow, string>): string => keys.map((k) => r[k].padEnd(width(k))).join('  ').trimEnd();
  return [line(HEADERS), keys.map((k) => '-'.repeat(width(k))).join('  '), ...rows.map(line)].join('\n');
}

/** Writes bench/results/<timestamp>.json and bench/results/latest.json; returns the first path. */
export function writeResults(dir: string, startedAt: Date, results: unknown): string {
  mkdirSync(dir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
  const file = join(dir, `${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  copyFileSync(file, join(dir, 'latest.json'));
  return file;
}
