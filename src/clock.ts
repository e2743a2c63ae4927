/**
 * Time source for every time-dependent part (buckets, breakers, health hysteresis, analyzers,
 * restart backoff), so tests run in simulated time. Production uses `systemClock`.
 */

/** An opaque timer handle, as returned by `Clock.setTimeout`. */
export type TimerHandle = unknown;

/**
 * Milliseconds since the epoch, like `Date.now()`, and optionally timers that run in the same time.
 * Parts that wait (restart backoff, probe intervals) take their timers from `timersOf(clock)`, so a
 * ManualClock drives them too; a clock with only `now()` gets real (unref'd) timers.
 */
export interface Clock {
  now(): number;
  /** Runs `fn` once, `ms` from now in this clock's time. The timer never keeps the process alive. */
  setTimeout?(fn: () => void, ms: number): TimerHandle;
  clearTimeout?(handle: TimerHandle): void;
}

/** A clock that has timers. */
export interface TimerClock extends Clock {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

function realSetTimeout(fn: () => void, ms: number): TimerHandle {
  const t = setTimeout(fn, ms);
  t.unref();
  return t;
}

function realClearTimeout(handle: TimerHandle): void {
  clearTimeout(handle as NodeJS.Timeout);
}

export const systemClock: TimerClock = { now: Date.now, setTimeout: realSetTimeout, clearTimeout: realClearTimeout };

/** The clock's own timers, or real ones (unref'd) when it has none. */
export function timersOf(clock: Clock): TimerClock {
  if (typeof clock.setTimeout === 'function' && typeof clock.clearTimeout === 'function') return clock as TimerClock;
  return { now: () => clock.now(), setTimeout: realSetTimeout, clearTimeout: realClearTimeout };
}

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock tests move by hand. Its timers fire only inside `advance()`/`set()`, in due order, each
 * with `now()` at its due time: what a part schedules is deterministic and can be asserted.
 */
export class ManualClock implements TimerClock {
  #now: number;
  #timers = new Set<ManualTimer>();
  #seq = 0;
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#runUntil(this.#now + ms);
  }
  /** Jumps to `ms` (firing timers due on the way); a jump back in time fires nothing. */
  set(ms: number): void {
    if (ms < this.#now) this.#now = ms;
    else this.#runUntil(ms);
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.add(timer);
    return timer;
  }
  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as ManualTimer);
  }
  /** Due times (absolute ms) of the timers still pending, earliest first. */
  pendingTimers(): number[] {
    return [...this.#timers].map((t) => t.at).sort((a, b) => a - b);
  }
  /** Milliseconds until the next pending timer, or null when none is pending. */
  nextTimerIn(): number | null {
    const next = this.pendingTimers()[0];
    return next === undefined ? null : next - this.#now;
  }

  #runUntil(target: number): void {
    for (;;) {
      let next: ManualTimer | null = null;
      for (const t of this.#timers) if (t.at <= target && (next === null || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === null) break;
      this.#timers.delete(next);
      if (next.at > this.#now) this.#now = next.at;
      next.fn();
    }
    if (target > this.#now) this.#now = target;
  }
}

/**
 * Runs `fn` every `ms` on `clock`'s timers (a ManualClock drives it in simulated time); returns the
 * function that stops it. Each run is scheduled when the previous one was, so a slow `fn` (async,
 * not awaited) never stacks timers.
 */
export function every(clock: Clock, ms: number, fn: () => unknown): () => void {
  const timers = timersOf(clock);
  let handle: TimerHandle | null = null;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    handle = timers.setTimeout(tick, ms);
    fn();
  };
  handle = timers.setTimeout(tick, ms);
  return () => {
    stopped = true;
    if (handle !== null) timers.clearTimeout(handle);
    handle = null;
  };
}
