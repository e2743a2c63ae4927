/**
 * The circuit breaker with a self-tuning window (src/adaptive ErrorWindow): the learned error-rate
 * rule replaces the consecutive-failures rule once a threshold exists, every verdict is recorded,
 * the window is forgotten when the breaker closes, and each opening carries its reason.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BreakerTuning, type BackendBaseline } from '../../src/adaptive/index.js';
import { CircuitBreaker, type BreakerTrip } from '../../src/breaker/index.js';
import { ManualClock } from '../../src/clock.js';

const URL = 'http://b:1';

function setup(baseline: BackendBaseline | null) {
  const clock = new ManualClock(1_000_000);
  let current = baseline;
  const tuning = new BreakerTuning({ clock, baselines: { backend: () => current } });
  const breaker = new CircuitBreaker({ threshold: 5, timeout: 30_000, half_open_requests: 1 }, { clock });
  const trips: BreakerTrip[] = [];
  breaker.useWindow(tuning.forBackend(URL), (t) => trips.push(t));
  return { clock, breaker, trips, tuning, setBaseline: (b: BackendBaseline | null) => (current = b) };
}

/** `n` requests 10 ms apart; `failEvery` = every k-th fails (0 = none). */
function run(s: ReturnType<typeof setup>, n: number, failEvery: number): void {
  for (let i = 1; i <= n; i++) {
    s.clock.advance(10);
    if (!s.breaker.allow()) return;
    if (failEvery > 0 && i % failEvery === 0) s.breaker.failure();
    else s.breaker.success();
  }
}

describe('circuit breaker with a learned threshold', () => {
  it('keeps the consecutive-failures rule before a baseline exists, and says so in its trip', () => {
    const s = setup(null);
    for (let i = 0; i < 5; i++) {
      assert.equal(s.breaker.allow(), true);
      s.breaker.failure();
    }
    assert.equal(s.breaker.state, 'open');
    assert.equal(s.trips.length, 1);
    assert.equal(s.trips[0]!.rule, 'consecutive_failures');
  });

  it('does not trip a backend with a 10% baseline at 12% errors, even on five failures in a row', () => {
    const s = setup({ latencyMs: 10, errorRate: 0.1, sampleSize: 10_000 });
    for (let i = 0; i < 6; i++) {
      s.clock.advance(10);
      s.breaker.allow();
      s.breaker.failure();
    }
    run(s, 3000, 8); // 12.5%
    assert.equal(s.breaker.state, 'closed');
    assert.equal(s.trips.length, 0);
  });

  it('at low volume (fewer than min_requests in the window) still opens on a run of failures: the static threshold on a 0% baseline', () => {
    const s = setup({ latencyMs: 10, errorRate: 0, sampleSize: 10_000 });
    // One request a second: never 20 in the 10 s window, so an error rate means nothing yet.
    for (let i = 0; i < 5; i++) {
      s.clock.advance(1_000);
      assert.equal(s.breaker.allow(), true);
      s.breaker.failure();
    }
    assert.equal(s.breaker.state, 'open');
    assert.equal(s.trips[0]!.rule, 'consecutive_failures');
    assert.match(s.trips[0]!.message, /low volume/);
  });

  it('at low volume needs a run long enough to be unlikely for the backend: 7 in a row on a 10% baseline, not 6', () => {
    const s = setup({ latencyMs: 10, errorRate: 0.1, sampleSize: 10_000 });
    for (let i = 0; i < 6; i++) {
      s.clock.advance(1_000);
      s.breaker.allow();
      s.breaker.failure();
    }
    assert.equal(s.breaker.state, 'closed', 'six in a row happens to a 10% backend about once in a million requests');
    s.clock.advance(1_000);
    s.breaker.allow();
    s.breaker.failure();
    assert.equal(s.breaker.state, 'open');
    assert.equal(s.trips[0]!.rule, 'consecutive_failures');
  });

  it('trips a backend with a 0% baseline at 20% errors, with window, count, rate, threshold and baseline', () => {
    const s = setup({ latencyMs: 10, errorRate: 0, sampleSize: 10_000 });
    run(s, 1000, 5);
    assert.equal(s.breaker.state, 'open');
    const trip = s.breaker.stats().trip;
    assert.ok(trip !== null && trip.rule === 'error_rate', JSON.stringify(trip));
    assert.equal(trip.window_ms, 10_000);
    assert.ok(trip.requests >= 20);
    assert.ok(trip.error_rate > 0.05);
    assert.equal(trip.threshold, 0.05);
    assert.equal(trip.baseline_error_rate, 0);
    assert.deepEqual(s.trips, [trip]);
  });

  it('forgets the window when it closes again, so the failures that opened it cannot reopen it', () => {
    const s = setup({ latencyMs: 10, errorRate: 0, sampleSize: 10_000 });
    run(s, 1000, 5);
    assert.equal(s.breaker.state, 'open');
    s.clock.advance(30_000);
    assert.equal(s.breaker.allow(), true);
    s.breaker.success();
    assert.equal(s.breaker.state, 'closed');
    assert.equal(s.breaker.trip, null);
    s.clock.advance(10);
    s.breaker.allow();
    s.breaker.failure();
    assert.equal(s.breaker.state, 'closed', 'one failure in a fresh window is 100% of 1 request, under min_requests');
  });
});
