/**
 * Memory per tracked client in the memory store (issue 7, item 9): at most 150 bytes with 100k
 * clients, and the default cap keeps the store under 64 MB whatever the keys (up to the 64
 * characters a key is kept at) and however many clients come and go. Measured as the heap plus
 * array-buffer growth after full garbage collections, in this file's own process.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { clientKey } from '../../src/pipeline/index.js';
import { DEFAULT_MAX_BUCKETS, MemoryStore } from '../../src/store/index.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

function used(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Bytes the store holds after `fill` ran, with the store still reachable. */
function footprint(fill: (store: MemoryStore) => void, maxBuckets?: number): { bytes: number; size: number } {
  const before = used();
  const store = new MemoryStore({ clock: new ManualClock(), maxBuckets });
  fill(store);
  const bytes = used() - before;
  return { bytes, size: store.size };
}

const N = 100_000;
const ipv4 = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const ipv6 = (i: number): string => `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::${(i * 7919) & 0xffff}`;

describe('memory store footprint', () => {
  for (const [family, ipOf] of [
    ['IPv4', ipv4],
    ['IPv6', ipv6],
  ] as const) {
    it(`holds 100k ${family} clients in at most 150 bytes each`, (t) => {
      // Keys built the way the rate limiter builds them: a prefix plus the client key.
      const { bytes, size } = footprint((store) => {
        for (let i = 0; i < N; i++) store.take('i:' + clientKey(ipOf(i)), 10, 1);
      });
      assert.equal(size, N);
      const perClient = bytes / N;
      t.diagnostic(`${family}: ${perClient.toFixed(1)} bytes per client at ${N} clients`);
      assert.ok(perClient <= 150, `${perClient.toFixed(1)} bytes per client`);
    });
  }

  it('stays under 64 MB at the default cap with 64-character keys while twice the cap of clients churn through', (t) => {
    const pad = 'c:consumer-'.padEnd(50, 'x');
    const { bytes, size } = footprint((store) => {
      for (let i = 0; i < 2 * DEFAULT_MAX_BUCKETS; i++) store.take(pad + String(i).padStart(14, '0'), 10, 1);
    });
    assert.equal(size, DEFAULT_MAX_BUCKETS);
    t.diagnostic(`${(bytes / 2 ** 20).toFixed(1)} MiB at the default cap of ${DEFAULT_MAX_BUCKETS} buckets (64-character keys)`);
    assert.ok(bytes < 64 * 2 ** 20, `${(bytes / 2 ** 20).toFixed(1)} MiB`);
  });

  it('keeps a key longer than 64 characters as a fixed-size digest, still one bucket per key', () => {
    const store = new MemoryStore({ clock: new ManualClock() });
    const long = 'c:' + 'a'.repeat(300);
    assert.equal(store.take(long, 2, 0.001).remaining, 1);
    assert.equal(store.take(long, 2, 0.001).remaining, 0);
    assert.equal(store.take(long, 2, 0.001).allowed, false);
    assert.equal(store.take(long + 'b', 2, 0.001).remaining, 1, 'a different long key is another bucket');
  });
});
