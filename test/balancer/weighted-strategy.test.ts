/** The `weighted` strategy (src/adaptive's latency-weighted balancer over a route's live backend list), in simulated time. */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Backend, WeightedStrategy } from '../../src/balancer/index.js';
import { ManualClock } from '../../src/clock.js';
import { seededRandom } from '../adaptive/sim.js';

function backends(t: TestContext, n: number): Backend[] {
  const list: Backend[] = [];
  for (let i = 0; i < n; i++) list.push(new Backend(`http://127.0.0.1:${9101 + i}`, { connectTimeoutMs: 1000, connections: 1, healthPath: '/' }));
  t.after(() => Promise.all(list.map((b) => b.destroy())));
  return list;
}

/** `n` picks 10 ms apart, each answered at once with its backend's latency. Returns picks per backend. */
function drive(s: WeightedStrategy, clock: ManualClock, n: number, latency: (b: Backend) => number): Map<Backend, number> {
  const count = new Map<Backend, number>();
  for (let i = 0; i < n; i++) {
    clock.advance(10);
    const b = s.pick()!;
    count.set(b, (count.get(b) ?? 0) + 1);
    s.feedback(b, latency(b), 'success');
  }
  return count;
}

test('a backend answering 5× slower loses at least 80% of its share, and a backend added at run time joins the rotation', (t) => {
  const clock = new ManualClock(1_000_000);
  const list = backends(t, 2);
  const live = [...list];
  const s = new WeightedStrategy(live, clock, seededRandom(7));
  const even = drive(s, clock, 2000, () => 10);
  assert.ok(even.get(list[1]!)! > 800, `even split: ${[...even.values()]}`);
  const slow = drive(s, clock, 2000, (b) => (b === list[1] ? 50 : 10));
  const share = slow.get(list[1]!)! / 2000;
  assert.ok(share < 0.1, `slow backend kept ${(share * 100).toFixed(1)}% (an even share is 50%)`);
  assert.ok(share > 0, 'the floor keeps a trickle');
  assert.ok(s.weight(list[1]!.url)! < s.weight(list[0]!.url)!);

  const [added] = backends(t, 3).slice(2);
  live.push(added!);
  const after = drive(s, clock, 600, (b) => (b === list[1] ? 50 : 10));
  assert.ok((after.get(added!) ?? 0) > 100, `the new backend starts at the mean weight: ${after.get(added!)}`);
});

test("learned baselines attached later keep each backend's fast signal", (t) => {
  const clock = new ManualClock(1_000_000);
  const list = backends(t, 2);
  const s = new WeightedStrategy(list, clock, seededRandom(3));
  drive(s, clock, 500, (b) => (b === list[1] ? 50 : 10));
  // Both baselines say 10 ms: without the carried fast signal the two would weigh the same.
  s.useBaselines({ baselines: { backend: () => ({ latencyMs: 10, errorRate: 0, sampleSize: 1000 }) }, rebalanceIntervalMs: 1000 });
  clock.advance(10);
  s.pick();
  const w = Object.fromEntries(s.weights().map((x) => [x.backend, x]));
  assert.equal(w[list[1]!.url]!.baselineLatencyMs, 10);
  assert.ok(w[list[1]!.url]!.weight < w[list[0]!.url]!.weight / 4, JSON.stringify(w));
});
