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
