import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { MemoryStore } from '../../src/store/index.js';

function drain(store: MemoryStore, key: string, capacity: number, rate: number): number {
  let n = 0;
  while (store.take(key, capacity, rate).allowed) n++;
  return n;
}

describe('MemoryStore', () => {
  it('starts every bucket full', () => {
    const store = new MemoryStore({ clock: new ManualClock() });
    const first = store.take('a', 10, 1);
    assert.deepEqual(first, { allowed: true, remaining: 9, retryAfterMs: 0, resetMs: 1000 });
    assert.equal(drain(store, 'a', 10, 1), 9);
  });

  it('answers synchronously, never with a promise', () => {
    const store = new MemoryStore({ clock: new ManualClock() });
    const r = store.take('a', 1, 1);
    assert.equal(typeof (r as unknown as { then?: unknown }).then, 'undefined');
  });

  it('refills continuously, fractions included', () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock });
    drain(store, 'a', 10, 2);
    clock.advance(250); // 0.5 token
    assert.equal(store.take('a', 10, 2).allowed, false);
    clock.advance(250); // 1 token
    assert.equal(store.take('a', 10, 2).allowed, true);
    assert.equal(store.take('a', 10, 2).allowed, false);
    clock.advance(1_500); // 3 tokens
    assert.equal(drain(store, 'a', 10, 2), 3);
  });

  it('never refills beyond capacity', () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock });
    store.take('a', 5, 1);
    clock.advance(3_600_000);
    assert.equal(drain(store, 'a', 5, 1), 5);
  });

  it('charges nothing for a rejected take', () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock });
    drain(store, 'a', 3, 1);
    for (let i = 0; i < 9; i++) {
      clock.advance(100);
      assert.equal(store.take('a', 3, 1).allowed, false); // 0.1 .. 0.9 tokens, each rejection free
    }
    clock.advance(100);
    assert.equal(store.take('a', 3, 1).allowed, true); // exactly 1 token accrued despite 9 rejections
  });

  it('says how long until enough tokens and until full', () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock });
    drain(store, 'a', 10, 2);
    let r = store.take('a', 10, 2);
    assert.deepEqual(r, { allowed: false, remaining: 0, retryAfterMs: 500, resetMs: 5_000 });
    clock.advance(125); // 0.25 tokens
    r = store.take('a', 10, 2);
    assert.equal(r.retryAfterMs, 375);
    assert.equal(r.resetMs, 4_875);
    r = store.take('a', 10, 2, 3); // 2.75 tokens short of 3
    assert.equal(r.retryAfterMs, 1_375);
  });

  it('charges the given cost', () => {
    const store = new MemoryStore({ clock: new ManualClock() });
    assert.deepEqual(store.take('a', 10, 1, 4), { allowed: true, remaining: 6, retryAfterMs: 0, resetMs: 4_000 });
    assert.equal(store.take('a', 10, 1, 7).allowed, false);
    assert.equal(store.take('a', 10, 1, 6).remaining, 0);
  });

  it('clamps a bucket to a capacity lowered since it was filled', () => {
    const store = new MemoryStore({ clock: new ManualClock() });
    store.take('a', 100, 1);
    assert.equal(store.take('a', 5, 1).remaining, 4);
  });

  it('keeps buckets apart by key', () => {
    const store = new MemoryStore({ clock: new ManualClock() });
    drain(store, 'a', 2, 1);
    assert.equal(store.take('b', 2, 1).allowed, true);
  });

  it('stays within max_buckets with 200k distinct keys', () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, maxBuckets: 1_000, idleTtlMs: 600_000 });
    for (let i = 0; i < 200_000; i++) {
      store.take('ip-' + i, 10, 1);
      if ((i & 1023) === 0) clock.advance(1);
      assert.ok(store.size <= 1_000);
    }
    assert.equal(store.size, 1_000);
  });

  it('keeps a busy bucket while a flood of new keys evicts idle ones', () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, maxBuckets: 100, idleTtlMs: 600_000 });
    drain(store, 'busy', 5, 0.001);
    for (let i = 0; i < 10_000; i++) {
      clock.advance(10);
      store.take('flood-' + i, 5, 0.001);
      assert.equal(store.take('busy', 5, 0.001).allowed, false, `busy bucket was reset after ${i} new keys`);
    }
    assert.ok(store.size <= 100);
  });

  it('drops buckets idle for the TTL with a sweep, and only full ones', () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock, idleTtlMs: 60_000 });
    for (let i = 0; i < 500; i++) store.take('old-' + i, 10, 1); // full again after 1 s
    drain(store, 'slow', 10, 0.01); // needs 1000 s to refill: must survive the TTL
    assert.equal(store.size, 501);
    clock.advance(60_000);
    for (let i = 0; i < 640; i++) store.take('new', 10, 1000); // each take sweeps a little
    assert.equal(store.size, 2, 'the 500 idle buckets are gone; "slow" and "new" stay');
    assert.equal(store.take('slow', 10, 0.01).allowed, false, 'the draining bucket kept its state');
    clock.advance(1_000_000);
    for (let i = 0; i < 128; i++) store.take('new', 10, 1000);
    assert.equal(store.size, 1);
  });

  it('empties on close', async () => {
    const store = new MemoryStore({ clock: new ManualClock() });
    await store.start();
    store.take('a', 1, 1);
    await store.close();
    assert.equal(store.size, 0);
    assert.equal(store.degraded, false);
  });

  it('answers a peek (cost 0) as a take of one token would, creating and spending nothing', () => {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock });
    assert.deepEqual(store.take('fresh', 3, 1, 0), { allowed: true, remaining: 3, retryAfterMs: 0, resetMs: 0 });
    assert.equal(store.size, 0, 'a peek creates no bucket');
    drain(store, 'spent', 3, 1);
    clock.advance(250);
    assert.deepEqual(store.take('spent', 3, 1, 0), { allowed: false, remaining: 0, retryAfterMs: 750, resetMs: 2750 });
    for (let i = 0; i < 5; i++) store.take('spent', 3, 1, 0);
    clock.advance(750);
    assert.equal(store.take('spent', 3, 1, 0).allowed, true);
    assert.equal(store.take('spent', 3, 1).remaining, 0, 'peeks spent nothing: exactly one token had come back');
  });

  it('rejects nonsense options at construction', () => {
    assert.throws(() => new MemoryStore({ clock: new ManualClock(), maxBuckets: 0 }), RangeError);
    assert.throws(() => new MemoryStore({ clock: new ManualClock(), idleTtlMs: 0 }), RangeError);
  });
});
