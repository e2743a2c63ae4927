import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Backend, outcomeOf, strategyFeedback, StrategyRegistry, type Outcome, type Strategy, type StrategyOptions } from '../../src/balancer/index.js';
import { ManualClock } from '../../src/clock.js';
import type { RouteConfig } from '../../src/config/index.js';
import type { CompiledRoute } from '../../src/pipeline/index.js';
import { completionRecord } from '../helpers/records.js';

function backends(t: TestContext, n: number): Backend[] {
  const list: Backend[] = [];
  for (let i = 0; i < n; i++) list.push(new Backend(`http://127.0.0.1:${9001 + i}`, { connectTimeoutMs: 1000, connections: 1, healthPath: '/' }));
  t.after(() => Promise.all(list.map((b) => b.destroy())));
  return list;
}

function options(list: Backend[], random = Math.random): StrategyOptions {
  return { backends: list, route: { path: '/api' } as RouteConfig, clock: new ManualClock(), random };
}

test('strategies are looked up by name: round-robin and random are built in, an unknown name says which ones exist', () => {
  const registry = new StrategyRegistry();
  assert.deepEqual(registry.names(), ['round-robin', 'random']);
  assert.throws(() => registry.create('weighted', options([])), /unknown balancing strategy "weighted" \(known: round-robin, random\)/);
});

test('a strategy registered by name is created for a route and a name is registered once', (t) => {
  const registry = new StrategyRegistry();
  const first = (opts: StrategyOptions): Strategy => ({
    pick: () => opts.backends[0] ?? null,
    feedback: () => {},
  });
  registry.register('first', first);
  const list = backends(t, 2);
  assert.equal(registry.create('first', options(list)).pick(), list[0]);
  assert.throws(() => registry.register('first', first), /"first" is already registered/);
  assert.throws(() => registry.register('random', first), /"random" is already registered/);
});

test('round-robin goes in order and skips an unavailable backend', (t) => {
  const list = backends(t, 3);
  const rr = new StrategyRegistry().create('round-robin', options(list));
  list[1]!.healthy = false;
  assert.deepEqual([rr.pick(), rr.pick(), rr.pick()].map((b) => b?.url), [list[0]!.url, list[2]!.url, list[0]!.url]);
  assert.equal(rr.pick(list[2]!), list[0], 'exclude is skipped');
});

test('random uses the injected source, walks past unavailable backends, and sees backends added to the live list', (t) => {
  const list = backends(t, 2);
  const rnd = new StrategyRegistry().create('random', options(list, () => 0.99));
  assert.equal(rnd.pick(), list[1]);
  list[1]!.healthy = false;
  assert.equal(rnd.pick(), list[0]);
  const [extra] = backends(t, 1);
  list.push(extra!);
  list[0]!.healthy = false;
  assert.equal(rnd.pick(), extra);
});

test('outcomes: a backend 5xx, timeout or connect error is a backend error; a client abort or oversize body never is; a request the backend never saw gives none', () => {
  const cases: [Parameters<typeof completionRecord>[0], Outcome | null][] = [
    [{ status: 200 }, 'success'],
    [{ status: 404 }, 'success'],
    [{ status: 503 }, 'backend_error'],
    [{ status: 504, decision: 'upstream_timeout' }, 'backend_error'],
    [{ status: 502, decision: 'upstream_error' }, 'backend_error'],
    [{ status: 499, decision: 'client_aborted' }, 'client_error'],
    [{ status: 413, decision: 'body_too_large' }, 'client_error'],
    [{ status: 503, decision: 'upstream_saturated' }, null],
    [{ status: 429, decision: 'rate_limited', backend: '' }, null],
    [{ status: 503, decision: 'breaker_open', backend: '' }, null],
  ];
  for (const [rec, want] of cases) assert.equal(outcomeOf(completionRecord(rec)), want, JSON.stringify(rec));
});

test('the feedback subscriber gives each route strategy (backend, latency, outcome), and the backend a retry left a backend error', (t) => {
  const list = backends(t, 2);
  const calls: [string, number, Outcome][] = [];
  const spy: Strategy = { pick: () => null, feedback: (b, ms, o) => calls.push([b.url, ms, o]) };
  const route = { prefix: '/api', backends: list, selector: spy } as unknown as CompiledRoute;
  const byUrl = new Map(list.map((b) => [b.url, b]));
  const listener = strategyFeedback([route], (u) => byUrl.get(u));
  listener(completionRecord({ route: '/api', backend: list[0]!.url, latencyMs: 7, status: 200 }));
  listener(completionRecord({ route: '/api', backend: list[0]!.url, latencyMs: 9, status: 500 }));
  listener(completionRecord({ route: '/api', backend: list[1]!.url, latencyMs: 3, status: 200, detail: { retried_from: list[0]!.url } }));
  listener(completionRecord({ route: '/api', backend: list[1]!.url, latencyMs: 2, status: 499, decision: 'client_aborted' }));
  listener(completionRecord({ route: null, backend: '', status: 404, decision: 'not_found' }));
  listener(completionRecord({ route: '/other', backend: list[1]!.url, status: 200 }));
  assert.deepEqual(calls, [
    [list[0]!.url, 7, 'success'],
    [list[0]!.url, 9, 'backend_error'],
    [list[1]!.url, 3, 'success'],
    [list[0]!.url, 3, 'backend_error'],
    [list[1]!.url, 2, 'client_error'],
  ]);
});
