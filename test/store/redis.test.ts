import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
// The test's own view of Redis goes through node-redis, a client independent of the one under test.
import { createClient, type RedisClientType } from '@redis/client';
import { ManualClock } from '../../src/clock.js';
import { GatewayError } from '../../src/errors.js';
import { createStore, MemoryStore, RedisStore, type RedisStoreOptions, type TakeResult } from '../../src/store/index.js';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';

const skip = redisSkipReason();
/** Generous slack over the store timeout for a loaded 2-core CI machine. */
const SLACK_MS = 200;

function newStore(t: TestContext, url: string, over: Partial<RedisStoreOptions> = {}): RedisStore & { errors: string[] } {
  const errors: string[] = [];
  const store = new RedisStore({
    url,
    keyPrefix: 'mgtest:',
    timeoutMs: 50,
    failClosed: false,
    fallback: new MemoryStore({ clock: new ManualClock() }),
    probeIntervalMs: 50,
    onError: (op, err) => errors.push(`${op}: ${(err as Error).message}`),
    ...over,
  });
  t.after(() => store.close());
  return Object.assign(store, { errors });
}

async function withAdmin<T>(url: string, fn: (admin: RedisClientType<{}, {}, {}, 2, {}>) => Promise<T>): Promise<T> {
  const admin: RedisClientType<{}, {}, {}, 2, {}> = createClient({ url, socket: { reconnectStrategy: false } });
  admin.on('error', () => {});
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    admin.destroy();
  }
}

/** Every key under the prefix with its PTTL (-1: no TTL). */
async function keyTtls(url: string, prefix = 'mgtest:'): Promise<Map<string, number>> {
  return withAdmin(url, async (admin) => {
    const out = new Map<string, number>();
    let cursor = '0';
    do {
      const [next, keys] = (await admin.sendCommand(['SCAN', cursor, 'MATCH', prefix + '*', 'COUNT', '1000'])) as [string, string[]];
      cursor = next;
      for (const k of keys) out.set(k, await admin.pTTL(k));
    } while (cursor !== '0');
    return out;
  });
}

function assertAllHaveTtl(ttls: Map<string, number>): void {
  assert.ok(ttls.size > 0, 'expected some limiter keys');
  for (const [key, ttl] of ttls) assert.ok(ttl > 0, `key ${key} has no TTL (PTTL ${ttl})`);
}

async function until(cond: () => boolean, what: string, ms = 8_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function isPromise(r: unknown): boolean {
  return typeof (r as { then?: unknown } | null)?.then === 'function';
}

/** Runs a take and measures how long its answer took. */
async function timed(fn: () => TakeResult | Promise<TakeResult>): Promise<{ ms: number; result?: TakeResult; error?: unknown }> {
  const t0 = performance.now();
  try {
    const result = await fn();
    return { ms: performance.now() - t0, result };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
}

describe('RedisStore against a real redis-server', { skip }, () => {
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('admits the limit once across three instances hammered concurrently', async (t) => {
    // Three "gateway instances", each with its own connection; the timeout is wide so no take falls back.
    const stores = [0, 1, 2].map(() => newStore(t, server.url, { timeoutMs: 5_000 }));
    await Promise.all(stores.map((s) => s.start()));
    assert.ok(stores.every((s) => !s.degraded));
    const limit = 300;
    const takes: Promise<TakeResult>[] = [];
    for (let i = 0; i < 400; i++) for (const s of stores) takes.push(s.take('shared', limit, 0.001) as Promise<TakeResult>);
    const results = await Promise.all(takes);
    const allowed = results.filter((r) => r.allowed).length;
    assert.ok(Math.abs(allowed - limit) <= limit * 0.05, `admitted ${allowed}, limit ${limit}`);
    assert.equal(allowed, limit, 'the script is atomic, so the count is exact');
    assert.ok(stores.every((s) => !s.degraded && s.errors.length === 0));
  });

  it('computes refill, retry-after and reset from Redis time', async (t) => {
    const store = newStore(t, server.url);
    await store.start();
    for (let i = 0; i < 10; i++) assert.equal((await store.take('math', 10, 2)).allowed, true);
    const r = await store.take('math', 10, 2);
    assert.equal(r.allowed, false);
    assert.equal(r.remaining, 0);
    assert.ok(r.retryAfterMs > 0 && r.retryAfterMs <= 500, `retryAfterMs ${r.retryAfterMs}`);
    assert.ok(r.resetMs > 4_000 && r.resetMs <= 5_000, `resetMs ${r.resetMs}`);
    const cost = await store.take('math-cost', 10, 1, 4);
    assert.deepEqual({ allowed: cost.allowed, remaining: cost.remaining }, { allowed: true, remaining: 6 });
  });

  it('puts a TTL of about the refill time plus a margin on every key it writes', async (t) => {
    const store = newStore(t, server.url);
    await store.start();
    for (let i = 0; i < 50; i++) await store.take('ttl-' + i, 10, 1);
    await store.take('ttl-drained', 2, 0.01, 2); // 200 s to refill
    const ttls = await keyTtls(server.url, 'mgtest:ttl-');
    assertAllHaveTtl(ttls);
    assert.equal(ttls.size, 51);
    assert.ok(ttls.get('mgtest:ttl-0')! <= 2_000 && ttls.get('mgtest:ttl-0')! > 1_000, `ttl ${ttls.get('mgtest:ttl-0')}`);
    const drained = ttls.get('mgtest:ttl-drained')!;
    assert.ok(drained > 200_000 && drained <= 201_000, `ttl ${drained}`);
  });

  it('writes nothing for a rejected take', async (t) => {
    const store = newStore(t, server.url);
    await store.start();
    const r = await store.take('too-big', 2, 1, 5);
    assert.equal(r.allowed, false);
    assert.equal((await keyTtls(server.url, 'mgtest:too-big')).size, 0);
  });

  it('answers a peek (cost 0) as a take of one token would, writing nothing', async (t) => {
    const store = newStore(t, server.url);
    await store.start();
    assert.deepEqual(await store.take('peek-fresh', 3, 1, 0), { allowed: true, remaining: 3, retryAfterMs: 0, resetMs: 0 });
    assert.equal((await keyTtls(server.url, 'mgtest:peek-fresh')).size, 0, 'a peek creates no key');
    for (let i = 0; i < 3; i++) await store.take('peek-spent', 3, 1);
    const spent = await store.take('peek-spent', 3, 1, 0);
    assert.equal(spent.allowed, false);
    assert.ok(spent.retryAfterMs > 0 && spent.retryAfterMs <= 1_000, `retryAfterMs ${spent.retryAfterMs}`);
    // Peeking many times spends nothing: a take still finds the same state.
    for (let i = 0; i < 5; i++) await store.take('peek-two', 3, 0.001, 0);
    assert.equal((await store.take('peek-two', 3, 0.001)).remaining, 2);
  });

  it('is picked by createStore when cluster.redis_url is set, with the configured prefix; without it nothing reaches Redis', async (t) => {
    const store = createStore({ redis_url: server.url, key_prefix: 'mgtest:cfg:', timeout: 200, fail_closed: false }, undefined, new ManualClock());
    t.after(() => store.close());
    await store.start();
    assert.deepEqual(await store.take('k', 5, 1), { allowed: true, remaining: 4, retryAfterMs: 0, resetMs: 1_000 });
    assert.deepEqual([...(await keyTtls(server.url, 'mgtest:cfg:')).keys()], ['mgtest:cfg:k'], 'the bucket lives in Redis under the prefix');
    assert.equal(store.degraded, false);
    // A second store on the same Redis sees the same bucket: the state is shared, not local.
    const peer = createStore({ redis_url: server.url, key_prefix: 'mgtest:cfg:', timeout: 200, fail_closed: false }, undefined, new ManualClock());
    t.after(() => peer.close());
    await peer.start();
    assert.equal((await peer.take('k', 5, 1)).remaining, 3);
    // Without redis_url the store is local: its buckets never reach Redis and are not shared.
    const memory = createStore({ key_prefix: 'mgtest:mem:', timeout: 50, fail_closed: false }, undefined, new ManualClock());
    await memory.start();
    t.after(() => memory.close());
    assert.equal((await memory.take('k', 5, 1)).remaining, 4);
    assert.equal((await keyTtls(server.url, 'mgtest:mem:')).size, 0);
  });

  it('closes safely before start and twice', async () => {
    const store = new RedisStore({ url: server.url, keyPrefix: 'x:', timeoutMs: 50, failClosed: false, fallback: new MemoryStore({ clock: new ManualClock() }) });
    await store.close();
    await store.close();
    await store.start(); // after close: does nothing
    assert.equal(store.degraded, true);
  });
});

describe('RedisStore options', () => {
  it('refuses a URL the Redis client cannot use, naming the store and the fault, before any connection', () => {
    const fallback = new MemoryStore({ clock: new ManualClock() });
    for (const [url, fault] of [
      ['http://127.0.0.1:6379', /unsupported scheme http:/],
      ['redis://127.0.0.1:6379/not-a-db', /database number/],
      ['redis://u:%zz@127.0.0.1:6379', /percent-encoding/],
    ] as const) {
      assert.throws(
        () => new RedisStore({ url, keyPrefix: 'x:', timeoutMs: 50, failClosed: false, fallback }),
        (err: unknown) => err instanceof TypeError && /^RedisStore: url is not a usable redis:\/\/ or rediss:\/\/ URL/.test(err.message) && fault.test(err.message),
        url,
      );
    }
  });
});

describe('RedisStore when Redis fails', { skip }, () => {
  it('answers from the fallback within the timeout while clients are paused, and recovers', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const open = newStore(t, server.url);
    const closed = newStore(t, server.url, { failClosed: true });
    await Promise.all([open.start(), closed.start()]);
    for (let i = 0; i < 5; i++) await Promise.all([open.take('p-' + i, 10, 1), closed.take('q-' + i, 10, 1)]);

    await withAdmin(server.url, (admin) => admin.sendCommand(['CLIENT', 'PAUSE', '1500', 'ALL']));
    const opened = await Promise.all(Array.from({ length: 20 }, (_, i) => timed(() => open.take('p-' + (i % 5), 10, 1))));
    for (const o of opened) {
      assert.equal(o.error, undefined, 'fail-open never throws');
      assert.equal(o.result?.allowed, true);
      assert.ok(o.ms < 50 + SLACK_MS, `answered in ${o.ms.toFixed(0)} ms`);
    }
    const refused = await timed(() => closed.take('q-0', 10, 1));
    assert.ok(refused.error instanceof GatewayError && refused.error.code === 'store_unavailable', String(refused.error));
    assert.ok(refused.ms < 50 + SLACK_MS, `refused in ${refused.ms.toFixed(0)} ms`);
    assert.equal(open.degraded, true);
    assert.equal(closed.degraded, true);
    assert.ok(open.errors.some((e) => e.startsWith('take: ')));

    // Degraded: answers come at once, without queueing anything for Redis.
    const quick = open.take('p-0', 10, 1);
    assert.equal(isPromise(quick), false);
    assert.throws(() => closed.take('q-0', 10, 1), (err: unknown) => err instanceof GatewayError && err.code === 'store_unavailable');

    await until(() => !open.degraded && !closed.degraded, 'recovery after CLIENT PAUSE');
    assert.equal(isPromise(open.take('p-0', 10, 1)), true, 'back to Redis');
    assertAllHaveTtl(await keyTtls(server.url));
  });

  it('answers within the timeout while the server is frozen (SIGSTOP), and recovers after SIGCONT', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const open = newStore(t, server.url);
    const closed = newStore(t, server.url, { failClosed: true });
    await Promise.all([open.start(), closed.start()]);
    await Promise.all([open.take('s', 10, 1), closed.take('s', 10, 1)]);

    server.pause();
    try {
      const [a, b] = await Promise.all([timed(() => open.take('s', 10, 1)), timed(() => closed.take('s', 10, 1))]);
      assert.equal(a.error, undefined);
      assert.equal(a.result?.allowed, true);
      assert.ok(a.ms < 50 + SLACK_MS, `fail-open answered in ${a.ms.toFixed(0)} ms`);
      assert.ok(b.error instanceof GatewayError && b.error.code === 'store_unavailable');
      assert.ok(b.ms < 50 + SLACK_MS, `fail-closed answered in ${b.ms.toFixed(0)} ms`);
      assert.equal(open.degraded, true);
      assert.equal(closed.degraded, true);
      // many more while frozen: all immediate, none waiting on the frozen socket
      for (let i = 0; i < 1_000; i++) assert.equal(isPromise(open.take('s-' + i, 10, 1)), false);
      await sleep(300); // probes keep timing out; nothing may hang or throw meanwhile
      assert.equal(open.degraded, true);
    } finally {
      server.resume();
    }
    await until(() => !open.degraded && !closed.degraded, 'recovery after SIGCONT');
    const back = await open.take('s', 10, 1);
    assert.equal(typeof back.allowed, 'boolean');
    assertAllHaveTtl(await keyTtls(server.url));
  });

  it('reconnects by itself after Redis is killed and restarted on the same port', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const store = newStore(t, server.url);
    await store.start();
    assert.equal((await store.take('r', 3, 1)).allowed, true);

    await server.kill();
    await until(() => store.degraded, 'degraded after kill', 3_000);
    const during = store.take('r', 3, 1);
    assert.equal(isPromise(during), false, 'no offline queue: answered locally at once');
    assert.equal((during as TakeResult).allowed, true);
    assert.ok(store.errors.some((e) => e.startsWith('connection: ')));

    await server.restart(); // empty: the script cache is gone too, so EVALSHA must fall back to EVAL
    await until(() => !store.degraded, 'reconnect after restart');
    const r = await store.take('r', 3, 1);
    assert.deepEqual({ allowed: r.allowed, remaining: r.remaining }, { allowed: true, remaining: 2 });
    assertAllHaveTtl(await keyTtls(server.url));
  });

  it('tries to reconnect only when its clock says so (the backoff in simulated time)', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const clock = new ManualClock(0);
    const store = newStore(t, server.url, { clock, probeIntervalMs: 1_000 });
    await store.start();
    assert.equal((await store.take('c', 3, 1)).allowed, true);
    await server.kill();
    await until(() => store.degraded, 'degraded after kill', 3_000);
    await server.restart();
    // Redis is back, but the first reconnect waits 50 ms (+ up to 50 of jitter) on the store's clock.
    await sleep(300);
    assert.equal(store.degraded, true, 'no attempt while the clock stands still');
    clock.advance(100);
    await until(() => !store.degraded, 'reconnected once the clock passed the backoff');
    assert.equal((await store.take('c', 3, 1)).allowed, true);
  });

  it('starts degraded when Redis is down and connects once it comes up', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    await server.kill();
    const store = newStore(t, server.url, { connectWaitMs: 200 });
    const t0 = performance.now();
    await store.start();
    assert.ok(performance.now() - t0 < 200 + SLACK_MS * 2, 'start() does not wait for Redis forever');
    assert.equal(store.degraded, true);
    assert.equal((store.take('d', 1, 1) as TakeResult).allowed, true);
    await server.restart();
    await until(() => !store.degraded, 'first connection');
    assert.equal((await store.take('d', 1, 1)).allowed, true, 'a fresh Redis bucket');
  });
});
