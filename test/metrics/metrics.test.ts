import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { register as globalRegistry } from 'prom-client';
import { createMetrics, normalizeMethod, METHOD_LABELS, type Metrics, type MetricsOptions } from '../../src/metrics/index.js';
import { CircuitBreaker } from '../../src/breaker/index.js';
import { ManualClock } from '../../src/clock.js';
import type { Backend } from '../../src/balancer/index.js';
import { backend, record, samples, valueOf } from './helpers.js';

function make(opts: Partial<MetricsOptions> = {}): Metrics {
  return createMetrics({ routes: ['/api', '/web'], backends: () => [], collectDefault: false, ...opts });
}

test('counts each completed request by method, route and status', async () => {
  const m = make();
  m.onCompletion(record());
  m.onCompletion(record());
  m.onCompletion(record({ status: 404 }));
  m.onCompletion(record({ method: 'POST', route: '/web', status: 201 }));
  assert.equal(await valueOf(m, 'gateway_http_requests_total', { method: 'GET', route: '/api', status: '200' }), 2);
  assert.equal(await valueOf(m, 'gateway_http_requests_total', { method: 'GET', route: '/api', status: '404' }), 1);
  assert.equal(await valueOf(m, 'gateway_http_requests_total', { method: 'POST', route: '/web', status: '201' }), 1);
  assert.equal((await samples(m, 'gateway_http_requests_total')).length, 3, 'no series for unseen combinations');
});

test('observes request durations in seconds into cumulative buckets', async () => {
  const m = make();
  m.onCompletion(record({ latencyMs: 3 }));
  m.onCompletion(record({ latencyMs: 40 }));
  m.onCompletion(record({ latencyMs: 20_000 }));
  const name = 'gateway_http_request_duration_seconds';
  const labels = { method: 'GET', route: '/api' };
  assert.equal(await valueOf(m, name, { ...labels, le: 0.005 }, `${name}_bucket`), 1);
  assert.equal(await valueOf(m, name, { ...labels, le: 0.05 }, `${name}_bucket`), 2);
  assert.equal(await valueOf(m, name, { ...labels, le: 10 }, `${name}_bucket`), 2);
  assert.equal(await valueOf(m, name, { ...labels, le: '+Inf' }, `${name}_bucket`), 3);
  assert.equal(await valueOf(m, name, labels, `${name}_count`), 3);
  assert.ok(Math.abs((await valueOf(m, name, labels, `${name}_sum`))! - 20.043) < 1e-9);
});

test('a latency on a bucket bound falls into that bucket', async () => {
  const m = make();
  m.onCompletion(record({ latencyMs: 100 }));
  const name = 'gateway_http_request_duration_seconds';
  assert.equal(await valueOf(m, name, { method: 'GET', route: '/api', le: 0.05 }, `${name}_bucket`), 0);
  assert.equal(await valueOf(m, name, { method: 'GET', route: '/api', le: 0.1 }, `${name}_bucket`), 1);
});

test('labels requests that matched no route as unmatched, never with the raw path', async () => {
  const m = make();
  for (let i = 0; i < 1000; i++) m.onCompletion(record({ route: null, path: `/random-${i}/x`, backend: '', status: 404, decision: 'not_found' }));
  const counters = await samples(m, 'gateway_http_requests_total');
  assert.deepEqual(counters, [{ labels: { method: 'GET', route: 'unmatched', status: '404' }, value: 1000 }]);
  const durations = await samples(m, 'gateway_http_request_duration_seconds');
  assert.equal(durations.length, 14, 'one histogram series: 11 buckets, +Inf, sum, count');
  const text = await m.registry.metrics();
  assert.doesNotMatch(text, /random-/);
});

test('normalises methods to a fixed set so client-chosen methods cannot grow label sets', async () => {
  assert.equal(normalizeMethod('GET'), 'GET');
  assert.equal(normalizeMethod('OPTIONS'), 'OPTIONS');
  assert.equal(normalizeMethod('PROPFIND'), 'OTHER');
  assert.equal(normalizeMethod('get'), 'OTHER', 'methods are case-sensitive');
  assert.equal(normalizeMethod(''), 'OTHER');

  const m = make();
  for (const method of METHOD_LABELS) m.onCompletion(record({ method }));
  for (let i = 0; i < 1000; i++) m.onCompletion(record({ method: `X-METHOD-${i}` }));
  const methods = new Set((await samples(m, 'gateway_http_requests_total')).map((s) => s.labels.method));
  assert.deepEqual([...methods].sort(), [...METHOD_LABELS].sort());
  assert.equal(await valueOf(m, 'gateway_http_requests_total', { method: 'OTHER' }), 1001);
});

test('counts upstream requests and durations only for records with a backend', async () => {
  const m = make();
  m.onCompletion(record({ backend: 'http://127.0.0.1:9001', status: 200, latencyMs: 10 }));
  m.onCompletion(record({ backend: 'http://127.0.0.1:9001', status: 502, latencyMs: 5 }));
  m.onCompletion(record({ backend: 'http://127.0.0.1:9002', status: 200, route: '/web' }));
  m.onCompletion(record({ backend: '', status: 429, decision: 'rate_limited' }));
  assert.equal(await valueOf(m, 'gateway_upstream_requests_total', { backend: 'http://127.0.0.1:9001', status: '200' }), 1);
  assert.equal(await valueOf(m, 'gateway_upstream_requests_total', { backend: 'http://127.0.0.1:9001', status: '502' }), 1);
  assert.equal(await valueOf(m, 'gateway_upstream_requests_total', { backend: 'http://127.0.0.1:9002', status: '200' }), 1);
  assert.equal((await samples(m, 'gateway_upstream_requests_total')).length, 3);
  const name = 'gateway_upstream_duration_seconds';
  assert.equal(await valueOf(m, name, { backend: 'http://127.0.0.1:9001' }, `${name}_count`), 2);
  assert.ok(Math.abs((await valueOf(m, name, { backend: 'http://127.0.0.1:9001' }, `${name}_sum`))! - 0.015) < 1e-9);
});

test('counts limited requests by route and reason, and no other decisions', async () => {
  const m = make();
  m.onCompletion(record({ status: 429, backend: '', decision: 'rate_limited' }));
  m.onCompletion(record({ status: 429, backend: '', decision: 'rate_limited' }));
  m.onCompletion(record({ status: 429, backend: '', decision: 'adaptive_limited', route: '/web' }));
  m.onCompletion(record({ status: 401, backend: '', decision: 'auth_failed' }));
  m.onCompletion(record({ status: 429, backend: '', decision: 'rate_limited', route: null }));
  m.onCompletion(record({ status: 503, backend: '', decision: 'breaker_open' }));
  m.onCompletion(record({ status: 504, decision: 'upstream_timeout' }));
  const name = 'gateway_rate_limited_total';
  assert.equal(await valueOf(m, name, { route: '/api', reason: 'rate_limited' }), 2);
  assert.equal(await valueOf(m, name, { route: '/web', reason: 'adaptive_limited' }), 1);
  assert.equal(await valueOf(m, name, { route: '/api', reason: 'auth_failed' }), 1);
  assert.equal(await valueOf(m, name, { route: 'unmatched', reason: 'rate_limited' }), 1);
  assert.equal((await samples(m, name)).length, 4);
});

test('a route not listed at start-up gets its own label', async () => {
  const m = make();
  m.onCompletion(record({ route: '/added-later', decision: 'rate_limited', status: 429 }));
  m.onCompletion(record({ route: '/added-later' }));
  assert.equal(await valueOf(m, 'gateway_http_requests_total', { route: '/added-later', status: '200' }), 1);
  assert.equal(await valueOf(m, 'gateway_rate_limited_total', { route: '/added-later', reason: 'rate_limited' }), 1);
});

test('a non-finite latency counts the request but is kept out of the histogram', async () => {
  const m = make();
  m.onCompletion(record({ latencyMs: Number.NaN }));
  m.onCompletion(record({ latencyMs: -1 }));
  assert.equal(await valueOf(m, 'gateway_http_requests_total', { method: 'GET', route: '/api' }), 2);
  assert.deepEqual(await samples(m, 'gateway_http_request_duration_seconds'), []);
});

test('backend up and circuit state gauges reflect the Backend objects at scrape time', async (t) => {
  const clock = new ManualClock();
  const a = backend(t, 'http://127.0.0.1:9001');
  const b = backend(t, 'http://127.0.0.1:9002');
  const c = backend(t, 'http://127.0.0.1:9003');
  a.breaker = new CircuitBreaker({ threshold: 1, timeout: 1_000, half_open_requests: 1 }, { clock });
  b.breaker = new CircuitBreaker({ threshold: 1, timeout: 1_000, half_open_requests: 1 }, { clock });
  // c has no breaker.
  let list: Backend[] = [a, b, c];
  const m = make({ backends: () => list });
  const up = (url: string) => valueOf(m, 'gateway_backend_up', { backend: url });
  const state = (url: string) => valueOf(m, 'gateway_circuit_state', { backend: url });

  assert.deepEqual([await up(a.url), await up(b.url), await up(c.url)], [1, 1, 1]);
  assert.deepEqual([await state(a.url), await state(b.url), await state(c.url)], [0, 0, 0]);

  a.breaker.failure();
  c.healthy = false;
  assert.deepEqual([await up(a.url), await up(b.url), await up(c.url)], [0, 1, 0]);
  assert.equal(await state(a.url), 1);

  clock.advance(1_000);
  assert.equal(await state(a.url), 2, 'half-open');
  assert.equal(await up(a.url), 1);

  list = [b];
  assert.equal(await up(a.url), undefined, 'a removed backend disappears');
  assert.equal((await samples(m, 'gateway_circuit_state')).length, 1);
});

test('backend weights are shown for current backends only', async (t) => {
  const a = backend(t, 'http://127.0.0.1:9001');
  const b = backend(t, 'http://127.0.0.1:9002');
  let list: Backend[] = [a, b];
  const m = make({ backends: () => list });
  assert.deepEqual(await samples(m, 'gateway_backend_weight'), []);
  m.setBackendWeight(a.url, 0.75);
  m.setBackendWeight(b.url, 0.25);
  m.setBackendWeight(a.url, 0.6);
  assert.equal(await valueOf(m, 'gateway_backend_weight', { backend: a.url }), 0.6);
  assert.equal(await valueOf(m, 'gateway_backend_weight', { backend: b.url }), 0.25);
  list = [b];
  assert.equal(await valueOf(m, 'gateway_backend_weight', { backend: a.url }), undefined);
  assert.throws(() => m.setBackendWeight(a.url, Number.NaN), RangeError);
});

test('counts store errors by store and operation', async () => {
  const m = make();
  m.storeError('redis', 'take');
  m.storeError('redis', 'take');
  m.storeError('redis', 'incr');
  assert.equal(await valueOf(m, 'gateway_store_errors_total', { store: 'redis', op: 'take' }), 2);
  assert.equal(await valueOf(m, 'gateway_store_errors_total', { store: 'redis', op: 'incr' }), 1);
});

test('store degradation comes from the setter, or from the provider when one is given', async () => {
  const m = make();
  assert.equal(await valueOf(m, 'gateway_store_degraded', {}), 0);
  m.setStoreDegraded(true);
  assert.equal(await valueOf(m, 'gateway_store_degraded', {}), 1);
  m.setStoreDegraded(false);
  assert.equal(await valueOf(m, 'gateway_store_degraded', {}), 0);

  let degraded = true;
  const p = make({ storeDegraded: () => degraded });
  assert.equal(await valueOf(p, 'gateway_store_degraded', {}), 1);
  degraded = false;
  assert.equal(await valueOf(p, 'gateway_store_degraded', {}), 0);
});

test('counts anomalies by route and metric', async () => {
  const m = make();
  m.anomaly('/api', 'error_rate');
  m.anomaly('/api', 'error_rate');
  m.anomaly('/web', 'latency_p99');
  assert.equal(await valueOf(m, 'gateway_anomalies_total', { route: '/api', metric: 'error_rate' }), 2);
  assert.equal(await valueOf(m, 'gateway_anomalies_total', { route: '/web', metric: 'latency_p99' }), 1);
});

test('every instance has its own registry and the global registry stays untouched', async () => {
  const before = globalRegistry.getMetricsAsArray().length;
  const one = createMetrics({ routes: ['/api'], backends: () => [] });
  const two = createMetrics({ routes: ['/api'], backends: () => [] });
  one.onCompletion(record());
  assert.equal(await valueOf(one, 'gateway_http_requests_total', { route: '/api' }), 1);
  assert.equal(await valueOf(two, 'gateway_http_requests_total', { route: '/api' }), undefined);
  assert.match(await two.registry.metrics(), /^process_cpu_user_seconds_total /m, 'default process metrics are on by default');
  assert.equal(globalRegistry.getMetricsAsArray().length, before);
  assert.doesNotMatch(await make().registry.metrics(), /^process_/m, 'and can be turned off');
});

test('resetMetrics zeroes the bound series and close drops every metric', async () => {
  const m = make();
  m.onCompletion(record());
  m.registry.resetMetrics();
  assert.deepEqual(await samples(m, 'gateway_http_requests_total'), []);
  assert.deepEqual(await samples(m, 'gateway_http_request_duration_seconds'), []);
  m.onCompletion(record());
  assert.equal(await valueOf(m, 'gateway_http_requests_total', { route: '/api' }), 1);
  m.close();
  m.close();
  assert.equal(m.registry.getMetricsAsArray().length, 0);
});

async function serve(t: import('node:test').TestContext, m: Metrics): Promise<number> {
  const server = createServer((req, res) => void m.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

function get(port: number, method = 'GET'): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/metrics', method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('serves /metrics in the text format with the registry content type', async (t) => {
  const m = make();
  m.onCompletion(record());
  const port = await serve(t, m);
  const res = await get(port);
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], m.registry.contentType);
  assert.equal(res.body, await m.registry.metrics());
  assert.match(res.body, /^gateway_http_requests_total\{method="GET",route="\/api",status="200"\} 1$/m);

  const head = await get(port, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
});

test('answers other methods on /metrics with 405 JSON', async (t) => {
  const port = await serve(t, make());
  const res = await get(port, 'POST');
  assert.equal(res.status, 405);
  assert.equal(res.headers.allow, 'GET, HEAD');
  assert.match(res.headers['content-type']!, /^application\/json/);
  assert.equal(JSON.parse(res.body).error.code, 'method_not_allowed');
});

test('a failing scrape answers 500 JSON and reports the error', async (t) => {
  const errors: unknown[] = [];
  const m = make({
    backends: () => {
      throw new Error('backend list unavailable');
    },
    onError: (err) => errors.push(err),
  });
  const port = await serve(t, m);
  const res = await get(port);
  assert.equal(res.status, 500);
  assert.match(res.headers['content-type']!, /^application\/json/);
  const id = res.headers['x-request-id'];
  assert.match(String(id), /^[0-9a-f]{32}$/, 'the error response carries a request id header');
  assert.deepEqual(JSON.parse(res.body), { error: { code: 'internal_error', message: 'Internal Server Error', request_id: id } }, 'and the body names the same id, never null');
  assert.equal(errors.length, 1);
});

test('onCompletion and handle work as detached functions', async (t) => {
  const m = make();
  const { onCompletion } = m;
  [record(), record()].forEach(onCompletion);
  assert.equal(await valueOf(m, 'gateway_http_requests_total', { route: '/api' }), 2);
  const handle = m.handle;
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  assert.equal((await get((server.address() as AddressInfo).port)).status, 200);
});
