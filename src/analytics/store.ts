/**
 * The traffic store: per series (a route, "unmatched", a backend) a fixed ring of buckets covering
 * the retention, in typed arrays allocated once. Recording is O(1) and allocates nothing; a slot is
 * cleared when a newer bucket takes it over. Buckets are addressed by their absolute index
 * `floor(time / width)`, so a slot holding an older bucket simply reads as empty.
 */
import { binOf, HIST_BINS } from './histogram.js';

/** Per-bucket counters, in this order inside a slot. */
export const COUNT = 0; //     requests the gateway passed on (gateway rejections excluded)
export const ERRORS = 1; //    of those, answered 5xx
export const REJECTED = 2; //  answered by the gateway itself (401, 429, 503 breaker/no backend, …)
export const BYTES_IN = 3;
export const BYTES_OUT = 4;
export const LAT_SUM = 5; //   ms, of the passed-on requests
export const LAT_SUMSQ = 6;
export const LAT_MAX = 7;
export const FIELDS = 8;

/** Upper bound on ring slots (retention / bucket_interval): one week of one-minute buckets. */
export const MAX_SLOTS = 10_080;

export class TrafficStore {
  readonly widthMs: number;
  readonly slots: number;
  readonly names: string[] = [];
  readonly #index = new Map<string, number>();
  /** Absolute bucket index held by each slot, -1 when empty. */
  readonly stamps: Float64Array[] = [];
  readonly cells: Float64Array[] = [];
  readonly hists: Uint32Array[] = [];

  constructor(widthMs: number, slots: number, names: readonly string[] = []) {
    if (!(widthMs >= 1)) throw new RangeError(`bucket width must be ≥ 1 ms (got ${widthMs})`);
    if (!(slots >= 1 && slots <= MAX_SLOTS)) throw new RangeError(`slots must be 1..${MAX_SLOTS} (got ${slots})`);
    this.widthMs = widthMs;
    this.slots = slots;
    for (const n of names) this.addSeries(n);
  }

  /** Adds a series (or returns the existing one's index). Allocates its ring: not for the hot path. */
  addSeries(name: string): number {
    const known = this.#index.get(name);
    if (known !== undefined) return known;
    const i = this.names.length;
    this.names.push(name);
    this.#index.set(name, i);
    this.stamps.push(new Float64Array(this.slots).fill(-1));
    // Zero-filled typed arrays are mapped lazily by the OS: a series that never sees traffic costs little.
    this.cells.push(new Float64Array(this.slots * FIELDS));
    this.hists.push(new Uint32Array(this.slots * HIST_BINS));
    return i;
  }

  indexOf(name: string): number {
    return this.#index.get(name) ?? -1;
  }

  bucketOf(timeMs: number): number {
    return Math.floor(timeMs / this.widthMs);
  }

  /** Start time (epoch ms) of a bucket. */
  startOf(bucket: number): number {
    return bucket * this.widthMs;
  }

  /**
   * Counts one request into `bucket` of `series`. A bucket older than the one its slot holds (or
   * than the retention) is dropped. O(1), no allocation.
   */
  add(series: number, bucket: number, rejected: boolean, error: boolean, latencyMs: number, bytesIn: number, bytesOut: number): void {
    const slot = bucket % this.slots;
    const stamps = this.stamps[series]!;
    const held = stamps[slot]!;
    if (held !== bucket) {
      if (bucket < held) return;
      this.#clear(series, slot, bucket);
    }
    const c = this.cells[series]!;
    const o = slot * FIELDS;
    if (bytesIn > 0) c[o + BYTES_IN]! += bytesIn;
    if (bytesOut > 0) c[o + BYTES_OUT]! += bytesOut;
    if (rejected) {
      c[o + REJECTED]! += 1;
      return;
    }
    c[o + COUNT]! += 1;
    if (error) c[o + ERRORS]! += 1;
    const lat = latencyMs > 0 ? latencyMs : 0;
    c[o + LAT_SUM]! += lat;
    c[o + LAT_SUMSQ]! += lat * lat;
    if (lat > c[o + LAT_MAX]!) c[o + LAT_MAX] = lat;
    this.hists[series]![slot * HIST_BINS + binOf(lat)]! += 1;
  }

  #clear(series: number, slot: number, bucket: number): void {
    this.stamps[series]![slot] = bucket;
    this.cells[series]!.fill(0, slot * FIELDS, slot * FIELDS + FIELDS);
    this.hists[series]!.fill(0, slot * HIST_BINS, slot * HIST_BINS + HIST_BINS);
  }

  /** Slot of `bucket` in `series` when the ring holds it, else -1 (the bucket reads as empty). */
  slotOf(series: number, bucket: number): number {
    if (series < 0 || series >= this.names.length) return -1;
    const slot = bucket % this.slots;
    return this.stamps[series]![slot] === bucket ? slot : -1;
  }

  /** One counter of a bucket (0 when the bucket is empty or gone). */
  get(series: number, bucket: number, field: number): number {
    const slot = this.slotOf(series, bucket);
    return slot === -1 ? 0 : this.cells[series]![slot * FIELDS + field]!;
  }

  /** Replaces a bucket wholesale (cluster merge, snapshot load). */
  setBucket(series: number, bucket: number, cells: ArrayLike<number>, hist: ArrayLike<number> | null): void {
    const slot = bucket % this.slots;
    const held = this.stamps[series]![slot]!;
    if (bucket < held) return;
    this.#clear(series, slot, bucket);
    const c = this.cells[series]!;
    for (let f = 0; f < FIELDS; f++) c[slot * FIELDS + f] = cells[f] ?? 0;
    if (hist !== null) {
      const h = this.hists[series]!;
      for (let i = 0; i < HIST_BINS; i++) h[slot * HIST_BINS + i] = hist[i] ?? 0;
    }
  }

  /** Forgets every bucket (the series stay). */
  clear(): void {
    for (const s of this.stamps) s.fill(-1);
  }

  /**
   * Sums buckets [from, to] of a series into `out` (FIELDS counters; LAT_MAX is the max) and, when
   * given, their histograms into `hist`. Buckets not in `skip` only.
   */
  sum(series: number, from: number, to: number, out: Float64Array, hist: Float64Array | null, skip?: (bucket: number) => boolean): void {
    const c = this.cells[series]!;
    const h = this.hists[series]!;
    for (let b = from; b <= to; b++) {
      if (skip !== undefined && skip(b)) continue;
      const slot = this.slotOf(series, b);
      if (slot === -1) continue;
      const o = slot * FIELDS;
      for (let f = 0; f < FIELDS; f++) {
        if (f === LAT_MAX) {
          if (c[o + f]! > out[f]!) out[f] = c[o + f]!;
        } else out[f]! += c[o + f]!;
      }
      if (hist !== null) {
        const ho = slot * HIST_BINS;
        for (let i = 0; i < HIST_BINS; i++) hist[i]! += h[ho + i]!;
      }
    }
  }
}
