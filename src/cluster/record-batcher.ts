/**
 * The worker's completion records, sent to the primary in batches: every `intervalMs` or every
 * `maxBatch` records, whichever comes first. Never one message per request. Memory is bounded: when
 * `maxUnsent` batches are written but not yet taken by the channel (the primary is not keeping up),
 * a new batch is dropped and counted; the count rides on the next batch that goes.
 */
import { systemClock, timersOf, type Clock, type TimerClock, type TimerHandle } from '../clock.js';
import type { CompletionRecord } from '../events/index.js';
import type { WorkerToPrimary } from './messages.js';

export const DEFAULT_BATCH_INTERVAL_MS = 100;
export const DEFAULT_MAX_BATCH = 512;
/** Batches in the channel at once before new ones are dropped (~10 000 records). */
export const DEFAULT_MAX_UNSENT = 20;

/** Sends one message; calls `sent` once the channel took it. */
export type BatchSender = (msg: WorkerToPrimary, sent: () => void) => void;
const NO_HEADERS = Object.freeze({});

export class RecordBatcher {
  readonly #send: BatchSender;
  readonly #maxUnsent: number;
  #unsent = 0;
  #dropped = 0;
  #droppedTotal = 0;
  readonly #sent = (): void => {
    this.#unsent--;
  };
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

  constructor(opts: { send: BatchSender; intervalMs?: number; maxBatch?: number; maxUnsent?: number; withHeaders?: boolean; clock?: Clock }) {
    this.#maxUnsent = opts.maxUnsent ?? DEFAULT_MAX_UNSENT;
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
    if (this.#unsent >= this.#maxUnsent) {
      this.#dropped += records.length;
      this.#droppedTotal += records.length;
      return;
    }
    const dropped = this.#dropped;
    this.#dropped = 0;
    this.#unsent++;
    try {
      this.#send(dropped > 0 ? { t: 'records', records, dropped } : { t: 'records', records }, this.#sent);
    } catch {
      // The primary is gone; the worker is about to exit.
      this.#unsent--;
    }
  }

  /** Records dropped because the primary did not keep up (since start). */
  get dropped(): number {
    return this.#droppedTotal;
  }
}
