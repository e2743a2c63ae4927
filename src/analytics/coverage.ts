/**
 * Which buckets the gateway was there to see: intervals of bucket indices from a start-up (its
 * first complete bucket) to a shutdown (its last complete bucket). Baselines average over covered
 * buckets only, so time before the first start, or while the gateway was down, is not read as
 * silence. Bounded: intervals older than the retention are dropped, at most MAX_INTERVALS kept.
 */

const MAX_INTERVALS = 64;

export interface Interval {
  from: number;
  /** Inclusive; Infinity while this process is running. */
  to: number;
}

export class Coverage {
  #intervals: Interval[] = [];

  /** The gateway is observing from bucket `from` on (open-ended). */
  open(from: number): void {
    const last = this.#intervals.at(-1);
    if (last !== undefined && last.to === Infinity) last.to = from - 1;
    if (last !== undefined && last.to >= from - 1) {
      last.to = Infinity;
      if (last.from > from) last.from = from;
    } else this.#intervals.push({ from, to: Infinity });
    if (this.#intervals.length > MAX_INTERVALS) this.#intervals.splice(0, this.#intervals.length - MAX_INTERVALS);
  }

  /** The gateway stops observing after bucket `to` (its last complete bucket). */
  close(to: number): void {
    const last = this.#intervals.at(-1);
    if (last === undefined || last.to !== Infinity) return;
    if (to < last.from) this.#intervals.pop();
    else last.to = to;
  }

  covered(b: number): boolean {
    for (let i = this.#intervals.length - 1; i >= 0; i--) {
      const iv = this.#intervals[i]!;
      if (b >= iv.from) return b <= iv.to;
    }
    return false;
  }

  /** Covered sub-ranges of [lo, hi], oldest first. */
  ranges(lo: number, hi: number): [number, number][] {
    const out: [number, number][] = [];
    for (const iv of this.#intervals) {
      const a = Math.max(lo, iv.from);
      const z = Math.min(hi, iv.to);
      if (a <= z) out.push([a, z]);
    }
    return out;
  }

  /** Number of covered buckets in [lo, hi]. */
  count(lo: number, hi: number): number {
    let n = 0;
    for (const [a, z] of this.ranges(lo, hi)) n += z - a + 1;
    return n;
  }

  /** Drops coverage before bucket `min`. */
  prune(min: number): void {
    this.#intervals = this.#intervals.filter((iv) => iv.to >= min);
    const first = this.#intervals[0];
    if (first !== undefined && first.from < min) first.from = min;
  }

  /** For the snapshot: the running interval is closed at `to`. */
  toJSON(to: number): Interval[] {
    return this.#intervals.map((iv) => ({ from: iv.from, to: iv.to === Infinity ? to : iv.to })).filter((iv) => iv.to >= iv.from);
  }

  static from(list: readonly Interval[]): Coverage {
    const c = new Coverage();
    let prevTo = -Infinity;
    for (const iv of list) {
      if (!Number.isSafeInteger(iv.from) || !Number.isSafeInteger(iv.to) || iv.to < iv.from || iv.from <= prevTo) throw new Error('bad coverage interval');
      c.#intervals.push({ from: iv.from, to: iv.to });
      prevTo = iv.to;
    }
    if (c.#intervals.length > MAX_INTERVALS) c.#intervals.splice(0, c.#intervals.length - MAX_INTERVALS);
    return c;
  }
}
