/**
 * Token buckets shared by every gateway instance through Redis: one atomic Lua script per take.
 * Every take is bounded by a timeout; when Redis is slow or down the store is `degraded` and
 * answers from a local MemoryStore (fail-open) or refuses with `store_unavailable` (fail-closed),
 * without waiting, until a background probe sees Redis healthy again.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createClient } from 'redis';
import { GatewayError } from '../errors.js';
import type { MemoryStore } from './memory.js';
import type { RateLimitStore, StoreErrorHook, TakeResult } from './types.js';

const DEFAULT_PROBE_INTERVAL_MS = 500;
const DEFAULT_CONNECT_WAIT_MS = 2_000;
const DEFAULT_QUEUE_MAX = 10_000;
const RECONNECT_MAX_DELAY_MS = 2_000;

/** Read once per process, next to this module: the build copies the .lua files from src/ into dist/. */
let scriptSource: string | undefined;
function loadScript(): string {
  scriptSource ??= readFileSync(new URL('./token-bucket.lua', import.meta.url), 'utf8');
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
}

type Client = ReturnType<typeof createClient>;

/** Reconnect forever with capped exponential backoff and jitter; never give up, never crash. */
function reconnectDelay(retries: number): number {
  return Math.min(50 * 2 ** Math.min(retries, 10), RECONNECT_MAX_DELAY_MS) + Math.floor(Math.random() * 50);
}

export class RedisStore implements RateLimitStore {
  /** Wired by the owner (e.g. to a Prometheus counter). Must not throw. */
  onError: StoreErrorHook;

  readonly #url: string;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #failClosed: boolean;
  readonly #fallback: MemoryStore;
  readonly #probeIntervalMs: number;
  readonly #connectWaitMs: number;
  readonly #queueMax: number;
  readonly #script: string;
  readonly #sha: string;

  #client: Client | null = null;
  /** Redis answered the last take or probe; takes go to Redis only while this holds. */
  #healthy = false;
  #closed = false;
  #probing: Promise<void> | null = null;
  #probeTimer: NodeJS.Timeout | null = null;

  constructor(opts: RedisStoreOptions) {
    if (!/^rediss?:\/\//.test(opts.url)) throw new TypeError('RedisStore: url must be a redis:// or rediss:// URL');
    if (!(opts.timeoutMs > 0)) throw new RangeError(`RedisStore: timeoutMs must be > 0 (got ${opts.timeoutMs})`);
    this.#url = opts.url;
    this.#prefix = opts.keyPrefix;
    this.#timeoutMs = opts.timeoutMs;
    this.#failClosed = opts.failClosed;
    this.#fallback = opts.fallback;
    this.#probeIntervalMs = opts.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.#connectWaitMs = opts.connectWaitMs ?? DEFAULT_CONNECT_WAIT_MS;
    this.#queueMax = opts.queueMax ?? DEFAULT_QUEUE_MAX;
    this.onError = opts.onError ?? (() => {});
    this.#script = loadScript();
    this.#sha = createHash('sha1').update(this.#script).digest('hex');
  }

  /** True while Redis is failing (or not connected yet) and answers come from the fallback. */
  get degraded(): boolean {
    return !this.#healthy;
  }

  /**
   * Connects, waiting at most `connectWaitMs`. Never throws because Redis is down: the store then
   * starts degraded and keeps reconnecting in the background.
   */
  async start(): Promise<void> {
    if (this.#client !== null || this.#closed) return;
    const client = createClient({
      url: this.#url,
      disableOfflineQueue: true,
      commandsQueueMaxLength: this.#queueMax,
      socket: { connectTimeout: Math.max(this.#connectWaitMs, this.#timeoutMs), reconnectStrategy: reconnectDelay },
    });
    this.#client = client;
    client.on('error', (err: unknown) => {
      this.#healthy = false;
      this.#report('connection', err);
    });
    client.on('ready', () => void this.#probe());
    const connecting = client.connect().then(
      () => true,
      (err: unknown) => {
        this.#report('connect', err);
        return false;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, this.#connectWaitMs, false);
    });
    const connected = await Promise.race([connecting, waited]);
    clearTimeout(timer);
    if (this.#closed) return; // closed while connecting
    if (connected) await this.#probe();
    else this.#report('connect', new Error(`redis: not connected after ${this.#connectWaitMs}ms, continuing degraded`));
    this.#probeTimer = setInterval(() => {
      if (!this.#healthy) void this.#probe();
    }, this.#probeIntervalMs);
    this.#probeTimer.unref();
  }

  /** Safe before, during or after start, and more than once. Does not wait for a stalled Redis. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#healthy = false;
    if (this.#probeTimer !== null) clearInterval(this.#probeTimer);
    this.#probeTimer = null;
    const client = this.#client;
    this.#client = null;
    if (client !== null && client.isOpen) client.destroy();
    await this.#fallback.close();
  }

  take(key: string, capacity: number, refillPerSec: number, cost = 1): TakeResult | Promise<TakeResult> {
    const client = this.#client;
    if (!this.#healthy || client === null || !client.isReady) return this.#local(key, capacity, refillPerSec, cost);
    return new Promise<TakeResult>((resolve, reject) => {
      let done = false;
      const fail = (err: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#markFailing('take', err);
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
  async #eval(client: Client, key: string, capacity: string, rate: string, cost: string): Promise<unknown> {
    try {
      return await client.sendCommand(['EVALSHA', this.#sha, '1', key, capacity, rate, cost]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await client.sendCommand(['EVAL', this.#script, '1', key, capacity, rate, cost]);
    }
  }

  #markFailing(op: string, err: unknown): void {
    if (this.#closed) return;
    this.#healthy = false;
    this.#report(op, err);
  }

  /** One PING at a time (callers share the one in flight), bounded by the take timeout; success clears `degraded`. */
  #probe(): Promise<void> {
    this.#probing ??= this.#ping().finally(() => {
      this.#probing = null;
    });
    return this.#probing;
  }

  async #ping(): Promise<void> {
    const client = this.#client;
    if (this.#closed || client === null || !client.isReady) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(reject, this.#timeoutMs, new Error(`redis: probe timed out after ${this.#timeoutMs}ms`));
      });
      await Promise.race([client.sendCommand(['PING']), timeout]);
      if (!this.#closed && this.#client === client) this.#healthy = true;
    } catch (err) {
      this.#markFailing('probe', err);
    } finally {
      clearTimeout(timer);
    }
  }

  #report(op: string, err: unknown): void {
    if (this.#closed) return;
    try {
      this.onError(op, err);
    } catch {
      // a broken hook must never break rate limiting
    }
  }
}

function parseReply(reply: unknown): TakeResult | null {
  if (!Array.isArray(reply) || reply.length !== 4) return null;
  const [allowed, remaining, retryAfterMs, resetMs] = reply as unknown[];
  if (typeof allowed !== 'number' || typeof remaining !== 'number' || typeof retryAfterMs !== 'number' || typeof resetMs !== 'number') return null;
  return { allowed: allowed === 1, remaining, retryAfterMs, resetMs };
}
