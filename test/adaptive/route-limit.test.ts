import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { AdaptiveRouteLimiter, MemoryRouteBucketStore, type AdaptiveRouteLimiterOptions, type LimitChange, type RouteBaseline } from '../../src/adaptive/index.js';

const HOUR = 3_600_000;
const R = '/api/v1';
/** Limit = clamp(2 × baseline, 10, 10,000)/min after an hour of data; 10 s burst; enforcing. */
const SETTINGS = { multiplier: 2, minLimit: 10, maxLimit: 10_000, learningPeriodMs: HOUR, burstMs: 10_000, shadow: false };

function setup(overrides: Partial<AdaptiveRouteLimiterOptions> = {}, initial: RouteBaseline | null = { avgRatePerMin: 600, dataMs: 2 * HOUR }) {
  const clock = new ManualClock();
  let baseline = initial;
  const changes: LimitChange[] = [];
  const limiter = new AdaptiveRouteLimiter([R, '/other'], {
    clock,
    baselines: { baseline: (route) => (route === R ? baseline : null) },
    ...SETTINGS,
    onLimitChange: (c) => changes.push(c),
    ...overrides,
  });
  return { clock, limiter, route: limiter.forRoute(R)!, changes, set: (b: RouteBaseline | null) => (baseline = b) };
}

describe('adaptive route limit', () => {
  it('has no opinion until the route has learning_period of data (not uptime)', () => {
    const s = setup({}, { avgRatePerMin: 600, dataMs: HOUR - 1 });
    for (let i = 0; i < 5_000; i++) assert.equal(s.route.decide(`c${i % 3}`), null);
    assert.equal(s.route.limit, null);
    assert.equal(s.route.stats().learning, true);
    assert.equal(s.route.stats().decisions, 0);
    s.set({ avgRatePerMin: 600, dataMs: HOUR });
    s.route.refresh();
    assert.equal(s.route.limit, 1200);
    assert.equal(s.limiter.limit(R), 1200);
  });

  it('learns L = clamp(avg × multiplier, min_limit, max_limit)', () => {
    const s = setup({ multiplier: 3, minLimit: 100, maxLimit: 1000 });
    assert.equal(s.limiter.limit(R), null); // not pulled yet
    s.limiter.refresh();
    assert.equal(s.limiter.limit(R), 1000);
    s.set({ avgRatePerMin: 10, dataMs: 2 * HOUR });
    s.limiter.refresh();
    assert.equal(s.limiter.limit(R), 100);
    s.set({ avgRatePerMin: 200, dataMs: 2 * HOUR });
    s.limiter.refresh();
    assert.equal(s.limiter.limit(R), 600);
    assert.equal(s.limiter.limit('/other'), null);
    assert.equal(s.limiter.limit('/unknown'), null);
    assert.equal(s.limiter.decide('/unknown', 'c'), null);
  });

  it('does not raise its limit while it is refusing: a flood cannot ratchet the limit up through the traffic it let through', () => {
    const s = setup(); // L = 1200/min
    s.route.refresh();
    assert.equal(s.route.limit, 1200);
    for (let i = 0; i < 1000; i++) s.route.decide('flooder'); // drains the bucket: refusals
    assert.ok(s.route.stats().refusals > 0);
    // The baseline climbs with the admitted part of the flood: the limit holds.
    s.set({ avgRatePerMin: 1100, dataMs: 2 * HOUR });
    s.route.refresh();
    assert.equal(s.route.limit, 1200);
    // It may still fall while refusing.
    s.set({ avgRatePerMin: 500, dataMs: 2 * HOUR });
    s.route.refresh();
    assert.equal(s.route.limit, 1000);
    // Once a refresh passes without a refusal, it follows the baseline up again.
    s.set({ avgRatePerMin: 900, dataMs: 2 * HOUR });
    s.route.refresh();
    assert.equal(s.route.limit, 1800);
  });

  it('allows a burst of `burst` worth of the limit, then refills at L/60 per second', () => {
    const s = setup(); // L = 1200/min = 20/s, burst 10 s = 200 tokens
    let admitted = 0;
    for (let i = 0; i < 1000; i++) if (s.route.decide('one-client') === null) admitted++;
    // 200 from the bucket plus the bounded debt a client within its fair share may borrow (the only client's share is L).
    assert.ok(admitted >= 200 && admitted <= 300, `admitted ${admitted}`);
    s.clock.advance(1_000);
    let more = 0;
    for (let i = 0; i < 1000; i++) if (s.route.decide('one-client') === null) more++;
    assert.ok(more <= 20, `admitted ${more} after 1 s`);
  });

  it('moves the limit in place as the baseline moves: tokens are never reset', () => {
    const s = setup();
    for (let i = 0; i < 200; i++) s.route.decide(`c${i}`);
    const before = s.route.stats().tokens!;
    assert.ok(before < 1);
    s.set({ avgRatePerMin: 660, dataMs: 3 * HOUR });
    s.route.refresh();
    assert.ok(Math.abs(s.route.limit! - 1320) < 1e-9);
    assert.ok(s.route.stats().tokens! < 1, 'a new limit does not refill the bucket');
    s.clock.advance(1_000);
    assert.ok(Math.abs(s.route.stats().tokens! - (before + 22)) < 1e-6, `refills at the new rate (${s.route.stats().tokens})`);
  });

  it('shrinks the bucket when the limit drops', () => {
    const s = setup();
    s.route.refresh();
    s.route.decide('a');
    s.set({ avgRatePerMin: 60, dataMs: 3 * HOUR }); // L = 120/min, burst 20 tokens
    s.route.refresh();
    assert.ok(s.route.stats().tokens! <= 20);
  });

  it('announces a learned, moved or dropped limit once, with the numbers and one log line', () => {
    const s = setup();
    s.route.refresh();
    assert.equal(s.changes.length, 1);
    assert.deepEqual({ ...s.changes[0]!, at: 0 }, {
      route: R,
      previous: null,
      limit: 1200,
      baselinePerMin: 600,
      multiplier: 2,
      at: 0,
      message: 'adaptive limit /api/v1: none -> 1200/min (learned from 600/min × 2)',
    });
    s.set({ avgRatePerMin: 603, dataMs: 3 * HOUR }); // +0.5%: not worth an event
    s.route.refresh();
    assert.equal(s.changes.length, 1);
    s.set({ avgRatePerMin: 650, dataMs: 3 * HOUR });
    s.route.refresh();
    assert.equal(s.changes.length, 2);
    assert.equal(s.changes[1]!.previous, 1200);
    assert.equal(s.changes[1]!.limit, 1300);
    s.set(null);
    s.route.refresh();
    assert.equal(s.changes.length, 3);
    assert.equal(s.changes[2]!.limit, null);
    assert.match(s.changes[2]!.message, /1300\/min -> none \(learning\)$/);
  });

  it('pulls the baseline lazily every refresh interval', () => {
    const s = setup({ refreshIntervalMs: 10_000 });
    s.route.decide('a');
    assert.equal(s.route.limit, 1200);
    s.set({ avgRatePerMin: 1000, dataMs: 3 * HOUR });
    s.clock.advance(9_999);
    s.route.decide('a');
    assert.equal(s.route.limit, 1200);
    s.clock.advance(1);
    s.route.decide('a');
    assert.equal(s.route.limit, 2000);
  });

  it('refuses the heavy client and admits the light ones while the route is over its limit', () => {
    const s = setup({}, { avgRatePerMin: 60, dataMs: 2 * HOUR }); // L = 120/min = 2/s, burst 20
    // Ten light clients at 6/min each (60/min together) and one heavy at 600/min, for 3 minutes.
    let lightRefused = 0;
    let heavyRefused = 0;
    let heavy = 0;
    for (let ms = 0; ms < 180_000; ms += 100) {
      s.clock.advance(100);
      if (ms % 1_000 === 0) {
        const c = (ms / 1_000) % 10;
        if (s.route.decide(`light-${c}`) !== null) lightRefused++;
      }
      heavy++;
      const r = s.route.decide('heavy');
      if (r !== null) {
        heavyRefused++;
        // Until its rate is known (a new client starts at 0) it may borrow like anyone; after that it is over its share.
        if (ms > 10_000) assert.equal(r.reason, 'over_fair_share');
      }
    }
    assert.equal(lightRefused, 0);
    assert.ok(heavyRefused / heavy > 0.85, `heavy refused ${heavyRefused}/${heavy}`);
    const st = s.route.stats();
    assert.equal(st.refusals, heavyRefused);
    assert.ok(st.fairSharePerMin !== null && st.fairSharePerMin > 6 && st.fairSharePerMin <= 120);
    assert.equal(st.trackedClients, 11);
  });

  it('refuses light clients too once the bounded debt is spent (route_exhausted)', () => {
    const s = setup({}, { avgRatePerMin: 60, dataMs: 2 * HOUR }); // 20 tokens, debt 10
    let refusal = null;
    for (let i = 0; i < 100 && refusal === null; i++) refusal = s.route.decide(`new-${i}`);
    assert.ok(refusal !== null);
    assert.equal(refusal.reason, 'route_exhausted');
    assert.equal(s.route.stats().borrowed, 10);
    assert.match(refusal.message, /this client 0\/min, fair share \d+(\.\d)?\/min, but the route is over its limit$/);
    assert.equal(refusal.retryAfterSec, 1);
    assert.deepEqual(Object.keys(refusal.detail()).sort(), ['active_clients', 'baseline', 'client_rate', 'fair_share', 'limit', 'mode', 'multiplier', 'reason', 'retry_after_s']);
  });

  it('marks shadow refusals as not enforced', () => {
    const s = setup({ shadow: true }, { avgRatePerMin: 60, dataMs: 2 * HOUR });
    let refusal = null;
    for (let i = 0; i < 100 && refusal === null; i++) refusal = s.route.decide('x');
    assert.ok(refusal !== null);
    assert.equal(refusal.enforced, false);
    assert.equal(refusal.mode, 'shadow');
    assert.equal(s.limiter.mode, 'shadow');
  });

  it('keeps the route bucket in the store it is given', () => {
    const store = new MemoryRouteBucketStore();
    const s = setup({ store });
    s.route.decide('a');
    assert.ok(Math.abs(store.peek(R, 20, 200, s.clock.now())! - 199) < 1e-9);
    assert.equal(store.peek('/other', 20, 200, s.clock.now()), null);
  });

  it('carries client rates, the bucket and the announced limit over a reload', () => {
    const s = setup({}, { avgRatePerMin: 60, dataMs: 2 * HOUR });
    for (let i = 0; i < 200; i++) {
      s.clock.advance(100);
      s.route.decide('heavy');
      if (i % 20 === 0) s.route.decide('light');
    }
    const tokens = s.route.stats().tokens!;
    const changes: LimitChange[] = [];
    const next = new AdaptiveRouteLimiter([R], {
      clock: s.clock,
      baselines: { baseline: () => ({ avgRatePerMin: 60, dataMs: 2 * HOUR }) },
      ...SETTINGS,
      onLimitChange: (c) => changes.push(c),
      previous: s.limiter,
    });
    const route = next.forRoute(R)!;
    // A fresh table would see a new client (rate 0) and let it borrow; the carried one knows it is heavy.
    assert.equal(route.decide('heavy')?.reason, 'over_fair_share');
    assert.equal(changes.length, 0, 'the same limit is not announced again');
    assert.equal(route.stats().trackedClients, 2);
    assert.ok(route.stats().tokens! <= tokens);
    assert.equal(next.store, s.limiter.store);
  });

  it('keeps its limit when the baseline source throws, and reports the error', () => {
    const errors: unknown[] = [];
    let fail = false;
    const clock = new ManualClock();
    const limiter = new AdaptiveRouteLimiter([R], {
      clock,
      baselines: {
        baseline: () => {
          if (fail) throw new Error('analytics down');
          return { avgRatePerMin: 600, dataMs: 2 * HOUR };
        },
      },
      ...SETTINGS,
      onError: (e) => errors.push(e),
    });
    limiter.refresh();
    fail = true;
    limiter.refresh();
    assert.equal(limiter.limit(R), 1200);
    assert.equal(errors.length, 1);
    assert.equal(limiter.decide(R, 'a'), null);
  });

  it('rejects settings that cannot work', () => {
    const base = { baselines: { baseline: () => null }, multiplier: 2, minLimit: 10, maxLimit: 100, learningPeriodMs: 0, burstMs: 10_000, shadow: false };
    assert.throws(() => new AdaptiveRouteLimiter([R], { ...base, multiplier: 0 }), /multiplier must be > 0/);
    assert.throws(() => new AdaptiveRouteLimiter([R], { ...base, burstMs: -1 }), /burstMs must be > 0/);
    assert.throws(() => new AdaptiveRouteLimiter([R], { ...base, minLimit: 200 }), /minLimit \(200\) must not exceed maxLimit \(100\)/);
  });
});

describe('route bucket store', () => {
  it('takes into debt only as far as the floor allows and changes nothing when it refuses', () => {
    const store = new MemoryRouteBucketStore();
    assert.equal(store.take('r', 1, 1, 2, 0, 0).allowed, true);
    assert.equal(store.take('r', 1, 1, 2, 0, 0).allowed, true);
    assert.equal(store.take('r', 1, 1, 2, 0, 0).allowed, false);
    assert.equal(store.take('r', 1, 1, 2, -2, 0).allowed, true);
    assert.equal(store.take('r', 1, 1, 2, -2, 0).allowed, true);
    const r = store.take('r', 1, 1, 2, -2, 0);
    assert.equal(r.allowed, false);
    assert.equal(r.tokens, -2);
    assert.equal(store.peek('r', 1, 2, 3_000), 1);
  });
});
