import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { adaptiveThreshold, BreakerTuning, type BackendBaseline, type TripReason } from '../../src/adaptive/index.js';
import { seededRandom } from './sim.js';

const B = 'http://backend:9001';

function setup(baseline: BackendBaseline | null, opts: { windowMs?: number; minRequests?: number } = {}) {
  const clock = new ManualClock();
  let current = baseline;
  const tuning = new BreakerTuning({ clock, baselines: { backend: () => current }, ...opts });
  return { clock, tuning, window: tuning.forBackend(B), setBaseline: (b: BackendBaseline | null) => (current = b) };
}

/** `perSec` requests/s for `seconds`, each failing with probability `errorRate`; check() after every failure as a breaker would. */
function drive(s: ReturnType<typeof setup>, perSec: number, seconds: number, errorRate: number, seed: number): { trip: TripReason | null; atMs: number; requests: number } {
  const random = seededRandom(seed);
  const step = 1000 / perSec;
  const start = s.clock.now();
  for (let i = 0; i < perSec * seconds; i++) {
    s.clock.set(start + i * step);
    const failed = random() < errorRate;
    s.window.record(failed);
    if (failed) {
      const trip = s.window.check();
      if (trip !== null) return { trip, atMs: i * step, requests: i + 1 };
    }
  }
  return { trip: null, atMs: seconds * 1000, requests: perSec * seconds };
}

describe('self-tuning breaker threshold', () => {
  it('does not trip a backend with a steady 10% error baseline that runs at 12% for an hour', () => {
    const s = setup({ latencyMs: 20, errorRate: 0.1, sampleSize: 100_000 });
    assert.equal(s.window.threshold, 0.5);
    const r = drive(s, 50, 3600, 0.12, 1);
    assert.equal(r.trip, null);
    assert.equal(r.requests, 180_000);
  });

  it('trips a backend with a 0% error baseline at 20% errors within its first window', () => {
    const s = setup({ latencyMs: 20, errorRate: 0, sampleSize: 100_000 });
    assert.equal(s.window.threshold, 0.05);
    const r = drive(s, 50, 60, 0.2, 2);
    assert.ok(r.trip !== null);
    assert.ok(r.atMs < 10_000, `tripped after ${r.atMs} ms`);
    assert.ok(r.trip.requests >= 20);
    assert.ok(r.trip.errorRate > 0.05);
    assert.equal(r.trip.threshold, 0.05);
    assert.equal(r.trip.baselineErrorRate, 0);
    assert.equal(r.trip.windowMs, 10_000);
    assert.match(r.trip.message, /^error rate \d+\.\d% \(\d+ of \d+\) over 10s above threshold 5\.0% \(5 × baseline 0\.0%, within 5%\.\.50%\)$/);
  });

  it('clamps the threshold to 5%..50% (a 20% baseline no longer means "never trips")', () => {
    assert.equal(adaptiveThreshold(0), 0.05);
    assert.equal(adaptiveThreshold(0.004), 0.05);
    assert.ok(Math.abs(adaptiveThreshold(0.04) - 0.2) < 1e-12);
    assert.equal(adaptiveThreshold(0.2), 0.5);
    assert.equal(adaptiveThreshold(1), 0.5);
  });

  it('says "static rule applies" (null) before the backend has a baseline, whatever its errors', () => {
    const s = setup(null);
    assert.equal(s.window.threshold, null);
    assert.equal(s.tuning.threshold(B), null);
    const r = drive(s, 50, 20, 1, 3);
    assert.equal(r.trip, null);
    assert.deepEqual(s.window.counts(), { requests: 500, failures: 500 });
  });

  it('ignores a baseline on too few requests', () => {
    const s = setup({ latencyMs: 20, errorRate: 0, sampleSize: 5 });
    assert.equal(s.window.threshold, null);
  });

  it('needs min_requests in the window before it trips', () => {
    const s = setup({ latencyMs: 20, errorRate: 0, sampleSize: 1000 }, { minRequests: 20 });
    for (let i = 0; i < 19; i++) s.window.record(true);
    assert.equal(s.window.check(), null);
    s.window.record(true);
    assert.equal(s.window.check()?.requests, 20);
  });

  it('counts over a sliding window that one success does not reset', () => {
    const s = setup({ latencyMs: 20, errorRate: 0, sampleSize: 1000 });
    for (let i = 0; i < 10; i++) s.window.record(true);
    s.window.record(false);
    for (let i = 0; i < 10; i++) s.window.record(true);
    assert.deepEqual(s.window.counts(), { requests: 21, failures: 20 });
    assert.ok(s.window.check() !== null);
    s.clock.advance(5_000);
    assert.equal(s.window.counts().requests, 21);
    s.clock.advance(5_000);
    assert.deepEqual(s.window.counts(), { requests: 0, failures: 0 });
    assert.equal(s.window.check(), null);
  });

  it('slides sub-window by sub-window', () => {
    const s = setup({ latencyMs: 20, errorRate: 0, sampleSize: 1000 }, { windowMs: 10_000 });
    s.clock.set(1_700_000_000_000);
    for (let sec = 0; sec < 10; sec++) {
      s.window.record(true);
      s.clock.advance(1_000);
    }
    assert.equal(s.window.counts().requests, 9);
    s.clock.advance(3_000);
    assert.equal(s.window.counts().requests, 6);
  });

  it('picks up a baseline that appears later, after its refresh interval', () => {
    const s = setup(null);
    assert.equal(s.window.threshold, null);
    s.setBaseline({ latencyMs: 20, errorRate: 0.02, sampleSize: 1000 });
    s.clock.advance(10_000);
    assert.ok(Math.abs(s.window.threshold! - 0.1) < 1e-12);
    assert.equal(s.window.baselineErrorRate, 0.02);
  });

  it('keeps its threshold when the baseline source throws', () => {
    const clock = new ManualClock();
    let fail = false;
    const errors: unknown[] = [];
    const tuning = new BreakerTuning({
      clock,
      onError: (e) => errors.push(e),
      baselines: {
        backend: () => {
          if (fail) throw new Error('down');
          return { latencyMs: 5, errorRate: 0.02, sampleSize: 100 };
        },
      },
    });
    const w = tuning.forBackend(B);
    assert.ok(Math.abs(w.threshold! - 0.1) < 1e-12);
    fail = true;
    tuning.refresh();
    assert.ok(Math.abs(w.threshold! - 0.1) < 1e-12);
    assert.equal(errors.length, 1);
  });

  it('forgets the window on reset, so old failures cannot re-trip a closed breaker', () => {
    const s = setup({ latencyMs: 20, errorRate: 0, sampleSize: 1000 });
    for (let i = 0; i < 30; i++) s.window.record(true);
    assert.ok(s.window.check() !== null);
    s.window.reset();
    assert.equal(s.window.check(), null);
    assert.equal(s.tuning.forBackend(B), s.window);
  });
});
