/**
 * The Redis route bucket store against a real redis-server: two stores (two gateway instances)
 * share one bucket through the 100 ms sync; with Redis stopped each goes on from its local copy
 * (fail-open) and reports itself degraded, and recovers when Redis answers again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisRouteBucketStore } from '../../src/adaptive/index.js';
import { until, wait } from '../helpers/gateway.js';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';

const skip = redisSkipReason();
const RATE = 1; // per second
const CAP = 20;
const FLOOR = -5;

describe('Redis route bucket store', { skip }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.stop();
  });

  function store(t: { after: (fn: () => unknown) => void }, prefix: string, timeoutMs = 300): RedisRouteBucketStore {
    const s = new RedisRouteBucketStore({ url: redis.url, keyPrefix: prefix, timeoutMs, syncMs: 50 });
    t.after(() => s.close());
    return s;
  }

  /** Takes until refused (at most 100); returns how many were admitted. */
  function drain(s: RedisRouteBucketStore, key: string): number {
    let n = 0;
    while (n < 100 && s.take(key, 1, RATE, CAP, 0, Date.now()).allowed) n++;
    return n;
  }

  it('two instances share one bucket: what one admitted, the other cannot', async (t) => {
    const a = store(t, 'share:');
    const b = store(t, 'share:');
    await a.start();
    await b.start();
    assert.equal(a.degraded, false);
    // A new mirror starts empty and fetches the shared tokens at once.
    assert.equal(a.take('/api', 1, RATE, CAP, 0, Date.now()).allowed, false);
    await until(() => (a.peek('/api', RATE, CAP, Date.now()) ?? 0) >= CAP - 1, 2_000);
    const first = drain(a, '/api');
    assert.ok(first >= CAP - 1 && first <= CAP + 1, `A admitted ${first}`);
    b.take('/api', 1, RATE, CAP, 0, Date.now());
    await wait(250); // both synced
    const second = drain(b, '/api');
    assert.ok(second <= 2, `B admitted ${second} after A drained the shared bucket`);
  });

  it('goes on from its local copy when Redis stops answering, degraded, and recovers', async (t) => {
    const s = store(t, 'pause:', 200);
    await s.start();
    s.take('/api', 1, RATE, CAP, FLOOR, Date.now());
    await until(() => (s.peek('/api', RATE, CAP, Date.now()) ?? 0) >= CAP - 2, 2_000);
    redis.pause();
    t.after(() => redis.resume());
    await until(() => s.degraded, 2_000);
    const started = Date.now();
    const admitted = drain(s, '/api');
    assert.ok(Date.now() - started < 50, 'decisions never wait for Redis');
    assert.ok(admitted >= CAP - 3 && admitted <= CAP + 1, `admitted ${admitted} from the local copy`);
    redis.resume();
    await until(() => !s.degraded, 3_000);
  });
});

describe('Redis route bucket store options', () => {
  it('refuses a URL the Redis client cannot use, naming the store and the fault, before any connection', () => {
    for (const [url, fault] of [
      ['http://127.0.0.1:6379', /unsupported scheme http:/],
      ['redis://127.0.0.1:6379/not-a-db', /database number/],
    ] as const) {
      assert.throws(
        () => new RedisRouteBucketStore({ url, keyPrefix: 'x:', timeoutMs: 50, syncMs: 50 }),
        (err: unknown) => err instanceof TypeError && /^RedisRouteBucketStore: url is not a usable redis:\/\/ or rediss:\/\/ URL/.test(err.message) && fault.test(err.message),
        url,
      );
    }
  });
});
