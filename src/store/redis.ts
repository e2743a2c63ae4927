/**
 * Token buckets shared by every gateway instance through Redis: one atomic Lua script per take.
 * Every take is bounded by a timeout; when Redis is slow or down the store is `degraded` and
 * answers from a local MemoryStore (fail-open) or refuses with `store_unavailable` (fail-closed),
 * without waiting, until a background probe sees Redis healthy again.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import { GatewayError } from '../errors.js';
import { bucketScript } from './lua.js';
import type { MemoryStore } from './memory.js';
import { RedisLink, type RedisClient } from './redis-link.js';
import { checkRedisUrl } from './redis-url.js';
import type { RateLimitStore, StoreErrorHook, TakeResult } from './types.js';

const DEFAULT_PROBE_INTERVAL_MS = 500;
const DEFAULT_CONNECT_WAIT_MS = 2_000;
const DEFAULT_QUEUE_MAX = 10_000;

/** Read once per process, next to this module (with refill.lua in front, see lua.ts). */
let scriptSource: string | undefined;
function loadScript(): string {
  scriptSource ??= bucketScript(new URL('./token-bucket.lua', import.meta.url));
  return scriptSource;
}

export interface RedisStoreOptions {
  /** `redis://` or `rediss://` URL. */
  url: string;
  /** Prepended to every bucket key. */
  keyPrefix: string;
  /** Longest a take may wait for Redis before answering from the fallback (ms). */
  timeoutMs: number;
  /** When Redis fails, refuse with `store_unavailable` instead of answering from the fallback. */
  failClosed: boolean;
  /** Local buckets used while Redis is failing. */
  fallback: MemoryStore;
  onError?: StoreErrorHook;
  /** While degraded, how often to check whether Redis answers again (ms). Default 500. */
  probeIntervalMs?: number;
  /** How long `start()` waits for the first connection before going on degraded (ms). Default 2000. */
  connectWaitMs?: number;
  /** Cap on commands queued or awaiting a reply; beyond it takes fail fast. Default 10,000. */
  queueMax?: number;
  /**
   * The clock whose timers schedule reconnect attempts and probes (tests run them in simulated
   * time). Default: real timers. `createStore` does not pass the gateway's clock: a gateway under
   * test often runs its buckets on a manual clock while expecting Redis to come back by itself.
   */
  clock?: Clock;
}

export class RedisStore implements RateLimitStore {
  /** Wired by the owner (e.g. to a Prometheus counter). Must not throw. */
  onError: StoreErrorHook;

  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #failClosed: boolean;
  readonly #fallback: MemoryStore;
  readonly #script: string;
  readonly #sha: string;
  /** The connection; takes go to Redis only while it is healthy (Redis answered the last take or probe). */
  readonly #link: RedisLink;

  constructor(opts: RedisStoreOptions) {
    checkRedisUrl('RedisStore', opts.url);
    if (!(opts.timeoutMs > 0)) throw new RangeError(`RedisStore: timeoutMs must be > 0 (got ${opts.timeoutMs})`);
    this.#prefix = opts.keyPrefix;
    this.#timeoutMs = opts.timeoutMs;
    this.#failClosed = opts.failClosed;
    this.#fallback = opts.fallback;
    this.onError = opts.onError ?? (() => {});
    const connectWaitMs = opts.connectWaitMs ?? DEFAULT_CONNECT_WAIT_MS;
    this.#link = new RedisLink({
      url: opts.url,
      connectWaitMs,
      connectTimeoutMs: Math.max(connectWaitMs, opts.timeoutMs),
      queueMax: opts.queueMax ?? DEFAULT_QUEUE_MAX,
      reconnectJitterMs: 50,
      probeIntervalMs: opts.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS,
      probeTimeoutMs: opts.timeoutMs,
      reportSlowConnect: true,
      clock: opts.clock,
      // read at call time: the owner may rewire `onError` after construction
      onError: (op, err) => this.onError(op, err),
    });
    this.#script = loadScript();
    this.#sha = createHash('sha1').update(this.#script).digest('hex');
  }

  /** True while Redis is failing (or not connected yet) and answers come from the fallback. */
  get degraded(): boolean {
    return !this.#link.healthy;
  }

  /**
   * Connects, waiting at most `connectWaitMs`. Never throws because Redis is down: the store then
   * starts degraded and keeps reconnecting in the background.
   */
  async start(): Promise<void> {
    await this.#link.start();
  }

  /** Safe before, during or after start, and more than once. Does not wait for a stalled Redis. */
  async close(): Promise<void> {
    this.#link.close();
    await this.#fallback.close();
  }

  take(key: string, capacity: number, refillPerSec: number, cost = 1): TakeResult | Promise<TakeResult> {
    const client = this.#link.ready();
    if (client === null) return this.#local(key, capacity, refillPerSec, cost);
    return new Promise<TakeResult>((resolve, reject) => {
      let done = false;
      const fail = (err: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#link.fail('take', err);
        try {
          resolve(this.#local(key, capacity, refillPerSec, cost));
        } catch (e) {
          reject(e);
        }
      };
      const timer = setTimeout(() => fail(new Error(`redis: take timed out after ${this.#timeoutMs}ms`)), this.#timeoutMs);
      this.#eval(client, this.#prefix + key, String(capacity), String(refillPerSec), String(cost)).then((reply) => {
        if (done) return;
        const result = parseReply(reply);
        if (result === null) return fail(new Error(`redis: unexpected script reply ${JSON.stringify(reply)}`));
        done = true;
        clearTimeout(timer);
        resolve(result);
      }, fail);
    });
  }

  /** The answer while Redis is failing: local buckets, or a refusal when fail-closed. */
  #local(key: string, capacity: number, refillPerSec: number, cost: number): TakeResult {
    if (this.#failClosed) throw new GatewayError('store_unavailable');
    return this.#fallback.take(key, capacity, refillPerSec, cost);
  }

  /** EVALSHA, falling back to EVAL (which also caches the script) when Redis lost it, e.g. after a restart. */
  async #eval(client: RedisClient, key: string, capacity: string, rate: string, cost: string): Promise<unknown> {
    try {
      return await client.sendCommand(['EVALSHA', this.#sha, '1', key, capacity, rate, cost]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await client.sendCommand(['EVAL', this.#script, '1', key, capacity, rate, cost]);
    }
  }
}

function parseReply(reply: unknown): TakeResult | null {
  if (!Array.isArray(reply) || reply.length !== 4) return null;
  const [allowed, remaining, retryAfterMs, resetMs] = reply as unknown[];
  if (typeof allowed !== 'number' || typeof remaining !== 'number' || typeof retryAfterMs !== 'number' || typeof resetMs !== 'number') return null;
  return { allowed: allowed === 1, remaining, retryAfterMs, resetMs };
}
