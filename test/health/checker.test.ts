/**
 * HealthChecker against real node:http backends on port 0: what counts as healthy, hysteresis,
 * first verdicts, concurrency of probes, startup watching and change notifications.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { Backend } from '../../src/balancer/index.js';
import { ManualClock, type Clock } from '../../src/clock.js';
import type { HealthConfig } from '../../src/config/index.js';
import { HealthChecker } from '../../src/health/index.js';
import { startBackend } from '../helpers/gateway.js';

const CONFIG: HealthConfig = { interval: 10_000, timeout: 1_000, path: '/', healthy_threshold: 2, unhealthy_threshold: 2 };

/** A real backend on 127.0.0.1:0; `handler` answers every request. Closed after the test. */
const backendServer = (t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void) => startBackend(t, handler);

function status(code: number) {
  return (_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(code, code >= 300 && code < 400 ? { location: 'http://127.0.0.1:1/nowhere' } : {});
    res.end('body');
  };
}

/** A port nothing listens on (bound then released). */
async function deadUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function makeBackend(t: TestContext, url: string, healthPath = '/'): Backend {
  const b = new Backend(url, { connectTimeoutMs: 1_000, connections: 4, healthPath });
  t.after(() => b.destroy());
  return b;
}

function makeChecker(t: TestContext, config: Partial<HealthConfig> = {}, clock: Clock = new ManualClock()) {
  const flips: [string, boolean][] = [];
  const checker = new HealthChecker({ config: { ...CONFIG, ...config }, clock, onChange: (b, healthy) => flips.push([b.url, healthy]) });
  t.after(() => checker.close());
  return { checker, flips, clock };
}

describe('what a probe counts as healthy', () => {
  for (const code of [200, 204, 301, 302, 304, 307]) {
    test(`a ${code} answer is healthy`, async (t) => {
      const { url } = await backendServer(t, status(code));
      const { checker } = makeChecker(t);
      const b = makeBackend(t, url);
      checker.add(b);
      assert.equal(await checker.check(url), true);
      assert.equal(b.healthy, true);
    });
  }

  for (const code of [400, 404, 429, 500, 502, 503]) {
    test(`a ${code} answer is unhealthy, with the status as the error`, async (t) => {
      const { url } = await backendServer(t, status(code));
      const { checker } = makeChecker(t);
      const b = makeBackend(t, url);
      checker.add(b);
      assert.equal(await checker.check(url), false);
      assert.equal(checker.snapshot()[url]!.last_error, `status ${code}`);
    });
  }

  test('a refused connection is unhealthy', async (t) => {
    const url = await deadUrl();
    const { checker } = makeChecker(t);
    checker.add(makeBackend(t, url));
    assert.equal(await checker.check(url), false);
    assert.equal(checker.snapshot()[url]!.last_error, 'ECONNREFUSED');
  });

  test('a backend that does not answer within the timeout is unhealthy, and the probe ends at the timeout', async (t) => {
    const { url } = await backendServer(t, () => {
      /* never answers */
    });
    const { checker } = makeChecker(t, { timeout: 200 });
    checker.add(makeBackend(t, url));
    const started = performance.now();
    assert.equal(await checker.check(url), false);
    const took = performance.now() - started;
    assert.ok(took >= 150 && took < 1_000, `probe took ${took}ms`);
    assert.ok(checker.snapshot()[url]!.last_error);
  });

  test('a backend that sends headers but stalls the body still finishes the probe within the timeout', async (t) => {
    const { url } = await backendServer(t, (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
    });
    const { checker } = makeChecker(t, { timeout: 300 });
    checker.add(makeBackend(t, url));
    const started = performance.now();
    await checker.check(url);
    assert.ok(performance.now() - started < 1_500);
  });

  test('probes GET the backend health path with a health-check header', async (t) => {
    const { url, requests } = await backendServer(t, status(200));
    const { checker } = makeChecker(t);
    checker.add(makeBackend(t, url, '/healthz'));
    await checker.check(url);
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.method, 'GET');
    assert.equal(requests[0]!.url, '/healthz');
    assert.equal(requests[0]!.headers['x-health-check'], '1');
  });

  test('prefixes the health path with the path of the backend URL', async (t) => {
    const { url, requests } = await backendServer(t, status(200));
    const { checker } = makeChecker(t);
    checker.add(makeBackend(t, `${url}/base/`, '/healthz'));
    await checker.check(`${url}/base/`);
    assert.equal(requests[0]!.url, '/base/healthz');
  });

  test('check on an unknown URL answers null', async (t) => {
    const { checker } = makeChecker(t);
    assert.equal(await checker.check('http://127.0.0.1:1'), null);
  });
});

describe('hysteresis', () => {
  const URL_A = 'http://127.0.0.1:1';

  test("an unknown backend's first result decides at once, either way", (t) => {
    const { checker, flips } = makeChecker(t, { healthy_threshold: 3, unhealthy_threshold: 3 });
    const up = makeBackend(t, 'http://127.0.0.1:1');
    const down = makeBackend(t, 'http://127.0.0.1:2');
    checker.add(up);
    checker.add(down);
    assert.equal(up.healthy, null);
    checker.record(up.url, true);
    checker.record(down.url, false);
    assert.equal(up.healthy, true);
    assert.equal(down.healthy, false);
    assert.deepEqual(flips, [
      [up.url, true],
      [down.url, false],
    ]);
  });

  test('an unhealthy backend needs healthy_threshold consecutive successes to come back', (t) => {
    const { checker } = makeChecker(t, { healthy_threshold: 3, unhealthy_threshold: 2 });
    const b = makeBackend(t, URL_A);
    checker.add(b);
    checker.record(URL_A, false);
    checker.record(URL_A, true);
    checker.record(URL_A, true);
    assert.equal(b.healthy, false);
    checker.record(URL_A, true);
    assert.equal(b.healthy, true);
  });

  test('a healthy backend needs unhealthy_threshold consecutive failures to go down', (t) => {
    const { checker } = makeChecker(t, { healthy_threshold: 2, unhealthy_threshold: 3 });
    const b = makeBackend(t, URL_A);
    checker.add(b);
    checker.record(URL_A, true);
    checker.record(URL_A, false);
    checker.record(URL_A, false);
    assert.equal(b.healthy, true);
    checker.record(URL_A, false);
    assert.equal(b.healthy, false);
  });

  test('an alternating backend never flips: a success resets the failure streak and vice versa', (t) => {
    const { checker, flips } = makeChecker(t, { healthy_threshold: 2, unhealthy_threshold: 2 });
    const b = makeBackend(t, URL_A);
    checker.add(b);
    checker.record(URL_A, true);
    for (let i = 0; i < 10; i++) checker.record(URL_A, i % 2 === 0 ? false : true);
    assert.equal(b.healthy, true);
    assert.equal(flips.length, 1);
  });

  test('onChange fires only on flips, never on repeated verdicts', (t) => {
    const { checker, flips } = makeChecker(t, { healthy_threshold: 1, unhealthy_threshold: 1 });
    const b = makeBackend(t, URL_A);
    checker.add(b);
    for (const ok of [true, true, true, false, false, true, true, false]) checker.record(URL_A, ok);
    assert.deepEqual(
      flips.map(([, h]) => h),
      [true, false, true, false],
    );
  });

  test('onChange subscribers can unsubscribe, and nothing fires after close', (t) => {
    const { checker, flips } = makeChecker(t, { healthy_threshold: 1, unhealthy_threshold: 1 });
    const b = makeBackend(t, URL_A);
    checker.add(b);
    const seen: boolean[] = [];
    const off = checker.onChange((_b, healthy) => seen.push(healthy));
    checker.record(URL_A, true);
    off();
    checker.record(URL_A, false);
    assert.deepEqual(seen, [true]);
    checker.close();
    checker.record(URL_A, true);
    assert.equal(flips.length, 2, 'the constructor listener saw both flips before close, none after');
  });

  test('a passive connect failure counts like a failed probe', (t) => {
    const { checker } = makeChecker(t, { unhealthy_threshold: 2 });
    const b = makeBackend(t, URL_A);
    checker.add(b);
    checker.record(URL_A, true);
    checker.reportConnectFailure(b);
    assert.equal(b.healthy, true);
    checker.reportConnectFailure(b);
    assert.equal(b.healthy, false);
    assert.equal(checker.snapshot()[URL_A]!.last_error, 'connection refused by backend');
  });

  test('add is idempotent by URL', (t) => {
    const { checker } = makeChecker(t);
    const b = makeBackend(t, URL_A);
    checker.add(b);
    checker.add(makeBackend(t, URL_A));
    assert.equal(checker.backends.length, 1);
    assert.equal(checker.backends[0], b);
  });
});

describe('snapshot', () => {
  test('reports unknown backends as healthy with the Go zero time, then the time and counters of the last check', (t) => {
    const clock = new ManualClock(Date.UTC(2026, 0, 2, 3, 4, 5));
    const { checker } = makeChecker(t, { unhealthy_threshold: 3 }, clock);
    const url = 'http://127.0.0.1:1';
    checker.add(makeBackend(t, url));
    assert.deepEqual(checker.snapshot()[url], {
      url,
      healthy: true,
      state: 'unknown',
      last_check: '0001-01-01T00:00:00Z',
      last_error: null,
      consecutive_successes: 0,
      consecutive_failures: 0,
      circuit: 'closed',
    });
    checker.record(url, true);
    checker.record(url, false, 'status 500');
    assert.deepEqual(checker.snapshot()[url], {
      url,
      healthy: true,
      state: 'healthy',
      last_check: '2026-01-02T03:04:05.000Z',
      last_error: 'status 500',
      consecutive_successes: 0,
      consecutive_failures: 1,
      circuit: 'closed',
    });
  });
});

describe('probing rounds', () => {
  test('checkAll probes every backend concurrently: three 500 ms backends take about 500 ms, not 1.5 s', async (t) => {
    const slow = (_req: IncomingMessage, res: ServerResponse) => setTimeout(() => res.end('ok'), 500);
    const fast = status(200);
    const servers = await Promise.all([backendServer(t, slow), backendServer(t, slow), backendServer(t, slow), backendServer(t, fast), backendServer(t, fast)]);
    const { checker } = makeChecker(t, { timeout: 2_000 });
    for (const s of servers) checker.add(makeBackend(t, s.url));
    const started = performance.now();
    await checker.checkAll();
    const took = performance.now() - started;
    assert.ok(took < 1_100, `checkAll took ${took}ms (sequential would be ≥1500ms)`);
    assert.ok(checker.backends.every((b) => b.healthy === true));
  });

  test('a slow backend does not delay the verdicts of the others', async (t) => {
    const slow = await backendServer(t, () => {
      /* hangs until the probe times out */
    });
    const fastA = await backendServer(t, status(200));
    const fastB = await backendServer(t, status(503));
    const flipTimes = new Map<string, number>();
    const { checker } = makeChecker(t, { timeout: 500 });
    checker.onChange((b) => flipTimes.set(b.url, performance.now()));
    for (const s of [slow, fastA, fastB]) checker.add(makeBackend(t, s.url));
    const started = performance.now();
    await checker.checkAll();
    const total = performance.now() - started;
    assert.ok(total >= 400 && total < 1_200, `round took ${total}ms, about one timeout`);
    assert.ok(flipTimes.get(fastA.url)! - started < 300, 'the healthy fast backend was decided before the slow one timed out');
    assert.ok(flipTimes.get(fastB.url)! - started < 300, 'the failing fast backend was decided before the slow one timed out');
    assert.equal(checker.backends.find((b) => b.url === slow.url)!.healthy, false);
  });

  test('start probes at once and then every interval, on the clock: nothing is due before the interval and nothing after close', async (t) => {
    const clock = new ManualClock();
    const { url, requests } = await backendServer(t, status(200));
    const { checker } = makeChecker(t, { interval: 10_000 }, clock);
    checker.add(makeBackend(t, url));
    checker.start();
    await waitUntil(() => requests.length === 1, 1_000);
    assert.deepEqual(clock.pendingTimers(), [clock.now() + 10_000], 'the next round is due exactly one interval later');
    clock.advance(9_999);
    assert.equal(clock.nextTimerIn(), 1, 'the round has not fired 1 ms early');
    clock.advance(1);
    await waitUntil(() => requests.length === 2, 1_000);
    assert.deepEqual(clock.pendingTimers(), [clock.now() + 10_000]);
    clock.advance(10_000);
    await waitUntil(() => requests.length === 3, 1_000);
    checker.close();
    assert.deepEqual(clock.pendingTimers(), [], 'close cancels the schedule: no probe can follow');
  });

  test('never runs two probes of one backend at once, even when a probe outlasts the interval', async (t) => {
    const clock = new ManualClock();
    const { url, requests } = await backendServer(t, () => {
      /* hangs */
    });
    const { checker } = makeChecker(t, { interval: 1_000, timeout: 5_000 }, clock);
    const b = makeBackend(t, url);
    // Count probe dispatches: a probe calls pool.request synchronously when it starts.
    let dispatched = 0;
    const request = b.pool.request.bind(b.pool);
    (b.pool as unknown as { request: (...a: unknown[]) => unknown }).request = (...a: unknown[]) => {
      dispatched++;
      return (request as (...x: unknown[]) => unknown)(...a);
    };
    checker.add(b);
    checker.start();
    assert.equal(dispatched, 1);
    for (let i = 0; i < 5; i++) clock.advance(1_000);
    assert.equal(dispatched, 1, 'five rounds fired while the first probe hung: none dispatched a second probe');
    await waitUntil(() => requests.length === 1, 1_000);
  });
});

describe('watchStartup', () => {
  test('makes the first success after a (re)start count at once, whatever healthy_threshold says', async (t) => {
    const { url } = await backendServer(t, status(200));
    const { checker } = makeChecker(t, { healthy_threshold: 5 });
    const b = makeBackend(t, url);
    checker.add(b);
    checker.record(url, false);
    assert.equal(b.healthy, false);
    checker.watchStartup([url]);
    assert.equal(await checker.check(url), true);
  });

  test('without it one success is not enough to bring an unhealthy backend back', async (t) => {
    const { url } = await backendServer(t, status(200));
    const { checker } = makeChecker(t, { healthy_threshold: 5 });
    const b = makeBackend(t, url);
    checker.add(b);
    checker.record(url, false);
    assert.equal(await checker.check(url), false);
  });

  test('probes a starting backend every 200 ms (on the clock) until it answers, without waiting for the interval', async (t) => {
    const clock = new ManualClock();
    const { checker, flips } = makeChecker(t, { interval: 60_000, healthy_threshold: 3 }, clock);
    const url = await deadUrl();
    const port = Number(new URL(url).port);
    const b = makeBackend(t, url);
    checker.add(b);
    checker.record(url, false);
    checker.watchStartup([url]);
    assert.deepEqual(clock.pendingTimers(), [clock.now() + 200]);
    // Not listening yet: each fast probe fails and the next one is scheduled 200 ms later.
    for (let i = 1; i <= 2; i++) {
      clock.advance(200);
      await waitUntil(() => checker.snapshot()[url]!.consecutive_failures === 1 + i, 1_000);
      assert.deepEqual(clock.pendingTimers(), [clock.now() + 200]);
    }
    assert.equal(b.healthy, false);
    // The "process" starts listening: the next fast probe brings it back at once (threshold 3 notwithstanding).
    const late = createServer(status(200));
    t.after(() => new Promise<void>((r) => late.close(() => r())));
    await new Promise<void>((r) => late.listen(port, '127.0.0.1', r));
    clock.advance(200);
    await waitUntil(() => b.healthy === true, 1_000);
    assert.deepEqual(flips.at(-1), [url, true]);
    // Healthy: the fast schedule winds down after its next tick instead of running forever.
    clock.advance(200);
    assert.deepEqual(clock.pendingTimers(), []);
  });

  test('fast probing stops at the end of its window even if the backend never answers', async (t) => {
    const clock = new ManualClock();
    const { checker } = makeChecker(t, { interval: 60_000 }, clock);
    const url = await deadUrl();
    checker.add(makeBackend(t, url));
    checker.watchStartup([url], 1_000);
    for (let i = 0; i < 5; i++) {
      assert.equal(clock.pendingTimers().length, 1);
      clock.advance(200);
    }
    assert.deepEqual(clock.pendingTimers(), [], 'no fast probe is scheduled past the window');
  });

  test('ignores URLs it does not track', (t) => {
    const { checker } = makeChecker(t);
    assert.doesNotThrow(() => checker.watchStartup(['http://127.0.0.1:1']));
  });
});

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
