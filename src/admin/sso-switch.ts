import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { Member } from '../domain/member.js';
import { memberIndexOps } from '../domain/member-index.js';
import type { TenantRepository } from '../domain/tenants.js';
import type { SsoSettings, Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { keys, LeaseLock, lockMayBeLive, type AtomicOp, type KeyValueStore } from '../store/index.js';

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
  /** What endSessionsOfMembers would return now, changing nothing (the switch preview). */
  countSessionsOfMembers(domain: string, memberIds: string[]): Promise<number>;
}

/** Revokes every access and refresh token issued for a tenant (the OpenID Provider registers one). */
export interface TenantTokenRevoker {
  revokeTenantTokens(domain: string): Promise<number>;
  /** What revokeTenantTokens would return now, changing nothing (the switch preview). */
  countTenantTokens(domain: string): Promise<number>;
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
  /** The tenant's members when the job started (SCARD), for progress; absent on jobs recorded before it existed. */
  membersTotal?: number;
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

/** Tenant fields saved with the SSO settings, in the same write (a configuration import). */
export type TenantFields = Partial<Omit<Tenant, 'domain' | 'sso' | 'ssoEpoch' | 'plan' | 'group'>>;

export interface SwitchResult {
  tenant: Tenant;
  /** True when SSO changed state (or a pending switch was finished) and side effects ran. */
  switched: boolean;
  effects: Effects;
}

/**
 * What GET …/sso shows of a switch that has not finished: `running` while a process holds the switch
 * lock; otherwise it was interrupted and waits for POST …/sso/switch/resume (or the next PUT / PATCH).
 */
export interface PendingSwitch {
  target: boolean;
  startedAt: string;
  membersDone: number;
  membersTotal: number;
  running: boolean;
}

/** What a switch would do, counted without doing it (POST …/sso/preview). */
export interface SwitchPreview {
  /** False when `enabled` would not change (and no switch that way is pending): nothing would run. */
  switching: boolean;
  target: boolean;
  effects: Effects;
}

/** One member's part of a switch: what becomes of the record, and what it counts. Pure. */
function memberSwitch(member: Member, enabling: boolean): { outcome: 'delete' | 'update' | 'none'; next: Member; counts: Partial<Effects> } {
  if (enabling && member.status === 'unapproved') {
    return { outcome: 'delete', next: member, counts: { unapprovedDeleted: 1, appPasswordsDeleted: member.appPasswords.length } };
  }
  const next: Member = { ...member };
  const counts: Partial<Effects> = {};
  if (enabling && member.status === 'pending') {
    next.status = 'in_use';
    counts.pendingActivated = 1;
  }
  if (enabling && member.appPasswords.length > 0) {
    counts.appPasswordsDeleted = member.appPasswords.length;
    next.appPasswords = [];
  }
  if (!enabling && member.passwordHash && member.role !== 'super_admin') {
    delete next.passwordHash;
    counts.passwordsDeleted = 1;
  }
  return { outcome: Object.keys(counts).length ? 'update' : 'none', next, counts };
}

const addCounts = (into: Effects, counts: Partial<Effects>): void => {
  for (const name of EFFECT_NAMES) into[name] += counts[name] ?? 0;
};

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
 * - one process at a time per tenant (a LeaseLock: a short lease renewed by a heartbeat and checked per
 *   batch, released when the run fails, so the next identical call resumes at once);
 * - login transactions in flight are voided by bumping the tenant's ssoEpoch.
 */
export class SsoSwitch {
  private readonly batchSize: number;

  constructor(private readonly deps: SsoSwitchDeps) {
    this.batchSize = deps.batchSize ?? 500;
  }

  async pendingJob(domain: string): Promise<PendingSwitch | null> {
    const { store } = this.deps;
    const raw = await store.get(keys.ssoSwitchJob(domain));
    if (raw === null) return null;
    const job = JSON.parse(raw) as SwitchJob;
    const running = lockMayBeLive(await store.get(keys.ssoSwitchLock(domain)));
    const membersDone = job.membersDone ?? 0;
    // A job from before membersTotal existed: the members now, plus those an enabling switch deleted.
    const membersTotal = job.membersTotal ?? Math.max(membersDone, await store.sCard(keys.memberIds(domain)));
    return { target: job.target, startedAt: new Date(job.startedAt).toISOString(), membersDone, membersTotal, running };
  }

  /**
   * Finishes an interrupted switch with the tenant's stored settings (the switch had saved them before
   * it began). 409 `conflict` when there is none, or while one is running.
   */
  async resume(domain: string): Promise<SwitchResult> {
    const pending = await this.pendingJob(domain);
    if (!pending) throw new AppError('conflict', { message: 'There is no interrupted SSO switch to resume.', detail: 'no pending switch job' });
    if (pending.running) throw new AppError('conflict', { message: 'The SSO switch is running right now; it does not need resuming.', detail: 'switch lock held' });
    const tenant = await this.deps.tenants.load(domain);
    try {
      return await this.apply(tenant, { ...tenant.sso, enabled: pending.target });
    } catch (err) {
      if (err instanceof AppError && err.code === 'sso_switch_in_progress') {
        throw new AppError('conflict', { message: 'The SSO switch is running right now; it does not need resuming.', detail: 'switch lock taken meanwhile', retryAfterSeconds: err.retryAfterSeconds });
      }
      throw err;
    }
  }

  /**
   * Counts what apply(tenant, {…, enabled: target}) would do now, the way it would do it — tenant-wide
   * effects first, then the members streamed with SSCAN in batches (never all in memory), skipping those
   * a pending switch the same way has finished (its counts so far are included) — and changes nothing.
   * Exact as long as nothing else changes in between.
   */
  async preview(tenant: Tenant, target: boolean): Promise<SwitchPreview> {
    const { store } = this.deps;
    const domain = tenant.domain;
    const rawJob = await store.get(keys.ssoSwitchJob(domain));
    const job = rawJob === null ? null : ({ membersDone: 0, ...(JSON.parse(rawJob) as Partial<SwitchJob>) } as SwitchJob);
    const resuming = job !== null && job.target === target;
    const effects = zeroEffects();
    if (!resuming && tenant.sso.enabled === target) return { switching: false, target, effects };
    if (resuming) {
      const counts = await store.hGetAll(keys.ssoSwitchCounts(domain));
      for (const name of EFFECT_NAMES) effects[name] = Number(counts[name] ?? 0);
    }
    if (target && !(resuming && job.tenantWideDone)) {
      effects.invitationsInvalidated += await store.hLen(keys.invitations(domain));
      for (const r of this.deps.tokenRevokers) effects.tokensRevoked += await r.countTenantTokens(domain);
    }
    const skipDone = resuming && job.membersDone > 0;
    let cursor = '0';
    do {
      const [next, page] = await store.sScan(keys.memberIds(domain), cursor, this.batchSize);
      cursor = next;
      const done: boolean[] = skipDone ? await Promise.all(page.map((id) => store.sIsMember(doneKey(domain), id))) : page.map(() => false);
      // SSCAN may return a member twice: the preview counts each once (the switch changes it once).
      const ids = [...new Set(page.filter((_, i) => !done[i]))];
      if (ids.length === 0) continue;
      for (const ender of this.deps.sessionEnders) effects.sessionsEnded += await ender.countSessionsOfMembers(domain, ids);
      const raws = await store.mGet(ids.map((id) => keys.member(domain, id)));
      for (const raw of raws) if (raw !== null) addCounts(effects, memberSwitch(JSON.parse(raw) as Member, target).counts);
    } while (cursor !== '0');
    return { switching: true, target, effects };
  }

  /**
   * Saves new SSO settings. When `enabled` changes — or a switch to the same state was interrupted —
   * runs every side effect to completion and returns their counts. `otherFields` (a configuration import)
   * are saved in the same tenant write as the settings.
   */
  async apply(tenant: Tenant, settings: SsoSettings, otherFields: TenantFields = {}): Promise<SwitchResult> {
    const { store } = this.deps;
    const domain = tenant.domain;
    // Everything — even deciding there is nothing to do — happens under the tenant's lock, on a fresh
    // read of the tenant and the job: a refused concurrent call must not touch a running switch.
    const lock = await LeaseLock.acquire(store, keys.ssoSwitchLock(domain), {
      busy: (retryAfterSeconds) => new AppError('sso_switch_in_progress', { retryAfterSeconds, detail: 'sso switch lock held' }),
      lost: () => new AppError('sso_switch_in_progress', { detail: 'sso switch lock lost' }),
    });
    /** Renews the lock if it is still ours; a run that lost it (stalled past the lease) stops before writing more. */
    const holdLock = (): Promise<void> => lock.assertHeld();
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
        return { tenant: await this.deps.tenants.save({ ...current, ...otherFields, sso: settings }), switched: false, effects: zeroEffects() };
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
          membersTotal: await store.sCard(keys.memberIds(domain)),
        };
        await store.atomic([
          { op: 'del', key: keys.ssoSwitchCounts(domain) },
          { op: 'del', key: doneKey(domain) },
          { op: 'set', key: keys.ssoSwitchJob(domain), value: JSON.stringify(job) },
        ]);
      }
      // New logins follow the new mode at once; logins in flight belong to the old epoch and are void.
      const saved = await this.deps.tenants.save({ ...current, ...otherFields, sso: settings, ssoEpoch: job.ssoEpoch });

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
      // Only our own lock (compare-and-delete); if the store is down, retried until the lease runs out.
      await lock.release();
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
      const change = memberSwitch(member, enabling);
      addCounts(counts, change.counts);
      if (change.outcome === 'delete') {
        ops.push(
          { op: 'del', key: keys.member(domain, id) },
          { op: 'sRem', key: keys.memberIds(domain), members: [id] },
          { op: 'hDel', key: keys.memberByAccount(domain), fields: [member.account] },
          ...(member.externalKey ? [{ op: 'hDel' as const, key: keys.memberByExternalKey(domain), fields: [member.externalKey] }] : []),
          ...memberIndexOps(domain, member, null),
        );
      } else if (change.outcome === 'update') {
        ops.push({ op: 'set', key: keys.member(domain, id), value: JSON.stringify(change.next) });
      }
    });
    for (const name of EFFECT_NAMES) if (counts[name]) ops.push({ op: 'hIncrBy', key: keys.ssoSwitchCounts(domain), field: name, by: counts[name] });
    ops.push({ op: 'sAdd', key: doneKey(domain), members: ids }, { op: 'set', key: keys.ssoSwitchJob(domain), value: JSON.stringify(advancedJob) });
    await store.atomic(ops);
  }
}
