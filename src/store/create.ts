/** Picks the store the config asks for. */
import type { Clock } from '../clock.js';
import type { ClusterConfig, RateLimitConfig } from '../config/index.js';
import { MemoryStore } from './memory.js';
import { RedisStore } from './redis.js';
import type { RateLimitStore, StoreErrorHook } from './types.js';

/**
 * A RedisStore when `cluster.redis_url` is set (with a MemoryStore fallback sized like the local
 * one), otherwise a MemoryStore. Bucket limits come from the `ratelimit` section when present.
 * Nothing connects until `start()`.
 */
export function createStore(
  cluster: ClusterConfig,
  rl: RateLimitConfig | undefined,
  clock: Clock,
  opts: { onError?: StoreErrorHook } = {},
): RateLimitStore {
  const memory = new MemoryStore({ clock, idleTtlMs: rl?.idle_ttl, maxBuckets: rl?.max_buckets });
  if (cluster.redis_url === undefined) return memory;
  return new RedisStore({
    url: cluster.redis_url,
    keyPrefix: cluster.key_prefix,
    timeoutMs: cluster.timeout,
    failClosed: cluster.fail_closed,
    fallback: memory,
    onError: opts.onError,
  });
}
