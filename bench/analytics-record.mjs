#!/usr/bin/env node
/**
 * CPU cost of analytics.record() — the only analytics call on the request path.
 * Records N completion records (3 routes + unmatched, 3 backends, mixed statuses, rejections and
 * latencies, advancing time so buckets roll over) and prints CPU µs per record, next to the cost of
 * the same loop with a no-op recorder ("analytics off"). The budget is ≤ 1 µs per record.
 *
 *   npm run build && node bench/analytics-record.mjs        # uses dist/
 *   node --import tsx bench/analytics-record.mjs            # or straight from src/
 * Environment: RECORDS (default 2,000,000), ROUNDS (default 5; the median is printed).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/analytics/index.js', import.meta.url));
const mod = existsSync(dist) ? await import(dist) : await import(new URL('../src/analytics/index.ts', import.meta.url).href);
const { createAnalytics } = mod;

const N = Number(process.env.RECORDS ?? 2_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const routes = ['/api/v1', '/api/v2', '/static'];
const backends = ['http://127.0.0.1:9001', 'http://127.0.0.1:9002', 'http://127.0.0.1:9003'];
const config = { enabled: true, bucket_interval: 60_000, retention: 48 * 3_600_000, analyzer_interval: 300_000, window: 3_600_000, z_threshold: 3 };
const silent = { info() {}, warn() {}, error() {} };
let now = Date.UTC(2026, 10, 1);
const clock = { now: () => now };
const analytics = createAnalytics({ config, routes, backends, clock, logger: silent, dataDir: '/nonexistent', timers: false, persist: false });

// A pool of prebuilt records (as the gateway publishes them); times are moved forward as we go.
const POOL = 4096;
const decisions = [undefined, undefined, undefined, undefined, undefined, undefined, 'rate_limited', 'auth_failed', 'upstream_error', undefined];
const records = [];
for (let i = 0; i < POOL; i++) {
  const decision = decisions[i % decisions.length];
  const rejected = decision === 'rate_limited' || decision === 'auth_failed';
  records.push({
    id: String(i), time: 0, method: 'GET', path: '/x', query: '',
    route: i % 17 === 0 ? null : routes[i % routes.length],
    backend: rejected ? '' : backends[i % backends.length],
    status: decision === 'rate_limited' ? 429 : decision === 'auth_failed' ? 401 : decision === 'upstream_error' ? 502 : 200,
    latencyMs: 0.2 + ((i * 7919) % 5000) / 10, bytesIn: i % 3 === 0 ? 512 : 0, bytesOut: 1024 + (i % 100),
    clientIp: '127.0.0.1', consumer: undefined, decision, detail: undefined,
    errorCode: rejected ? decision : undefined, requestHeaders: {}, responseHeaders: undefined,
  });
}

function run(record) {
  const start = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const rec = records[i & (POOL - 1)];
    // 1 ms of simulated time per request: buckets roll over every 60,000 records.
    rec.time = now + i;
    record(rec);
  }
  now += N;
  const used = process.cpuUsage(start);
  return ((used.user + used.system) / N);
}

let sink = 0;
const noop = (rec) => { sink += rec.status; };
const on = [];
const off = [];
for (let r = 0; r < ROUNDS + 1; r++) {
  const a = run(analytics.record);
  const b = run(noop);
  if (r > 0) { on.push(a); off.push(b); } // round 0 warms the JIT up
}
const median = (xs) => xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const mOn = median(on);
const mOff = median(off);
const cost = mOn - mOff;
process.stdout.write(
  `analytics.record(): ${N.toLocaleString('en')} records × ${ROUNDS} rounds (median)\n` +
  `  analytics on : ${mOn.toFixed(3)} µs CPU per record\n` +
  `  analytics off: ${mOff.toFixed(3)} µs CPU per record (same loop, no-op recorder)\n` +
  `  cost         : ${cost.toFixed(3)} µs CPU per record (budget 1 µs) ${cost <= 1 ? 'OK' : 'OVER BUDGET'}\n`,
);
if (sink < 0) process.stdout.write('');
process.exitCode = cost <= 1 ? 0 : 1;
