/**
 * A log destination that copies lines into one preallocated buffer and hands it to stdout in one
 * write every `flushMs` (or when 64 KiB are pending). A write per line, or keeping the line strings
 * alive until a flush, cost ~10 µs per request under load; copying bytes costs well under one.
 * When stdout cannot keep up, lines are dropped and counted instead of queueing without bound.
 */
import { writeSync } from 'node:fs';

const BUFFER_BYTES = 64 * 1024;
/** Deferred items formatted per flush at most, and queued at most. */
const FLUSH_ITEMS = 256;
const MAX_DEFERRED = 100_000;

export interface LineSink {
  write(chunk: string | Uint8Array): unknown;
  readonly writableLength?: number;
}

export class BatchedStream {
  readonly #out: LineSink;
  readonly #fd: number | null;
  readonly #maxPending: number;
  readonly #flushMs: number;
  #buf = Buffer.allocUnsafe(BUFFER_BYTES);
  #len = 0;
  #timer: NodeJS.Timeout | null = null;
  #deferred: unknown[] = [];
  #format: ((item: unknown, nowIso: string) => string) | null = null;
  /** Lines dropped because the output was too far behind. */
  dropped = 0;
  readonly #flushBound = () => this.flush();

  constructor(out: LineSink = process.stdout, opts: { fd?: number | null; maxPendingBytes?: number; flushMs?: number } = {}) {
    this.#out = out;
    this.#fd = opts.fd === undefined ? (out === process.stdout ? 1 : null) : opts.fd;
    this.#maxPending = opts.maxPendingBytes ?? 16 * 1024 * 1024;
    this.#flushMs = opts.flushMs ?? 25;
  }

  write(chunk: string): boolean {
    if ((this.#out.writableLength ?? 0) > this.#maxPending) {
      if (this.dropped++ === 0) this.#append(`{"level":"warn","time":"${new Date().toISOString()}","msg":"log output is not keeping up: dropping lines"}\n`);
      return true;
    }
    this.#append(chunk);
    return true;
  }

  #append(chunk: string): void {
    if (this.#timer === null) {
      this.#timer = setTimeout(this.#flushBound, this.#flushMs);
      this.#timer.unref();
    }
    // Worst case 3 bytes per UTF-16 unit; most lines are ASCII and far below the room left.
    if (this.#len + chunk.length * 3 > this.#buf.length) {
      this.flush();
      if (chunk.length * 3 > this.#buf.length) {
        this.#out.write(chunk);
        return;
      }
    }
    this.#len += this.#buf.write(chunk, this.#len, 'utf8');
  }

  /**
   * Queues an item to be formatted at the next flush (the access log): formatting many lines in
   * one tight loop is much cheaper than one line at a time between other work. `format` gets the
   * item and the flush time as an ISO string. Items queued past `maxDeferred` are dropped and counted.
   */
  defer<T>(item: T, format: (item: T, nowIso: string) => string): void {
    if (this.#deferred.length >= MAX_DEFERRED) {
      this.dropped++;
      return;
    }
    this.#deferred.push(item);
    this.#format = format as (item: unknown, nowIso: string) => string;
    if (this.#deferred.length >= FLUSH_ITEMS) this.flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(this.#flushBound, this.#flushMs);
      this.#timer.unref();
    }
  }

  #formatDeferred(): void {
    const items = this.#deferred;
    if (items.length === 0) return;
    this.#deferred = [];
    const now = new Date().toISOString();
    const format = this.#format!;
    for (let i = 0; i < items.length; i++) this.#append(format(items[i], now));
  }

  #take(): Buffer | null {
    this.#formatDeferred();
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#len === 0) return null;
    const out = this.#buf.subarray(0, this.#len);
    // The written bytes now belong to the output stream; continue in a fresh buffer.
    this.#buf = Buffer.allocUnsafe(BUFFER_BYTES);
    this.#len = 0;
    return out;
  }

  /** Writes what is pending now (asynchronously for pipes). */
  flush(): void {
    const data = this.#take();
    if (data !== null) this.#out.write(data);
  }

  /** Writes what is pending synchronously: before process.exit. */
  flushSync(): void {
    const data = this.#take();
    if (data === null) return;
    if (this.#fd !== null) {
      try {
        writeSync(this.#fd, data);
        return;
      } catch {
        /* fall through to the stream */
      }
    }
    this.#out.write(data);
  }
}
