import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { Member } from '../domain/member.js';
import { memberIndexOps } from '../domain/member-index.js';
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
  /**
   * SSCAN cursor over the tenant's members of the run in progress (for diagnosis). It is NOT where a
   * resumed run starts: a cursor is only meaningful to the Redis process that issued it — a restarted
   * or failed-over Redis hashes the set with a new seed — so every run scans from '0' and skips the
   * members already in the job's done set.
   */
  cursor: string;
  /** Members switched so far (= the size of the done set). */
  membersDone: number;
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

/** What GET …/sso shows of a switch that has not finished (an interrupted one waits for the next PUT). */
export interface PendingSwitch {
  target: boolean;
  startedAt: string;
  membersDone: number;
}

const LOCK_TTL_MS = 15_000;
const zeroEffects = (): Effects => Object.fromEntries(EFFECT_NAMES.map((n) => [n, 0])) as Effects;

/**
 * Set of the member ids a switch has finished (no TTL; deleted with the job). Built from the job's key
 * so it shares the tenant's hash slot (the MULTI of a batch writes it with the members).
 * TODO(store owners): move to keys.ts as `ssoSwitchDone`.
 */
const doneKey = keys.ssoSwitchDone;

/** The bookkeeping of a switch: deleted together when it completes or is replaced. */
const jobKeys = (domain: string): string[] => [keys.ssoSwitchJob(domain), keys.ssoSwitchCounts(domain), doneKey(domain)];

/**
 * Switching SSO on or off (S-21, S-22), with the care of a migration:
 * - the intent is written first (a job record), then the tenant flips, so a crash at any point
 *   leaves a job that the next call of the same switch resumes;
 * - members are streamed with SSCAN in batches (never all in memory); each batch's member changes,
 *   effect counts, its ids added to the job's done set and the job record go in one MULTI, so a
 *   member is never half-changed and never counted twice;
 * - a resumed run scans the members from the start again and skips those in the done set: SSCAN
 *   cursors do not survive a Redis restart or failover (the set is re-hashed), so a saved cursor
 *   would skip members;
 * - one process at a time per tenant (a lock with a TTL, renewed and checked per batch);
 * - login transactions in flight are voided by bumping the tenant's ssoEpoch.
 */
export class SsoSwitch {
  private readonly batchSize: number;

  constructor(private readonly deps: SsoSwitchDeps) {
    this.batchSize = deps.batchSize ?? 500;
  }

  async pendingJob(domain: string): Promise<PendingSwitch | null> {
    const raw = await this.deps.store.get(keys.ssoSwitchJob(domain));
    if (raw === null) return null;
    const job = JSON.parse(raw) as SwitchJob;
    return { target: job.target, startedAt: new Date(job.startedAt).toISOString(), membersDone: job.membersDone ?? 0 };
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
    /** Renews the lock if it is still ours; a run that lost it (stalled past the TTL) stops before writing more. */
    const holdLock = async (): Promise<void> => {
      if ((await store.get(keys.ssoSwitchLock(domain))) !== lockValue) throw new AppError('sso_switch_in_progress', { detail: 'sso switch lock lost' });
      await store.expire(keys.ssoSwitchLock(domain), LOCK_TTL_MS);
    };
    try {
      const current = (await this.deps.tenants.find(domain)) ?? tenant;
      const rawJob = await store.get(keys.ssoSwitchJob(domain));
      // (A job recorded before `membersDone` existed has no done set: its members are simply visited again.)
      let job = rawJob === null ? null : { membersDone: 0, ...(JSON.parse(rawJob) as Partial<SwitchJob>) } as SwitchJob;
      if (job && job.target !== settings.enabled) {
        // A newer intent replaces an unfinished switch the other way; what that switch did stays done.
        await store.atomic(jobKeys(domain).map((key) => ({ op: 'del', key })));
        job = null;
      }
      if (!job && current.sso.enabled === settings.enabled) {
        return { tenant: await this.deps.tenants.save({ ...current, sso: settings }), switched: false, effects: zeroEffects() };
      }
      if (!job) {
        job = {
          id: randomBytes(8).toString('hex'),
          target: settings.enabled,
          cursor: '0',
          membersDone: 0,
          tenantWideDone: false,
          ssoEpoch: current.ssoEpoch + 1,
          startedAt: this.deps.clock.now(),
        };
        await store.atomic([
          { op: 'del', key: keys.ssoSwitchCounts(domain) },
          { op: 'del', key: doneKey(domain) },
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
        await holdLock();
        await store.atomic([...ops, { op: 'set', key: keys.ssoSwitchJob(domain), value: JSON.stringify(job) }]);
      }

      // Always from the start of the set (see SwitchJob.cursor). A resumed run skips the members an
      // earlier run finished (the done set); a first run needs no lookups: within one run the cursor
      // holds (any store failure ends the run), and a member SSCAN returns twice is switched idempotently.
      const resuming = job.membersDone > 0;
      let cursor = '0';
      let scanned = 0;
      do {
        const [next, page] = await store.sScan(keys.memberIds(domain), cursor, this.batchSize);
        const done: boolean[] = resuming ? await Promise.all(page.map((id) => store.sIsMember(doneKey(domain), id))) : page.map(() => false);
        const ids: string[] = [...new Set(page.filter((_, i) => !done[i]))];
        cursor = next;
        if (ids.length > 0) {
          job = { ...job, cursor: next, membersDone: job.membersDone + ids.length };
          await holdLock();
          await this.switchBatch(domain, ids, job);
        }
        scanned += page.length;
        await this.deps.afterBatch?.(domain, scanned);
      } while (cursor !== '0');

      const counts = await store.hGetAll(keys.ssoSwitchCounts(domain));
      await holdLock();
      await store.atomic(jobKeys(domain).map((key) => ({ op: 'del', key })));
      const effects = zeroEffects();
      for (const name of EFFECT_NAMES) effects[name] = Number(counts[name] ?? 0);
      return { tenant: saved, switched: true, effects };
    } finally {
      // Release only our own lock (a slow run may have lost it to its TTL).
      if ((await store.get(keys.ssoSwitchLock(domain)).catch(() => null)) === lockValue) await store.del(keys.ssoSwitchLock(domain)).catch(() => 0);
    }
  }

  /**
   * One batch of members not yet done. Sessions end first (a crash after that only loses their count:
   * ending is idempotent, counting it again is not possible); then every member change of the batch,
   * the batch's counts, its ids added to the done set and the advanced job go in ONE MULTI on the
   * tenant's slot — so a batch is applied exactly once, and a resumed switch skips it.
   */
  private async switchBatch(domain: string, ids: string[], advancedJob: SwitchJob): Promise<void> {
    const { store } = this.deps;
    const enabling = advancedJob.target;
    const counts: Effects = zeroEffects();
    for (const ender of this.deps.sessionEnders) counts.sessionsEnded += await ender.endSessionsOfMembers(domain, ids);
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
          ...memberIndexOps(domain, member, null),
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
    ops.push({ op: 'sAdd', key: doneKey(domain), members: ids }, { op: 'set', key: keys.ssoSwitchJob(domain), value: JSON.stringify(advancedJob) });
    await store.atomic(ops);
  }
}
