/**
 * The worker's completion records, sent to the primary in batches: every `intervalMs` or every
 * `maxBatch` records, whichever comes first. Never one message per request.
 */
import type { CompletionRecord } from '../events/index.js';
import type { WorkerToPrimary } from './messages.js';

export const DEFAULT_BATCH_INTERVAL_MS = 100;
export const DEFAULT_MAX_BATCH = 512;

export class RecordBatcher {
  readonly #send: (msg: WorkerToPrimary) => void;
  readonly #intervalMs: number;
  readonly #maxBatch: number;
  #batch: CompletionRecord[] = [];
  #timer: NodeJS.Timeout | null = null;
  /** The completion listener: cheap, synchronous, never throws. */
  readonly onCompletion = (record: CompletionRecord): void => {
    this.#batch.push(record);
    if (this.#batch.length >= this.#maxBatch) this.flush();
    else if (this.#timer === null) this.#timer = setTimeout(this.#tick, this.#intervalMs);
  };
  readonly #tick = (): void => {
    this.#timer = null;
    this.flush();
  };

  constructor(opts: { send: (msg: WorkerToPrimary) => void; intervalMs?: number; maxBatch?: number }) {
    this.#send = opts.send;
    this.#intervalMs = opts.intervalMs ?? DEFAULT_BATCH_INTERVAL_MS;
    this.#maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  }

  /** Sends what is batched now. */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
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
