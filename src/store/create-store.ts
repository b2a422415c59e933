import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore, type RedisStoreOptions } from './redis-store.js';
import type { KeyValueStore } from './types.js';

/**
 * The RedisStore options the store config names: one server (redisUrl), a Sentinel-monitored master
 * (redisSentinels + redisSentinelName) or a Cluster (redisClusterNodes); null when it names none (the
 * in-process store). The schema has already refused a config naming more than one.
 */
export function buildRedisStoreOptions(store: Config['store']): RedisStoreOptions | null {
  const common = { keyPrefix: store.keyPrefix, commandTimeoutMs: store.commandTimeoutMs };
  const auth = { username: store.redisUsername, password: store.redisPassword, tls: store.redisTls };
  if (store.redisUrl) return { ...common, url: store.redisUrl };
  if (store.redisClusterNodes) return { ...common, ...auth, clusterNodes: store.redisClusterNodes };
  if (store.redisSentinels && store.redisSentinelName) {
    return { ...common, ...auth, sentinels: store.redisSentinels, sentinelName: store.redisSentinelName, sentinelPassword: store.redisSentinelPassword };
  }
  return null;
}

/**
 * The store of one gateway process. A Redis that is not reachable yet does not stop the start: the
 * store keeps connecting in the background, and until it is there requests that need it answer 503
 * `store_unavailable` and /readyz answers 503.
 */
export async function createStoreFromConfig(config: Pick<Config, 'store'>, logger: Pick<Logger, 'error'>): Promise<KeyValueStore> {
  const options = buildRedisStoreOptions(config.store);
  if (!options) return new MemoryStore();
  const store = new RedisStore(options);
  try {
    await store.connect();
  } catch {
    logger.error(`Redis (${store.mode}) is not reachable yet; retrying in the background (/readyz answers 503 until it is)`);
  }
  return store;
}
