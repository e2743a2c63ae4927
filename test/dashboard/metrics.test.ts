import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { LiveMetrics, MINUTE_MS, SLOTS } from '../../src/dashboard/live-metrics.js';
import { call, SseReader, startBackend, startGateway } from './helpers.js';

/** 2023-11-14T22:13:00Z: a whole minute, so offsets below are easy to read. */
const T0 = Math.floor(1_700_000_000_000 / MINUTE_MS) * MINUTE_MS;

describe('live metrics counters', () => {
  it('puts the current minute at index 29 and shifts older minutes left as time passes', () => {
    const clock = new ManualClock(T0);
    const m = new LiveMetrics(clock);
    m.record(10, 200);
    m.record(20, 500);
    let s = m.snapshot();
    assert.equal(s.sparklines.requests.length, SLOTS);
    assert.equal(s.sparklines.requests[29], 2);
    assert.equal(s.sparklines.errors[29], 1);
    assert.equal(s.sparklines.latency[29], 15);
    clock.advance(MINUTE_MS);
    m.record(4, 200);
    s = m.snapshot();
    assert.deepEqual(s.sparklines.requests.slice(27), [0, 2, 1]);
    assert.deepEqual(s.sparklines.latency.slice(27), [0, 15, 4]);
    clock.advance(29 * MINUTE_MS);
    s = m.snapshot();
    assert.equal(s.sparklines.requests[0], 1, 'the minute 29 minutes ago is still shown');
    clock.advance(MINUTE_MS);
    assert.deepEqual(m.snapshot().sparklines.requests, new Array(SLOTS).fill(0), 'older than 30 minutes is gone');
  });

  it('estimates requests per minute over a sliding 60 s window from the current and previous minute', () => {
    const clock = new ManualClock(T0);
    const m = new LiveMetrics(clock);
    for (let i = 0; i < 60; i++) m.record(100, 200);
    clock.advance(MINUTE_MS + 30_000); // 30 s into the next minute: half of the previous one still counts
    for (let i = 0; i < 10; i++) m.record(10, 503);
    const s = m.snapshot();
    assert.equal(s.requests_per_minute, 40); // 10 + 60 × 0.5
    // latency: (10×10 + 0.5×60×100) / 40 = 77.5; errors: 10 / 40
    assert.equal(s.avg_latency_ms, 77.5);
    assert.equal(s.error_rate, 0.25);
  });

  it('counts beyond any log capacity (it never scans the request log)', () => {
    const clock = new ManualClock(T0);
    const m = new LiveMetrics(clock);
    for (let i = 0; i < 50_000; i++) m.record(1, 200);
    assert.equal(m.snapshot().requests_per_minute, 50_000);
  });

  it('reports zeros, not NaN, without traffic', () => {
    const s = new LiveMetrics(new ManualClock(T0)).snapshot();
    assert.equal(s.requests_per_minute, 0);
    assert.equal(s.avg_latency_ms, 0);
    assert.equal(s.error_rate, 0);
  });
});

describe('GET /dashboard/api/metrics in simulated time', () => {
  it('counts proxied requests per minute and reports uptime from the gateway clock', async (t) => {
    const clock = new ManualClock(T0 + 10_000);
    const ok = await startBackend(t);
    const bad = await startBackend(t, { status: 500 });
    const { url } = await startGateway(
      t,
      `routes:\n  - path: /ok\n    backend: ${ok.url}\n  - path: /bad\n    backend: ${bad.url}\nhealthcheck: { interval: 1h }\n`,
      { clock },
    );
    for (let i = 0; i < 3; i++) assert.equal((await call(url, 'GET', '/ok/x')).status, 200);
    assert.equal((await call(url, 'GET', '/bad/x')).status, 500);

    let m = (await call(url, 'GET', '/dashboard/api/metrics')).json;
    assert.deepEqual(Object.keys(m), [
      'avg_latency_ms',
      'error_rate',
      'healthy_backends',
      'requests_per_minute',
      'sparklines',
      'total_backends',
      'uptime',
      'uptime_seconds',
    ]);
    assert.equal(m.requests_per_minute, 4);
    assert.equal(m.error_rate, 0.25);
    assert.equal(m.sparklines.requests[29], 4);
    assert.equal(m.sparklines.errors[29], 1);
    assert.ok(m.avg_latency_ms > 0 && m.avg_latency_ms < 1000, `avg latency ${m.avg_latency_ms} is in ms`);
    assert.equal(m.total_backends, 2);
    assert.equal(m.uptime, '0s');

    clock.advance(2 * MINUTE_MS);
    m = (await call(url, 'GET', '/dashboard/api/metrics')).json;
    assert.equal(m.requests_per_minute, 0, 'nothing in the last minute');
    assert.deepEqual(m.sparklines.requests.slice(26), [0, 4, 0, 0]);
    assert.equal(m.uptime, '2m0s');
    assert.equal(m.uptime_seconds, 120);
  });

  it('pushes the same object as a metrics event on the stream', async (t) => {
    const { url } = await startGateway(t, 'routes: []\n', { dashboard: { metricsIntervalMs: 50 } });
    const sse = await SseReader.open(url);
    t.after(() => sse.close());
    const ev = await sse.next('metrics');
    const body = (await call(url, 'GET', '/dashboard/api/metrics')).json;
    assert.deepEqual(Object.keys(ev), Object.keys(body));
    assert.equal(ev.sparklines.requests.length, 30);
    const e = sse.events.find((x) => x.event === 'metrics')!;
    assert.match(e.id ?? '', /^\d+$/);
  });
});
