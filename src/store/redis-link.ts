/**
 * One Redis connection (./resp-client.ts) as the gateway's Redis users need it: connect without waiting longer
 * than `connectWaitMs`, reconnect forever with capped backoff, a `healthy` flag that only a
 * successful answer sets, one bounded PING at a time to find Redis again, and error reports to a
 * hook that must never break the caller. What is sent over the connection is the owner's business.
 */
import { every, systemClock, type Clock } from '../clock.js';
import type { RespClient } from './resp-client.js';

/** The connection the link hands its owners: they send commands with `sendCommand`. */
export type RedisClient = RespClient;

const RECONNECT_MAX_DELAY_MS = 2_000;

export interface RedisLinkOptions {
  /** `redis://` or `rediss://` URL. */
  url: string;
  /** How long `start()` waits for the first connection before going on unhealthy (ms). */
  connectWaitMs: number;
  /** Longest a connection attempt may take, TLS and AUTH included (ms). */
  connectTimeoutMs: number;
  /** Cap on commands awaiting a reply; a command beyond it fails at once. Unset: none. */
  queueMax?: number;
  /** Random extra delay, up to this many ms, added to every reconnect backoff. Default 0. */
  reconnectJitterMs?: number;
  /**
   * While unhealthy, how often to PING (ms); a PING also follows every (re)connection. Unset: the
   * link never probes, and the owner calls `markHealthy()` when its own traffic gets through.
   */
  probeIntervalMs?: number;
  /** Longest a PING may wait (ms). Required with `probeIntervalMs`. */
  probeTimeoutMs?: number;
  /** `start()` reports `connect` when the first connection takes longer than `connectWaitMs`. */
  reportSlowConnect?: boolean;
  /** Whether every failure of `op` is reported; otherwise only the one that ends a healthy spell. Default: every. */
  reportEvery?: (op: string) => boolean;
  /** The error hook; a throwing hook is ignored. Nothing is reported after `close()`. */
  onError: (op: string, err: unknown) => void;
  /**
   * The clock whose timers schedule reconnect attempts and probes, so tests run them in simulated
   * time. Default: real, unref'd timers. The waits that bound real I/O (`connectWaitMs`, a connect
   * attempt, a PING) stay on real time.
   */
  clock?: Clock;
}

/** Reconnect forever with capped exponential backoff (and optional jitter); never give up, never crash. */
function reconnectStrategy(jitterMs: number): (retries: number) => number {
  return (retries) => Math.min(50 * 2 ** Math.min(retries, 10), RECONNECT_MAX_DELAY_MS) + (jitterMs > 0 ? Math.floor(Math.random() * jitterMs) : 0);
}

export class RedisLink {
  readonly #opts: RedisLinkOptions;
  #client: RedisClient | null = null;
  /** Redis answered the last command or probe; owners send only while this holds. */
  #healthy = false;
  #closed = false;
  /** start() is loading the client module (a second start() meanwhile does nothing). */
  #loading = false;
  #probing: Promise<void> | null = null;
  /** Stops the probe schedule (null when none runs). */
  #stopProbes: (() => void) | null = null;

  constructor(opts: RedisLinkOptions) {
    if (opts.probeIntervalMs !== undefined && !(opts.probeTimeoutMs! > 0)) throw new RangeError('RedisLink: probeTimeoutMs must be > 0 with probeIntervalMs');
    this.#opts = opts;
  }

  get healthy(): boolean {
    return this.#healthy;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The client while it is connected and Redis is healthy, else null. */
  ready(): RedisClient | null {
    const client = this.#client;
    if (!this.#healthy || client === null || !client.isReady) return null;
    return client;
  }

  /** The client while it is connected, healthy or not, else null. */
  connected(): RedisClient | null {
    const client = this.#client;
    if (this.#closed || client === null || !client.isReady) return null;
    return client;
  }

  /**
   * Connects, waiting at most `connectWaitMs`. Never throws because Redis is down: the link then
   * starts unhealthy and keeps reconnecting in the background. False when it had started already
   * or was closed meanwhile (nothing more to set up).
   */
  async start(): Promise<boolean> {
    if (this.#client !== null || this.#closed || this.#loading) return false;
    // The client is loaded on first use: a gateway without cluster.redis_url never loads it.
    this.#loading = true;
    let Client: typeof RespClient;
    try {
      Client = (await import('./resp-client.js')).RespClient;
    } finally {
      this.#loading = false;
    }
    if (this.#closed) return false;
    const opts = this.#opts;
    const client = new Client({
      url: opts.url,
      connectTimeoutMs: opts.connectTimeoutMs,
      reconnectDelay: reconnectStrategy(opts.reconnectJitterMs ?? 0),
      clock: opts.clock,
      ...(opts.queueMax !== undefined ? { queueMax: opts.queueMax } : {}),
    });
    this.#client = client;
    client.on('error', (err: unknown) => this.fail('connection', err));
    if (opts.probeIntervalMs !== undefined) client.on('ready', () => void this.probe());
    const connecting = client.connect().then(
      () => true,
      (err: unknown) => {
        this.fail('connect', err);
        return false;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, opts.connectWaitMs, false);
    });
    const connected = await Promise.race([connecting, waited]);
    clearTimeout(timer);
    if (this.#closed) return false; // closed while connecting
    if (connected) {
      if (opts.probeIntervalMs !== undefined) await this.probe();
    } else if (opts.reportSlowConnect === true) {
      this.#report('connect', new Error(`redis: not connected after ${opts.connectWaitMs}ms, continuing degraded`));
    }
    if (opts.probeIntervalMs !== undefined) {
      this.#stopProbes = every(opts.clock ?? systemClock, opts.probeIntervalMs, () => {
        if (!this.#healthy) void this.probe();
      });
    }
    return true;
  }

  /** Safe before, during or after start, and more than once. Does not wait for a stalled Redis. */
  close(): void {
    this.#closed = true;
    this.#healthy = false;
    this.#stopProbes?.();
    this.#stopProbes = null;
    const client = this.#client;
    this.#client = null;
    if (client !== null && client.isOpen) client.destroy();
  }

  /** The owner's own command got an answer from `client`: Redis is healthy (unless closed or replaced since). */
  markHealthy(client: RedisClient): void {
    if (!this.#closed && this.#client === client) this.#healthy = true;
  }

  /** A command failed or timed out: unhealthy until a probe (or the owner) sees Redis answer again. */
  fail(op: string, err: unknown): void {
    if (this.#closed) return;
    const was = this.#healthy;
    this.#healthy = false;
    if (was || (this.#opts.reportEvery?.(op) ?? true)) this.#report(op, err);
  }

  /** One PING at a time (callers share the one in flight), bounded by `probeTimeoutMs`; success sets `healthy`. */
  probe(): Promise<void> {
    this.#probing ??= this.#ping().finally(() => {
      this.#probing = null;
    });
    return this.#probing;
  }

  async #ping(): Promise<void> {
    const client = this.connected();
    if (client === null) return;
    const limit = this.#opts.probeTimeoutMs!;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(reject, limit, new Error(`redis: probe timed out after ${limit}ms`));
      });
      await Promise.race([client.sendCommand(['PING']), timeout]);
      this.markHealthy(client);
    } catch (err) {
      this.fail('probe', err);
    } finally {
      clearTimeout(timer);
    }
  }

  #report(op: string, err: unknown): void {
    if (this.#closed) return;
    try {
      this.#opts.onError(op, err);
    } catch {
      // a broken hook must never break the caller
    }
  }
}
