/** The adaptive layer's metrics: refusals by route and mode, the learned limit, weights read at scrape time, breaker trips by rule. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../../src/balancer/index.js';
import { createMetrics, type Metrics } from '../../src/metrics/index.js';
import { backend, samples, valueOf } from './helpers.js';

function make(backends: () => readonly Backend[] = () => []): Metrics {
  return createMetrics({ routes: ['/api'], backends, collectDefault: false });
}

test('counts adaptive refusals by route and mode through a bound cell, with no series before the first', async () => {
  const m = make();
  const enforce = m.adaptiveRejectionCell('/api', 'enforce');
  assert.equal(m.adaptiveRejectionCell('/api', 'enforce'), enforce, 'one cell per route and mode');
  assert.equal((await samples(m, 'gateway_adaptive_rejections_total')).length, 0);
  enforce.value++;
  enforce.value++;
  m.adaptiveRejectionCell('/api', 'shadow').value++;
  assert.equal(await valueOf(m, 'gateway_adaptive_rejections_total', { route: '/api', mode: 'enforce' }), 2);
  assert.equal(await valueOf(m, 'gateway_adaptive_rejections_total', { route: '/api', mode: 'shadow' }), 1);
});

test('shows a learned limit at scrape time and nothing while the route learns', async () => {
  const m = make();
  let limit: number | null = null;
  m.setAdaptiveLimitSource('/api', () => limit);
  assert.equal((await samples(m, 'gateway_adaptive_limit')).length, 0);
  limit = 1200;
  assert.equal(await valueOf(m, 'gateway_adaptive_limit', { route: '/api' }), 1200);
});

test('reads backend weights from a source at scrape time, only for current backends with a weight', async (t) => {
  const a = backend(t, 'http://127.0.0.1:9001');
  const b = backend(t, 'http://127.0.0.1:9002');
  const m = make(() => [a, b]);
  m.setWeightSource((url) => (url === a.url ? 1.5 : null));
  const s = await samples(m, 'gateway_backend_weight');
  assert.deepEqual(
    s.map((x) => [x.labels.backend, x.value]),
    [[a.url, 1.5]],
  );
});

test('counts breaker trips by backend and rule', async () => {
  const m = make();
  m.breakerTrip('http://127.0.0.1:9001', 'error_rate');
  m.breakerTrip('http://127.0.0.1:9001', 'error_rate');
  m.breakerTrip('http://127.0.0.1:9001', 'consecutive_failures');
  assert.equal(await valueOf(m, 'gateway_breaker_trips_total', { backend: 'http://127.0.0.1:9001', rule: 'error_rate' }), 2);
  assert.equal(await valueOf(m, 'gateway_breaker_trips_total', { backend: 'http://127.0.0.1:9001', rule: 'consecutive_failures' }), 1);
});
