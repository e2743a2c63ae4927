/**
 * A log destination that copies lines into one preallocated buffer and hands it to stdout in one
 * write every `flushMs` (or when 64 KiB are pending). A write per line, or keeping the line strings
 * alive until a flush, cost ~10 µs per request under load; copying bytes costs well under one.
 * When stdout cannot keep up, lines are dropped and counted instead of queueing without bound.
 */
import { writeSync } from 'node:fs';
import { JsonBytes } from '../events/json-bytes.js';

const BUFFER_BYTES = 64 * 1024;
/**
 * Deferred items are written into the buffer (not yet to the output) once this many are queued: a
 * queued item keeps what it references alive (a completion record keeps the request's header
 * objects), and under load 256 of them outlived young-generation collections and were promoted.
 */
const FORMAT_ITEMS = 32;
const MAX_DEFERRED = 100_000;

/** How a deferred item becomes a log line. */
export interface LineWriter<T> {
  /** The most bytes `write` can write for `item`. */
  maxBytes(item: T): number;
  /** Writes the line (with its newline); `nowMs` is the flush time. */
  write(w: JsonBytes, item: T, nowMs: number): void;
  /** The line as a string, for one longer than the whole buffer. */
  text(item: T, nowMs: number): string;
}

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
  readonly #bytes = new JsonBytes(this.#buf);
  /** Queued items, each followed by its writer: [item, writer, item, writer, ...] (no pair object per item). */
  #deferred: unknown[] = [];
  /** Longest wait of a pending line before it is written (ms). */
  get flushMs(): number {
    return this.#flushMs;
  }

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
    if (this.#behind()) this.#drop();
    else {
      // Lines keep their order: access lines queued before this one are written first.
      this.#writeDeferred();
      this.#append(chunk);
    }
    return true;
  }

  #behind(): boolean {
    return (this.#out.writableLength ?? 0) > this.#maxPending;
  }

  #drop(lines = 1): void {
    const first = this.dropped === 0;
    this.dropped += lines;
    if (first) this.#append(`{"level":"warn","time":"${new Date().toISOString()}","msg":"log output is not keeping up: dropping lines"}\n`);
  }

  #append(chunk: string): void {
    // Worst case 3 bytes per UTF-16 unit; most lines are ASCII and far below the room left.
    if (this.#len + chunk.length * 3 > this.#buf.length) {
      this.flush();
      if (chunk.length * 3 > this.#buf.length) {
        this.#out.write(chunk);
        return;
      }
    }
    this.#len += this.#buf.write(chunk, this.#len, 'utf8');
    this.#arm();
  }

  /** What is in the buffer is written within flushMs (armed after a flush, which disarms). */
  #arm(): void {
    if (this.#timer === null) {
      this.#timer = setTimeout(this.#flushBound, this.#flushMs);
      this.#timer.unref();
    }
  }

  /**
   * Queues an item whose line `writer` writes as bytes into the buffer once FORMAT_ITEMS are
   * queued, or at the next flush (the access log). Writing lines in a tight loop costs less than
   * writing each in the middle of request handling, and no line string is ever made. The buffer
   * goes to the output within `flushMs`, or when full; past MAX_DEFERRED queued items (output not
   * keeping up) they are dropped and counted.
   */
  defer<T>(item: T, writer: LineWriter<T>): void {
    if (this.#deferred.length >= 2 * MAX_DEFERRED) {
      this.#drop();
      return;
    }
    this.#deferred.push(item, writer);
    if (this.#deferred.length >= 2 * FORMAT_ITEMS) this.#writeDeferred();
    this.#arm();
  }

  /** Writes the queued items' lines into the buffer (flushing it when full). */
  #writeDeferred(): void {
    const items = this.#deferred;
    if (items.length === 0) return;
    this.#deferred = [];
    if (this.#behind()) {
      // The output is still writing earlier batches (a stalled pipe): these lines are dropped and
      // counted, never added to its queue without bound.
      this.#drop(items.length / 2);
      return;
    }
    const now = Date.now();
    const w = this.#bytes;
    for (let i = 0; i < items.length; i += 2) {
      const item = items[i];
      const writer = items[i + 1] as LineWriter<unknown>;
      const max = writer.maxBytes(item);
      if (max > BUFFER_BYTES) {
        this.#append(writer.text(item, now));
        continue;
      }
      if (this.#len + max > this.#buf.length) this.#send();
      w.reset(this.#buf, this.#len);
      writer.write(w, item, now);
      this.#len = w.pos;
    }
  }

  #take(): Buffer | null {
    this.#writeDeferred();
    return this.#cut();
  }

  /** The written bytes, leaving a fresh buffer (the timer is disarmed). */
  #cut(): Buffer | null {
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

  /** Writes the buffer as it is (while deferred lines are being written into it). */
  #send(): void {
    const data = this.#cut();
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
