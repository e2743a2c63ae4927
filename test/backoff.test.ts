/**
 * The restart backoff shared by managed processes and gateway workers: doubling per crash in a
 * row, capped, starting over after a stable run. Pure arithmetic on how long the thing ran, so
 * every case is exact, with no clock at all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff } from '../src/backoff.js';

describe('restart backoff', () => {
  it('managed processes: 1 s doubling to 30 s for quick crashes, and a crash after a stable run starts a new streak at 1 s', () => {
    const b = new Backoff({ firstMs: 1_000, maxMs: 30_000, stableMs: 10_000 });
    assert.deepEqual(
      Array.from({ length: 7 }, () => b.next(50)),
      [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000],
    );
    assert.equal(b.next(10_000), 1_000, 'ran 10 s: the streak starts over');
    assert.equal(b.next(9_999), 2_000, 'and that crash was its first');
  });

  it('gateway workers: replaced at once after serving a while, else 100 ms doubling to 5 s', () => {
    const b = new Backoff({ firstMs: 100, maxMs: 5_000, stableMs: 5_000, afterStableMs: 0 });
    assert.equal(b.next(60_000), 0);
    assert.deepEqual(
      Array.from({ length: 8 }, () => b.next(4_999)),
      [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000],
    );
    assert.equal(b.next(5_000), 0, 'a worker that served 5 s is replaced at once');
    assert.equal(b.next(10), 100, 'and starts no streak');
  });
});
