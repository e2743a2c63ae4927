/**
 * A log destination that copies lines into one preallocated buffer and hands it to stdout in one
 * write every `flushMs` (or when 64 KiB are pending). A write per line, or keeping the line strings
 * alive until a flush, cost ~10 µs per request under load; copying bytes costs well under one.
 * When stdout cannot keep up, lines are dropped and counted instead of queueing without bound.
 */
import { writeSync } from 'node:fs';
import { JsonBytes } from '../events/json-bytes.js';

const BUFFER_BYTES = 64 * 1024;

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
  readonly #writer = new JsonBytes(this.#buf);
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
    else this.#append(chunk);
    return true;
  }

  #behind(): boolean {
    return (this.#out.writableLength ?? 0) > this.#maxPending;
  }

  #drop(): void {
    if (this.dropped++ === 0) this.#append(`{"level":"warn","time":"${new Date().toISOString()}","msg":"log output is not keeping up: dropping lines"}\n`);
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
   * Writes one line straight into the buffer (the access log): `write(w, item)` writes at most
   * `maxBytes` bytes through `w` and no string is built. A line that could not fit in an empty
   * buffer is refused (false): the caller writes it as a string instead.
   */
  writeBytes<T>(item: T, maxBytes: number, write: (w: JsonBytes, item: T) => void): boolean {
    if (maxBytes > this.#buf.length) return false;
    if (this.#behind()) {
      this.#drop();
      return true;
    }
    if (this.#len + maxBytes > this.#buf.length) this.flush();
    const w = this.#writer;
    w.reset(this.#buf, this.#len);
    write(w, item);
    this.#len = w.pos;
    this.#arm();
    return true;
  }

  #take(): Buffer | null {
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
