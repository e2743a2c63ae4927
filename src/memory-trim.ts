/**
 * Hands the memory glibc's malloc holds free back to the system, now and then.
 *
 * glibc returns freed memory to the kernel only from the top of a heap. Memory freed below a block
 * still in use stays resident, and V8 frees a lot that way: the WebAssembly HTTP parser undici uses
 * is compiled again with TurboFan within the first requests, a compile using ~36 MB of malloc'd zone
 * memory, and start-up's module compiles do the same on a smaller scale. What a process was left
 * with varied from start to start by 10 MB (a gateway after its first request: 64.7-74.4 MB RSS),
 * and `malloc_trim(0)` brought every one of them back to ~63.5 (docs/decisions.md, "Start-up
 * memory"). Allocators with a background purge (jemalloc, tcmalloc) do this on their own; glibc has
 * no such thread, and Node offers no way to call malloc_trim, hence the small native addon
 * (native/malloc-trim.c, built by `npm ci`).
 *
 * The schedule: 1 s after start, then 2, 4, 8 s … later, up to `server.memory_trim_interval` (30 s by
 * default) and every interval after that: the first trims come soon after start-up and the first
 * requests, the rest cost one call every interval. A call walks malloc's free lists: 0.2-2.5 ms here
 * for a gateway, idle or under load (full chain, 50 connections), but 86 ms for an 80 MB heap with
 * holes everywhere, so the gateway makes it on a thread of libuv's pool (`trimAsync`), not on the
 * event loop; only a malloc made meanwhile by the main thread in the same arena waits for it. An
 * interval of 0 turns it off.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { timersOf, type Clock, type TimerHandle } from './clock.js';
import type { Logger } from './logging/index.js';

/** malloc_trim(0): true when memory was released, false when none was, undefined without glibc. */
export type TrimFn = () => boolean | undefined;
/** The same on a thread of libuv's pool. */
export type AsyncTrimFn = () => Promise<boolean | undefined>;

/** Where `npm ci` (scripts/build-native.mjs) builds the addon, from src/ or dist/ alike. */
const ADDON = fileURLToPath(new URL('../native/build/Release/malloc_trim.node', import.meta.url));

/** The first trim after start; later ones double the delay up to the interval. */
export const FIRST_TRIM_MS = 1000;

/** The addon's trim, on the calling thread and on libuv's pool, or nulls and why they cannot be had. */
export function loadNativeTrim(path: string = ADDON): { trim: TrimFn | null; trimAsync: AsyncTrimFn | null; why: string | null } {
  try {
    const addon = createRequire(import.meta.url)(path) as { trim?: unknown; trimAsync?: unknown };
    if (typeof addon.trim !== 'function' || typeof addon.trimAsync !== 'function') return { trim: null, trimAsync: null, why: `${path} has no trim() and trimAsync()` };
    return { trim: addon.trim as TrimFn, trimAsync: addon.trimAsync as AsyncTrimFn, why: null };
  } catch (err) {
    return { trim: null, trimAsync: null, why: (err as Error).message.split('\n')[0]! };
  }
}

/** Whether this process's C library is glibc (where malloc_trim exists and matters). */
export function onGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return typeof header?.glibcVersionRuntime === 'string';
}

export interface MemoryTrimmerOptions {
  /** Longest time between two trims (ms); 0 = never trim. */
  intervalMs: number;
  /** The trim; when it returns a promise, the next one is scheduled once it settled. */
  trim: TrimFn | AsyncTrimFn;
  clock?: Clock;
  /** The process's resident set in bytes (process.memoryUsage.rss). */
  rss?: () => number;
  /** Called after each trim with the bytes the resident set shrank by (0 when it did not) and the call's duration (ms). */
  onTrim?: (releasedBytes: number, durationMs: number) => void;
  /** A trim that threw or rejected (the schedule goes on). */
  onError?: (err: unknown) => void;
}

export class MemoryTrimmer {
  readonly #opts: MemoryTrimmerOptions;
  readonly #timers;
  readonly #rss: () => number;
  #timer: TimerHandle | null = null;
  #delay = FIRST_TRIM_MS;
  /** Trims done. */
  trims = 0;
  /** Bytes the resident set shrank by over all trims. */
  releasedBytes = 0;

  constructor(opts: MemoryTrimmerOptions) {
    this.#opts = opts;
    this.#timers = timersOf(opts.clock ?? { now: Date.now });
    this.#rss = opts.rss ?? (() => process.memoryUsage.rss());
  }

  get running(): boolean {
    return this.#timer !== null;
  }

  start(): void {
    if (this.#timer !== null || !(this.#opts.intervalMs > 0)) return;
    this.#delay = Math.min(FIRST_TRIM_MS, this.#opts.intervalMs);
    this.#schedule();
  }

  stop(): void {
    if (this.#timer !== null) this.#timers.clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Trims now; resolves (at once for a synchronous trim) with the bytes the resident set shrank by. */
  trimNow(): number | Promise<number> {
    const before = this.#rss();
    const t0 = performance.now();
    const done = (): number => {
      const released = Math.max(0, before - this.#rss());
      this.trims++;
      this.releasedBytes += released;
      this.#opts.onTrim?.(released, performance.now() - t0);
      return released;
    };
    const r = this.#opts.trim();
    return r instanceof Promise ? r.then(done) : done();
  }

  #schedule(): void {
    this.#timer = this.#timers.setTimeout(() => {
      this.#delay = Math.min(this.#delay * 2, this.#opts.intervalMs);
      let r: number | Promise<number>;
      try {
        r = this.trimNow();
      } catch (err) {
        this.#opts.onError?.(err);
        r = 0;
      }
      if (typeof r === 'number') this.#schedule();
      else
        r.catch((err: unknown) => this.#opts.onError?.(err)).finally(() => {
          if (this.#timer !== null) this.#schedule(); // not when stopped meanwhile
        });
    }, this.#delay);
  }
}

/**
 * The CLI's trimmer for this process (single process, cluster primary or worker), started; null
 * when the interval is 0 or the addon is missing (a warning on glibc, where it should be there).
 */
export function startMemoryTrim(intervalMs: number, logger: Logger): MemoryTrimmer | null {
  if (!(intervalMs > 0)) return null;
  const { trimAsync, why } = loadNativeTrim();
  if (trimAsync === null) {
    if (onGlibc()) logger.warn({ why }, 'memory trim off: the native malloc_trim addon is not built (run `npm ci`, or node scripts/build-native.mjs)');
    else logger.debug({ why }, 'memory trim off: not glibc');
    return null;
  }
  const trimmer = new MemoryTrimmer({
    intervalMs,
    trim: trimAsync,
    onError: (err) => logger.warn({ err: (err as Error).message }, 'memory trim failed'),
    onTrim: (released, ms) => logger.debug({ released_mb: Math.round(released / 104857.6) / 10, duration_ms: Math.round(ms * 100) / 100 }, 'memory trimmed'),
  });
  trimmer.start();
  return trimmer;
}
