/** The static token-bucket limiter stage and the auth-failure charge. */
import type { RateLimitConfig } from '../config/index.js';
import { GatewayError } from '../errors.js';
import { BucketKeys, clientKey, type CompiledRoute, type RequestContext, type Stage } from '../pipeline/index.js';
import type { RateLimitStore, TakeResult } from '../store/index.js';

/*
 * Response fields follow draft-ietf-httpapi-ratelimit-headers-11 (23 May 2026), sections 3 and 4:
 *   RateLimit-Policy: "default";q=10;w=10   q = capacity in whole tokens; w = seconds to refill it all
 *   RateLimit: "default";r=3;t=7            r = whole tokens left; t = effective window in seconds:
 *     admitted -> until the bucket is full again. A client that spends no more than r within t is
 *                 never throttled (it is conservative: tokens also refill meanwhile);
 *     rejected -> the same value as Retry-After, since the draft (section 6) says Retry-After SHOULD
 *                 NOT point earlier than the end of the effective window.
 * Route overrides name their policy after the route prefix. No "pk" parameter: it would echo the
 * client IP or consumer id back.
 */

const DEFAULT_POLICY = 'default';

/** One quota policy, with every string a request needs built in advance. */
interface Policy {
  readonly capacity: number;
  readonly refillPerSec: number;
  /** The q parameter: whole tokens. */
  readonly limit: number;
  /** Bucket keys of an anonymous client (by IP, an IPv6 address's /64) and an authenticated one (by consumer id). */
  readonly ipKeys: BucketKeys;
  readonly consumerKeys: BucketKeys;
  /** RateLimit-Policy field value. */
  readonly policyField: string;
  /** RateLimit field value up to the r value: `"name";r=`. */
  readonly limitFieldPrefix: string;
  /** RateLimit field values made lately, by (r, t) (see limitField). */
  readonly fields: LimitFields;
}

/** Slots of a policy's LimitFields (a power of two). */
const LIMIT_FIELD_SLOTS = 256;

/**
 * The RateLimit field values a policy made lately, one per slot of (r, t): a client's r and t repeat
 * (a bucket that refills as fast as it is spent answers the same r; t takes few values), and a
 * field built per request cost three string concatenations, two number conversions and, when Node
 * checked it, a flattening; a value found here is the same flat string every time, which the
 * request log also prepares once (its prepared values are compared by identity first).
 */
interface LimitFields {
  readonly r: Float64Array;
  readonly t: Float64Array;
  readonly text: (string | undefined)[];
}

/** The RateLimit field value `"name";r=<remaining>;t=<t>`. */
function limitField(policy: Policy, remaining: number, t: number): string {
  const f = policy.fields;
  const slot = (remaining + t * 0x9e37) & (LIMIT_FIELD_SLOTS - 1);
  if (f.r[slot] === remaining && f.t[slot] === t) return f.text[slot]!;
  // Kept as a sequential string: the concatenation is a rope, whose every later character read
  // (Node's header check, the request log's copy) goes through an indirection.
  const text = flatString(policy.limitFieldPrefix + remaining + ';t=' + t);
  f.r[slot] = remaining;
  f.t[slot] = t;
  f.text[slot] = text;
  return text;
}

export interface RateLimitOptions {
  /** The `ratelimit:` config section. */
  config: RateLimitConfig;
  store: RateLimitStore;
}

export interface RateLimit {
  /** Pipeline stage (runs after auth): one bucket per client (consumer id, else IP), global or per route. */
  readonly stage: Stage;
  /**
   * For the auth stage's failure hook: takes a token from the client IP's gateway-wide bucket and
   * throws the 429 when it is empty, so guessing credentials is rate limited too. Returns a promise
   * only when the store answered asynchronously; the caller must await it before answering 401.
   */
  readonly chargeAuthFailure: (ctx: RequestContext) => void | Promise<void>;
}

/** Builds the static rate limiter. Options are checked here, once; per-route policies are built on first use. */
export function rateLimit(opts: RateLimitOptions): RateLimit {
  const { config, store } = opts;
  if (store === undefined || typeof store.take !== 'function') throw new TypeError('rateLimit: a store is required');
  checkLimits('ratelimit', config.max_tokens, config.refill_rate);
  const byRoute = config.scope === 'route';
  const global = makePolicy(DEFAULT_POLICY, config.max_tokens, config.refill_rate, '');
  /** Per compiled route: its policy, or null when the route opts out (`ratelimit: false`). */
  const policies = new WeakMap<CompiledRoute, Policy | null>();

  function policyFor(route: CompiledRoute): Policy | null {
    const override = route.config.ratelimit;
    let policy: Policy | null;
    if (override === false) policy = null;
    else if (override !== undefined) {
      checkLimits(`routes "${route.prefix}" ratelimit`, override.max_tokens, override.refill_rate);
      // named after the route prefix, so clients can tell per-route quotas apart
      policy = makePolicy(route.prefix, override.max_tokens, override.refill_rate, routeKeyPrefix(route.prefix));
    } else if (byRoute) policy = makePolicy(DEFAULT_POLICY, config.max_tokens, config.refill_rate, routeKeyPrefix(route.prefix));
    else policy = global;
    policies.set(route, policy);
    return policy;
  }

  if (!config.enabled) {
    return {
      stage: function rateLimitStage(ctx: RequestContext): void {
        ctx.next();
      },
      chargeAuthFailure: function chargeAuthFailure(): void {},
    };
  }

  function rateLimitStage(ctx: RequestContext): void | Promise<void> {
    let policy = global;
    const route = ctx.route;
    if (route !== null) {
      let p = policies.get(route);
      if (p === undefined) p = policyFor(route);
      if (p === null) return ctx.next();
      policy = p;
    }
    const consumer = ctx.consumer;
    // An IPv6 client is its /64: one host can pick any address in it.
    const key = consumer === undefined ? policy.ipKeys.of(ctx.clientIp) : policy.consumerKeys.of(consumer);
    const result = store.take(key, policy.capacity, policy.refillPerSec);
    if (isPromise(result)) {
      const p = policy;
      return result.then((r) => admit(ctx, p, r, true));
    }
    admit(ctx, policy, result, true);
  }

  function chargeAuthFailure(ctx: RequestContext): void | Promise<void> {
    const result = store.take(global.ipKeys.of(ctx.clientIp), global.capacity, global.refillPerSec);
    if (isPromise(result)) return result.then((r) => admit(ctx, global, r, false));
    admit(ctx, global, result, false);
  }

  return { stage: rateLimitStage, chargeAuthFailure };
}

/** Adds the fields and continues (when `next`), or throws the 429. */
function admit(ctx: RequestContext, policy: Policy, r: TakeResult, next: boolean): void {
  if (r.allowed) {
    ctx.addHeader('RateLimit-Policy', policy.policyField);
    ctx.addHeader('RateLimit', limitField(policy, r.remaining, Math.ceil(r.resetMs / 1000)));
    if (next) ctx.next();
    return;
  }
  const retryAfterS = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
  ctx.decision = 'rate_limited';
  ctx.detail = { limit: policy.limit, remaining: r.remaining, retry_after_s: retryAfterS };
  // On the error response only (not ctx.addHeader too), so each field appears once.
  throw new GatewayError('rate_limited', undefined, {
    headers: {
      'Retry-After': String(retryAfterS),
      'RateLimit-Policy': policy.policyField,
      RateLimit: limitField(policy, r.remaining, retryAfterS),
    },
  });
}

/** A sequential copy of `s` (for a string kept and read many times: see limitField). */
function flatString(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

function isPromise(r: TakeResult | Promise<TakeResult>): r is Promise<TakeResult> {
  return typeof (r as Promise<TakeResult>).then === 'function';
}

function checkLimits(where: string, capacity: number, refill: number): void {
  if (!(capacity > 0 && Number.isFinite(capacity))) throw new RangeError(`${where}: max_tokens must be a positive number (got ${capacity})`);
  if (!(refill > 0 && Number.isFinite(refill))) throw new RangeError(`${where}: refill_rate must be a positive number (got ${refill})`);
}

/**
 * Bucket keys: `i:<ip>` / `c:<consumer>` gateway-wide, `r:<prefix> i:<ip>` / `r:<prefix> c:<consumer>`
 * per route. A route prefix never contains a space, so keys of different routes and kinds never collide.
 */
function routeKeyPrefix(prefix: string): string {
  return 'r:' + prefix + ' ';
}

function makePolicy(name: string, capacity: number, refillPerSec: number, keyPrefix: string): Policy {
  const limit = Math.floor(capacity);
  const window = Math.max(1, Math.ceil(capacity / refillPerSec));
  const item = sfString(name);
  return {
    capacity,
    refillPerSec,
    limit,
    ipKeys: new BucketKeys(keyPrefix + 'i:', clientKey),
    consumerKeys: new BucketKeys(keyPrefix + 'c:'),
    // Read by Node's header check on every response: sequential, as limitField's values are.
    policyField: flatString(`${item};q=${limit};w=${window}`),
    limitFieldPrefix: `${item};r=`,
    // NaN matches no (r, t): every slot starts empty.
    fields: { r: new Float64Array(LIMIT_FIELD_SLOTS).fill(NaN), t: new Float64Array(LIMIT_FIELD_SLOTS).fill(NaN), text: new Array<string | undefined>(LIMIT_FIELD_SLOTS).fill(undefined) },
  };
}

/** An RFC 9651 sf-string: printable ASCII only (others percent-encoded), `"` and `\` escaped. */
export function sfString(text: string): string {
  const ascii = text.replace(/[^\x20-\x7e]/gu, percentEncode);
  return '"' + ascii.replace(/[\\"]/g, '\\$&') + '"';
}

function percentEncode(c: string): string {
  try {
    return encodeURIComponent(c);
  } catch {
    return '?'; // a lone surrogate
  }
}
