/** The /analytics/* API through a real node:http server on port 0: shapes, config order, never-null lists, 400/404/405. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { feed, harness, requestAt, T0, type Harness } from './helpers.js';

const MINUTE = 60_000;
const ROUTES = ['/zeta', '/api/v1', '/alpha'];

async function serve(t: TestContext, h: Harness): Promise<string> {
  const server: Server = createServer((req, res) => {
    res.setHeader('x-request-id', 'req-test');
    const path = (req.url ?? '/').split('?')[0]!;
    h.analytics.handle(req, res, path);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function get(base: string, path: string, init?: RequestInit): Promise<{ status: number; body: any; type: string | null }> {
  const res = await fetch(base + path, init);
  const text = await res.text();
  return { status: res.status, body: text === '' ? null : JSON.parse(text), type: res.headers.get('content-type') };
}

function setup(opts: Parameters<typeof harness>[0] = {}): Harness {
  return harness({
    routes: ROUTES,
    backends: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'],
    currentLimit: (r) => (r === '/api/v1' ? 180 : null),
    backendWeight: (b) => (b.endsWith('9001') ? 0.7 : null),
    breakerThreshold: (b) => (b.endsWith('9002') ? 0.05 : null),
    ...opts,
  });
}

describe('GET /analytics/routes', () => {
  it('lists every configured route in config order before any traffic, learning, with numbers and nulls but never null lists', async (t) => {
    const h = setup();
    await h.analytics.start();
    const base = await serve(t, h);
    const { status, body, type } = await get(base, '/analytics/routes');
    assert.equal(status, 200);
    assert.match(type!, /application\/json/);
    assert.deepEqual(
      body.routes.map((r: { route: string }) => r.route),
      ROUTES,
    );
    const v1 = body.routes[1];
    assert.deepEqual(Object.keys(v1).sort(), ['anomalies_24h', 'avg_latency_ms', 'avg_rate', 'current_rate_limit', 'error_rate', 'learning', 'p50_latency_ms', 'p99_latency_ms', 'rate_std_dev', 'route', 'sample_size'].sort());
    assert.equal(v1.learning, true);
    assert.equal(v1.avg_rate, 0);
    assert.equal(v1.current_rate_limit, 180);
    assert.equal(body.routes[0].current_rate_limit, null);
  });

  it('reports avg_rate per minute, latency, error rate and anomalies of the last 24 h once learned', async (t) => {
    const h = setup();
    await h.analytics.start();
    await feed(h, 60, () => 120, { routes: ['/api/v1'], latency: () => 8, errorP: 0.05 });
    await feed(h, 1, () => 1200, { routes: ['/api/v1'], latency: () => 8 });
    await h.analytics.analyze();
    const base = await serve(t, h);
    const v1 = (await get(base, '/analytics/routes')).body.routes[1];
    assert.equal(v1.learning, false);
    assert.ok(Math.abs(v1.avg_rate - 120) < 1, String(v1.avg_rate));
    assert.ok(Math.abs(v1.avg_latency_ms - 8) < 0.01);
    assert.ok(Math.abs(v1.p99_latency_ms / 8 - 1) < 0.05);
    assert.ok(v1.error_rate > 0.02 && v1.error_rate < 0.08, String(v1.error_rate));
    assert.equal(v1.anomalies_24h, 1);
    assert.equal(v1.sample_size, 59, 'the spike bucket is kept out while its episode lasts');
  });
});

describe('GET /analytics/routes/{route}/history', () => {
  it('returns the last hour in bucket steps by default, with the reference fields', async (t) => {
    const h = setup();
    await h.analytics.start();
    await feed(h, 90, (m) => m, { routes: ['/api/v1'], latency: () => 5 });
    const base = await serve(t, h);
    const { status, body } = await get(base, '/analytics/routes/api/v1/history');
    assert.equal(status, 200);
    assert.equal(body.route, '/api/v1');
    assert.equal(body.to, new Date(h.clock.now()).toISOString());
    assert.equal(body.from, new Date(h.clock.now() - 60 * MINUTE).toISOString());
    assert.equal(body.clamped, false);
    assert.equal(body.history.length, 60);
    const p = body.history[0];
    assert.deepEqual(Object.keys(p).sort(), ['avg_latency_ms', 'bytes_in', 'bytes_out', 'error_rate', 'p99_latency_ms', 'rejected_count', 'request_count', 'timestamp'].sort());
    assert.equal(p.timestamp, new Date(T0 + 30 * MINUTE).toISOString());
    assert.equal(p.request_count, 30);
    assert.equal(body.history[59].request_count, 89);
  });

  it('accepts the route URL-encoded, aggregates by step, and answers [] for a quiet route', async (t) => {
    const h = setup();
    await h.analytics.start();
    await feed(h, 10, () => 6, { routes: ['/api/v1'] });
    const base = await serve(t, h);
    const from = new Date(T0).toISOString();
    const to = new Date(T0 + 10 * MINUTE).toISOString();
    const { body } = await get(base, `/analytics/routes/${encodeURIComponent('/api/v1')}/history?from=${from}&to=${to}&step=5m`);
    assert.deepEqual(
      body.history.map((p: { request_count: number }) => p.request_count),
      [30, 30],
    );
    const quiet = await get(base, `/analytics/routes/alpha/history?from=${from}&to=${to}`);
    assert.equal(quiet.body.history.length, 10);
    assert.ok(quiet.body.history.every((p: { request_count: number; avg_latency_ms: null }) => p.request_count === 0 && p.avg_latency_ms === null));
  });

  it('clamps a range reaching past the retention and says so', async (t) => {
    const h = setup({ yaml: 'retention: 2h' });
    await h.analytics.start();
    await feed(h, 5, () => 1, { routes: ['/api/v1'] });
    const base = await serve(t, h);
    const { status, body } = await get(base, `/analytics/routes/api/v1/history?from=2020-01-01T00:00:00Z`);
    assert.equal(status, 200);
    assert.equal(body.clamped, true);
    assert.ok(Date.parse(body.from) >= h.clock.now() - 2 * 3_600_000);
    assert.ok(body.history.length <= 120);
  });

  for (const [query, param] of [
    ['from=yesterday', 'from'],
    ['to=2026-13-45', 'to'],
    ['from=1700000000', 'from'],
    ['step=10s', 'step'],
    ['step=banana', 'step'],
    [`from=${new Date(T0 + 10 * MINUTE).toISOString()}&to=${new Date(T0).toISOString()}`, 'from'],
  ] as const) {
    it(`answers 400 JSON naming "${param}" for ${query}`, async (t) => {
      const h = setup();
      await h.analytics.start();
      const base = await serve(t, h);
      const { status, body } = await get(base, `/analytics/routes/api/v1/history?${query}`);
      assert.equal(status, 400);
      assert.equal(body.error.code, 'bad_request');
      assert.equal(body.error.request_id, 'req-test');
      assert.match(body.error.message, new RegExp(`^${param}\\b`));
    });
  }

  it('answers 404 JSON for an unknown route, and for a route path without /history', async (t) => {
    const h = setup();
    await h.analytics.start();
    const base = await serve(t, h);
    for (const path of ['/analytics/routes/nope/history', '/analytics/routes/api/v1', '/analytics/nothing']) {
      const { status, body } = await get(base, path);
      assert.equal(status, 404, path);
      assert.equal(body.error.code, 'not_found');
    }
  });
});

describe('GET /analytics/anomalies', () => {
  it('lists anomalies with the reference fields plus ended_at, filtered by route and since', async (t) => {
    const h = setup();
    await h.analytics.start();
    await feed(h, 60, () => 60, { routes: ['/api/v1', '/alpha'] });
    await feed(h, 1, (_m, r) => (r === '/alpha' ? 600 : 60), { routes: ['/api/v1', '/alpha'] });
    await feed(h, 1, () => 60, { routes: ['/api/v1', '/alpha'] });
    await h.analytics.analyze();
    const base = await serve(t, h);
    const all = (await get(base, '/analytics/anomalies')).body;
    assert.equal(all.count, 1);
    assert.deepEqual(Object.keys(all.anomalies[0]).sort(), ['current', 'ended_at', 'mean', 'metric', 'route', 'std_dev', 'timestamp', 'z_score'].sort());
    assert.equal(all.anomalies[0].route, '/alpha');
    assert.equal(all.anomalies[0].ended_at, new Date(T0 + 61 * MINUTE).toISOString());
    assert.deepEqual((await get(base, '/analytics/anomalies?route=/api/v1')).body, { anomalies: [], count: 0 });
    assert.equal((await get(base, `/analytics/anomalies?since=${new Date(T0 + 61 * MINUTE).toISOString()}`)).body.count, 0);
    assert.equal((await get(base, '/analytics/anomalies?since=soon')).status, 400);
    assert.equal((await get(base, '/analytics/anomalies?route=/nope')).status, 404);
  });

  it('answers an empty list, never null, before anything happened', async (t) => {
    const h = setup();
    await h.analytics.start();
    const base = await serve(t, h);
    assert.deepEqual((await get(base, '/analytics/anomalies')).body, { anomalies: [], count: 0 });
  });
});

describe('GET /analytics/backends', () => {
  it('lists every known backend with latency, p99, error rate, weight and breaker threshold (null when not applicable)', async (t) => {
    const h = setup();
    await h.analytics.start();
    h.analytics.addBackend('http://127.0.0.1:9003');
    for (let i = 0; i < 20; i++) h.analytics.record(requestAt(T0 + i * 1000, { route: '/api/v1', backend: 'http://127.0.0.1:9002', latencyMs: 30 }));
    h.clock.advance(MINUTE);
    await h.analytics.analyze();
    const base = await serve(t, h);
    const { body } = await get(base, '/analytics/backends');
    assert.deepEqual(
      body.backends.map((b: { backend: string }) => b.backend),
      ['http://127.0.0.1:9001', 'http://127.0.0.1:9002', 'http://127.0.0.1:9003'],
    );
    const [b1, b2, b3] = body.backends;
    assert.equal(b1.weight, 0.7);
    assert.equal(b1.breaker_threshold, null);
    assert.equal(b1.avg_latency_ms, null);
    assert.equal(b2.avg_latency_ms, 30);
    assert.ok(Math.abs(b2.p99_latency_ms / 30 - 1) < 0.05);
    assert.equal(b2.error_rate, 0);
    assert.equal(b2.breaker_threshold, 0.05);
    assert.equal(b3.weight, null);
  });
});

it('refuses methods other than GET and HEAD with 405 JSON and an Allow header', async (t) => {
  const h = setup();
  await h.analytics.start();
  const base = await serve(t, h);
  const res = await fetch(base + '/analytics/routes', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get('allow'), 'GET, HEAD');
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
});
