/**
 * Shared state for rate limiting: token buckets behind the small `RateLimitStore` interface, in
 * memory (default, synchronous) or in Redis (cluster mode, one atomic Lua script, bounded by a
 * timeout with a local fallback). Stores know nothing of HTTP, routes or clients: only keys.
 */
export type { RateLimitStore, TakeResult, StoreErrorHook } from './types.js';
export { MemoryStore, DEFAULT_MAX_BUCKETS, type MemoryStoreOptions } from './memory.js';
export { RedisStore, type RedisStoreOptions } from './redis.js';
export { createStore } from './create.js';
export { RedisLink, type RedisLinkOptions, type RedisClient } from './redis-link.js';
export { bucketScript } from './lua.js';
export { checkRedisUrl } from './redis-url.js';
