/**
 * The per-address budget of failed credential attempts: a token bucket in the rate-limit store
 * (memory or Redis, so gateways in a cluster share it) under `af:<address or IPv6 /64>`, separate
 * from the address's request bucket. Every request that presents a credential first peeks at the
 * budget (cost 0: nothing written) and is refused with 429 `auth_throttled` while it is empty,
 * whether the credential is right or wrong; only a failed attempt takes from it.
 */
import type { AuthConfig } from '../config/index.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import { BucketKeys, clientKey } from '../pipeline/index.js';
import type { RateLimitStore, TakeResult } from '../store/index.js';

const KEY_PREFIX = 'af:';

/** Failures that spend the budget: a wrong key or token. Not a missing credential, nor an expired token (its signature was good). */
const CHARGED: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['invalid_api_key', 'invalid_authorization_header', 'invalid_token']);

export interface FailureBudgetOptions {
  store: Pick<RateLimitStore, 'take'>;
  config: AuthConfig['failure_budget'];
}

export class FailureBudget {
  readonly #store: Pick<RateLimitStore, 'take'>;
  readonly #capacity: number;
  readonly #refillPerSec: number;
  /** Bucket keys by client address (every request that presents a credential looks at its budget). */
  readonly #keys = new BucketKeys(KEY_PREFIX, clientKey);

  constructor(opts: FailureBudgetOptions) {
    if (typeof opts?.store?.take !== 'function') throw new TypeError('FailureBudget: a store is required');
    const { max_failures, refill_rate } = opts.config;
    if (!(Number.isInteger(max_failures) && max_failures >= 1)) throw new RangeError(`FailureBudget: max_failures must be a positive integer (got ${max_failures})`);
    if (!(refill_rate > 0 && Number.isFinite(refill_rate))) throw new RangeError(`FailureBudget: refill_rate must be > 0 (got ${refill_rate})`);
    this.#store = opts.store;
    this.#capacity = max_failures;
    this.#refillPerSec = refill_rate;
  }

  /** Whether this failure is a guess that spends the budget. */
  charges(err: GatewayError): boolean {
    return CHARGED.has(err.code);
  }

  /** Looks at the budget of `clientIp` without spending it; `allowed` false means refuse. */
  peek(clientIp: string): TakeResult | Promise<TakeResult> {
    return this.#store.take(this.#keys.of(clientIp), this.#capacity, this.#refillPerSec, 0);
  }

  /** Spends one failure of `clientIp`'s budget. */
  charge(clientIp: string): TakeResult | Promise<TakeResult> {
    return this.#store.take(this.#keys.of(clientIp), this.#capacity, this.#refillPerSec, 1);
  }

  /** The 429 for a spent budget, with Retry-After. */
  refusal(r: TakeResult): GatewayError {
    const retryAfterS = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
    return new GatewayError('auth_throttled', `Too many failed credential attempts from this address: try again in ${retryAfterS} s`, {
      headers: { 'Retry-After': String(retryAfterS) },
    });
  }

  /** The numbers behind a refusal, for the completion record. */
  detail(r: TakeResult): Record<string, number | string> {
    return { budget: 'auth_failures', limit: this.#capacity, remaining: 0, retry_after_s: Math.max(1, Math.ceil(r.retryAfterMs / 1000)) };
  }
}
