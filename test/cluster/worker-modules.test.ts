/**
 * A worker's module list, built in-process with a fake channel: what the primary keeps is left
 * out, health verdicts and run-time backends come from the primary, records and notices go to it.
 */
import { tmpdir } from 'node:os';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { BaselineFeed, LeaseStore, RouteLeaseStore, workerModules, type PrimaryToWorker, type WorkerToPrimary } from '../../src/cluster/index.js';
import { MODULES } from '../../src/modules.js';
import { deadPort, startGateway } from '../helpers/gateway.js';
import { waitUntil } from '../cli/helpers.js';
import { completionRecord } from '../helpers/records.js';

const YAML = `server:\n  port: 0\n  host: 127.0.0.1\nroutes:\n  - path: /a\n    backend: "http://127.0.0.1:9"\n  - path: /b\n    backend: "http://127.0.0.1:10"\nratelimit:\n  enabled: true\n  max_tokens: 5\n  refill_rate: 1\n`;

async function worker(t: Parameters<typeof startGateway>[0]) {
  const sent: WorkerToPrimary[] = [];
  const handlers: ((m: PrimaryToWorker) => void)[] = [];
  const send = (m: WorkerToPrimary): void => void sent.push(m);
  const leaseStore = new LeaseStore({ send });
  const modules = workerModules(MODULES, { send, sendTracked: (m, done) => (sent.push(m), done()), onMessage: (h) => handlers.push(h), leaseStore });
  const clock = new ManualClock(1_000_000);
  const gw = await startGateway(t, YAML, { modules, clock });
  return { gw, clock, sent, deliver: (m: PrimaryToWorker) => handlers.forEach((h) => h(m)), names: modules.map((m) => m.name), leaseStore };
}

test('a worker leaves what exists once to the primary and keeps the request path', async (t) => {
  const { names, gw } = await worker(t);
  for (const name of ['metrics', 'processes', 'analytics', 'dashboard']) assert.ok(!names.includes(name), name);
  for (const name of ['store', 'routing', 'ratelimit', 'health', 'balancer', 'proxy', 'cluster-records']) assert.ok(names.includes(name), name);
  assert.ok(gw.store instanceof LeaseStore, 'without Redis the limits are leased from the primary');
});

test('a worker takes health verdicts and run-time backends from the primary, and probes nothing', async (t) => {
  const { gw, deliver } = await worker(t);
  const a = gw.backends.get('http://127.0.0.1:9')!;
  assert.equal(a.healthy, null, 'no probe of its own (the backend is down, a probe would say so)');
  deliver({ t: 'health', states: [['http://127.0.0.1:9', false]] });
  assert.equal(a.healthy, false);
  deliver({ t: 'attach', items: [['/b', 'http://localhost:4567']] });
  deliver({ t: 'health', states: [['http://localhost:4567', true]] });
  const route = gw.routes.match('/b/x')!;
  assert.ok(route.backends.some((b) => b.url === 'http://localhost:4567' && b.healthy === true));
});

test('a worker sends its records in batches and its notices to the primary', async (t) => {
  const { gw, sent, clock } = await worker(t);
  gw.bus.publish(completionRecord({ id: 'one' }));
  gw.bus.publish(completionRecord({ id: 'two' }));
  gw.notices.publish('breaker', { url: 'http://127.0.0.1:9', state: 'open' });
  assert.deepEqual(sent.filter((m) => m.t === 'notice'), [{ t: 'notice', event: 'breaker', data: { url: 'http://127.0.0.1:9', state: 'open' } }]);
  assert.equal(sent.filter((m) => m.t === 'records').length, 0, 'not one message per record');
  clock.advance(100);
  const batches = sent.filter((m) => m.t === 'records');
  assert.equal(batches.length, 1);
  assert.deepEqual(batches[0]!.t === 'records' && batches[0]!.records.map((r) => r.id), ['one', 'two']);
});

test('with Redis, a worker\'s store errors are counted by the primary, once a second, not per request', { timeout: 30_000 }, async (t) => {
  const sent: WorkerToPrimary[] = [];
  const send = (m: WorkerToPrimary): void => void sent.push(m);
  const modules = workerModules(MODULES, { send, sendTracked: (m, done) => (sent.push(m), done()), onMessage: () => {}, leaseStore: null });
  const gw = await startGateway(t, YAML + `cluster:\n  redis_url: "redis://127.0.0.1:${await deadPort()}"\n  timeout: 50ms\n`, { modules });
  assert.equal(gw.store instanceof LeaseStore, false, 'limits go through Redis: no leases');
  for (let i = 0; i < 20; i++) await gw.store.take('ip:1', 5, 1);
  await waitUntil(() => sent.some((m) => m.t === 'store-errors'), 10_000, 'store errors reach the primary');
  const messages = sent.filter((m) => m.t === 'store-errors');
  const total = messages.reduce((n, m) => n + (m.t === 'store-errors' ? m.counts.reduce((k, [, c]) => k + c, 0) : 0), 0);
  assert.ok(total >= 1);
  assert.ok(messages.length <= 3, `batched (${messages.length} messages)`);
});

test('a worker applies the adaptive limit, breaker thresholds and weights learned from the baselines the primary pushes, and leaves announcing limits to the primary', async (t) => {
  const sent: WorkerToPrimary[] = [];
  const handlers: ((m: PrimaryToWorker) => void)[] = [];
  const send = (m: WorkerToPrimary): void => void sent.push(m);
  const clock = new ManualClock(1_000_000);
  const baselines = new BaselineFeed();
  const routeStore = new RouteLeaseStore({ send, clock });
  handlers.push((m) => void baselines.receive(m), (m) => void routeStore.receive(m));
  const modules = workerModules(MODULES, { send, sendTracked: (m, done) => (sent.push(m), done()), onMessage: (h) => handlers.push(h), leaseStore: new LeaseStore({ send }), baselines, routeStore });
  assert.ok(modules.some((m) => m.name === 'adaptive'));
  const yaml = `server:\n  port: 0\n  host: 127.0.0.1\nroutes:\n  - path: /a\n    backends: ["http://127.0.0.1:9", "http://127.0.0.1:10"]\nanalytics:\n  enabled: true\n  bucket_interval: 1s\n  analyzer_interval: 1s\n  window: 20s\n  retention: 10m\ndata_dir: ${JSON.stringify(tmpdir())}\nadaptive_rate_limit:\n  enabled: true\n  multiplier: 2\n  min_limit: 10\n  max_limit: 1000\n  learning_period: 2s\nweighted_lb:\n  enabled: true\n  rebalance_interval: 1s\n`;
  const gw = await startGateway(t, yaml, { modules, clock });
  const adaptive = gw.services.need('adaptive');
  assert.equal(adaptive.currentLimit('/a'), null, 'learning until the primary says');
  handlers.forEach((h) => h({ t: 'baselines', routes: [['/a', 100, 5_000]], backends: [['http://127.0.0.1:9', 12, 0.01, 300], ['http://127.0.0.1:10', 48, 0.01, 300]] }));
  assert.equal(adaptive.currentLimit('/a'), 200, 'L = 100/min × 2, at once');
  assert.deepEqual(baselines.backend('http://127.0.0.1:9'), { latencyMs: 12, errorRate: 0.01, sampleSize: 300 });
  assert.equal(typeof adaptive.breakerThreshold('http://127.0.0.1:9'), 'number', 'the breaker threshold is learned from the pushed backend baseline');
  clock.advance(1_500);
  (gw.routes.match('/a/x')!.selector as { pick(): unknown }).pick();
  const fast = adaptive.backendWeight('http://127.0.0.1:9')!;
  const slow = adaptive.backendWeight('http://127.0.0.1:10')!;
  assert.ok(fast > slow, `weighted balancing uses the pushed latencies (fast ${fast}, slow ${slow})`);
  assert.equal(sent.filter((m) => m.t === 'notice').length, 0, 'the primary announces limit changes, not every worker');
});
