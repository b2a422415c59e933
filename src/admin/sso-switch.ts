import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { Member } from '../domain/member.js';
import type { TenantRepository } from '../domain/tenants.js';
import type { SsoSettings, Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { keys, type AtomicOp, type KeyValueStore } from '../store/index.js';

/** The counts PUT …/sso returns (S-21, S-22). */
export const EFFECT_NAMES = [
  'pendingActivated',
  'sessionsEnded',
  'invitationsInvalidated',
  'unapprovedDeleted',
  'appPasswordsDeleted',
  'tokensRevoked',
  'passwordsDeleted',
] as const;
export type EffectName = (typeof EFFECT_NAMES)[number];
export type Effects = Record<EffectName, number>;

/**
 * Ends the sessions of one kind of a batch of members (web sessions here; OP grants and mobile
 * sessions register their own with the OpenID Provider). Must be idempotent: a resumed switch calls
 * it again for the batch it was in.
 */
export interface MemberSessionEnder {
  endSessionsOfMembers(domain: string, memberIds: string[]): Promise<number>;
}

/** Revokes every access and refresh token issued for a tenant (the OpenID Provider registers one). */
export interface TenantTokenRevoker {
  revokeTenantTokens(domain: string): Promise<number>;
}

interface SwitchJob {
  id: string;
  /** The SSO state being switched to. */
  target: boolean;
  /** SSCAN cursor over the tenant's members: everything before it is done. */
  cursor: string;
  /** Tenant-wide effects (invitations, tokens) done. */
  tenantWideDone: boolean;
  ssoEpoch: number;
  startedAt: number;
}

export interface SsoSwitchDeps {
  store: KeyValueStore;
  tenants: TenantRepository;
  clock: Clock;
  sessionEnders: MemberSessionEnder[];
  tokenRevokers: TenantTokenRevoker[];
  /** Members handled concurrently (their commands share pipelined round trips). */
  batchSize?: number;
  /** Test seam: runs after each batch is recorded (a test cuts the store connection here). */
  afterBatch?: (domain: string, membersDone: number) => Promise<void>;
}

export interface SwitchResult {
  tenant: Tenant;
  /** True when SSO changed state (or a pending switch was finished) and side effects ran. */
  switched: boolean;
  effects: Effects;
}

const LOCK_TTL_MS = 15_000;
const zeroEffects = (): Effects => Object.fromEntries(EFFECT_NAMES.map((n) => [n, 0])) as Effects;

/**
 * Switching SSO on or off (S-21, S-22), with the care of a migration:
 * - the intent is written first (a job record), then the tenant flips, so a crash at any point
 *   leaves a job that the next call of the same switch resumes;
 * - members are streamed with SSCAN in batches (never all in memory); each batch's member changes,
 *   effect counts and the advanced cursor are written in one MULTI, so a member is never half-changed
 *   and never counted twice;
 * - one process at a time per tenant (a lock with a TTL);
 * - login transactions in flight are voided by bumping the tenant's ssoEpoch.
 */
export class SsoSwitch {
  private readonly batchSize: number;

  constructor(private readonly deps: SsoSwitchDeps) {
    this.batchSize = deps.batchSize ?? 500;
  }

  async pendingJob(domain: string): Promise<{ target: boolean; startedAt: string } | null> {
    const raw = await this.deps.store.get(keys.ssoSwitchJob(domain));
    if (raw === null) return null;
    const job = JSON.parse(raw) as SwitchJob;
    return { target: job.target, startedAt: new Date(job.startedAt).toISOString() };
  }

  /**
   * Saves new SSO settings. When `enabled` changes — or a switch to the same state was interrupted —
   * runs every side effect to completion and returns their counts.
   */
  async apply(tenant: Tenant, settings: SsoSettings): Promise<SwitchResult> {
    const { store } = this.deps;
    const domain = tenant.domain;
    // Everything — even deciding there is nothing to do — happens under the tenant's lock, on a fresh
    // read of the tenant and the job: a refused concurrent call must not touch a running switch.
    const lockValue = randomBytes(8).toString('hex');
    if (!(await store.set(keys.ssoSwitchLock(domain), lockValue, { nx: true, ttlMs: LOCK_TTL_MS }))) {
      throw new AppError('sso_switch_in_progress');
    }
    try {
      const current = (await this.deps.tenants.find(domain)) ?? tenant;
      const rawJob = await store.get(keys.ssoSwitchJob(domain));
      let job = rawJob === null ? null : (JSON.parse(rawJob) as SwitchJob);
      if (job && job.target !== settings.enabled) {
        // A newer intent replaces an unfinished switch the other way; what that switch did stays done.
        await store.atomic([
          { op: 'del', key: keys.ssoSwitchJob(domain) },
          { op: 'del', key: keys.ssoSwitchCounts(domain) },
        ]);
        job = null;
      }
      if (!job && current.sso.enabled === settings.enabled) {
        return { tenant: await this.deps.tenants.save({ ...current, sso: settings }), switched: false, effects: zeroEffects() };
      }
      if (!job) {
        job = { id: randomBytes(8).toString('hex'), target: settings.enabled, cursor: '0', tenantWideDone: false, ssoEpoch: current.ssoEpoch + 1, startedAt: this.deps.clock.now() };
        await store.atomic([
          { op: 'del', key: keys.ssoSwitchCounts(domain) },
          { op: 'set', key: keys.ssoSwitchJob(domain), value: JSON.stringify(job) },
        ]);
      }
      // New logins follow the new mode at once; logins in flight belong to the old epoch and are void.
      const saved = await this.deps.tenants.save({ ...current, sso: settings, ssoEpoch: job.ssoEpoch });

      if (!job.tenantWideDone) {
        const ops: AtomicOp[] = [];
        if (job.target) {
          const invitations = await store.hLen(keys.invitations(domain));
          ops.push({ op: 'del', key: keys.invitations(domain) }, { op: 'hIncrBy', key: keys.ssoSwitchCounts(domain), field: 'invitationsInvalidated', by: invitations });
          let tokens = 0;
          for (const r of this.deps.tokenRevokers) tokens += await r.revokeTenantTokens(domain);
          ops.push({ op: 'hIncrBy', key: keys.ssoSwitchCounts(domain), field: 'tokensRevoked', by: tokens });
        }
        job = { ...job, tenantWideDone: true };
        await store.atomic([...ops, { op: 'set', key: keys.ssoSwitchJob(domain), value: JSON.stringify(job) }]);
      }

      let done = 0;
      do {
        const [next, ids] = await store.sScan(keys.memberIds(domain), job.cursor, this.batchSize);
        await this.switchBatch(domain, ids, job.target, { ...job, cursor: next });
        job = { ...job, cursor: next };
        await store.expire(keys.ssoSwitchLock(domain), LOCK_TTL_MS);
        done += ids.length;
        await this.deps.afterBatch?.(domain, done);
      } while (job.cursor !== '0');

      const counts = await store.hGetAll(keys.ssoSwitchCounts(domain));
      await store.atomic([
        { op: 'del', key: keys.ssoSwitchJob(domain) },
        { op: 'del', key: keys.ssoSwitchCounts(domain) },
      ]);
      const effects = zeroEffects();
      for (const name of EFFECT_NAMES) effects[name] = Number(counts[name] ?? 0);
      return { tenant: saved, switched: true, effects };
    } finally {
      // Release only our own lock (a slow run may have lost it to its TTL).
      if ((await store.get(keys.ssoSwitchLock(domain)).catch(() => null)) === lockValue) await store.del(keys.ssoSwitchLock(domain)).catch(() => 0);
    }
  }

  /**
   * One batch of members, idempotently. Sessions end first (a crash after that only loses their
   * count); then every member change of the batch, the batch's counts and the advanced cursor go in
   * ONE MULTI on the tenant's slot — so a batch is applied exactly once, and a resumed switch finds
   * nothing left to do in it.
   */
  private async switchBatch(domain: string, ids: string[], enabling: boolean, advancedJob: SwitchJob): Promise<void> {
    const { store } = this.deps;
    const counts: Effects = zeroEffects();
    for (const ender of this.deps.sessionEnders) counts.sessionsEnded += ids.length ? await ender.endSessionsOfMembers(domain, ids) : 0;
    const ops: AtomicOp[] = [];
    const raws = await store.mGet(ids.map((id) => keys.member(domain, id)));
    raws.forEach((raw, i) => {
      if (raw === null) return;
      const id = ids[i]!;
      const member = JSON.parse(raw) as Member;
      if (enabling && member.status === 'unapproved') {
        ops.push(
          { op: 'del', key: keys.member(domain, id) },
          { op: 'sRem', key: keys.memberIds(domain), members: [id] },
          { op: 'hDel', key: keys.memberByAccount(domain), fields: [member.account] },
          ...(member.externalKey ? [{ op: 'hDel' as const, key: keys.memberByExternalKey(domain), fields: [member.externalKey] }] : []),
        );
        counts.unapprovedDeleted += 1;
        counts.appPasswordsDeleted += member.appPasswords.length;
        return;
      }
      const next: Member = { ...member };
      let changed = false;
      if (enabling && member.status === 'pending') {
        next.status = 'in_use';
        counts.pendingActivated += 1;
        changed = true;
      }
      if (enabling && member.appPasswords.length > 0) {
        counts.appPasswordsDeleted += member.appPasswords.length;
        next.appPasswords = [];
        changed = true;
      }
      if (!enabling && member.passwordHash && member.role !== 'super_admin') {
        delete next.passwordHash;
        counts.passwordsDeleted += 1;
        changed = true;
      }
      if (changed) ops.push({ op: 'set', key: keys.member(domain, id), value: JSON.stringify(next) });
    });
    for (const name of EFFECT_NAMES) if (counts[name]) ops.push({ op: 'hIncrBy', key: keys.ssoSwitchCounts(domain), field: name, by: counts[name] });
    ops.push({ op: 'set', key: keys.ssoSwitchJob(domain), value: JSON.stringify(advancedJob) });
    await store.atomic(ops);
  }
}
