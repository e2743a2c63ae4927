import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, type BreakerState } from '../../src/breaker/index.js';
import { Backend } from '../../src/balancer/index.js';
import { ManualClock } from '../../src/clock.js';

const TIMEOUT = 30_000;

function setup(config: Partial<{ threshold: number; timeout: number; half_open_requests: number }> = {}) {
  const clock = new ManualClock();
  const transitions: string[] = [];
  const breaker = new CircuitBreaker(
    { threshold: 5, timeout: TIMEOUT, half_open_requests: 1, ...config },
    { clock, onStateChange: (from, to) => transitions.push(`${from}->${to}`) },
  );
  return { clock, breaker, transitions };
}

/** Admits and fails n requests, as the proxy would. */
function failN(breaker: CircuitBreaker, n: number): void {
  for (let i = 0; i < n; i++) {
    assert.equal(breaker.allow(), true);
    breaker.failure();
  }
}

function openAndHalfOpen(config: Parameters<typeof setup>[0] = {}) {
  const s = setup(config);
  failN(s.breaker, config.threshold ?? 5);
  s.clock.advance(TIMEOUT);
  assert.equal(s.breaker.state, 'half_open');
  return s;
}

test('opens after five consecutive upstream failures', () => {
  const { breaker } = setup();
  failN(breaker, 4);
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.consecutiveFailures, 4);
  failN(breaker, 1);
  assert.equal(breaker.state, 'open');
  assert.equal(breaker.allow(), false);
});

test('a success while closed resets the failure streak', () => {
  const { breaker } = setup();
  failN(breaker, 4);
  assert.equal(breaker.allow(), true);
  breaker.success();
  assert.equal(breaker.consecutiveFailures, 0);
  failN(breaker, 4);
  assert.equal(breaker.state, 'closed');
  failN(breaker, 1);
  assert.equal(breaker.state, 'open');
});

test('an open breaker rejects every request until the timeout has passed, then half-opens', () => {
  const { breaker, clock } = setup();
  failN(breaker, 5);
  clock.advance(TIMEOUT - 1);
  for (let i = 0; i < 100; i++) assert.equal(breaker.allow(), false);
  assert.equal(breaker.state, 'open');
  assert.equal(breaker.retryAfterMs, 1);
  clock.advance(1);
  assert.equal(breaker.state, 'half_open');
  assert.equal(breaker.retryAfterMs, 0);
});

test('half-open is reached lazily from allow() alone, without reading state first', () => {
  const { breaker, clock, transitions } = setup();
  failN(breaker, 5);
  clock.advance(TIMEOUT);
  assert.equal(breaker.allow(), true);
  assert.deepEqual(transitions, ['closed->open', 'open->half_open']);
});

test('half-open admits at most half_open_requests concurrent probes', () => {
  const { breaker } = openAndHalfOpen({ half_open_requests: 3 });
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.allow(), false);
  assert.equal(breaker.allow(), false);
  assert.equal(breaker.stats().half_open_in_flight, 3);
});

test('a probe success closes the breaker and resets the counts', () => {
  const { breaker } = openAndHalfOpen({ half_open_requests: 2 });
  assert.equal(breaker.allow(), true);
  breaker.success();
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.consecutiveFailures, 0);
  assert.equal(breaker.openedAt, null);
  // A fresh streak is needed to open again.
  failN(breaker, 4);
  assert.equal(breaker.state, 'closed');
});

test('a probe failure reopens the breaker and restarts the timeout', () => {
  const { breaker, clock } = openAndHalfOpen();
  clock.advance(1_000);
  const reopenedAt = clock.now();
  assert.equal(breaker.allow(), true);
  breaker.failure();
  assert.equal(breaker.state, 'open');
  assert.equal(breaker.openedAt, reopenedAt);
  clock.advance(TIMEOUT - 1);
  assert.equal(breaker.allow(), false);
  clock.advance(1);
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.state, 'half_open');
});

test('release frees a half-open probe slot without a verdict', () => {
  const { breaker } = openAndHalfOpen();
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.allow(), false);
  breaker.release();
  assert.equal(breaker.state, 'half_open');
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.allow(), false);
});

test('release never frees more slots than were taken', () => {
  const { breaker } = openAndHalfOpen({ half_open_requests: 2 });
  assert.equal(breaker.allow(), true);
  breaker.release();
  breaker.release();
  breaker.release();
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.allow(), false);
});

test('release while closed changes nothing', () => {
  const { breaker, transitions } = setup();
  failN(breaker, 2);
  breaker.release();
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.consecutiveFailures, 2);
  assert.deepEqual(transitions, []);
});

test('verdicts arriving while open are ignored: they come from requests admitted before it opened', () => {
  const { breaker, clock } = setup();
  failN(breaker, 5);
  const openedAt = breaker.openedAt;
  clock.advance(10_000);
  breaker.success();
  assert.equal(breaker.state, 'open');
  breaker.failure();
  assert.equal(breaker.openedAt, openedAt, 'a late failure does not restart the timeout');
  clock.advance(TIMEOUT - 10_000);
  assert.equal(breaker.state, 'half_open');
});

test('in half-open a verdict counts only while a probe is in flight', () => {
  const { breaker } = openAndHalfOpen();
  breaker.success();
  assert.equal(breaker.state, 'half_open', 'no probe was admitted, so this success is stale');
  breaker.failure();
  assert.equal(breaker.state, 'half_open');
});

test('verdicts of other probes after the first one decided are treated as closed-state verdicts', () => {
  const { breaker } = openAndHalfOpen({ half_open_requests: 2, threshold: 2 });
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.allow(), true);
  breaker.success();
  assert.equal(breaker.state, 'closed');
  breaker.failure();
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.consecutiveFailures, 1);
});

test('onStateChange fires exactly once per transition', () => {
  const { breaker, clock, transitions } = setup({ threshold: 2 });
  failN(breaker, 2);
  breaker.failure();
  for (let i = 0; i < 10; i++) breaker.allow();
  clock.advance(TIMEOUT);
  for (let i = 0; i < 10; i++) void breaker.state;
  breaker.allow();
  breaker.failure();
  clock.advance(TIMEOUT);
  breaker.allow();
  breaker.success();
  breaker.success();
  assert.deepEqual(transitions, ['closed->open', 'open->half_open', 'half_open->open', 'open->half_open', 'half_open->closed']);
});

test('a throwing state listener never breaks allow() and is reported', () => {
  const clock = new ManualClock();
  const errors: unknown[] = [];
  const breaker = new CircuitBreaker(
    { threshold: 1, timeout: 10, half_open_requests: 1 },
    {
      clock,
      onStateChange: () => {
        throw new Error('listener bug');
      },
      onError: (err) => errors.push(err),
    },
  );
  assert.equal(breaker.allow(), true);
  breaker.failure();
  clock.advance(10);
  assert.equal(breaker.allow(), true);
  assert.equal(breaker.state, 'half_open');
  assert.equal(errors.length, 2);
});

test('stats report state, streak and opened_at for /health', () => {
  const { breaker, clock } = setup();
  assert.deepEqual(breaker.stats(), { state: 'closed', consecutive_failures: 0, opened_at: null, half_open_in_flight: 0, trip: null });
  failN(breaker, 5);
  const opened = new Date(clock.now()).toISOString();
  const trip = { rule: 'consecutive_failures', failures: 5, threshold: 5, message: '5 consecutive failures (threshold 5)', at: opened };
  assert.deepEqual(breaker.stats(), { state: 'open', consecutive_failures: 5, opened_at: opened, half_open_in_flight: 0, trip });
  clock.advance(TIMEOUT);
  breaker.allow();
  assert.deepEqual(breaker.stats(), { state: 'half_open', consecutive_failures: 5, opened_at: opened, half_open_in_flight: 1, trip });
  assert.equal(JSON.parse(JSON.stringify(breaker.stats())).opened_at, opened);
});

test('a backend is down while its breaker is open and up again once it half-opens', (t) => {
  const { breaker, clock } = setup({ threshold: 1 });
  const backend = new Backend('http://127.0.0.1:9', { connectTimeoutMs: 100, connections: 1, healthPath: '/' });
  t.after(() => backend.destroy());
  backend.breaker = breaker;
  assert.equal(backend.up, true);
  assert.equal(backend.tryAcquire(), true);
  breaker.failure();
  assert.equal(backend.up, false);
  assert.equal(backend.tryAcquire(), false);
  clock.advance(TIMEOUT);
  assert.equal(backend.up, true);
  assert.equal(backend.tryAcquire(), true, 'takes the probe slot');
  assert.equal(backend.tryAcquire(), false, 'only one probe');
});

test('rejects impossible settings at construction', () => {
  assert.throws(() => new CircuitBreaker({ threshold: 0, timeout: 1, half_open_requests: 1 }), RangeError);
  assert.throws(() => new CircuitBreaker({ threshold: 1.5, timeout: 1, half_open_requests: 1 }), RangeError);
  assert.throws(() => new CircuitBreaker({ threshold: 1, timeout: -1, half_open_requests: 1 }), RangeError);
  assert.throws(() => new CircuitBreaker({ threshold: 1, timeout: Number.NaN, half_open_requests: 1 }), RangeError);
  assert.throws(() => new CircuitBreaker({ threshold: 1, timeout: 1, half_open_requests: 0 }), RangeError);
});

test('a zero timeout half-opens on the next look', () => {
  const { breaker } = setup({ threshold: 1, timeout: 0 });
  breaker.failure();
  const state: BreakerState = breaker.state;
  assert.equal(state, 'half_open');
});

test('uses the system clock when none is given', () => {
  const breaker = new CircuitBreaker({ threshold: 1, timeout: 60_000, half_open_requests: 1 });
  const before = Date.now();
  breaker.failure();
  const openedAt = breaker.openedAt;
  assert.ok(openedAt !== null && openedAt >= before && openedAt <= Date.now());
  assert.equal(breaker.state, 'open');
});
