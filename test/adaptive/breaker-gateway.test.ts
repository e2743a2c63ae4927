/**
 * A self-tuning breaker in a running gateway (`circuitbreaker.adaptive` defaults to
 * `analytics.enabled`; one-second analytics buckets): once the backend's 0% error baseline is
 * learned, a steady 25% error rate — never five failures in a row, so the static rule would never
 * trip — opens the breaker on its learned 5% threshold, and /health says why beside `circuit`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { send, startBackend, until } from '../helpers/gateway.js';
import { captureLogger } from '../ops/helpers.js';
import { startLearningGateway } from './gateway-helpers.js';

describe('self-tuning breaker in a running gateway', () => {
  it('trips on the learned threshold where the consecutive rule would not, with the reason in /health, the log and a notice', async (t) => {
    let failEvery = 0;
    let n = 0;
    const backend = await startBackend(t, (req, res) => {
      req.resume();
      n++;
      res.statusCode = failEvery > 0 && n % failEvery === 0 ? 500 : 200;
      res.end('x');
    });
    const { logger, lines } = captureLogger('info');
    const { gw } = await startLearningGateway(
      t,
      `  - path: /api
    backend: ${backend.url}
`,
      `healthcheck:
  interval: 1h
circuitbreaker:
  threshold: 5
  timeout: 30s
  window: 5s
  min_requests: 20
`,
      { logger },
    );
    const notices: any[] = [];
    t.after(gw.notices.subscribe((x) => notices.push(x)));

    // Learn a 0% error baseline.
    const learned = await until(
      async () => {
        await Promise.all(Array.from({ length: 10 }, () => send(`${gw.url}/api/x`)));
        const b = (await send(`${gw.url}/analytics/backends`)).json().backends[0];
        return b.breaker_threshold !== null ? b : null;
      },
      15_000,
      100,
    );
    assert.equal(learned.breaker_threshold, 0.05);

    failEvery = 4;
    const statuses: number[] = [];
    for (let i = 0; i < 200 && !statuses.includes(503); i++) statuses.push((await send(`${gw.url}/api/x`)).status);
    assert.ok(statuses.includes(503), `breaker opened: ${statuses.filter((s) => s === 500).length} failures in ${statuses.length}`);

    const health = (await send(`${gw.url}/health`)).json();
    const entry = health.backends[backend.url];
    assert.equal(entry.circuit, 'open');
    const trip = entry.circuit_trip;
    assert.equal(trip.rule, 'error_rate');
    assert.equal(trip.window_ms, 5_000);
    assert.ok(trip.requests >= 20, JSON.stringify(trip));
    assert.ok(trip.error_rate > 0.05, JSON.stringify(trip));
    assert.equal(trip.threshold, 0.05);
    assert.equal(trip.baseline_error_rate, 0);
    assert.match(trip.message, /^error rate \d+\.\d% \(\d+ of \d+\) over 5s above threshold 5\.0% \(5 × baseline 0\.0%/);

    const notice = notices.find((x) => x.event === 'breaker');
    assert.ok(notice !== undefined);
    assert.equal(notice.data.backend, backend.url);
    assert.equal(notice.data.rule, 'error_rate');
    assert.ok(lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith(`circuit breaker tripped: ${backend.url}: error rate`)));
    const metrics = (await send(`${gw.url}/metrics`)).text;
    assert.match(metrics, new RegExp(`gateway_breaker_trips_total\\{backend="${backend.url}",rule="error_rate"\\} 1`));
  });
});
