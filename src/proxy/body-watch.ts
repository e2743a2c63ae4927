/**
 * The upstream body timeout (`server.upstream_body_timeout`): the longest silence allowed between
 * the chunks of a backend's response body, from its headers to its end. undici can keep it, but
 * it arms a new timer object for the body of every response when the body timeout differs from
 * the header timeout (it does by default: 5 min against 30 s), and that object stays in undici's
 * timer list until its next half-second tick: long enough to be promoted to the old generation on
 * every request (~35 bytes a request, measured with `--trace-gc-nvp`: the gateway promoted 194 bytes
 * a request against the floor's 105, and 118 without this timer).
 *
 * Here the exchanges whose body is streaming are kept in a list threaded through the exchanges
 * themselves (no allocation), each with the tick of a coarse clock at which it was last heard
 * from; one timer, running only while the list is not empty, advances the tick every quarter of
 * the timeout (at most every second) and ends the exchanges silent for the whole timeout. An
 * exchange is ended between 1 and 1.25 timeouts after its last chunk (or 1 s more, for timeouts
 * above 4 s): undici's own timer, with its half-second resolution, was not exact either.
 */
import { timersOf, type Clock, type TimerClock, type TimerHandle } from '../clock.js';

/** What the watch keeps on an exchange: its place in the list and when it was last heard from. */
export interface Watched {
  watchPrev: Watched | null;
  watchNext: Watched | null;
  /** The watch's tick when the exchange was last heard from, or -1 while it is not watched. */
  heardAt: number;
  /** The exchange was silent for the whole timeout; the watch has already let it go. */
  bodyTimedOut(): void;
}

export class BodyWatch {
  readonly timeoutMs: number;
  /** The current tick: an exchange heard from now gets it as its `heardAt`. */
  #tick = 0;
  readonly #intervalMs: number;
  /** Ticks between a last chunk and the end of an exchange (the timeout, plus the tick it was heard in). */
  readonly #ticks: number;
  readonly #timers: TimerClock;
  #head: Watched | null = null;
  #timer: TimerHandle | null = null;
  readonly #sweepBound = (): void => this.#sweep();

  constructor(timeoutMs: number, clock: Clock) {
    if (!(timeoutMs > 0)) throw new RangeError(`body timeout must be positive (got ${timeoutMs})`);
    this.timeoutMs = timeoutMs;
    this.#intervalMs = Math.max(1, Math.min(1_000, Math.ceil(timeoutMs / 4)));
    this.#ticks = Math.ceil(timeoutMs / this.#intervalMs) + 1;
    this.#timers = timersOf(clock);
  }

  /** Starts watching `x` (its body begins now). */
  add(x: Watched): void {
    if (x.heardAt >= 0) return;
    x.heardAt = this.#tick;
    x.watchPrev = null;
    x.watchNext = this.#head;
    if (this.#head !== null) this.#head.watchPrev = x;
    this.#head = x;
    this.#timer ??= this.#timers.setTimeout(this.#sweepBound, this.#intervalMs);
  }

  /** `x` was heard from (a chunk of its body, or its client read on): its silence starts again. */
  heard(x: Watched): void {
    if (x.heardAt >= 0) x.heardAt = this.#tick;
  }

  /** Stops watching `x` (its body ended, or it failed); nothing when it is not watched. */
  remove(x: Watched): void {
    if (x.heardAt < 0) return;
    x.heardAt = -1;
    const prev = x.watchPrev;
    const next = x.watchNext;
    if (prev === null) this.#head = next;
    else prev.watchNext = next;
    if (next !== null) next.watchPrev = prev;
    x.watchPrev = null;
    x.watchNext = null;
  }

  /** Exchanges being watched (for tests and operators). */
  get size(): number {
    let n = 0;
    for (let x = this.#head; x !== null; x = x.watchNext) n++;
    return n;
  }

  #sweep(): void {
    this.#timer = null;
    const tick = ++this.#tick;
    let expired: Watched[] | null = null;
    for (let x = this.#head; x !== null; x = x.watchNext) {
      if (tick - x.heardAt >= this.#ticks) (expired ??= []).push(x);
    }
    if (expired !== null) {
      for (const x of expired) {
        // Ending one exchange can end others (the client's connection closes): skip those.
        if (x.heardAt < 0) continue;
        this.remove(x);
        x.bodyTimedOut();
      }
    }
    if (this.#head !== null) this.#timer = this.#timers.setTimeout(this.#sweepBound, this.#intervalMs);
  }
}
