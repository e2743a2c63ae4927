/**
 * The route buckets shared by every gateway instance through Redis (cluster mode), behind the
 * synchronous RouteBucketStore interface: each instance decides from a local mirror of the shared
 * bucket (no I/O per request) and, every `syncMs`, reports what it admitted in one atomic Lua step
 * per route (route-bucket.lua), getting the bucket's tokens back. N instances so enforce one limit;
 * the overshoot is bounded by what the instances admit in one sync interval. When Redis fails or
 * does not answer within `timeoutMs`, the mirror goes on as a local bucket (fail-open: each instance
 * then enforces L alone) until a sync succeeds again.
 */
import { createHash } from 'node:crypto';
import { every, systemClock, type Clock } from '../clock.js';
import { bucketScript, checkRedisUrl, RedisLink, type RedisClient } from '../store/index.js';
import { peekBucket, RouteBucket, takeFromBucket, type RouteBucketStore, type RouteTake } from './route-bucket-store.js';

/** Read once per process, with the refill shared with the static limit's script in front. */
let scriptSource: string | undefined;
function loadScript(): string {
  scriptSource ??= bucketScript(new URL('./route-bucket.lua', import.meta.url));
  return scriptSource;
}

/** Default sync period (ms): the bound on how stale an instance's view of the shared bucket is. */
export const DEFAULT_ROUTE_SYNC_MS = 100;

export interface RedisRouteBucketStoreOptions {
  url: string;
  /** `cluster.key_prefix`; keys are `<prefix>adaptive:<route>`. */
  keyPrefix: string;
  /** Longest a sync may wait for Redis before the local mirror goes on alone (ms). */
  timeoutMs: number;
  clock?: Clock;
  syncMs?: number;
  /** A sync failed or timed out (called on the transition to degraded, not on every attempt). */
  onError?: (op: string, err: unknown) => void;
}

/** The local bucket of a route, and what the next sync reports. */
class Mirror extends RouteBucket {
  /** Admitted locally since the last sync was sent. */
  consumed = 0;
  rate: number;
  capacity: number;
  floor: number;
  constructor(tokens: number, stamp: number, rate: number, capacity: number, floor: number) {
    super(tokens, stamp);
    this.rate = rate;
    this.capacity = capacity;
    this.floor = floor;
  }
}

export class RedisRouteBucketStore implements RouteBucketStore {
  readonly #opts: RedisRouteBucketStoreOptions;
  readonly #clock: Clock;
  readonly #mirrors = new Map<string, Mirror>();
  readonly #result: RouteTake = { allowed: false, tokens: 0 };
  readonly #script: string;
  readonly #sha: string;
  /** Healthy while the last sync got through; syncs (not a probe) find Redis again. */
  readonly #link: RedisLink;
  #stopSync: (() => void) | null = null;
  #syncing = false;

  constructor(opts: RedisRouteBucketStoreOptions) {
    checkRedisUrl('RedisRouteBucketStore', opts.url);
    if (!(opts.timeoutMs > 0)) throw new RangeError(`RedisRouteBucketStore: timeoutMs must be > 0 (got ${opts.timeoutMs})`);
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#script = loadScript();
    this.#sha = createHash('sha1').update(this.#script).digest('hex');
    this.#link = new RedisLink({
      url: opts.url,
      connectWaitMs: 2_000,
      connectTimeoutMs: Math.max(2_000, opts.timeoutMs),
      // a failing sync is reported when it ends a healthy spell, not on every attempt
      reportEvery: (op) => op !== 'sync',
      onError: (op, err) => opts.onError?.(op, err),
    });
  }

  /** True while Redis does not answer: every instance enforces the limit from its own mirror. */
  get degraded(): boolean {
    return !this.#link.healthy;
  }

  async start(): Promise<void> {
    if (!(await this.#link.start())) return;
    this.#stopSync = every(this.#clock, this.#opts.syncMs ?? DEFAULT_ROUTE_SYNC_MS, () => void this.sync());
    await this.sync();
  }

  async close(): Promise<void> {
    this.#stopSync?.();
    this.#stopSync = null;
    this.#link.close();
  }

  take(key: string, cost: number, ratePerSec: number, capacity: number, floor: number, now: number): RouteTake {
    let m = this.#mirrors.get(key);
    if (m === undefined) {
      // Another instance may have drained the shared bucket already: while Redis answers, a new
      // mirror starts empty (fair clients borrow) and syncs at once; alone, it starts full.
      m = new Mirror(this.#link.healthy ? 0 : capacity, now, ratePerSec, capacity, floor);
      this.#mirrors.set(key, m);
      if (this.#link.healthy) void this.sync();
    }
    m.rate = ratePerSec;
    m.capacity = capacity;
    if (floor < m.floor) m.floor = floor;
    const out = takeFromBucket(m, cost, ratePerSec, capacity, floor, now, this.#result);
    if (out.allowed) m.consumed += cost;
    return out;
  }

  peek(key: string, ratePerSec: number, capacity: number, now: number): number | null {
    const m = this.#mirrors.get(key);
    return m === undefined ? null : peekBucket(m, ratePerSec, capacity, now);
  }

  /** Reports every route's local admissions and takes the shared bucket's tokens back (the timer calls it). */
  async sync(): Promise<void> {
    const client = this.#link.connected();
    if (this.#syncing || client === null) return;
    this.#syncing = true;
    try {
      const jobs: Promise<void>[] = [];
      for (const [key, m] of this.#mirrors) jobs.push(this.#syncOne(client, key, m));
      // Nothing to sync yet (no route has learned its limit): still find out whether Redis answers.
      if (jobs.length === 0) jobs.push(client.sendCommand(['PING']).then(() => undefined));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(reject, this.#opts.timeoutMs, new Error(`redis: route bucket sync timed out after ${this.#opts.timeoutMs}ms`));
      });
      try {
        await Promise.race([Promise.all(jobs), timeout]);
        this.#link.markHealthy(client);
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      this.#link.fail('sync', err);
    } finally {
      this.#syncing = false;
    }
  }

  async #syncOne(client: RedisClient, key: string, m: Mirror): Promise<void> {
    const sent = m.consumed;
    m.consumed = 0;
    const args = [String(sent), String(m.rate), String(m.capacity), String(m.floor)];
    const fullKey = this.#opts.keyPrefix + 'adaptive:' + key;
    let reply: unknown;
    try {
      reply = await client.sendCommand(['EVALSHA', this.#sha, '1', fullKey, ...args]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      reply = await client.sendCommand(['EVAL', this.#script, '1', fullKey, ...args]);
    }
    const shared = Number(reply);
    if (!Number.isFinite(shared)) throw new Error(`redis: unexpected route bucket reply ${JSON.stringify(reply)}`);
    // What this instance admitted while the sync was in flight is not in `shared` yet.
    m.tokens = shared - m.consumed;
    m.stamp = this.#clock.now();
  }
}
