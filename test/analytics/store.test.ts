/** The traffic store and its histograms: ring semantics, bounded series, percentiles against a sorted-array oracle. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binOf, binValue, HIST_BINS, HIST_MAX_MS, HIST_MIN_MS, quantile } from '../../src/analytics/histogram.js';
import { COUNT, ERRORS, FIELDS, LAT_MAX, REJECTED, TrafficStore } from '../../src/analytics/store.js';
import { isGatewayRejection } from '../../src/analytics/index.js';
import { feed, gaussian, harness, rng } from './helpers.js';

function oracle(sorted: number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

describe('latency histogram', () => {
  it('puts every latency in a bin whose value is within 5% of it, across the whole range', () => {
    for (let ms = HIST_MIN_MS * 1.001; ms < HIST_MAX_MS; ms *= 1.013) {
      const v = binValue(binOf(ms));
      assert.ok(Math.abs(v / ms - 1) < 0.05, `${ms} → ${v}`);
    }
    assert.equal(binOf(0), 0);
    assert.equal(binOf(-1), 0);
    assert.equal(binOf(Number.NaN), 0);
    assert.equal(binOf(1e12), HIST_BINS - 1);
  });

  for (const [name, sample] of [
    ['log-normal around 20 ms', (r: () => number) => 20 * Math.exp(0.8 * gaussian(r))],
    ['bimodal 2 ms / 900 ms', (r: () => number) => (r() < 0.9 ? 2 + r() : 900 + 100 * r())],
    ['uniform 0.1–5000 ms', (r: () => number) => 0.1 + 5000 * r()],
  ] as const) {
    it(`gives p50/p95/p99 within 5% of a sorted-array oracle (${name})`, () => {
      const r = rng(11);
      const bins = new Float64Array(HIST_BINS);
      const values: number[] = [];
      let max = 0;
      for (let i = 0; i < 50_000; i++) {
        const v = sample(r);
        values.push(v);
        bins[binOf(v)]! += 1;
        if (v > max) max = v;
      }
      values.sort((a, b) => a - b);
      for (const q of [0.5, 0.95, 0.99]) {
        const want = oracle(values, q);
        const got = quantile(bins, q, max)!;
        assert.ok(Math.abs(got / want - 1) <= 0.05, `q${q}: ${got} vs ${want}`);
      }
    });
  }

  it('returns null for an empty histogram', () => {
    assert.equal(quantile(new Float64Array(HIST_BINS), 0.99), null);
  });
});

describe('traffic store', () => {
  it('keeps buckets in a fixed ring: a slot taken over by a newer bucket reads the old one as empty', () => {
    const store = new TrafficStore(1000, 10, ['a']);
    store.add(0, 5, false, false, 1, 0, 0);
    assert.equal(store.get(0, 5, COUNT), 1);
    store.add(0, 15, false, true, 1, 0, 0);
    assert.equal(store.get(0, 5, COUNT), 0, 'bucket 5 was overwritten by 15');
    assert.equal(store.get(0, 15, ERRORS), 1);
    store.add(0, 5, false, false, 1, 0, 0);
    assert.equal(store.get(0, 15, COUNT), 1, 'a late record for an evicted bucket is dropped');
    assert.equal(store.get(0, 5, COUNT), 0);
  });

  it('counts rejections apart and keeps the latency maximum', () => {
    const store = new TrafficStore(1000, 4, ['a']);
    store.add(0, 1, true, false, 0.1, 10, 20);
    store.add(0, 1, false, false, 7, 0, 0);
    store.add(0, 1, false, false, 3, 0, 0);
    assert.equal(store.get(0, 1, REJECTED), 1);
    assert.equal(store.get(0, 1, COUNT), 2);
    assert.equal(store.get(0, 1, LAT_MAX), 7);
    const out = new Float64Array(FIELDS);
    store.sum(0, 0, 3, out, null);
    assert.equal(out[COUNT], 2);
  });

  it('refuses a ring beyond the slot bound', () => {
    assert.throws(() => new TrafficStore(1000, 1_000_000), RangeError);
  });

  it('tells gateway rejections from traffic by decision and error code', () => {
    assert.equal(isGatewayRejection({ decision: 'rate_limited', backend: '', errorCode: 'rate_limited' }), true);
    assert.equal(isGatewayRejection({ decision: 'auth_failed', backend: '', errorCode: 'invalid_api_key' }), true);
    assert.equal(isGatewayRejection({ decision: 'upstream_saturated', backend: 'http://x', errorCode: 'upstream_saturated' }), true);
    assert.equal(isGatewayRejection({ decision: 'upstream_error', backend: 'http://x', errorCode: 'upstream_error' }), false);
    assert.equal(isGatewayRejection({ decision: 'not_found', backend: '', errorCode: 'not_found' }), false);
    assert.equal(isGatewayRejection({ decision: 'client_aborted', backend: 'http://x', errorCode: undefined }), false);
    assert.equal(isGatewayRejection({ decision: undefined, backend: '', errorCode: 'shutting_down' }), true);
    assert.equal(isGatewayRejection({ decision: undefined, backend: 'http://x', errorCode: undefined }), false);
  });
});

describe('request percentiles end to end', () => {
  it('reports baseline p50/p99 of the requests themselves (not of bucket averages), within 5%', async () => {
    const h = harness();
    await h.analytics.start();
    const all: number[] = [];
    // Half the buckets fast, half slow: p99 of bucket averages would be ~slow mean, the real p99 is in the slow tail.
    await feed(h, 30, (m) => (m % 2 === 0 ? 200 : 20), {
      latency: (r) => {
        const v = r() < 0.9 ? 5 * Math.exp(0.2 * gaussian(r)) : 400 * Math.exp(0.3 * gaussian(r));
        all.push(v);
        return v;
      },
    });
    await h.analytics.analyze();
    all.sort((a, b) => a - b);
    const b = h.analytics.routeBaseline('/api')!;
    assert.ok(Math.abs(b.p50Ms! / oracle(all, 0.5) - 1) <= 0.05, `p50 ${b.p50Ms} vs ${oracle(all, 0.5)}`);
    assert.ok(Math.abs(b.p99Ms! / oracle(all, 0.99) - 1) <= 0.05, `p99 ${b.p99Ms} vs ${oracle(all, 0.99)}`);
  });
});
