/**
 * Live dashboard numbers from running per-minute counters: 30 one-minute slots updated in O(1)
 * on each completion, never by scanning the request log (the reference scanned it, so its rate
 * was capped at the log size).
 */
import type { Clock } from '../clock.js';

export const MINUTE_MS = 60_000;
/** Minutes of history in the sparklines; index SLOTS-1 is the current minute. */
export const SLOTS = 30;

class Slot {
  /** Epoch minute this slot holds (floor(ms / 60000)), -1 when never used. */
  minute = -1;
  requests = 0;
  errors = 0;
  latencySum = 0;

  reset(minute: number): void {
    this.minute = minute;
    this.requests = 0;
    this.errors = 0;
    this.latencySum = 0;
  }
}

/** The numbers of `GET /dashboard/api/metrics` that come from traffic. */
export interface TrafficNumbers {
  avg_latency_ms: number;
  error_rate: number;
  requests_per_minute: number;
  sparklines: { requests: number[]; latency: number[]; errors: number[] };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

export class LiveMetrics {
  readonly #clock: Clock;
  readonly #slots: Slot[] = Array.from({ length: SLOTS }, () => new Slot());

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Counts one finished request at the clock's current minute. O(1). */
  record(latencyMs: number, status: number): void {
    const minute = Math.floor(this.#clock.now() / MINUTE_MS);
    const slot = this.#slots[minute % SLOTS]!;
    if (slot.minute !== minute) slot.reset(minute);
    slot.requests++;
    slot.latencySum += latencyMs;
    if (status >= 500) slot.errors++;
  }

  #slot(minute: number): Slot | undefined {
    const s = this.#slots[minute % SLOTS]!;
    return s.minute === minute ? s : undefined;
  }

  /**
   * The last minute is a sliding 60 s window estimated from two slots: all of the current minute
   * plus the previous minute weighted by the part of it still inside the window (the usual
   * sliding-window-counter approximation; exact when traffic is even within a minute).
   * requests_per_minute is rounded to an integer; avg latency and error rate use the same window.
   */
  snapshot(): TrafficNumbers {
    const now = this.#clock.now();
    const minute = Math.floor(now / MINUTE_MS);
    const cur = this.#slot(minute);
    const prev = this.#slot(minute - 1);
    const w = 1 - (now - minute * MINUTE_MS) / MINUTE_MS;
    const requests = (cur?.requests ?? 0) + w * (prev?.requests ?? 0);
    const errors = (cur?.errors ?? 0) + w * (prev?.errors ?? 0);
    const latency = (cur?.latencySum ?? 0) + w * (prev?.latencySum ?? 0);

    const sReq = new Array<number>(SLOTS);
    const sLat = new Array<number>(SLOTS);
    const sErr = new Array<number>(SLOTS);
    for (let i = 0; i < SLOTS; i++) {
      const s = this.#slot(minute - (SLOTS - 1 - i));
      sReq[i] = s?.requests ?? 0;
      sErr[i] = s?.errors ?? 0;
      sLat[i] = s !== undefined && s.requests > 0 ? round3(s.latencySum / s.requests) : 0;
    }
    return {
      avg_latency_ms: requests > 0 ? round3(latency / requests) : 0,
      error_rate: requests > 0 ? Math.round((errors / requests) * 10_000) / 10_000 : 0,
      requests_per_minute: Math.round(requests),
      sparklines: { requests: sReq, latency: sLat, errors: sErr },
    };
  }
}
