/** The contract every rate-limit store implements. */

/** The answer to one `take()`. */
export interface TakeResult {
  /** Whether the tokens were taken (the request may go on). */
  allowed: boolean;
  /** Whole tokens left in the bucket after this call. */
  remaining: number;
  /** When rejected: ms until `cost` tokens are available again; 0 when allowed. */
  retryAfterMs: number;
  /** ms until the bucket is full again (0 when it is full). */
  resetMs: number;
}

/**
 * Token buckets keyed by string. A bucket starts full, refills continuously at `refillPerSec` up to
 * `capacity`; an allowed take costs `cost` tokens (default 1), a rejected one costs nothing.
 * `take()` answers synchronously when it can (the memory store always does), so callers must
 * handle both a plain result and a promise.
 *
 * `cost = 0` is a peek: it answers as a take of one token would (`allowed`, `retryAfterMs`) and
 * writes nothing (no bucket is created, no time is recorded). The credential-failure budget looks
 * before it verifies a credential and charges only a failure.
 */
export interface RateLimitStore {
  take(key: string, capacity: number, refillPerSec: number, cost?: number): TakeResult | Promise<TakeResult>;
  start(): Promise<void>;
  close(): Promise<void>;
  /** True while a shared backend is failing and answers come from local state (or are refused). */
  readonly degraded: boolean;
}

/** Called with the failing operation ("take", "connection", "probe", "connect") and the error. */
export type StoreErrorHook = (op: string, err: unknown) => void;
