import { randomBytes } from 'node:crypto';
import type { AppError } from '../errors/index.js';
import { keys } from './keys.js';
import type { KeyValueStore } from './types.js';

/** A live holder's lease: short, so a holder that dies without releasing blocks others this long at most. */
export const LEASE_TTL_MS = 5_000;
/** How often a live holder renews its lease (compare-and-renew by its token). */
export const LEASE_RENEW_MS = 1_000;
/** How often a holder that could not release (the store was down) tries again, until its lease ran out anyway. */
const RELEASE_RETRY_MS = 100;

/**
 * This process's part of every lock value (`<process>.<random>`), and the values whose holders are
 * still running here. A value of this process whose holder is no longer running belongs to a holder that
 * failed without being able to release (the store was down when it ended): it is stale for certain, and
 * the next acquirer here takes it over at once instead of waiting out the lease.
 */
let PROCESS_TAG = randomBytes(6).toString('hex');
const runningHere = new Set<string>();
/** This process's stable instance identity (configureLockInstance); null = no registry (tests, tools). */
let instanceId: string | null = null;

/** False only for a lock value that is certainly stale (see PROCESS_TAG); null means no lock. */
export function lockMayBeLive(value: string | null): boolean {
  if (value === null) return false;
  return !(value.startsWith(`${PROCESS_TAG}.`) && !runningHere.has(value));
}

/**
 * Gives this process its stable instance identity (INSTANCE_ID, or host name + cluster worker slot: the
 * same after a restart of the process). From then on every lock value is `<instance>/<boot>.<random>`
 * (`<boot>` new at each start) and every held lock is recorded in the instance's registry
 * (keys.lockRegistry), so that the instance, started again after a crash, can release what its previous
 * boot held (releaseLocksOfPreviousBoots). Call once, before any lock is taken.
 */
export function configureLockInstance(id: string): void {
  instanceId = id;
  PROCESS_TAG = `${id}/${randomBytes(6).toString('hex')}`;
}

/**
 * At boot, before serving: releases every lock that a previous boot of this instance held when it died
 * (compare-and-delete on the recorded value, so a lock since taken by anyone else is not touched) and
 * clears those registry entries. Per-key operations only (on a Redis Cluster the keys are in different
 * slots). Returns how many locks were released. Two live processes must never share an instance identity:
 * one would release the other's locks (that holder then finds it lost them at its next check and stops).
 */
export async function releaseLocksOfPreviousBoots(store: KeyValueStore): Promise<{ released: string[] }> {
  if (instanceId === null) return { released: [] };
  const registry = keys.lockRegistry(instanceId);
  const released: string[] = [];
  for (const [lockKey, value] of Object.entries(await store.hGetAll(registry))) {
    if (value.startsWith(`${PROCESS_TAG}.`)) continue; // this boot's own (none yet at boot)
    if (value.startsWith(`${instanceId}/`) && (await store.delIfEquals(lockKey, value))) released.push(lockKey);
    await store.hDel(registry, lockKey);
  }
  return { released };
}

export interface LeaseLockOptions {
  /** The refusal while another holder has the lock; `retryAfterSeconds` is what its lease has left (at least 1). */
  busy: (retryAfterSeconds: number) => AppError;
  /** The refusal when this holder finds it no longer holds the lock (it stalled past its lease, or was taken over). */
  lost: () => AppError;
  ttlMs?: number;
  renewEveryMs?: number;
  /** Waits this long for a busy lock before refusing (default: refuse at once). */
  waitMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A lock in the store for one long operation of a tenant (an SSO switch, an external-key import, a
 * members.csv import, an MDM change): SET NX with a short lease (LEASE_TTL_MS) that a heartbeat renews
 * while the holder runs, by compare-and-renew on its own token, so
 * - a holder that dies (its process killed) blocks the next caller for one lease at most, and that
 *   caller is told how long (`busy(retryAfterSeconds)`, the lock's remaining PTTL → `Retry-After`);
 * - a holder that fails releases it in `release()` (compare-and-delete); if the store is down then, it
 *   keeps trying in the background until the lease would have run out anyway, and the next caller in
 *   this process takes a lock whose holder has ended here over at once;
 * - a holder that stalled past its lease finds out at its next `assertHeld()` and stops before writing more.
 * Works the same on the memory store, one Redis and a Redis Cluster (one key, one slot).
 */
export class LeaseLock {
  private readonly timer: NodeJS.Timeout;
  private lost = false;
  private renewedAt: number;
  /** The registry this holder is recorded in (its instance's), or null. */
  private readonly registry = instanceId === null ? null : keys.lockRegistry(instanceId);

  private constructor(
    private readonly store: KeyValueStore,
    private readonly key: string,
    readonly holder: string,
    private readonly options: Required<Pick<LeaseLockOptions, 'ttlMs' | 'renewEveryMs'>> & LeaseLockOptions,
  ) {
    runningHere.add(holder);
    this.renewedAt = Date.now();
    this.timer = setInterval(() => void this.renew().catch(() => undefined), options.renewEveryMs);
    this.timer.unref();
  }

  static async acquire(store: KeyValueStore, key: string, options: LeaseLockOptions): Promise<LeaseLock> {
    const full = { ttlMs: LEASE_TTL_MS, renewEveryMs: LEASE_RENEW_MS, ...options };
    const holder = `${PROCESS_TAG}.${randomBytes(8).toString('hex')}`;
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (;;) {
      if (await store.set(key, holder, { nx: true, ttlMs: full.ttlMs })) {
        await LeaseLock.record(store, key, holder);
        return new LeaseLock(store, key, holder, full);
      }
      const current = await store.get(key);
      if (current !== null && !lockMayBeLive(current)) {
        // Its holder ended here without releasing (the store was down): take it over.
        await store.delIfEquals(key, current);
        continue;
      }
      if (Date.now() < deadline) {
        await sleep(20 + Math.floor(Math.random() * 30));
        continue;
      }
      const pttl = current === null ? 0 : await store.pttl(key);
      throw options.busy(Math.max(1, Math.ceil(pttl / 1000)));
    }
  }

  /** Records a taken lock in this instance's registry; if that fails, gives the lock back and throws. */
  private static async record(store: KeyValueStore, key: string, holder: string): Promise<void> {
    if (instanceId === null) return;
    try {
      await store.hSet(keys.lockRegistry(instanceId), { [key]: holder });
    } catch (err) {
      await store.delIfEquals(key, holder).catch(() => undefined);
      throw err;
    }
  }

  /** Drops this holder's registry entry (best effort: a left-over entry is cleared at the next boot). */
  private async unrecord(): Promise<void> {
    const registry = this.registry;
    if (registry === null) return;
    await this.store
      .hGet(registry, this.key)
      .then((v) => (v === this.holder ? this.store.hDel(registry, this.key) : 0))
      .catch(() => undefined);
  }

  /** Runs `fn` holding the lock, released however `fn` ends. */
  static async run<T>(store: KeyValueStore, key: string, options: LeaseLockOptions, fn: (lock: LeaseLock) => Promise<T>): Promise<T> {
    const lock = await LeaseLock.acquire(store, key, options);
    try {
      return await fn(lock);
    } finally {
      await lock.release();
    }
  }

  /** Compare-and-renew; false when the lock is no longer ours. A store error propagates. */
  private async renew(): Promise<boolean> {
    if (this.lost) return false;
    const at = Date.now();
    if (await this.store.expireIfEquals(this.key, this.holder, this.options.ttlMs)) {
      this.renewedAt = at;
      return true;
    }
    this.lost = true;
    clearInterval(this.timer);
    return false;
  }

  /** Before a point of no return: renews the lease, and throws `lost()` when the lock is no longer ours. */
  async assertHeld(): Promise<void> {
    if (!(await this.renew())) throw this.options.lost();
  }

  /**
   * Ends the holding: compare-and-delete. If the store cannot be reached, keeps trying in the background
   * (unref'd) until the lease would have run out by itself; the holder is no longer running here either
   * way, so this process's next acquirer takes the lock over at once.
   */
  async release(): Promise<void> {
    clearInterval(this.timer);
    runningHere.delete(this.holder);
    // While the lock is ours, so is its registry entry: drop it first (a crash in between costs one lease at most).
    await this.unrecord();
    if (this.lost) return;
    try {
      await this.store.delIfEquals(this.key, this.holder);
    } catch {
      const until = this.renewedAt + this.options.ttlMs;
      const retry = (): void => {
        if (Date.now() >= until) return;
        const t = setTimeout(() => {
          this.store.delIfEquals(this.key, this.holder).then(() => undefined, retry);
        }, RELEASE_RETRY_MS);
        t.unref();
      };
      retry();
    }
  }
}
