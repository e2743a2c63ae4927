/**
 * Per-client recent request rates for one route, in a bounded table, and the route's max-min fair
 * share. O(1) per request; the fair share is recomputed at most every `FAIR_SHARE_MAX_AGE_MS` and
 * only while the route is over its limit (nobody asks otherwise).
 */

/** Default time constant of the per-client rate estimate (ms). See docs/decisions.md "Adaptive limits". */
export const CLIENT_RATE_TAU_MS = 30_000;
/**
 * Time constant of the fast estimate (ms) and how many recent requests it needs before it counts.
 * The 30 s estimate lags a client that starts flooding (it reads ~2/min per request), so such a
 * client would look fair — and borrow the route's debt away from the steady clients — for its first
 * thousand requests. The fast estimate catches a flood within a few dozen requests and is ignored
 * for clients that never send FAST_MIN_COUNT requests in about a second.
 */
export const CLIENT_RATE_FAST_TAU_MS = 1_000;
const FAST_MIN_COUNT = 20;
/** A client seen within this long counts as active (ms). */
export const ACTIVE_WINDOW_MS = 60_000;
/** Default bound on the clients tracked per route; the least recently seen one is evicted. */
export const DEFAULT_MAX_CLIENTS = 20_000;
const INITIAL_SLOTS = 64;
const NONE = -1;

/**
 * Client key → decayed request count `s` (each request adds 1; `s` decays as e^(−Δt/τ)), so
 * s/τ is an exponentially weighted rate. Slots live in typed arrays with an LRU list through them:
 * about 60 bytes per client plus its key string, whatever the traffic.
 */
export class ClientRates {
  readonly #tauMs: number;
  readonly #max: number;
  readonly #index = new Map<string, number>();
  #keys: (string | undefined)[] = [];
  #count: Float64Array;
  /** The same count on the fast time constant. */
  #fast: Float64Array;
  #stamp: Float64Array;
  #prev: Int32Array;
  #next: Int32Array;
  #head = NONE;
  #tail = NONE;
  #size = 0;
  #scratch = new Float64Array(0);
  /** Requests per minute per unit of `s`. */
  readonly #perMin: number;

  /** Whether the fast estimate is on (the default; tests of the slow arithmetic turn it off). */
  readonly #useFast: boolean;

  constructor(opts: { tauMs?: number; maxClients?: number; fast?: boolean } = {}) {
    this.#useFast = opts.fast ?? true;
    const tau = opts.tauMs ?? CLIENT_RATE_TAU_MS;
    const max = opts.maxClients ?? DEFAULT_MAX_CLIENTS;
    if (!(tau > 0)) throw new RangeError(`ClientRates: tauMs must be > 0 (got ${tau})`);
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`ClientRates: maxClients must be a positive integer (got ${max})`);
    this.#tauMs = tau;
    this.#max = max;
    this.#perMin = 60_000 / tau;
    const n = Math.min(INITIAL_SLOTS, max);
    this.#count = new Float64Array(n);
    this.#fast = new Float64Array(n);
    this.#stamp = new Float64Array(n);
    this.#prev = new Int32Array(n);
    this.#next = new Int32Array(n);
  }

  /** Clients tracked. */
  get size(): number {
    return this.#size;
  }

  /**
   * Counts one request from `key` at `now` and returns the client's rate (requests/min) just before
   * it: for steady traffic that is an unbiased estimate, and a new client starts at 0.
   */
  observe(key: string, now: number): number {
    let i = this.#index.get(key);
    let before = 0;
    if (i === undefined) {
      i = this.#allocate(key);
      this.#count[i] = 1;
      this.#fast[i] = 1;
    } else {
      const dt = now - this.#stamp[i]!;
      const s = dt > 0 ? this.#count[i]! * Math.exp(-dt / this.#tauMs) : this.#count[i]!;
      const f = dt > 0 ? this.#fast[i]! * Math.exp(-dt / CLIENT_RATE_FAST_TAU_MS) : this.#fast[i]!;
      before = this.#useFast ? estimate(s * this.#perMin, f) : s * this.#perMin;
      this.#count[i] = s + 1;
      this.#fast[i] = f + 1;
      if (i !== this.#tail) {
        this.#unlink(i);
        this.#append(i);
      }
    }
    this.#stamp[i] = now;
    return before;
  }

  /** A client's current rate (requests/min), 0 when unknown. */
  rate(key: string, now: number): number {
    const i = this.#index.get(key);
    if (i === undefined) return 0;
    return this.#rateAt(i, now);
  }

  /** Slot i's rate (requests/min) at `now`: the 30 s estimate, or the fast one while it says more. */
  #rateAt(i: number, now: number): number {
    const dt = now - this.#stamp[i]!;
    if (!this.#useFast) return (dt > 0 ? this.#count[i]! * Math.exp(-dt / this.#tauMs) : this.#count[i]!) * this.#perMin;
    if (dt <= 0) return estimate(this.#count[i]! * this.#perMin, this.#fast[i]!);
    return estimate(this.#count[i]! * Math.exp(-dt / this.#tauMs) * this.#perMin, this.#fast[i]! * Math.exp(-dt / CLIENT_RATE_FAST_TAU_MS));
  }

  /**
   * The max-min fair share of `limitPerMin` among the tracked clients: the level f at which
   * Σ min(rate_i, f) = limit, so clients under f keep all they ask for and the rest split what is
   * left evenly. It is never below limit / active clients. Infinity when all rates together fit
   * under the limit. O(n log n): call it rarely (the limiter caches it).
   */
  fairShare(limitPerMin: number, now: number): { fairShare: number; active: number; totalRate: number } {
    const n = this.#size;
    if (this.#scratch.length < n) this.#scratch = new Float64Array(Math.max(n, this.#scratch.length * 2));
    const rates = this.#scratch;
    let active = 0;
    let total = 0;
    let m = 0;
    for (let i = this.#head; i !== NONE; i = this.#next[i]!) {
      const r = this.#rateAt(i, now);
      if (now - this.#stamp[i]! < ACTIVE_WINDOW_MS) active++;
      total += r;
      rates[m++] = r;
    }
    if (total <= limitPerMin) return { fairShare: Infinity, active, totalRate: total };
    const sorted = rates.subarray(0, m).sort();
    let remaining = limitPerMin;
    for (let k = 0; k < m; k++) {
      const share = remaining / (m - k);
      if (sorted[k]! > share) return { fairShare: share, active, totalRate: total };
      remaining -= sorted[k]!;
    }
    return { fairShare: Infinity, active, totalRate: total };
  }

  #allocate(key: string): number {
    let i: number;
    if (this.#size < this.#max) {
      i = this.#size++;
      if (i >= this.#count.length) this.#grow();
    } else {
      // Full: reuse the least recently seen client's slot.
      i = this.#head;
      this.#unlink(i);
      this.#index.delete(this.#keys[i]!);
    }
    this.#keys[i] = key;
    this.#index.set(key, i);
    this.#append(i);
    return i;
  }

  #grow(): void {
    const n = Math.min(this.#max, this.#count.length * 2);
    const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.#count = grow(this.#count, (k) => new Float64Array(k));
    this.#fast = grow(this.#fast, (k) => new Float64Array(k));
    this.#stamp = grow(this.#stamp, (k) => new Float64Array(k));
    this.#prev = grow(this.#prev, (k) => new Int32Array(k));
    this.#next = grow(this.#next, (k) => new Int32Array(k));
  }

  #unlink(i: number): void {
    const p = this.#prev[i]!;
    const nx = this.#next[i]!;
    if (p === NONE) this.#head = nx;
    else this.#next[p] = nx;
    if (nx === NONE) this.#tail = p;
    else this.#prev[nx] = p;
  }

  #append(i: number): void {
    this.#prev[i] = this.#tail;
    this.#next[i] = NONE;
    if (this.#tail === NONE) this.#head = i;
    else this.#next[this.#tail] = i;
    this.#tail = i;
  }
}

/** The rate to judge a client by: the slow estimate, or the fast one once it holds enough requests and says more. */
function estimate(slowPerMin: number, fastCount: number): number {
  if (fastCount < FAST_MIN_COUNT) return slowPerMin;
  const fastPerMin = (fastCount * 60_000) / CLIENT_RATE_FAST_TAU_MS;
  return fastPerMin > slowPerMin ? fastPerMin : slowPerMin;
}
