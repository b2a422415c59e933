import { StoreUnavailableError } from '../errors/index.js';
import { RedisStore } from './redis-store.js';
import type { KeyValueStore } from './types.js';

/** How long one readiness answer is reused, unless the store's connection changes state meanwhile. */
export const READY_CACHE_MS = 250;
/** A readiness check that has not answered by then counts as "not ready". */
export const READY_TIMEOUT_MS = 1000;

/**
 * The store's readiness (KeyValueStore.ready) as probes ask it: one check at a time however many probes
 * arrive together, its answer — ready or not — reused for READY_CACHE_MS, except that any change of the
 * Redis connection's state (closed, reconnected, a Cluster node lost or added) makes it stale at once.
 * So a burst of probes costs one round of commands, and an outage is seen on the first probe after the
 * client notices it.
 */
export function cachedReadiness(store: KeyValueStore, options: { cacheMs?: number; timeoutMs?: number } = {}): () => Promise<void> {
  const cacheMs = options.cacheMs ?? READY_CACHE_MS;
  const timeoutMs = options.timeoutMs ?? READY_TIMEOUT_MS;
  const changes = (): number => (store instanceof RedisStore ? store.connectionChanges : 0);
  let last: { at: number; changes: number; error: Error | null } | null = null;
  let inFlight: { changes: number; done: Promise<void> } | null = null;

  const checkOnce = async (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreUnavailableError(new Error('readiness check timed out'))), timeoutMs);
    });
    try {
      await Promise.race([store.ready(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  return async () => {
    const now = Date.now();
    if (last && last.changes === changes() && now - last.at < cacheMs) {
      if (last.error) throw last.error;
      return;
    }
    if (!inFlight || inFlight.changes !== changes()) {
      const started = { at: now, changes: changes() };
      const flight = {
        changes: started.changes,
        done: checkOnce().then(
          () => {
            last = { ...started, error: null };
          },
          (err: unknown) => {
            const error = err instanceof Error ? err : new StoreUnavailableError(err);
            last = { ...started, error };
            throw error;
          },
        ),
      };
      flight.done.catch(() => undefined).finally(() => {
        if (inFlight === flight) inFlight = null;
      });
      inFlight = flight;
    }
    await inFlight.done;
  };
}
