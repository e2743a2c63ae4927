#!/usr/bin/env node
/**
 * Per-request CPU cost of the adaptive layer's hot-path calls, in-process (no HTTP):
 * the adaptive route-limit decision, a latency-weighted pick plus its response feedback, and a
 * breaker error-window record. Target: ≤ 3 µs for all three together.
 *
 *   npx tsc -p tsconfig.build.json && node bench/adaptive-decide.mjs
 *   node --import tsx bench/adaptive-decide.mjs          # straight from src/
 *
 * Environment: BENCH_ITERATIONS (2,000,000), BENCH_CLIENTS (10,000).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dist = `${ROOT}dist/adaptive/index.js`;
let mod;
if (existsSync(dist)) mod = await import(pathToFileURL(dist).href);
else {
  try {
    mod = await import(pathToFileURL(`${ROOT}src/adaptive/index.ts`).href);
  } catch {
    process.stderr.write('adaptive-decide: build first (npx tsc -p tsconfig.build.json) or run with node --import tsx\n');
    process.exit(1);
  }
}
const { AdaptiveRouteLimiter, LatencyWeightedBalancer, BreakerTuning } = mod;

const N = Number(process.env.BENCH_ITERATIONS ?? 2_000_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10_000);
const keys = Array.from({ length: CLIENTS }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

function limiter(avgRatePerMin) {
  const l = new AdaptiveRouteLimiter(['/api'], {
    baselines: { baseline: () => ({ avgRatePerMin, dataMs: 7_200_000 }) },
    multiplier: 2,
    minLimit: 10,
    maxLimit: 1e9,
    learningPeriodMs: 3_600_000,
    burstMs: 10_000,
    shadow: false,
  });
  return l.forRoute('/api');
}

const backends = ['http://a', 'http://b', 'http://c', 'http://d'].map((url) => ({ url, inFlight: 0, up: true }));
const baselines = { backend: () => ({ latencyMs: 10, errorRate: 0.01, sampleSize: 1000 }) };
const lb = new LatencyWeightedBalancer(backends, { baselines });
const tuning = new BreakerTuning({ baselines });
const windows = backends.map((b) => tuning.forBackend(b.url));

function time(label, fn) {
  for (let i = 0; i < 200_000; i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) fn(i);
  const ns = Number(process.hrtime.bigint() - t0) / N;
  process.stdout.write(`${label.padEnd(58)} ${ns.toFixed(0).padStart(6)} ns/request\n`);
  return ns;
}

const under = limiter(1e9); // never over the limit: the common path
const over = limiter(60); // 120/min: nearly every request meets an empty bucket (fair-share path)
let sink = 0;

process.stdout.write(`adaptive layer per-request cost (${N.toLocaleString('en')} iterations, ${CLIENTS.toLocaleString('en')} clients, Node ${process.version})\n`);
const a = time('route limit decide (under the limit)', (i) => {
  if (under.decide(keys[i % CLIENTS]) !== null) sink++;
});
const a2 = time('route limit decide (over the limit: fair share, refusals)', (i) => {
  if (over.decide(keys[i % CLIENTS]) !== null) sink++;
});
const b = time('weighted pick + onResponse', (i) => {
  const c = lb.pick();
  lb.onResponse(c.url, 8 + (i & 7), 'success');
});
const c = time('breaker error window record (+ check on failures)', (i) => {
  const w = windows[i & 3];
  const failed = (i & 63) === 0;
  w.record(failed);
  if (failed && w.check() !== null) sink++;
});
const all = time('all three together (under the limit)', (i) => {
  if (under.decide(keys[i % CLIENTS]) !== null) sink++;
  const p = lb.pick();
  lb.onResponse(p.url, 8 + (i & 7), 'success');
  const w = windows[i & 3];
  w.record((i & 63) === 0);
});
const shared = time('all three, one Date.now() per request passed as `now`', (i) => {
  const now = Date.now();
  if (under.decide(keys[i % CLIENTS], now) !== null) sink++;
  const p = lb.pick(null, now);
  lb.onResponse(p.url, 8 + (i & 7), 'success', now);
  const w = windows[i & 3];
  w.record((i & 63) === 0, now);
});
const clockNs = time('(for scale: one Date.now() call)', () => {
  sink += Date.now() & 1;
});
process.stdout.write(`sum of parts: ${(a + b + c).toFixed(0)} ns (over-limit decide ${a2.toFixed(0)} ns); together ${all.toFixed(0)} ns, ${shared.toFixed(0)} ns with one shared clock read (${clockNs.toFixed(0)} ns of it); target ≤ 3000 ns${sink < 0 ? '' : ''}\n`);
