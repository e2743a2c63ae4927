/**
 * The cross-worker rate limit: a LeaseLedger (the primary's buckets) and several LeaseStores (one
 * per worker) joined by an asynchronous in-process channel that delivers like IPC does (later,
 * in order). Time is a ManualClock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { LeaseLedger, LeaseStore } from '../../src/cluster/index.js';
import type { TakeResult } from '../../src/store/index.js';
import { makeLeaseCluster, settleAll, type LeaseCluster } from './lease-harness.js';

function makeCluster(workers: number, opts: { maxLeaseMs?: number } = {}): LeaseCluster<LeaseLedger, LeaseStore> {
  return makeLeaseCluster(workers, {
    ledger: (clock, holders) => new LeaseLedger({ clock, holders }),
    store: (clock, send) => new LeaseStore({ clock, maxLeaseMs: opts.maxLeaseMs, send }),
    serve: (ledger, i, msg) => {
      if (msg.t === 'lease') return { t: 'leased', grants: msg.asks.map((a) => ledger.grant(i, a)) };
      if (msg.t === 'settle') for (const s of msg.items) ledger.settle(i, s);
      return null;
    },
  });
}

function takeAll(results: (TakeResult | Promise<TakeResult>)[]): Promise<TakeResult[]> {
  return Promise.all(results.map((r) => Promise.resolve(r)));
}

const KEY = 'ip:10.0.0.1';

test('workers together admit exactly the bucket capacity under concurrent load', async () => {
  const c = makeCluster(4);
  const calls: (TakeResult | Promise<TakeResult>)[] = [];
  // 1000 takes spread over the workers, all in flight at once.
  for (let i = 0; i < 1000; i++) calls.push(c.stores[(i * 7) % 4]!.take(KEY, 100, 0.001));
  let results = await takeAll(calls);
  // And a second wave once the first answers are in (spent leases are asked again).
  const second: (TakeResult | Promise<TakeResult>)[] = [];
  for (let i = 0; i < 400; i++) second.push(c.stores[i % 4]!.take(KEY, 100, 0.001));
  results = results.concat(await takeAll(second));
  assert.equal(results.filter((r) => r.allowed).length, 100);
  const refused = results.find((r) => !r.allowed)!;
  assert.ok(refused.retryAfterMs > 0, 'a refusal says when to retry');
});

test('a hot key is served from the lease: far fewer IPC messages than requests', async () => {
  const c = makeCluster(2);
  let allowed = 0;
  for (let i = 0; i < 2000; i++) {
    const r = await c.stores[0]!.take(KEY, 100_000, 1000);
    if (r.allowed) allowed++;
  }
  assert.equal(allowed, 2000);
  const leaseMessages = c.sent[0]!.filter((m) => m.t === 'lease').length;
  assert.ok(leaseMessages <= 2000 / 16, `one ask per lease, not per request (${leaseMessages} asks for 2000 takes)`);
  // While a lease lasts the answer is synchronous: no promise at all.
  const r = c.stores[0]!.take(KEY, 100_000, 1000);
  assert.equal(r instanceof Promise, false, 'answered synchronously from the lease');
});

test('a refused key is answered locally until its retry time, then asked again', async () => {
  const c = makeCluster(1);
  for (let i = 0; i < 5; i++) await c.stores[0]!.take(KEY, 5, 10);
  const before = c.sent[0]!.length;
  const refused = await c.stores[0]!.take(KEY, 5, 10);
  assert.equal(refused.allowed, false);
  const asks = c.sent[0]!.length;
  assert.equal(asks, before + 1, 'the first refusal was asked');
  for (let i = 0; i < 100; i++) assert.equal((await c.stores[0]!.take(KEY, 5, 10)).allowed, false);
  assert.equal(c.sent[0]!.length, asks, 'repeated refusals cost no IPC');
  c.clock.advance(100); // one token (10/s) is back, and the remembered refusal has lapsed
  assert.equal((await c.stores[0]!.take(KEY, 5, 10)).allowed, true);
});

test('unspent tokens of an old lease go back to the bucket for the other workers', async () => {
  const c = makeCluster(2, { maxLeaseMs: 200 });
  assert.equal((await c.stores[0]!.take(KEY, 40, 0.001)).allowed, true);
  const held = c.ledger.leased(KEY);
  assert.ok(held > 1, `worker 0 holds a lease of several tokens (${held})`);
  c.clock.advance(2_100);
  c.stores[0]!.sweep();
  await settleAll();
  assert.equal(c.ledger.leased(KEY), 0);
  let allowed = 0;
  for (let i = 0; i < 60; i++) if ((await c.stores[1]!.take(KEY, 40, 0.001)).allowed) allowed++;
  assert.equal(allowed, 39, 'worker 1 gets every token worker 0 did not spend');
});

test('a client well under its limit is served from its lease for a while, a busy bucket\'s lease returns sooner', async () => {
  const c = makeCluster(2, { maxLeaseMs: 200 });
  await c.stores[0]!.take(KEY, 100, 1);
  const asks = () => c.sent[0]!.filter((m) => m.t === 'lease').length;
  assert.equal(asks(), 1);
  for (let i = 0; i < 5; i++) {
    c.clock.advance(300); // slower than the short lease time
    c.stores[0]!.sweep();
    assert.equal((await c.stores[0]!.take(KEY, 100, 1)).allowed, true);
  }
  assert.equal(asks(), 1, 'no round trip per request while the bucket is far from empty');
  // Nearly empty bucket: the lease goes back after the short time.
  const HOT = 'ip:10.0.0.2';
  for (let i = 0; i < 8; i++) await c.stores[1]!.take(HOT, 10, 0.001);
  assert.ok(c.ledger.leased(HOT) > 0);
  c.clock.advance(250);
  c.stores[1]!.sweep();
  await settleAll();
  assert.equal(c.ledger.leased(HOT), 0);
});

test('a worker dying mid-lease: its tokens are never spent twice, and the bucket refills to full', async () => {
  const c = makeCluster(2);
  // Worker 0 takes a lease and spends part of it, then dies without settling.
  for (let i = 0; i < 3; i++) assert.equal((await c.stores[0]!.take(KEY, 50, 10)).allowed, true);
  const lost = c.ledger.leased(KEY);
  assert.ok(lost >= 3);
  c.kill(0);
  assert.equal(c.ledger.leased(KEY), 0, 'its leases end with it');
  // The survivor gets what the bucket holds: never the dead worker's tokens again.
  let allowed = 0;
  for (let i = 0; i < 100; i++) if ((await c.stores[1]!.take(KEY, 50, 10)).allowed) allowed++;
  assert.equal(allowed, 50 - lost, 'the dead worker\'s lease is not handed out twice');
  // Not lost forever: after a full refill the survivor can use the whole capacity again.
  c.clock.advance(5_000);
  c.stores[1]!.sweep();
  await settleAll();
  allowed = 0;
  for (let i = 0; i < 100; i++) if ((await c.stores[1]!.take(KEY, 50, 10)).allowed) allowed++;
  assert.equal(allowed, 50);
});

test('over time, two workers admit the capacity plus the refill within 2%', async () => {
  const c = makeCluster(2, { maxLeaseMs: 100 });
  let allowed = 0;
  // 5 simulated seconds, 5 ms steps, both workers over-asking every step.
  for (let step = 0; step < 1000; step++) {
    const calls: (TakeResult | Promise<TakeResult>)[] = [];
    for (let k = 0; k < 3; k++) for (const s of c.stores) calls.push(s.take(KEY, 50, 100));
    for (const r of await takeAll(calls)) if (r.allowed) allowed++;
    await settleAll();
    c.clock.advance(5);
  }
  const expected = 50 + 100 * 5;
  assert.ok(Math.abs(allowed - expected) <= expected * 0.02, `admitted ${allowed}, expected ${expected} ± 2%`);
  assert.ok(allowed <= expected, 'never more than one process alone would admit');
});

test('a peek answers without spending and is remembered briefly', async () => {
  const c = makeCluster(2);
  const p = await c.stores[0]!.take(KEY, 3, 1, 0);
  assert.equal(p.allowed, true);
  assert.equal(c.ledger.leased(KEY), 0, 'a peek leases nothing');
  for (let i = 0; i < 3; i++) await c.stores[1]!.take(KEY, 3, 1);
  c.clock.advance(60);
  await settleAll();
  assert.equal((await c.stores[0]!.take(KEY, 3, 1, 0)).allowed, false);
});

test('close hands every lease back', async () => {
  const c = makeCluster(2);
  await c.stores[0]!.take(KEY, 100, 1);
  assert.ok(c.ledger.leased(KEY) > 0);
  await c.stores[0]!.close();
  await settleAll();
  assert.equal(c.ledger.leased(KEY), 0);
});

test('the ledger keeps at most max_buckets buckets, dropping the least recently used one not on lease', () => {
  const clock = new ManualClock(0);
  const ledger = new LeaseLedger({ clock, maxBuckets: 3 });
  const ask = (key: string, id: number) => ledger.grant(1, { id, key, capacity: 10, refillPerSec: 0.001, want: 1, cost: 1 });
  ask('a', 1);
  ledger.settle(1, { key: 'a', granted: 1, unspent: 0 });
  ask('b', 2); // b stays on lease
  ask('c', 3);
  ledger.settle(1, { key: 'c', granted: 1, unspent: 0 });
  ask('a', 4);
  ledger.settle(1, { key: 'a', granted: 1, unspent: 0 }); // a used again: c is now the least recently used
  ask('d', 5);
  assert.equal(ledger.size, 3);
  // c was dropped (starts full again), a kept its spent tokens, b is on lease.
  assert.equal(ask('c', 6).remaining, 9);
  assert.equal(ledger.leased('b'), 1);
});
