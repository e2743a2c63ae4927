/**
 * Active health checks: every backend probed concurrently each interval (GET health_path,
 * healthy on 2xx/3xx), with healthy/unhealthy thresholds as hysteresis. A backend that was never
 * probed is "unknown" and its first probe decides at once.
 */
import type { Backend } from '../balancer/index.js';
import { systemClock, timersOf, type Clock, type TimerClock, type TimerHandle } from '../clock.js';
import type { HealthConfig } from '../config/index.js';

export interface BackendHealth {
  url: string;
  healthy: boolean;
  state: 'unknown' | 'healthy' | 'unhealthy';
  last_check: string;
  last_error: string | null;
  consecutive_successes: number;
  consecutive_failures: number;
}

interface Tracked {
  backend: Backend;
  successes: number;
  failures: number;
  lastCheck: number;
  lastError: string | null;
  probing: boolean;
  /** Fast probing after a managed process started, until its first success or the deadline. */
  fastUntil: number;
  /** Just (re)started: the first success counts as healthy at once, whatever the threshold. */
  startup: boolean;
}

export interface HealthCheckerOptions {
  config: HealthConfig;
  clock?: Clock;
  /** Called on every flip (including the first verdict of an unknown backend). */
  onChange?: (backend: Backend, healthy: boolean) => void;
}

const FAST_PROBE_MS = 200;

export class HealthChecker {
  readonly #config: HealthConfig;
  readonly #clock: TimerClock;
  #listeners: ((backend: Backend, healthy: boolean) => void)[] = [];
  readonly #tracked = new Map<string, Tracked>();
  /** Timers come from the clock, so a ManualClock drives the probe schedule in tests. */
  #timer: TimerHandle | null = null;
  #fastTimer: TimerHandle | null = null;
  #closed = false;

  constructor(opts: HealthCheckerOptions) {
    this.#config = opts.config;
    this.#clock = timersOf(opts.clock ?? systemClock);
    if (opts.onChange) this.#listeners.push(opts.onChange);
  }

  /** Registers a backend (idempotent by URL). */
  add(backend: Backend): void {
    if (this.#tracked.has(backend.url)) return;
    this.#tracked.set(backend.url, { backend, successes: 0, failures: 0, lastCheck: 0, lastError: null, probing: false, fastUntil: 0, startup: false });
  }

  /** Stops probing a backend (a reload dropped it); a probe in flight finishes unrecorded. */
  remove(backend: Backend): void {
    if (this.#tracked.get(backend.url)?.backend === backend) this.#tracked.delete(backend.url);
  }

  get backends(): Backend[] {
    return [...this.#tracked.values()].map((t) => t.backend);
  }

  /** Probes everything now, then every interval. */
  start(): void {
    if (this.#timer !== null || this.#closed) return;
    void this.checkAll();
    this.#scheduleRound();
  }

  #scheduleRound(): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      if (this.#closed) return;
      this.#scheduleRound();
      void this.checkAll();
    }, this.#config.interval);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    if (this.#fastTimer !== null) this.#clock.clearTimeout(this.#fastTimer);
    this.#timer = null;
    this.#fastTimer = null;
  }

  /** Runs one round of probes concurrently; resolves when all finished. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.#tracked.values()].map((t) => this.#probe(t)));
  }

  /** Probes one backend now (e.g. right after its process started). */
  async check(url: string): Promise<boolean | null> {
    const t = this.#tracked.get(url);
    if (!t) return null;
    await this.#probe(t);
    return t.backend.healthy;
  }

  /**
   * A managed process just started: probe its backends every 200ms until they answer (at most
   * `windowMs`), so a fresh backend serves within moments instead of one interval later.
   */
  watchStartup(urls: string[], windowMs = 15_000): void {
    const until = this.#clock.now() + windowMs;
    for (const url of urls) {
      const t = this.#tracked.get(url);
      if (t) {
        t.fastUntil = until;
        t.startup = true;
      }
    }
    if (this.#fastTimer !== null || this.#closed) return;
    this.#scheduleFast();
  }

  #scheduleFast(): void {
    this.#fastTimer = this.#clock.setTimeout(() => {
      this.#fastTimer = null;
      if (this.#closed) return;
      const now = this.#clock.now();
      let any = false;
      for (const t of this.#tracked.values()) {
        if (t.fastUntil > now) {
          any = true;
          void this.#probe(t);
        }
      }
      if (any) this.#scheduleFast();
    }, FAST_PROBE_MS);
  }

  /** Passive signal from the proxy: a connection was refused. Counts as a failed probe. */
  reportConnectFailure(backend: Backend): void {
    const t = this.#tracked.get(backend.url);
    if (t) this.#record(t, false, 'connection refused by backend');
  }

  /** Records a probe result, applying the thresholds. Exposed for tests of the hysteresis. */
  record(url: string, ok: boolean, error: string | null = null): void {
    const t = this.#tracked.get(url);
    if (t) this.#record(t, ok, error);
  }

  #record(t: Tracked, ok: boolean, error: string | null): void {
    t.lastCheck = this.#clock.now();
    const b = t.backend;
    if (ok) {
      t.successes++;
      t.failures = 0;
      t.lastError = null;
      t.fastUntil = 0;
      const decisive = b.healthy === null || t.startup || t.successes >= this.#config.healthy_threshold;
      t.startup = false;
      if (b.healthy !== true && decisive) this.#flip(b, true);
    } else {
      t.failures++;
      t.successes = 0;
      t.lastError = error;
      if (b.healthy !== false && (b.healthy === null || t.failures >= this.#config.unhealthy_threshold)) this.#flip(b, false);
    }
  }

  /** Subscribes to health flips; returns the unsubscribe function. */
  onChange(listener: (backend: Backend, healthy: boolean) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  #flip(b: Backend, healthy: boolean): void {
    b.healthy = healthy;
    if (this.#closed) return;
    for (const l of this.#listeners) l(b, healthy);
  }

  async #probe(t: Tracked): Promise<void> {
    if (t.probing || this.#closed) return;
    t.probing = true;
    try {
      const timeout = this.#config.timeout;
      const { statusCode, body } = await t.backend.pool.request({
        path: t.backend.basePath + t.backend.healthPath,
        method: 'GET',
        headers: { 'user-agent': 'microgate-health/1', 'x-health-check': '1' },
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      await body.dump({ limit: 64 * 1024 }).catch(() => {});
      this.#record(t, statusCode >= 200 && statusCode < 400, statusCode >= 400 ? `status ${statusCode}` : null);
    } catch (err) {
      this.#record(t, false, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
    } finally {
      t.probing = false;
    }
  }

  /** The per-backend view for /health (reference shape plus state and counters). */
  snapshot(): Record<string, BackendHealth & { circuit: string }> {
    const out: Record<string, BackendHealth & { circuit: string }> = {};
    for (const t of this.#tracked.values()) {
      const b = t.backend;
      out[b.url] = {
        url: b.url,
        healthy: b.healthy !== false,
        state: b.healthy === null ? 'unknown' : b.healthy ? 'healthy' : 'unhealthy',
        last_check: t.lastCheck === 0 ? '0001-01-01T00:00:00Z' : new Date(t.lastCheck).toISOString(),
        last_error: t.lastError,
        consecutive_successes: t.successes,
        consecutive_failures: t.failures,
        circuit: b.breaker?.state ?? 'closed',
      };
    }
    return out;
  }
}
