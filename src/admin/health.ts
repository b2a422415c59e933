import { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../domain/clock.js';
import type { Tenant } from '../domain/tenant.js';
import type { TenantRepository } from '../domain/tenants.js';
import { keys, lockMayBeLive, RedisStore, WORKER_HEARTBEAT_MS, WORKER_STALE_MS, type KeyValueStore } from '../store/index.js';

/** Certificates that end within this many days are listed. */
export const CERT_WARNING_DAYS = 30;
/** At most this many tenants are read per health request (in domain order); beyond, `truncated`. */
export const HEALTH_MAX_TENANTS = 5000;
/** Tenants read at once. */
const BATCH = 50;

/**
 * Each serving process writes its id and the time into one hash every WORKER_HEARTBEAT_MS; one silent
 * for WORKER_STALE_MS no longer counts (and is pruned when read). A process that stops cleanly removes
 * its entry. The timer is unref'd: it never keeps a process alive.
 */
export class WorkerHeartbeat {
  readonly id: string;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: { store: KeyValueStore; clock: Clock },
    id = `${hostname()}:${process.pid}`,
  ) {
    this.id = id;
  }

  async beat(): Promise<void> {
    await this.deps.store.hSet(keys.workerHeartbeats(), { [this.id]: String(this.deps.clock.now()) });
  }

  start(onError: (err: unknown) => void): void {
    const tick = (): void => void this.beat().catch(onError);
    tick();
    this.timer = setInterval(tick, WORKER_HEARTBEAT_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.deps.store.hDel(keys.workerHeartbeats(), this.id);
  }
}

export interface ExpiringCertificate {
  domain: string;
  ssoEnabled: boolean;
  index: number;
  subject: string;
  notAfter: string;
  expired: boolean;
  daysLeft: number;
}

export interface ResumableRun {
  domain: string;
  kind: 'sso_switch' | 'external_key_import';
  startedAt: string;
  /** sso_switch: the state being switched to; external_key_import: the batch to apply next of how many. */
  detail: Record<string, unknown>;
}

export interface GatewayHealth {
  status: 'ok' | 'degraded';
  checkedAt: string;
  store: { status: 'ok' | 'unavailable'; mode: 'memory' | 'standalone' | 'sentinel' | 'cluster'; latencyMs: number | null; error: string | null };
  workers: { serving: number; heartbeatSeconds: number; list: Array<{ id: string; lastBeatAt: string }> };
  certificates: { withinDays: number; expiring: ExpiringCertificate[] };
  resumableRuns: ResumableRun[];
  tenantsChecked: number;
  truncated: boolean;
}

const DAY_MS = 86_400_000;

/**
 * The operator's health at a glance: the store (PING, its mode), the processes serving (heartbeats),
 * IdP signing certificates ending within CERT_WARNING_DAYS across tenants, and SSO switches or
 * external-key imports left unfinished — a job key present with no process holding its lock (a
 * restart or store fault stopped it; the tenant's next request or the resume action finishes it).
 * Per tenant one MGET of its own slot (record, jobs, locks), HEALTH_MAX_TENANTS at most, BATCH at once.
 */
export async function gatewayHealth(deps: { store: KeyValueStore; clock: Clock; tenants: TenantRepository }): Promise<GatewayHealth> {
  const { store, clock } = deps;
  const now = clock.now();
  const mode = store instanceof RedisStore ? store.mode : 'memory';
  const started = performance.now();
  let storeError: string | null = null;
  try {
    await store.ping();
  } catch (err) {
    storeError = err instanceof Error ? err.message.slice(0, 200) : 'unreachable';
  }
  const storeView: GatewayHealth['store'] = { status: storeError ? 'unavailable' : 'ok', mode, latencyMs: storeError ? null : Math.round((performance.now() - started) * 10) / 10, error: storeError };
  if (storeError) {
    return { status: 'degraded', checkedAt: new Date(now).toISOString(), store: storeView, workers: { serving: 0, heartbeatSeconds: WORKER_HEARTBEAT_MS / 1000, list: [] }, certificates: { withinDays: CERT_WARNING_DAYS, expiring: [] }, resumableRuns: [], tenantsChecked: 0, truncated: false };
  }

  const beats = await store.hGetAll(keys.workerHeartbeats());
  const live: Array<{ id: string; lastBeatAt: string }> = [];
  const stale: string[] = [];
  for (const [id, at] of Object.entries(beats)) {
    const ms = Number(at);
    if (Number.isFinite(ms) && now - ms < WORKER_STALE_MS) live.push({ id, lastBeatAt: new Date(ms).toISOString() });
    else stale.push(id);
  }
  if (stale.length) await store.hDel(keys.workerHeartbeats(), ...stale);
  live.sort((a, b) => a.id.localeCompare(b.id));

  const domains = await deps.tenants.listDomains();
  const checked = domains.slice(0, HEALTH_MAX_TENANTS);
  const expiring: ExpiringCertificate[] = [];
  const runs: ResumableRun[] = [];
  for (let i = 0; i < checked.length; i += BATCH) {
    await Promise.all(
      checked.slice(i, i + BATCH).map(async (domain) => {
        const [tenantRaw, switchJob, switchLock, importJob, importLock] = await store.mGet([
          keys.tenant(domain),
          keys.ssoSwitchJob(domain),
          keys.ssoSwitchLock(domain),
          keys.externalKeyImportJob(domain),
          keys.externalKeysLock(domain),
        ]);
        if (tenantRaw) expiring.push(...expiringCertificatesOf(JSON.parse(tenantRaw) as Tenant, now));
        if (switchJob && !lockMayBeLive(switchLock ?? null)) {
          const job = JSON.parse(switchJob) as { target: boolean; startedAt: number; membersDone?: number; membersTotal?: number };
          runs.push({ domain, kind: 'sso_switch', startedAt: new Date(job.startedAt).toISOString(), detail: { target: job.target, membersDone: job.membersDone ?? 0, membersTotal: job.membersTotal ?? null } });
        }
        if (importJob && !lockMayBeLive(importLock ?? null)) {
          const job = JSON.parse(importJob) as { state: string; startedAt: number; next: number; batches: number };
          // A job still staging was never committed: the next request discards it, nothing to resume.
          if (job.state === 'applying') runs.push({ domain, kind: 'external_key_import', startedAt: new Date(job.startedAt).toISOString(), detail: { nextBatch: job.next, batches: job.batches } });
        }
      }),
    );
  }
  expiring.sort((a, b) => a.notAfter.localeCompare(b.notAfter) || a.domain.localeCompare(b.domain));
  runs.sort((a, b) => a.domain.localeCompare(b.domain) || a.kind.localeCompare(b.kind));
  const degraded = live.length === 0 || expiring.some((c) => c.ssoEnabled) || runs.length > 0;
  return {
    status: degraded ? 'degraded' : 'ok',
    checkedAt: new Date(now).toISOString(),
    store: storeView,
    workers: { serving: live.length, heartbeatSeconds: WORKER_HEARTBEAT_MS / 1000, list: live },
    certificates: { withinDays: CERT_WARNING_DAYS, expiring },
    resumableRuns: runs,
    tenantsChecked: checked.length,
    truncated: domains.length > checked.length,
  };
}

/** A tenant's IdP signing certificates that end within CERT_WARNING_DAYS of `now` (or have ended). */
export function expiringCertificatesOf(tenant: Tenant, now: number): ExpiringCertificate[] {
  const expiring: ExpiringCertificate[] = [];
  (tenant.sso.saml?.idpCertificates ?? []).forEach((pem, index) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      return;
    }
    const notAfter = Date.parse(cert.validTo);
    if (!Number.isFinite(notAfter) || notAfter - now > CERT_WARNING_DAYS * DAY_MS) return;
    expiring.push({
      domain: tenant.domain,
      ssoEnabled: tenant.sso.enabled,
      index,
      subject: cert.subject.replace(/\n/g, ', '),
      notAfter: new Date(notAfter).toISOString(),
      expired: notAfter <= now,
      daysLeft: Math.floor((notAfter - now) / DAY_MS),
    });
  });
  return expiring;
}

/**
 * For `/metrics` (idpb_idp_certificates_expiring): per tenant domain, how many IdP signing certificates
 * end within CERT_WARNING_DAYS (expired ones included). Tenants with none are left out. The same reading
 * of tenants as the health screen: HEALTH_MAX_TENANTS at most, BATCH at once.
 */
export async function expiringCertificateCounts(deps: { store: KeyValueStore; clock: Clock; tenants: TenantRepository }): Promise<Map<string, number>> {
  const now = deps.clock.now();
  const domains = (await deps.tenants.listDomains()).slice(0, HEALTH_MAX_TENANTS);
  const counts = new Map<string, number>();
  for (let i = 0; i < domains.length; i += BATCH) {
    const raws = await Promise.all(domains.slice(i, i + BATCH).map((d) => deps.store.get(keys.tenant(d))));
    for (const raw of raws) {
      if (!raw) continue;
      const tenant = JSON.parse(raw) as Tenant;
      const n = expiringCertificatesOf(tenant, now).length;
      if (n > 0) counts.set(tenant.domain, n);
    }
  }
  return counts;
}
