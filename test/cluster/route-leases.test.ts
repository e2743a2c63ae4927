/**
 * The adaptive route bucket across workers: a RouteLedger (the primary's bucket) and several
 * RouteLeaseStores (one per worker) joined by an asynchronous in-process channel that delivers like
 * IPC (later, in order). Time is a ManualClock; every admitted request is charged to the one bucket.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { RouteLedger, RouteLeaseStore } from '../../src/cluster/index.js';
import { makeLeaseCluster, settleAll, type LeaseCluster } from './lease-harness.js';

type Cluster = LeaseCluster<RouteLedger, RouteLeaseStore>;

function makeCluster(workers: number): Cluster {
  return makeLeaseCluster(workers, {
    ledger: (clock, holders) => new RouteLedger({ clock, holders }),
    store: (clock, send) => new RouteLeaseStore({ clock, holders: workers, send }),
    serve: (ledger, i, msg) => {
      if (msg.t === 'route-lease') return { t: 'route-leased', grants: msg.asks.map((a) => ledger.grant(i, a)) };
      if (msg.t === 'route-settle') for (const s of msg.items) ledger.settle(i, s);
      return null;
    },
  });
}

const ROUTE = '/api';
/** 1200/min: 20 tokens a second, a 5 s burst of 100. */
const RATE = 20;
const CAPACITY = 100;

/** Floods for `ms` of simulated time: `perMs` takes per ms, spread over `stores` (default: every worker's). Returns admitted per store. */
async function flood(c: Cluster, ms: number, perMs: number, floor = 0, stores = c.stores): Promise<number[]> {
  const admitted = stores.map(() => 0);
  for (let t = 0; t < ms; t++) {
    for (let k = 0; k < perMs; k++) {
      const i = (t * perMs + k) % stores.length;
      if (stores[i]!.take(ROUTE, 1, RATE, CAPACITY, floor, c.clock.now()).allowed) admitted[i]!++;
    }
    // IPC answers arrive between requests.
    await tick();
    await tick();
    c.clock.advance(1);
    if (t % 50 === 0) for (const s of stores) s.sweep();
  }
  return admitted;
}

test('workers flooding a route together admit the burst plus the refill, as one bucket would', async () => {
  const c = makeCluster(3);
  const admitted = await flood(c, 10_000, 3);
  const total = admitted.reduce((a, b) => a + b, 0);
  const expected = CAPACITY + RATE * 10;
  assert.ok(Math.abs(total - expected) <= expected * 0.02, `admitted ${total}, one bucket admits ${expected} (±2%): per worker ${admitted}`);
  assert.ok(admitted.every((n) => n > 0), 'every worker admitted some');
});

test('concurrent takes in one tick never admit more than the bucket holds', async () => {
  const c = makeCluster(4);
  let allowed = 0;
  for (let wave = 0; wave < 5; wave++) {
    for (let i = 0; i < 400; i++) if (c.stores[i % 4]!.take(ROUTE, 1, 0.001, CAPACITY, 0, c.clock.now()).allowed) allowed++;
    await settleAll();
  }
  assert.ok(allowed <= CAPACITY, `admitted ${allowed}, capacity ${CAPACITY}`);
  assert.ok(allowed >= CAPACITY * 0.98, `admitted ${allowed}: tokens are not stranded in leases`);
  for (const s of c.stores) s.close();
  await settleAll();
  assert.equal(c.ledger.leased(ROUTE), 0, 'every lease settled');
});

test('a route well under its limit costs one ask per lease, not one per request, and nothing is refused', async () => {
  const c = makeCluster(2);
  let refused = 0;
  let takes = 0;
  for (let t = 0; t < 5_000; t++) {
    // 10/s across two workers: half the limit.
    if (t % 100 === 0) {
      takes++;
      if (!c.stores[(t / 100) % 2]!.take(ROUTE, 1, RATE, CAPACITY, 0, c.clock.now()).allowed) refused++;
    }
    if (t % 10 === 0) await tick();
    c.clock.advance(1);
    if (t % 100 === 50) for (const s of c.stores) s.sweep();
  }
  assert.equal(refused, 0);
  const asks = c.sent.flat().filter((m) => m.t === 'route-lease').length;
  assert.ok(asks <= takes / 4, `${asks} asks for ${takes} requests`);
});

test('a worker that dies mid-lease forfeits its tokens; the others go on and the bucket refills', async () => {
  const c = makeCluster(2);
  // Both workers take some tokens (leases are open).
  for (let i = 0; i < 10; i++) c.stores[i % 2]!.take(ROUTE, 1, RATE, CAPACITY, 0, c.clock.now());
  await settleAll();
  const held = c.ledger.leased(ROUTE);
  assert.ok(held > 0, 'leases are out');
  c.kill(0);
  assert.ok(c.ledger.leased(ROUTE) < held, 'the dead worker\'s leases are forgotten');
  // The survivor floods: it gets the whole bucket's refill, never the forfeited tokens twice.
  const [admitted] = await flood(c, 5_000, 2, 0, [c.stores[1]!]);
  // At most what was there (less the 10 admitted) plus 5 s of refill; at least that less the forfeited lease.
  const most = CAPACITY - 10 + RATE * 5;
  assert.ok(admitted <= most, `admitted ${admitted}, at most ${most}`);
  assert.ok(admitted >= most - held - 2, `admitted ${admitted}, at least ${most - held - 2}: only the dead worker's lease is lost`);
});

test('fair clients borrow into the bucket\'s debt across workers, bounded by the floor', async () => {
  const c = makeCluster(2);
  // Empty the bucket (no refill to speak of).
  let normal = 0;
  for (let wave = 0; wave < 4; wave++) {
    for (let i = 0; i < 100; i++) if (c.stores[i % 2]!.take(ROUTE, 1, 0.001, CAPACITY, 0, c.clock.now()).allowed) normal++;
    await settleAll();
  }
  let borrowed = 0;
  for (let wave = 0; wave < 20; wave++) {
    for (let i = 0; i < 100; i++) if (c.stores[i % 2]!.take(ROUTE, 1, 0.001, CAPACITY, -50, c.clock.now()).allowed) borrowed++;
    await settleAll();
    c.clock.advance(60); // past a remembered refusal
  }
  for (const s of c.stores) s.close();
  await settleAll();
  assert.ok(normal <= CAPACITY && normal >= CAPACITY - 5, `admitted ${normal} from a bucket of ${CAPACITY}`);
  assert.ok(borrowed <= 50 + (CAPACITY - normal), `borrowed ${borrowed}, debt bounded at 50`);
  assert.ok(borrowed >= 40, `borrowed ${borrowed}: fair clients can borrow`);
  assert.ok((c.ledger.tokens(ROUTE) ?? 0) >= -50 - 1, 'the bucket\'s debt is bounded');
});
