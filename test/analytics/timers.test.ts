/**
 * The timers on the real clock with one-second buckets: an anomaly is reported within 3 s of the end
 * of a spike's bucket. (Waits for something to happen, bounded; never asserts that nothing did.)
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock } from '../../src/clock.js';
import { createAnalytics, type Anomaly } from '../../src/analytics/index.js';
import { analyticsConfig, captureLogger, requestAt } from './helpers.js';

it('reports a spike within 3 s of its one-second bucket ending, with the analyzer on its own timer', async (t) => {
  const { logger } = captureLogger();
  const analytics = createAnalytics({
    config: analyticsConfig('bucket_interval: 1s\nanalyzer_interval: 1s\nwindow: 20s\nretention: 10m'),
    routes: ['/api'],
    backends: [],
    clock: systemClock,
    logger,
    dataDir: '/nonexistent',
    persist: false,
  });
  t.after(() => analytics.close());
  await analytics.start();
  const seen: { anomaly: Anomaly; at: number }[] = [];
  analytics.onAnomaly((anomaly) => seen.push({ anomaly, at: Date.now() }));
  // 13 s of steady traffic: 10 requests every 500 ms (a late timer moves at most 10 into the next bucket).
  const steadyUntil = Date.now() + 13_000;
  while (Date.now() < steadyUntil) {
    for (let i = 0; i < 10; i++) analytics.record(requestAt(Date.now(), { route: '/api' }));
    await sleep(500);
  }
  assert.equal(seen.length, 0, 'steady traffic raised no anomaly');
  // Spike: 400 requests inside one bucket.
  const spikeAt = Date.now();
  for (let i = 0; i < 400; i++) analytics.record(requestAt(spikeAt, { route: '/api' }));
  const bucketEnd = (Math.floor(spikeAt / 1000) + 1) * 1000;
  const deadline = bucketEnd + 3_000;
  while (seen.length === 0 && Date.now() < deadline + 500) {
    for (let i = 0; i < 2; i++) analytics.record(requestAt(Date.now(), { route: '/api' }));
    await sleep(100);
  }
  assert.equal(seen.length, 1, 'one anomaly');
  const { anomaly, at } = seen[0]!;
  assert.equal(anomaly.metric, 'request_rate');
  assert.equal(anomaly.timestamp, new Date(bucketEnd - 1000).toISOString());
  assert.ok(at <= deadline, `reported ${at - bucketEnd} ms after the bucket ended`);
});

it('runs its analyses on the injected clock: each analyzer_interval of simulated time, none in between', async () => {
  const { harness, requestAt: at } = await import('./helpers.js');
  const h = harness({ yaml: 'bucket_interval: 1s\nanalyzer_interval: 5s\nwindow: 30s\nretention: 10m\n', timers: true });
  await h.analytics.start();
  try {
    const t0 = h.clock.now();
    // 20 s of steady traffic, 10 requests a second, then let the clock reach the next analyses.
    for (let s = 0; s < 20; s++) {
      for (let i = 0; i < 10; i++) h.analytics.record(at(t0 + s * 1_000 + i * 100 + 50));
      h.clock.advance(1_000);
      await new Promise((r) => setImmediate(r));
    }
    const learned = h.analytics.routeBaseline('/api');
    assert.ok(learned !== undefined && learned.sampleSize >= 10, `analyses ran on simulated time: ${JSON.stringify(learned)}`);
  } finally {
    await h.analytics.close();
  }
});
