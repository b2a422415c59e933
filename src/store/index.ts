export type { AtomicOp, KeyValueStore, LexBound, SetOptions, StreamBound, StreamEntry } from './types.js';
export { MemoryStore, compareUtf8 } from './memory-store.js';
export { RedisStore, type RedisMode, type RedisNodeAddress, type RedisStoreOptions, type RedisTarget } from './redis-store.js';
export { buildRedisStoreOptions, createStoreFromConfig } from './create-store.js';
export { CrossSlotError, hashedPartOf } from './hash-slot.js';
export { keys, digestForKey, OPERATOR_SLOT, WORKER_HEARTBEAT_MS, WORKER_STALE_MS, AUDIT_MAX_ENTRIES, LOGIN_ACTIVITY_TTL_MS, LOGOUT_TRANSACTION_TTL_MS, TEST_SIGN_IN_RECORD_TTL_MS, TEST_SIGN_IN_TOKEN_TTL_MS } from './keys.js';
export { cachedReadiness, READY_CACHE_MS, READY_TIMEOUT_MS } from './readiness.js';
export { LeaseLock, lockMayBeLive, configureLockInstance, releaseLocksOfPreviousBoots, LEASE_TTL_MS, LEASE_RENEW_MS, type LeaseLockOptions } from './lease-lock.js';
