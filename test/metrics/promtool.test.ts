/**
 * The /metrics output must pass `promtool check metrics` (Debian package `prometheus`): the
 * gateway's own families with no lint problem at all; with prom-client's default process metrics
 * added, it must still parse, and the only lint problems allowed are the known ones in
 * prom-client's naming (gauges called `nodejs_active_*_total`, kept because Node.js dashboards use
 * those names). CI installs promtool, so there a missing binary is a failure; elsewhere the test
 * skips and says why.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer, get as httpGet } from 'node:http';
import { delimiter, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createMetrics, type Metrics } from '../../src/metrics/index.js';
import { CircuitBreaker } from '../../src/breaker/index.js';
import { ManualClock } from '../../src/clock.js';
import { backend, record } from './helpers.js';

function findPromtool(): string | null {
  const candidates = [process.env.PROMTOOL, ...(process.env.PATH ?? '').split(delimiter).map((dir) => (dir ? join(dir, 'promtool') : undefined))];
  for (const file of candidates) {
    if (!file) continue;
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** promtool's lint exit code (problems found, but the input parsed). */
const LINT_PROBLEMS_EXIT = 3;
const KNOWN_DEFAULT_METRIC_LINTS = new Set([
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
]);

const inCI = Boolean(process.env.CI) && process.env.CI !== 'false' && process.env.CI !== '0';

function promtoolCheck(promtool: string, input: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(input);
  });
}

test('promtool check metrics accepts the whole /metrics output', async (t) => {
  const promtool = findPromtool();
  if (promtool === null) {
    if (inCI) assert.fail('promtool not found on PATH; CI must install the Debian package "prometheus"');
    t.skip('promtool not found (apt-get install prometheus, or set PROMTOOL=/path/to/promtool); this is a failure when CI is set');
    return;
  }

  const clock = new ManualClock();
  const a = backend(t, 'http://127.0.0.1:9001');
  const b = backend(t, 'http://127.0.0.1:9002/base');
  a.breaker = new CircuitBreaker({ threshold: 1, timeout: 1_000, half_open_requests: 1 }, { clock });
  a.breaker.failure();
  b.healthy = false;
  const withDefaults = createMetrics({ routes: ['/api', '/web'], backends: () => [a, b], storeDegraded: () => true });
  const gatewayOnly = createMetrics({ routes: ['/api', '/web'], backends: () => [a, b], storeDegraded: () => true, collectDefault: false });
  t.after(() => withDefaults.close());
  t.after(() => gatewayOnly.close());
  for (const m of [withDefaults, gatewayOnly]) populate(m, a.url, b.url);

  const body = await scrape(t, withDefaults);
  for (const family of [
    'gateway_http_requests_total',
    'gateway_http_request_duration_seconds_bucket',
    'gateway_upstream_requests_total',
    'gateway_upstream_duration_seconds_count',
    'gateway_backend_up',
    'gateway_circuit_state',
    'gateway_rate_limited_total',
    'gateway_store_errors_total',
    'gateway_store_degraded',
    'gateway_backend_weight',
    'gateway_anomalies_total',
    'process_cpu_user_seconds_total',
  ]) {
    assert.match(body, new RegExp(`^${family}[{ ]`, 'm'), `${family} has a sample`);
  }

  const own = await promtoolCheck(promtool, await scrape(t, gatewayOnly));
  assert.equal(own.output.trim(), '', `promtool reported problems in the gateway's own metrics:\n${own.output}`);
  assert.equal(own.code, 0);

  const all = await promtoolCheck(promtool, body);
  const unexpected = all.output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !KNOWN_DEFAULT_METRIC_LINTS.has(line));
  assert.deepEqual(unexpected, [], `promtool reported problems:\n${all.output}`);
  assert.ok(all.code === 0 || all.code === LINT_PROBLEMS_EXIT, `promtool exit code ${all.code}: the output did not parse\n${all.output}`);
});

/** Gives every family a sample, including label values that need escaping. */
function populate(m: Metrics, urlA: string, urlB: string): void {
  for (const method of ['GET', 'POST', 'BREW']) {
    m.onCompletion(record({ method, latencyMs: 7 }));
    m.onCompletion(record({ method, route: null, backend: '', status: 404 }));
  }
  m.onCompletion(record({ backend: urlB, status: 502, latencyMs: 30_000 }));
  m.onCompletion(record({ backend: '', status: 429, decision: 'rate_limited' }));
  m.onCompletion(record({ backend: '', status: 429, decision: 'adaptive_limited', route: '/web' }));
  m.onCompletion(record({ backend: '', status: 401, decision: 'auth_failed' }));
  m.storeError('redis', 'take');
  m.setBackendWeight(urlA, 0.5);
  m.setBackendWeight(urlB, 1.5);
  m.anomaly('/api', 'error_rate');
  m.anomaly('/api', 'odd "quoted" \\ metric\nname');
}

async function scrape(t: TestContext, m: Metrics): Promise<string> {
  const server = createServer(m.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return new Promise<string>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/metrics', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}
