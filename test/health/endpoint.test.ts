/**
 * `GET /health` served by healthEndpoint on a real node:http server: the reference JSON shape,
 * 200 healthy / 503 degraded, application/json on both, degraded-with-fallback (200) and failing (503)
 * dependencies; the load-balancer probes /health/live and /health/ready.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { Backend } from '../../src/balancer/index.js';
import { ManualClock } from '../../src/clock.js';
import { HealthChecker, healthEndpoint, isHealthPath, livenessEndpoint, readinessEndpoint, type HealthEndpointOptions, type Phase } from '../../src/health/index.js';

const CONFIG = { interval: 10_000, timeout: 1_000, path: '/', healthy_threshold: 1, unhealthy_threshold: 1 };
const A = 'http://127.0.0.1:9001';
const B = 'http://127.0.0.1:9002';

async function serveHealth(t: TestContext, opts: Omit<HealthEndpointOptions, 'checker' | 'startedAt' | 'clock'> = {}, urls: string[] = [A, B]) {
  const clock = new ManualClock();
  const checker = new HealthChecker({ config: CONFIG, clock });
  t.after(() => checker.close());
  for (const url of urls) {
    const b = new Backend(url, { connectTimeoutMs: 1_000, connections: 1, healthPath: '/' });
    t.after(() => b.destroy());
    checker.add(b);
  }
  const handler = healthEndpoint({ checker, startedAt: clock.now(), clock, ...opts });
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
  return { checker, clock, url };
}

async function get(url: string, method = 'GET') {
  const res = await fetch(url, { method });
  return { status: res.status, type: res.headers.get('content-type'), cache: res.headers.get('cache-control'), body: (await res.json()) as Record<string, any> };
}

describe('/health', () => {
  test('answers 200 "healthy" as JSON when every backend is healthy, in the reference shape', async (t) => {
    const { checker, clock, url } = await serveHealth(t);
    checker.record(A, true);
    checker.record(B, true);
    clock.advance(65_000);
    const r = await get(url);
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.equal(r.body.status, 'healthy');
    assert.equal(r.body.uptime, '1m5s');
    assert.deepEqual(Object.keys(r.body.backends).sort(), [A, B]);
    for (const u of [A, B]) {
      const entry = r.body.backends[u];
      assert.equal(entry.url, u);
      assert.equal(entry.healthy, true);
      assert.match(entry.last_check, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    }
    assert.deepEqual(r.body.degraded, []);
  });

  test('answers 503 "degraded" as application/json (not text/plain like the reference) when a backend is unhealthy', async (t) => {
    const { checker, url } = await serveHealth(t);
    checker.record(A, true);
    checker.record(B, false, 'status 500');
    const r = await get(url);
    assert.equal(r.status, 503);
    assert.equal(r.type, 'application/json');
    assert.equal(r.body.status, 'degraded');
    assert.equal(r.body.backends[B].healthy, false);
    assert.equal(r.body.backends[B].last_error, 'status 500');
    assert.equal(r.body.backends[A].healthy, true);
  });

  test('counts backends not probed yet as healthy, with the zero last_check', async (t) => {
    const { url } = await serveHealth(t);
    const r = await get(url);
    assert.equal(r.status, 200);
    assert.equal(r.body.backends[A].last_check, '0001-01-01T00:00:00Z');
    assert.equal(r.body.backends[A].state, 'unknown');
  });

  test('is healthy with no backends at all, and backends is {} not null', async (t) => {
    const { url } = await serveHealth(t, {}, []);
    const r = await get(url);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.backends, {});
    assert.equal(r.body.uptime, '0s');
  });

  test('a dependency down with a fallback (degradedReasons) is "degraded" with 200: the instance still serves', async (t) => {
    let reasons: string[] = ['cluster store unreachable'];
    const { checker, url } = await serveHealth(t, { degradedReasons: () => reasons });
    checker.record(A, true);
    checker.record(B, true);
    const r = await get(url);
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json');
    assert.equal(r.body.status, 'degraded');
    assert.deepEqual(r.body.degraded, ['cluster store unreachable']);
    reasons = [];
    const again = await get(url);
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'healthy');
    assert.deepEqual(again.body.degraded, []);
  });

  test('a dependency down with no fallback (failingReasons) is "degraded" with 503', async (t) => {
    const { checker, url } = await serveHealth(t, { failingReasons: () => ['cluster store unreachable (fail_closed)'], degradedReasons: () => ['other'] });
    checker.record(A, true);
    checker.record(B, true);
    const r = await get(url);
    assert.equal(r.status, 503);
    assert.equal(r.body.status, 'degraded');
    assert.deepEqual(r.body.degraded, ['cluster store unreachable (fail_closed)', 'other']);
  });

  test('an unhealthy backend is still 503 with a fallback-only reason present', async (t) => {
    const { checker, url } = await serveHealth(t, { degradedReasons: () => ['cluster store unreachable'] });
    checker.record(A, false);
    assert.equal((await get(url)).status, 503);
  });

  test('follows flips: healthy, degraded, healthy again', async (t) => {
    const { checker, url } = await serveHealth(t);
    checker.record(A, true);
    checker.record(B, true);
    assert.equal((await get(url)).status, 200);
    checker.record(A, false);
    assert.equal((await get(url)).status, 503);
    checker.record(A, true);
    assert.equal((await get(url)).status, 200);
  });

  test('is never cached', async (t) => {
    const { url } = await serveHealth(t);
    assert.equal((await get(url)).cache, 'no-store');
  });

  test('answers HEAD with the status and no body', async (t) => {
    const { url, checker } = await serveHealth(t);
    checker.record(A, false);
    const res = await fetch(url, { method: 'HEAD' });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(await res.text(), '');
  });
});

async function serve(t: TestContext, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler!);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('/health/live and /health/ready', () => {
  test('/health/live answers 200 {"status":"alive"} whatever the backends do', async (t) => {
    const url = await serve(t, livenessEndpoint());
    const r = await get(url);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { status: 'alive' });
    assert.equal(r.cache, 'no-store');
  });

  test('/health/ready is 200 only when ready; 503 with Retry-After while starting or draining', async (t) => {
    let phase: Phase = 'starting';
    const url = await serve(t, readinessEndpoint({ phase: () => phase }));
    const seen: [number, string, string | null][] = [];
    for (const p of ['starting', 'ready', 'draining'] as const) {
      phase = p;
      const res = await fetch(url);
      seen.push([res.status, ((await res.json()) as { status: string }).status, res.headers.get('retry-after')]);
    }
    assert.deepEqual(seen, [
      [503, 'starting', '1'],
      [200, 'ready', null],
      [503, 'draining', '1'],
    ]);
  });

  test('isHealthPath names exactly the three health paths', () => {
    assert.deepEqual(
      ['/health', '/health/live', '/health/ready', '/health/', '/healthz', '/health/other'].map(isHealthPath),
      [true, true, true, false, false, false],
    );
  });
});
