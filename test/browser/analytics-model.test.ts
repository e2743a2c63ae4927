/**
 * The arithmetic behind the dashboard's traffic analytics view (web/dashboard/src/analytics-model.ts),
 * without a browser: steps per range, requests-per-minute series, bands, episodes, learning.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  baselineOf,
  episodesOf,
  extraFields,
  firstActivity,
  historyQuery,
  learningOf,
  MAX_POINTS,
  mergeAnomalies,
  RANGES,
  stepFor,
  toRateSeries,
  type Anomaly,
  type HistoryPoint,
} from '../../web/dashboard/src/analytics-model.js';

const iso = (s: number) => new Date(s * 1000).toISOString();
const point = (s: number, count: number, extra: Partial<HistoryPoint> = {}): HistoryPoint => ({ timestamp: iso(s), request_count: count, ...extra });
const T = 1_800_000_000; // a round unix second, divisible by 480

describe('analytics view: steps and queries', () => {
  it('picks a round step that keeps every range within 360 points', () => {
    assert.equal(stepFor(RANGES['1h']), 10);
    assert.equal(stepFor(RANGES['6h']), 60);
    assert.equal(stepFor(RANGES['48h']), 480);
    for (const s of Object.values(RANGES)) assert.ok(s / stepFor(s) <= MAX_POINTS);
  });

  it('asks for the range ending now, aligned to the step, with the step as a duration', () => {
    const q = historyQuery(3600, (T + 7) * 1000, 10);
    assert.deepEqual(q, { from: iso(T + 7 - 3600 - 7), to: iso(T + 7), step: '10s' });
    assert.equal(historyQuery(3600, T * 1000, null).step, undefined);
  });
});

describe('analytics view: requests per minute', () => {
  it('turns per-step counts into requests per minute and leaves out the bucket still running', () => {
    const s = toRateSeries({ history: [point(T, 5), point(T + 10, 10), point(T + 20, 3)] }, 10, T + 25);
    assert.deepEqual(s.x, [T, T + 10]);
    assert.deepEqual(s.rate, [30, 60]);
    assert.equal(s.points, 2);
  });

  it('counts buckets the gateway left out as zero traffic', () => {
    const s = toRateSeries({ history: [point(T, 1), point(T + 30, 2)] }, 10, T + 100);
    assert.deepEqual(s.x, [T, T + 10, T + 20, T + 30]);
    assert.deepEqual(s.rate, [6, 0, 0, 12]);
  });

  it('sums finer points into the asked step when the gateway answered with its own buckets', () => {
    const history = Array.from({ length: 20 }, (_, i) => point(T + i, 1, { error_rate: i < 10 ? 0 : 0.5, p99_latency_ms: i }));
    const s = toRateSeries({ history }, 10, T + 100, false);
    assert.deepEqual(s.x, [T, T + 10]);
    assert.deepEqual(s.rate, [60, 60]);
    assert.deepEqual(s.errorRate, [0, 0.5]);
    assert.deepEqual(s.p99, [9, 19]);
  });

  it('reads the bucket width from the spacing when no step was sent and the buckets are wider', () => {
    const s = toRateSeries({ history: [point(T, 60), point(T + 60, 120)] }, 10, T + 1000, false);
    assert.equal(s.stepS, 60);
    assert.deepEqual(s.rate, [60, 120]);
  });

  it('takes the width of the points from step_ms when the gateway says it', () => {
    const s = toRateSeries({ step_ms: 60_000, history: [point(T, 60), point(T + 60, 30)] }, 10, T + 1000);
    assert.equal(s.stepS, 60);
    assert.deepEqual(s.rate, [60, 30]);
  });

  it('draws refused requests apart, and only when there were some', () => {
    const s = toRateSeries({ history: [point(T, 5, { rejected_count: 0 }), point(T + 10, 5, { rejected_count: 2 }), point(T + 20, 0)] }, 10, T + 40);
    assert.deepEqual(s.rejected, [null, 12, null]);
    assert.equal(s.traffic, 12);
    assert.deepEqual(toRateSeries({ history: [point(T, 5)] }, 10, T + 40).rejected, [null]);
  });

  it('finds where traffic begins in a zero-filled history', () => {
    assert.equal(firstActivity({ history: [point(T, 0), point(T + 10, 0, { rejected_count: 1 }), point(T + 20, 4)] }), T + 10);
    assert.equal(firstActivity({ history: [point(T, 0)] }), null);
    assert.equal(firstActivity(null), null);
  });

  it('survives a missing, null or junk history', () => {
    for (const h of [null, undefined, {}, { history: null }, { history: [{ timestamp: 'nope', request_count: 3 }] }]) {
      const s = toRateSeries(h as never, 10, T);
      assert.deepEqual([s.x, s.rate, s.points], [[], [], 0]);
    }
  });
});

describe('analytics view: what is normal', () => {
  const anomaly = (over: Partial<Anomaly>): Anomaly => ({ route: '/a', metric: 'request_rate', current: 1, mean: 1, std_dev: 1, z_score: 4, timestamp: iso(T), ended_at: null, ...over });

  it('draws the band mean ± 3σ from std_dev_rate, never below zero', () => {
    const b = baselineOf({ route: '/a', avg_rate: 100, std_dev_rate: 40, sample_size: 30 }, []);
    assert.deepEqual(b, { mean: 100, band: { lo: 0, hi: 220, k: 3, sigma: 40 } });
  });

  it('reads σ as rate_std_dev too, and a σ of 0 as unknown', () => {
    assert.equal(baselineOf({ route: '/a', avg_rate: 100, rate_std_dev: 10, sample_size: 30 }, [])?.band?.hi, 130);
    assert.deepEqual(baselineOf({ route: '/a', avg_rate: 100, rate_std_dev: 0, sample_size: 30 }, []), { mean: 100, band: null });
  });

  it('falls back to the σ of the latest rate anomaly, and to a bare line without one', () => {
    const list = [anomaly({ std_dev: 5, timestamp: iso(T) }), anomaly({ std_dev: 7, timestamp: iso(T + 60) }), anomaly({ metric: 'error_rate', std_dev: 99, timestamp: iso(T + 120) })];
    assert.equal(baselineOf({ route: '/a', avg_rate: 50, sample_size: 12 }, list)?.band?.sigma, 7);
    assert.deepEqual(baselineOf({ route: '/a', avg_rate: 50, sample_size: 12 }, []), { mean: 50, band: null });
    assert.equal(baselineOf({ route: '/a', avg_rate: null, sample_size: 0 }, list), null);
  });

  it('runs an open episode to now and drops episodes outside the window', () => {
    const list = [anomaly({ timestamp: iso(T - 7200), ended_at: iso(T - 7000) }), anomaly({ timestamp: iso(T - 30) }), anomaly({ route: '/b', timestamp: iso(T - 30) })];
    const eps = episodesOf(list, '/a', T - 3600, T, T);
    assert.equal(eps.length, 1);
    assert.deepEqual([eps[0]!.start, eps[0]!.end, eps[0]!.ongoing, eps[0]!.kind], [T - 30, T, true, 'rate']);
  });

  it('merges an episode end into the opening event and never reopens it', () => {
    const open = anomaly({});
    const ended = anomaly({ ended_at: iso(T + 5) });
    assert.deepEqual(mergeAnomalies([open], [ended]).map((a) => a.ended_at), [iso(T + 5)]);
    assert.deepEqual(mergeAnomalies([ended], [open]).map((a) => a.ended_at), [iso(T + 5)]);
    assert.equal(mergeAnomalies([], [null as never, { route: 1 } as never]).length, 0);
  });

  it('reports learning progress in buckets toward the ten a baseline needs', () => {
    assert.deepEqual(learningOf({ route: '/a', learning: true, sample_size: 4 }), { learning: true, have: 4, target: 10, fraction: 0.4 });
    assert.deepEqual(learningOf({ route: '/a', learning: false, sample_size: 40 }), { learning: false, have: 40, target: 10, fraction: 1 });
    assert.equal(learningOf({ route: '/a' }).learning, true);
  });

  it('lists fields it does not know (shadow-mode counts, …) so they show without a UI change', () => {
    assert.deepEqual(extraFields({ route: '/a', avg_rate: 1, shadow_rejections: 12, mode: 'shadow', nested: {}, gone: null }, ['route', 'avg_rate']), [
      ['shadow_rejections', 12],
      ['mode', 'shadow'],
    ]);
  });
});
