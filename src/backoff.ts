/**
 * Restart backoff for things that crash: managed processes (src/procman) and gateway workers
 * (src/cluster). Each crash in a row doubles the delay, up to `maxMs`; one that had run for
 * `stableMs` or more starts the streak over. Pure arithmetic on how long the thing ran: the
 * caller measures that on its injected clock and schedules the restart with the clock's timers.
 */
export interface BackoffOptions {
  /** Delay after the first crash of a streak. */
  firstMs: number;
  maxMs: number;
  /** A run at least this long was not a crash loop: the streak starts over. */
  stableMs: number;
  /**
   * Delay after a crash that ended a stable run, which then starts no streak (a gateway worker
   * that served for a while is replaced at once: 0). Unset: that crash is the first of a new
   * streak and waits `firstMs`, the next one twice that.
   */
  afterStableMs?: number;
}

export class Backoff {
  readonly #opts: BackoffOptions;
  /** Crashes in a row that came before `stableMs`. */
  #streak = 0;

  constructor(opts: BackoffOptions) {
    this.#opts = opts;
  }

  /** The delay before restarting something that crashed after running `ranMs`. */
  next(ranMs: number): number {
    const o = this.#opts;
    if (ranMs >= o.stableMs) {
      this.#streak = 0;
      if (o.afterStableMs !== undefined) return o.afterStableMs;
    }
    this.#streak++;
    return Math.min(o.maxMs, o.firstMs * 2 ** (this.#streak - 1));
  }
}
