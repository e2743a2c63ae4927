/**
 * Redis frozen (SIGSTOP) every other second under a steady load: the gateway answers every request
 * from its local fallback within cluster.timeout and reconnects on SIGCONT, so 0 requests fail.
 *
 * 12 s instead of the 30 s: the run is periodic (1 s frozen, 1 s thawed), so six full
 * cycles already walk every state the longer run would (healthy → frozen mid-command → fallback →
 * thawed → reconnect → healthy) six times, each pause 20× longer than cluster.timeout, under 4
 * concurrent clients; the extra 18 s would repeat the same cycle on a machine shared by six jobs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { send, startBackend, startGateway } from '../helpers/gateway.js';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';

const skip = redisSkipReason();
const RUN_MS = 12_000;
const CLIENTS = 4;

test('Redis paused every other second for 12 s under 4 concurrent clients: 0 failed requests', { skip, timeout: 120_000 }, async (t) => {
  const redis = await RedisServer.start();
  t.after(async () => {
    redis.resume();
    await redis.stop();
  });
  const be = await startBackend(t);
  const gw = await startGateway(
    t,
    `cluster:\n  redis_url: ${redis.url}\n  timeout: 50ms\nratelimit:\n  max_tokens: 1000000\n  refill_rate: 100000\nroutes:\n  - path: /\n    backend: ${be.url}\n`,
  );
  assert.equal((await send(`${gw.url}/warm`)).status, 200);

  let paused = false;
  let stop = false;
  const counts = { ok: 0, failed: 0, whilePaused: 0, degradedSeen: 0 };
  const failures: string[] = [];
  const flipper = (async () => {
    const end = Date.now() + RUN_MS;
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 1_000));
      paused = !paused;
      if (paused) redis.pause();
      else redis.resume();
    }
    if (paused) redis.resume();
    paused = false;
    stop = true;
  })();
  const client = async () => {
    while (!stop) {
      const duringPause = paused;
      try {
        const r = await send(`${gw.url}/load`);
        if (r.status === 200) counts.ok++;
        else {
          counts.failed++;
          if (failures.length < 5) failures.push(`${r.status} ${r.text}`);
        }
      } catch (err) {
        counts.failed++;
        if (failures.length < 5) failures.push((err as Error).message);
      }
      if (duringPause) counts.whilePaused++;
      if (gw.store.degraded) counts.degradedSeen++;
    }
  };
  await Promise.all([flipper, ...Array.from({ length: CLIENTS }, client)]);
  t.diagnostic(`requests: ${counts.ok} ok, ${counts.failed} failed, ${counts.whilePaused} sent while Redis was frozen; degraded seen ${counts.degradedSeen} times`);
  assert.equal(counts.failed, 0, failures.join('\n'));
  assert.ok(counts.whilePaused > 100, `the load must overlap the pauses (only ${counts.whilePaused} requests did)`);
  assert.ok(counts.degradedSeen > 0, 'the pauses were felt: the store went degraded');
  // And it recovers: Redis answers again once thawed.
  const { until } = await import('../helpers/gateway.js');
  await until(() => !gw.store.degraded, 10_000, 50);
});
