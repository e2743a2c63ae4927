/**
 * The worker's completion records, sent to the primary in batches: every `intervalMs` or every
 * `maxBatch` records, whichever comes first. Never one message per request.
 */
import { systemClock, timersOf, type Clock, type TimerClock, type TimerHandle } from '../clock.js';
import type { CompletionRecord } from '../events/index.js';
import type { WorkerToPrimary } from './messages.js';

export const DEFAULT_BATCH_INTERVAL_MS = 100;
export const DEFAULT_MAX_BATCH = 512;
const NO_HEADERS = Object.freeze({});

export class RecordBatcher {
  readonly #send: (msg: WorkerToPrimary) => void;
  readonly #intervalMs: number;
  readonly #maxBatch: number;
  readonly #withHeaders: boolean;
  #batch: CompletionRecord[] = [];
  readonly #clock: TimerClock;
  #timer: TimerHandle | null = null;
  /** The completion listener: cheap, synchronous, never throws. */
  readonly onCompletion = (record: CompletionRecord): void => {
    // Headers are most of a record's bytes; only the dashboard's request log shows them.
    this.#batch.push(this.#withHeaders ? record : { ...record, requestHeaders: NO_HEADERS, responseHeaders: undefined });
    if (this.#batch.length >= this.#maxBatch) this.flush();
    else if (this.#timer === null) {
      this.#timer = this.#clock.setTimeout(this.#tick, this.#intervalMs);
      (this.#timer as { unref?: () => void }).unref?.();
    }
  };
  readonly #tick = (): void => {
    this.#timer = null;
    this.flush();
  };

  constructor(opts: { send: (msg: WorkerToPrimary) => void; intervalMs?: number; maxBatch?: number; withHeaders?: boolean; clock?: Clock }) {
    this.#clock = timersOf(opts.clock ?? systemClock);
    this.#withHeaders = opts.withHeaders ?? true;
    this.#send = opts.send;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_BATCH_INTERVAL_MS;
    this.#maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  }

  /** Sends what is batched now. */
  flush(): void {
    if (this.#timer !== null) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#batch.length === 0) return;
    const records = this.#batch;
    this.#batch = [];
    try {
      this.#send({ t: 'records', records });
    } catch {
      // The primary is gone; the worker is about to exit.
    }
  }
}
