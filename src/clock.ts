/**
 * Time source for every time-dependent part (buckets, breakers, health hysteresis, analyzers),
 * so tests run in simulated time. Production uses `systemClock`.
 */

/** Milliseconds since the epoch, like `Date.now()`. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: Date.now };

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = 1_700_000_000_000) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}
