import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { send, startBackend, startGateway, type Reply } from '../helpers/gateway.js';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';

const skip = redisSkipReason();

describe('cluster mode', { skip }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.stop();
  });

  it('three gateway instances sharing one Redis admit one limit, not three', async (t) => {
    const backend = await startBackend(t);
    const limit = 60;
    const yaml = `
routes:
  - path: /api
    backend: ${backend.url}
ratelimit:
  max_tokens: ${limit}
  refill_rate: 0.001
cluster:
  redis_url: ${redis.url}
  key_prefix: "mgcluster:"
  timeout: 2s
logging:
  level: silent
  access_log: false
dashboard:
  enabled: false
`;
    const gateways = await Promise.all([0, 1, 2].map(() => startGateway(t, yaml)));
    const replies: Promise<Reply>[] = [];
    for (let i = 0; i < limit; i++) for (const gw of gateways) replies.push(send(gw.url + '/api/x'));
    const all = await Promise.all(replies);
    const ok = all.filter((r) => r.status === 200);
    const limited = all.filter((r) => r.status === 429);
    assert.equal(ok.length + limited.length, all.length, `unexpected statuses: ${[...new Set(all.map((r) => r.status))]}`);
    assert.ok(Math.abs(ok.length - limit) <= limit * 0.05, `admitted ${ok.length} of ${all.length}, limit ${limit}`);
    assert.match(String(ok[0]!.headers['ratelimit-policy']), /^"default";q=60;w=\d+$/);
    const r429 = limited[0]!;
    assert.ok(Number(r429.headers['retry-after']) >= 1);
    assert.match(String(r429.headers.ratelimit), /^"default";r=0;t=\d+$/);
    assert.equal(r429.json().error.code, 'rate_limited');
  });
});

describe('cluster store outage', { skip }, () => {
  it('a paused Redis never makes a request hang or fail, /health says degraded, and it recovers', async (t) => {
    const redis = await RedisServer.start();
    t.after(() => redis.stop());
    const backend = await startBackend(t);
    const gw = await startGateway(
      t,
      `routes:\n  - path: /api\n    backend: ${backend.url}\nratelimit:\n  max_tokens: 1000\n  refill_rate: 100\ncluster:\n  redis_url: ${redis.url}\n  timeout: 50ms\nlogging:\n  level: silent\ndashboard:\n  enabled: false\n`,
    );
    assert.equal((await send(`${gw.url}/api/x`)).status, 200);
    assert.equal((await send(`${gw.url}/health`)).json().status, 'healthy');
    await redis.pause();
    try {
      for (let i = 0; i < 10; i++) {
        const started = Date.now();
        const r = await send(`${gw.url}/api/x`);
        assert.equal(r.status, 200, 'fail-open: the request is served from local state');
        assert.ok(Date.now() - started < 1000, `answered in ${Date.now() - started} ms`);
      }
      const health = await send(`${gw.url}/health`);
      assert.equal(health.status, 200, 'failing open still serves: degraded, not down (issue 9)');
      assert.equal(health.json().status, 'degraded');
      assert.match(health.json().degraded.join(' '), /cluster store/);
      const metrics = await send(`${gw.url}/metrics`);
      assert.match(metrics.text, /gateway_store_degraded 1/);
      assert.match(metrics.text, /gateway_store_errors_total\{store="redis"/);
    } finally {
      await redis.resume();
    }
    const deadline = Date.now() + 10_000;
    while ((await send(`${gw.url}/health`)).json().status !== 'healthy') {
      assert.ok(Date.now() < deadline, 'the store reconnected and /health is healthy again');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
