export type { KeyValueStore, SetOptions } from './types.js';
export { MemoryStore } from './memory-store.js';
export { RedisStore, type RedisStoreOptions } from './redis-store.js';
export { keys, digestForKey, AUDIT_MAX_ENTRIES } from './keys.js';
