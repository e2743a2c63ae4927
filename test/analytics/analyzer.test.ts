/**
 * The analyzer on simulated time (ManualClock, 48 h in seconds): baselines and anomalies as the
 * issue's proof asks, with seeded Poisson traffic.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { feed, gaussian, harness, poisson, requestAt, rng, T0 } from './helpers.js';

const MINUTE = 60_000;
const DAY_MINUTES = 1440;

describe('stationary traffic', () => {
  it('raises at most one anomaly per route per simulated day over 48 hours of Poisson traffic', async () => {
    const routes = ['/slow', '/busy', '/tiny'];
    const h = harness({ routes });
    await h.analytics.start();
    const rand = rng(42);
    const lambda: Record<string, number> = { '/slow': 6, '/busy': 240, '/tiny': 1.5 };
    await feed(h, 2 * DAY_MINUTES, (_m, route) => poisson(rand, lambda[route]!), {
      routes,
      errorP: 0.01,
      latency: (r) => 25 * Math.exp(0.6 * gaussian(r)),
      seed: 7,
    });
    for (const route of routes) {
      const list = h.analytics.anomalies({ route });
      for (const day of [0, 1]) {
        const inDay = list.filter((a) => Date.parse(a.timestamp) >= T0 + day * DAY_MINUTES * MINUTE && Date.parse(a.timestamp) < T0 + (day + 1) * DAY_MINUTES * MINUTE);
        assert.ok(inDay.length <= 1, `${route} day ${day}: ${JSON.stringify(inDay)}`);
      }
      const b = h.analytics.routeBaseline(route)!;
      assert.equal(b.learning, false);
      assert.ok(Math.abs(b.rateMean - lambda[route]!) < lambda[route]! * 0.25 + 1, `${route} avg_rate ${b.rateMean} vs λ ${lambda[route]}`);
    }
  });

  it('holds the σ floor on perfectly constant traffic: ±10% is not an anomaly, and σ is never zero', async () => {
    const h = harness();
    await h.analytics.start();
    await feed(h, 120, () => 60, { analyzeEvery: 1 });
    await feed(h, 1, () => 66, { analyzeEvery: 1 });
    await feed(h, 1, () => 54, { analyzeEvery: 1 });
    assert.deepEqual(h.analytics.anomalies(), []);
    const b = h.analytics.routeBaseline('/api')!;
    assert.equal(b.rateMean, 60);
    assert.equal(b.rateStdDev, 1.105, 'sample σ of the window: 58 sixties, one 66 and one 54');
  });
});

describe('anomalies', () => {
  it('flags a 10× spike in its first completed bucket, and not while that bucket is still partial', async () => {
    const h = harness();
    await h.analytics.start();
    const rand = rng(1);
    await feed(h, 120, () => poisson(rand, 60), { analyzeEvery: 1 });
    const spikeStart = h.clock.now();
    for (let i = 0; i < 600; i++) h.analytics.record(requestAt(spikeStart + i * 90));
    h.clock.advance(MINUTE - 1);
    await h.analytics.analyze();
    assert.deepEqual(h.analytics.anomalies(), [], 'the current, partial bucket is never tested');
    h.clock.advance(1);
    await h.analytics.analyze();
    const [a, ...rest] = h.analytics.anomalies();
    assert.deepEqual(rest, []);
    assert.equal(a!.metric, 'request_rate');
    assert.equal(a!.route, '/api');
    assert.equal(a!.timestamp, new Date(spikeStart).toISOString());
    assert.equal(a!.current, 600);
    assert.ok(a!.z_score > 10, `z ${a!.z_score}`);
    assert.equal(a!.ended_at, null);
    // The next normal bucket ends the episode; analyzing again adds no duplicate.
    await feed(h, 1, () => 60, { analyzeEvery: 1 });
    await h.analytics.analyze();
    const all = h.analytics.anomalies();
    assert.equal(all.length, 1);
    assert.equal(all[0]!.ended_at, new Date(spikeStart + MINUTE).toISOString());
  });

  it('flags silence: a busy route that stops is an anomaly with a negative z', async () => {
    const h = harness();
    await h.analytics.start();
    const rand = rng(2);
    await feed(h, 90, () => poisson(rand, 60));
    await feed(h, 1, () => 0);
    await h.analytics.analyze();
    const [a] = h.analytics.anomalies();
    assert.equal(a?.metric, 'request_rate');
    assert.equal(a!.current, 0);
    assert.ok(a!.z_score < -3, `z ${a!.z_score}`);
  });

  it('stops alarming on a persisting level shift once its episode is over (bounded), and the shift becomes the baseline', async () => {
    const h = harness();
    await h.analytics.start();
    const rand = rng(3);
    await feed(h, 120, () => poisson(rand, 60));
    await feed(h, 180, () => poisson(rand, 180));
    const list = h.analytics.anomalies();
    assert.equal(list.length, 1, JSON.stringify(list));
    const a = list[0]!;
    assert.equal(a.metric, 'request_rate');
    assert.equal(a.timestamp, new Date(T0 + 120 * MINUTE).toISOString());
    assert.ok(a.ended_at !== null, 'the episode ended');
    const lasted = (Date.parse(a.ended_at!) - Date.parse(a.timestamp)) / MINUTE;
    assert.ok(lasted <= 16, `episode lasted ${lasted} buckets`);
    assert.ok(Math.abs(h.analytics.routeBaseline('/api')!.rateMean - 180) < 15);
  });

  it('flags a rising error rate on a route whose baseline had no errors at all', async () => {
    const h = harness();
    await h.analytics.start();
    await feed(h, 60, () => 60);
    await feed(h, 1, () => 60, { errorP: 0.2, seed: 9 });
    await h.analytics.analyze();
    const list = h.analytics.anomalies();
    assert.deepEqual(
      list.map((a) => a.metric),
      ['error_rate'],
    );
    assert.equal(list[0]!.mean, 0);
    assert.ok(list[0]!.current > 0.1);
  });

  it('does not flag one lone 5xx on a clean route', async () => {
    const h = harness();
    await h.analytics.start();
    await feed(h, 60, () => 60);
    const start = h.clock.now();
    for (let i = 0; i < 60; i++) h.analytics.record(requestAt(start + i * 1000, { status: i === 0 ? 502 : 200 }));
    h.clock.advance(MINUTE);
    await h.analytics.analyze();
    assert.deepEqual(h.analytics.anomalies(), []);
  });

  it('flags a latency jump', async () => {
    const h = harness();
    await h.analytics.start();
    await feed(h, 60, () => 60, { latency: (r) => 20 * Math.exp(0.3 * gaussian(r)) });
    await feed(h, 1, () => 60, { latency: () => 200 });
    await h.analytics.analyze();
    const list = h.analytics.anomalies();
    assert.deepEqual(
      list.map((a) => a.metric),
      ['latency'],
    );
    assert.equal(list[0]!.current, 200);
  });

  it('calls onAnomaly once per episode and onAnomalyEnd once when it ends, and logs one line', async () => {
    const h = harness();
    await h.analytics.start();
    const started: string[] = [];
    const ended: string[] = [];
    h.analytics.onAnomaly((a) => started.push(`${a.route} ${a.metric}`));
    h.analytics.onAnomalyEnd((a) => ended.push(`${a.route} ${a.metric} ${a.ended_at}`));
    await feed(h, 60, () => 60);
    await feed(h, 3, () => 600, { analyzeEvery: 1 });
    await feed(h, 2, () => 60, { analyzeEvery: 1 });
    assert.deepEqual(started, ['/api request_rate']);
    assert.equal(ended.length, 1);
    assert.equal(h.lines.filter((l) => l.msg === 'anomaly').length, 1);
  });

  it('waits for ten buckets of baseline before testing anything (learning)', async () => {
    const h = harness();
    await h.analytics.start();
    await feed(h, 9, () => 60, { analyzeEvery: 1 });
    assert.equal(h.analytics.routeBaseline('/api')!.learning, true);
    await feed(h, 1, () => 6000, { analyzeEvery: 1 });
    assert.deepEqual(h.analytics.anomalies(), [], 'nine buckets are not a baseline');
    assert.equal(h.analytics.routeBaseline('/api')!.learning, false);
    assert.equal(h.analytics.routeBaseline('/api')!.sampleSize, 10);
  });
});

describe('baselines', () => {
  it('counts empty buckets as zero and averages over the time the gateway has seen, not the whole window', async () => {
    const h = harness();
    await h.analytics.start();
    await feed(h, 30, (m) => (m % 2 === 0 ? 60 : 0));
    await h.analytics.analyze();
    const b = h.analytics.routeBaseline('/api')!;
    assert.equal(b.sampleSize, 30);
    assert.equal(b.rateMean, 30);
  });

  it('reports rates per minute whatever the bucket width', async () => {
    const h = harness({ yaml: 'bucket_interval: 10s\nwindow: 10m\nretention: 1h' });
    await h.analytics.start();
    await feed(h, 60, () => 10, { widthMs: 10_000 });
    await h.analytics.analyze();
    const b = h.analytics.routeBaseline('/api')!;
    assert.equal(b.sampleSize, 60);
    assert.equal(b.rateMean, 60);
  });

  it('keeps gateway rejections (429, 401, 503 of its own) out of rate, errors and latency', async () => {
    const h = harness();
    await h.analytics.start();
    const start = h.clock.now();
    for (let m = 0; m < 20; m++) {
      for (let i = 0; i < 60; i++) h.analytics.record(requestAt(start + m * MINUTE + i * 1000, { latencyMs: 10 }));
      for (let i = 0; i < 500; i++) {
        const decision = (['rate_limited', 'auth_failed', 'breaker_open', 'no_healthy_backend'] as const)[i % 4];
        h.analytics.record(requestAt(start + m * MINUTE + i * 100, { status: decision === 'rate_limited' ? 429 : decision === 'auth_failed' ? 401 : 503, decision, backend: '', latencyMs: 0.1 }));
      }
    }
    h.clock.advance(20 * MINUTE);
    await h.analytics.analyze();
    const b = h.analytics.routeBaseline('/api')!;
    assert.equal(b.rateMean, 60);
    assert.equal(b.errorRate, 0);
    assert.equal(b.latencyMeanMs, 10);
    assert.equal(b.rejected, 20 * 500);
    assert.deepEqual(h.analytics.anomalies(), []);
  });

  it('counts unmatched paths under "unmatched", never as their own series', async () => {
    const h = harness();
    await h.analytics.start();
    for (let i = 0; i < 100; i++) h.analytics.record(requestAt(T0 + i * 100, { route: null, path: `/scan/${i}`, status: 404, decision: 'not_found', backend: '' }));
    h.clock.advance(MINUTE);
    await h.analytics.analyze();
    assert.equal(h.analytics.routeBaseline('unmatched')!.requests, 100);
  });

  it('keeps per-backend baselines, and learns a backend added at run time', async () => {
    const h = harness();
    await h.analytics.start();
    h.analytics.addBackend('http://127.0.0.1:9002');
    for (let i = 0; i < 50; i++) {
      h.analytics.record(requestAt(T0 + i * 1000, { backend: 'http://127.0.0.1:9001', latencyMs: 10 }));
      h.analytics.record(requestAt(T0 + i * 1000, { backend: 'http://127.0.0.1:9002', latencyMs: 40, status: i % 10 === 0 ? 500 : 200 }));
      h.analytics.record(requestAt(T0 + i * 1000, { backend: 'http://elsewhere:1', latencyMs: 40 }));
    }
    h.clock.advance(MINUTE);
    await h.analytics.analyze();
    assert.equal(h.analytics.backendBaseline('http://127.0.0.1:9001')!.latencyMeanMs, 10);
    const b2 = h.analytics.backendBaseline('http://127.0.0.1:9002')!;
    assert.equal(b2.latencyMeanMs, 40);
    assert.equal(b2.errorRate, 0.1);
    assert.equal(h.analytics.backendBaseline('http://elsewhere:1'), undefined, 'unknown backends get no series');
    assert.equal(h.analytics.routeBaseline('/api')!.requests, 150);
  });
});
