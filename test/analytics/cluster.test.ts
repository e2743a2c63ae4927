/**
 * Cluster-wide learning against a real redis-server: two instances over one Redis, traffic through
 * the first only, agree on avg_rate; Redis paused → degraded, local learning, catch-up afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';
import { harness, requestAt, type Harness } from './helpers.js';

const MINUTE = 60_000;
const skip = redisSkipReason();

/** Moves every clock on by `ms`. */
function advance(hs: Harness[], ms: number): void {
  for (const h of hs) h.clock.advance(ms);
}

/** One minute of `n` requests through `h`, then every clock moves on a minute and `h` publishes. */
async function minute(h: Harness, all: Harness[], n: number): Promise<void> {
  const start = h.clock.now();
  for (let i = 0; i < n; i++) h.analytics.record(requestAt(start + ((i + 0.5) / n) * MINUTE, { route: '/api', latencyMs: 10 + (i % 5) }));
  advance(all, MINUTE);
  await h.analytics.publish();
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(50);
  }
}

describe('cluster-wide learning over Redis', { skip }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis?.stop());

  function instance(prefix: string): Harness {
    return harness({ cluster: { url: redis.url, keyPrefix: prefix, timeoutMs: 50 }, routes: ['/api'] });
  }

  it('shows the same avg_rate (±10%) on two instances when traffic goes through the first only', async (t) => {
    const a = instance('agree:');
    const b = instance('agree:');
    t.after(() => Promise.all([a.analytics.close(), b.analytics.close()]));
    await Promise.all([a.analytics.start(), b.analytics.start()]);
    assert.equal(a.analytics.degraded, false);
    for (let m = 0; m < 30; m++) await minute(a, [a, b], 90);
    advance([a, b], 2_000); // past the settle delay
    await Promise.all([a.analytics.analyze(), b.analytics.analyze()]);
    const ra = a.analytics.routeBaseline('/api')!;
    const rb = b.analytics.routeBaseline('/api')!;
    assert.ok(Math.abs(ra.rateMean - 90) < 1, `a ${ra.rateMean}`);
    assert.ok(Math.abs(rb.rateMean - ra.rateMean) <= 0.1 * ra.rateMean, `a ${ra.rateMean} vs b ${rb.rateMean}`);
    assert.equal(rb.learning, false);
    assert.ok(Math.abs(rb.p99Ms! / ra.p99Ms! - 1) < 0.05, `p99 a ${ra.p99Ms} b ${rb.p99Ms}`);
    assert.equal(rb.latencyMeanMs, ra.latencyMeanMs);
  });

  it('keeps Redis memory bounded: every bucket key has a TTL of about the retention', async (t) => {
    const a = harness({ cluster: { url: redis.url, keyPrefix: 'ttl:', timeoutMs: 50 }, routes: ['/api'], yaml: 'retention: 2h' });
    t.after(() => a.analytics.close());
    await a.analytics.start();
    await minute(a, [a], 10);
    const client = createClient({ url: redis.url });
    await client.connect();
    t.after(() => client.destroy());
    const keys = await client.keys('ttl:analytics:*');
    assert.ok(keys.length >= 2, keys.join(','));
    for (const k of keys) {
      const ttl = await client.pTTL(k);
      assert.ok(ttl > 0 && ttl <= 2 * 3_600_000 + MINUTE, `${k} ttl ${ttl}`);
    }
  });

  it('learns locally and says degraded while Redis does not answer, then catches up', async (t) => {
    const a = instance('outage:');
    const b = instance('outage:');
    t.after(() => Promise.all([a.analytics.close(), b.analytics.close()]));
    await Promise.all([a.analytics.start(), b.analytics.start()]);
    for (let m = 0; m < 15; m++) await minute(a, [a, b], 60);
    redis.pause();
    t.after(() => redis.resume());
    for (let m = 0; m < 5; m++) await minute(a, [a, b], 60); // publishes fail (bounded), counts stay local
    advance([a, b], 2_000);
    await Promise.all([a.analytics.analyze(), b.analytics.analyze()]);
    assert.equal(a.analytics.degraded, true);
    assert.deepEqual(a.analytics.degradedReasons().length, 1);
    assert.ok(Math.abs(a.analytics.routeBaseline('/api')!.rateMean - 60) < 1, 'a learns from its own traffic meanwhile');
    redis.resume();
    await until(() => !a.analytics.degraded && !b.analytics.degraded);
    await a.analytics.publish(); // the five minutes published late
    await Promise.all([a.analytics.analyze(), b.analytics.analyze()]);
    const rb = b.analytics.routeBaseline('/api')!;
    assert.ok(Math.abs(rb.rateMean - 60) <= 6, `b ${rb.rateMean} after catch-up`);
    assert.equal(b.analytics.degraded, false);
  });
});
