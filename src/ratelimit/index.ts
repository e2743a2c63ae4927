/**
 * Static rate limiting: a token bucket per client (consumer id when authenticated, else client IP,
 * IPv6 by its /64), gateway-wide or per route, with per-route overrides or opt-outs, IETF
 * RateLimit fields on every response it passes and Retry-After on 429. Buckets live in a `RateLimitStore` (memory or Redis);
 * this part only decides keys and answers. It must not hold bucket state or do I/O itself.
 */
export { rateLimit, sfString, type RateLimit, type RateLimitOptions } from './static.js';
