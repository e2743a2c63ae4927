import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { BodyWatch, type Watched } from '../../src/proxy/body-watch.js';

/** An exchange as the watch sees it; `endedAt` is the clock's time when the watch ended it. */
function exchange(clock: ManualClock, onEnd?: () => void) {
  const x: Watched & { endedAt: number | null } = {
    watchPrev: null,
    watchNext: null,
    heardAt: -1,
    endedAt: null,
    bodyTimedOut() {
      x.endedAt = clock.now();
      onEnd?.();
    },
  };
  return x;
}

describe('upstream body watch', () => {
  for (const timeoutMs of [200, 4_000, 300_000]) {
    it(`ends an exchange silent for ${timeoutMs} ms no sooner than that, and at most a quarter (or 1 s) later`, () => {
      const clock = new ManualClock();
      const watch = new BodyWatch(timeoutMs, clock);
      const x = exchange(clock);
      // Heard from at an arbitrary moment between two ticks.
      const t0 = clock.now();
      watch.add(x);
      clock.advance(Math.min(333, timeoutMs / 3));
      const heard = clock.now();
      watch.heard(x);
      for (let step = 0; step < 10_000 && x.endedAt === null; step++) clock.advance(Math.max(1, timeoutMs / 400));
      assert.ok(x.endedAt !== null, 'ended');
      const silence = x.endedAt - heard;
      assert.ok(silence >= timeoutMs, `ended after ${silence} ms of silence`);
      assert.ok(silence <= timeoutMs + Math.min(timeoutMs / 4, 1_000) + timeoutMs / 400 + 1, `ended after ${silence} ms of silence`);
      assert.ok(x.endedAt - t0 > timeoutMs);
      assert.equal(watch.size, 0);
      assert.deepEqual(clock.pendingTimers(), [], 'no timer runs once nothing is watched');
    });
  }

  it('never ends an exchange heard from more often than the timeout, however long it streams', () => {
    const clock = new ManualClock();
    const watch = new BodyWatch(1_000, clock);
    const x = exchange(clock);
    watch.add(x);
    for (let i = 0; i < 600; i++) {
      clock.advance(900);
      watch.heard(x);
    }
    assert.equal(x.endedAt, null);
    watch.remove(x);
    clock.advance(5_000);
    assert.equal(x.endedAt, null, 'a removed exchange is never ended');
    assert.equal(x.heardAt, -1);
  });

  it('keeps many exchanges apart, removed from any place in the list, and runs its timer only while one is watched', () => {
    const clock = new ManualClock();
    const watch = new BodyWatch(400, clock);
    const xs = Array.from({ length: 6 }, () => exchange(clock));
    assert.deepEqual(clock.pendingTimers(), []);
    for (const x of xs) watch.add(x);
    watch.add(xs[0]!); // twice: no effect
    assert.equal(watch.size, 6);
    assert.equal(clock.pendingTimers().length, 1, 'one timer for all');
    watch.remove(xs[0]!); // the oldest (tail)
    watch.remove(xs[5]!); // the newest (head)
    watch.remove(xs[2]!); // one in the middle
    watch.remove(xs[2]!); // twice: no effect
    assert.equal(watch.size, 3);
    // xs[1] keeps talking; xs[3] and xs[4] go silent.
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      watch.heard(xs[1]!);
    }
    assert.deepEqual(
      xs.map((x) => x.endedAt !== null),
      [false, false, false, true, true, false],
    );
    assert.equal(watch.size, 1);
    watch.remove(xs[1]!);
    clock.advance(200);
    assert.deepEqual(clock.pendingTimers(), [], 'the timer stops at the first tick with nothing watched');
  });

  it('survives an exchange whose end ends others in the same tick', () => {
    const clock = new ManualClock();
    const watch = new BodyWatch(100, clock);
    const b = exchange(clock);
    const c = exchange(clock);
    // Ending `a` closes the client connection that `b` shares: `b` leaves the watch on its own.
    const a = exchange(clock, () => watch.remove(b));
    watch.add(c);
    watch.add(b);
    watch.add(a);
    clock.advance(1_000);
    assert.ok(a.endedAt !== null);
    assert.equal(b.endedAt, null, 'b was let go by a, not ended by the watch');
    assert.ok(c.endedAt !== null);
    assert.equal(watch.size, 0);
  });

  it('refuses a timeout that is not positive', () => {
    assert.throws(() => new BodyWatch(0, new ManualClock()), RangeError);
  });
});
