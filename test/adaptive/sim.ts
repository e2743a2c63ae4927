/** Simulated-time helpers for the adaptive scenario tests: a seeded PRNG and an event queue. */

export { seededRandom } from '../helpers/random.js';

/** Exponential inter-arrival time (ms) for a Poisson process of `perMin` events per minute. */
export function nextGapMs(random: () => number, perMin: number): number {
  return (-Math.log(1 - random()) * 60_000) / perMin;
}

/** A binary min-heap of timed events. */
export class EventQueue<T> {
  readonly #times: number[] = [];
  readonly #items: T[] = [];

  get size(): number {
    return this.#times.length;
  }

  push(time: number, item: T): void {
    const times = this.#times;
    const items = this.#items;
    let i = times.length;
    times.push(time);
    items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p]! <= time) break;
      times[i] = times[p]!;
      items[i] = items[p]!;
      i = p;
    }
    times[i] = time;
    items[i] = item;
  }

  peekTime(): number {
    return this.#times.length === 0 ? Infinity : this.#times[0]!;
  }

  pop(): T {
    const times = this.#times;
    const items = this.#items;
    const top = items[0]!;
    const lastT = times.pop()!;
    const lastI = items.pop()!;
    const n = times.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && times[r]! < times[l]! ? r : l;
        if (times[c]! >= lastT) break;
        times[i] = times[c]!;
        items[i] = items[c]!;
        i = c;
      }
      times[i] = lastT;
      items[i] = lastI;
    }
    return top;
  }
}
