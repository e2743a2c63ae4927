/**
 * The adaptive route bucket in cluster mode: two gateways sharing one real redis-server enforce
 * one learned route limit between them (each decides from a local mirror of the shared bucket,
 * synced every 100 ms through an atomic Lua step), not one each; with Redis gone each goes on alone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../src/gateway.js';
import { send, startBackend, startGateway, until, wait } from '../helpers/gateway.js';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';
import { learningConfig } from './gateway-helpers.js';

const skip = redisSkipReason();

describe('adaptive route limit in cluster mode', { skip }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.stop();
  });

  it('two gateways sharing one Redis admit one learned limit between them, not one each', async (t) => {
    const backend = await startBackend(t);
    // One data_dir each. L = 60/min (1/s) whatever the baseline; burst 20 s of it = 20 requests.
    const yaml = () =>
      learningConfig(
        t,
        `  - path: /api
    backend: ${backend.url}
`,
        `cluster:
  redis_url: ${redis.url}
  key_prefix: "mgadaptive:"
  timeout: 500ms
adaptive_rate_limit:
  enabled: true
  multiplier: 1
  min_limit: 60
  max_limit: 60
  learning_period: 2s
  burst: 20s
`,
      );
    const a = await startGateway(t, await yaml());
    const b = await startGateway(t, await yaml());
    const limitOf = async (gw: Gateway) => (await send(`${gw.url}/analytics/routes`)).json().routes[0].current_rate_limit;
    // Learn slowly (a few requests a second: the bucket is not drained while the second instance catches up).
    await until(
      async () => {
        await Promise.all([send(`${a.url}/api/x`), send(`${b.url}/api/x`)]);
        await wait(400);
        return (await limitOf(a)) === 60 && (await limitOf(b)) === 60;
      },
      20_000,
      0,
    );
    await wait(300);
    // About 3 s at 10 requests/s on each instance: 60 requests. One shared bucket admits at most
    // 20 (burst) + ~4 (refill) + 10 (the debt a client still rated fair may borrow: its rate estimate
    // is young) ≈ 34 of them; two separate buckets would admit up to 34 each, i.e. all 60.
    const statuses: number[] = [];
    const refusedBy = { a: 0, b: 0 };
    for (let tick = 0; tick < 30; tick++) {
      const [ra, rb] = await Promise.all([send(`${a.url}/api/y`), send(`${b.url}/api/y`)]);
      statuses.push(ra!.status, rb!.status);
      if (ra!.status === 429) refusedBy.a++;
      if (rb!.status === 429) refusedBy.b++;
      await wait(100);
    }
    const admitted = statuses.filter((s) => s === 200).length;
    const refused = statuses.filter((s) => s === 429).length;
    assert.equal(admitted + refused, 60);
    assert.ok(admitted <= 38, `admitted ${admitted} of 60 (one shared bucket admits ≤ ≈34, two separate all 60)`);
    assert.ok(refusedBy.a > 0 && refusedBy.b > 0, `both instances refuse: ${JSON.stringify(refusedBy)}`);

    // Redis stops answering: each instance goes on alone, answers at once, and says so in /health.
    redis.pause();
    t.after(() => redis.resume());
    const health = await until(async () => {
      const h = (await send(`${a.url}/health`)).json();
      return h.degraded.some((r: string) => r.startsWith('adaptive limit: Redis unreachable')) ? h : null;
    }, 5_000, 100);
    assert.equal(health.status, 'degraded');
    const started = Date.now();
    const r = await send(`${a.url}/api/z`);
    assert.ok(r.status === 200 || r.status === 429, String(r.status));
    assert.ok(Date.now() - started < 1_000, 'decided without waiting for Redis');
    redis.resume();
    await until(async () => !(await send(`${a.url}/health`)).json().degraded.some((x: string) => x.startsWith('adaptive limit')), 5_000, 100);
    assert.ok(admitted >= 3, `admitted ${admitted}`);
  });
});
