import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { AdaptiveRouteLimiter, type AdaptiveRefusal, type RouteBaseline } from '../../src/adaptive/index.js';
import { EventQueue, nextGapMs, seededRandom } from './sim.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const ROUTE = '/api/v1';

interface SimClient {
  key: string;
  steady: boolean;
  /** Requests/min at a simulated time (ms since the start of the run). */
  rate: (t: number) => number;
  from: number;
  until: number;
}

interface Tally {
  offered: number;
  refused: number;
}

/**
 * Drives `decide()` with Poisson arrivals per client. Calls `onRequest(t, refusal)` for every
 * request (t = ms since the start) so scenarios can count what they need.
 */
function run(clock: ManualClock, limiter: AdaptiveRouteLimiter, clients: SimClient[], durationMs: number, seed: number, onRequest: (t: number, c: SimClient, r: AdaptiveRefusal | null) => void): void {
  const random = seededRandom(seed);
  const q = new EventQueue<SimClient>();
  const start = clock.now();
  const route = limiter.forRoute(ROUTE)!;
  for (const c of clients) {
    const r = c.rate(c.from);
    if (r > 0) q.push(c.from + nextGapMs(random, r), c);
  }
  while (q.size > 0 && q.peekTime() < durationMs) {
    const t = q.peekTime();
    const c = q.pop();
    if (t >= c.until) continue;
    clock.set(start + t);
    onRequest(t, c, route.decide(c.key));
    q.push(t + nextGapMs(random, c.rate(t)), c);
  }
  clock.set(start + durationMs);
}

function fixedBaseline(avgRatePerMin: number): { baseline: (route: string) => RouteBaseline | null } {
  return { baseline: () => ({ avgRatePerMin, dataMs: 2 * HOUR }) };
}

/** 100 steady clients at 3..9 req/min (≈600/min together), and `spikers` clients from `spikeFrom` to `spikeUntil`. */
function population(spikers: number, spikePerMin: number, spikeFrom: number, spikeUntil: number, seed: number): SimClient[] {
  const random = seededRandom(seed);
  const out: SimClient[] = [];
  for (let i = 0; i < 100; i++) {
    const r = 3 + 6 * random();
    out.push({ key: `10.0.0.${i}`, steady: true, rate: () => r, from: 0, until: Infinity });
  }
  for (let i = 0; i < spikers; i++) out.push({ key: `203.0.113.${i}`, steady: false, rate: () => spikePerMin, from: spikeFrom, until: spikeUntil });
  return out;
}

function spikeScenario(shadow: boolean, seed = 7, spikers = 5) {
  const clock = new ManualClock();
  const limiter = new AdaptiveRouteLimiter([ROUTE], {
    clock,
    baselines: fixedBaseline(600),
    multiplier: 2,
    minLimit: 10,
    maxLimit: 10_000,
    learningPeriodMs: HOUR,
    burstMs: 10_000,
    shadow,
  });
  const L = 1200;
  const spikeFrom = 10 * MIN;
  const spikeUntil = 20 * MIN;
  // Steady ≈600/min plus `spikers` clients sending 5400/min together: ≈6000/min, 10× the baseline.
  const clients = population(spikers, 5400 / spikers, spikeFrom, spikeUntil, seed);
  const steady: Tally = { offered: 0, refused: 0 };
  const duringSpike: Tally = { offered: 0, refused: 0 };
  const admittedPerSpikeMinute = new Array<number>(10).fill(0);
  const decisions: string[] = [];
  let enforcedRefusals = 0;
  let sample: AdaptiveRefusal | null = null;
  run(clock, limiter, clients, 25 * MIN, seed, (t, c, r) => {
    if (r !== null) {
      decisions.push(`${t}:${c.key}:${r.reason}`);
      if (r.enforced) enforcedRefusals++;
      if (sample === null && r.reason === 'over_fair_share') sample = r;
    }
    if (c.steady) {
      steady.offered++;
      if (r !== null) steady.refused++;
    }
    if (t >= spikeFrom && t < spikeUntil) {
      duringSpike.offered++;
      if (r !== null) duringSpike.refused++;
      else admittedPerSpikeMinute[Math.floor((t - spikeFrom) / MIN)]!++;
    }
  });
  return { L, limiter, sample: sample as AdaptiveRefusal | null, steady, duringSpike, admittedPerSpikeMinute, decisions, enforcedRefusals, spikeMinutes: 10 };
}

for (const [spikers, seed] of [[5, 7], [2, 8], [20, 9]] as const) describe(`adaptive route limit under a 10× spike from ${spikers} clients among 100 steady ones`, () => {
  const s = spikeScenario(false, seed, spikers);

  it('refuses at least 95% of the excess over the learned limit', () => {
    const excess = s.duringSpike.offered - s.L * s.spikeMinutes;
    assert.ok(excess > 40_000, `the spike is ~10× (excess ${excess})`);
    const share = s.duringSpike.refused / excess;
    assert.ok(share >= 0.95, `refused ${s.duringSpike.refused} of excess ${excess} (${(share * 100).toFixed(2)}%)`);
  });

  it('refuses at most 1% of the steady clients’ requests', () => {
    const share = s.steady.refused / s.steady.offered;
    assert.ok(share <= 0.01, `steady clients refused ${s.steady.refused}/${s.steady.offered} (${(share * 100).toFixed(3)}%)`);
  });

  it('holds the route to its limit from the second minute of the spike on', () => {
    for (let m = 1; m < s.spikeMinutes; m++) {
      assert.ok(s.admittedPerSpikeMinute[m]! <= s.L * 1.05, `minute ${m + 1} admitted ${s.admittedPerSpikeMinute[m]} > 1.05 × ${s.L}`);
      assert.ok(s.admittedPerSpikeMinute[m]! >= s.L * 0.9, `minute ${m + 1} admitted only ${s.admittedPerSpikeMinute[m]} of ${s.L}`);
    }
    // The first minute may also spend the burst (10 s of L) and the bounded debt.
    assert.ok(s.admittedPerSpikeMinute[0]! <= s.L * (1 + 10 / 60 + 5 / 60) * 1.05, `first minute admitted ${s.admittedPerSpikeMinute[0]}`);
  });

  it('explains its refusals with the learned limit, the baseline and the client’s share', () => {
    const st = s.limiter.forRoute(ROUTE)!.stats();
    assert.equal(st.limit, 1200);
    assert.equal(st.baselinePerMin, 600);
    assert.ok(st.refusalsOverFairShare > 0);
    const refusal = s.sample;
    assert.ok(refusal !== null);
    assert.equal(refusal.code, 'adaptive_rate_limited');
    assert.match(refusal.message, /^route \/api\/v1 limit 1200\/min learned from 600\/min × 2; this client \d+\/min, fair share \d+\/min$/);
    assert.ok(refusal.clientRatePerMin > refusal.fairSharePerMin);
    assert.ok(refusal.retryAfterSec >= 1);
    const err = refusal.toError();
    assert.equal(err.status, 429);
    assert.equal(err.code, 'adaptive_rate_limited');
    assert.equal(err.message, refusal.message);
    assert.equal(err.headers?.['retry-after'], String(refusal.retryAfterSec));
  });

  it('reports the measured numbers', (t) => {
    const excess = s.duringSpike.offered - s.L * s.spikeMinutes;
    t.diagnostic(`spike: offered ${s.duringSpike.offered}, excess ${excess}, refused ${s.duringSpike.refused} (${((100 * s.duringSpike.refused) / excess).toFixed(2)}% of excess)`);
    t.diagnostic(`steady: refused ${s.steady.refused}/${s.steady.offered}; admitted per spike minute ${s.admittedPerSpikeMinute.join(' ')}`);
    t.diagnostic(`first refusal over fair share: ${s.sample?.message}`);
  });
});

describe('adaptive route limit in shadow mode', () => {
  it('refuses nothing and counts exactly the decisions enforce mode makes on the same traffic', () => {
    const enforce = spikeScenario(false, 11);
    const shadow = spikeScenario(true, 11);
    assert.equal(shadow.enforcedRefusals, 0);
    assert.ok(enforce.enforcedRefusals > 40_000);
    assert.deepEqual(shadow.decisions, enforce.decisions);
    const a = enforce.limiter.forRoute(ROUTE)!.stats();
    const b = shadow.limiter.forRoute(ROUTE)!.stats();
    assert.equal(b.mode, 'shadow');
    assert.equal(b.refusals, a.refusals);
    assert.equal(b.decisions, a.decisions);
  });
});

describe('adaptive route limit under slow drift', () => {
  it('never refuses traffic that doubles over 6 hours when the baseline follows it', () => {
    const clock = new ManualClock();
    // The baseline: mean requests/min over the last hour of generated traffic, as the analyzer would report it.
    const perMinute: number[] = new Array(60).fill(600); // one hour of history at 600/min
    let current = 0;
    let minute = 0;
    const baselines = {
      baseline: (): RouteBaseline => {
        const last = perMinute.slice(-60);
        return { avgRatePerMin: last.reduce((a, b) => a + b, 0) / last.length, dataMs: perMinute.length * MIN };
      },
    };
    const limiter = new AdaptiveRouteLimiter([ROUTE], { clock, baselines, multiplier: 2, minLimit: 10, maxLimit: 100_000, learningPeriodMs: HOUR, burstMs: 10_000, shadow: false });
    const random = seededRandom(3);
    const base = Array.from({ length: 100 }, () => 3 + 6 * random());
    const drift = (t: number) => 1 + t / (6 * HOUR);
    const clients: SimClient[] = base.map((r, i) => ({ key: `c${i}`, steady: true, rate: (t) => r * drift(t), from: 0, until: Infinity }));
    let refused = 0;
    let offered = 0;
    const limits: number[] = [];
    run(clock, limiter, clients, 6 * HOUR, 5, (t, _c, r) => {
      offered++;
      if (r !== null) refused++;
      const m = Math.floor(t / MIN);
      while (minute < m) {
        perMinute.push(current);
        current = 0;
        minute++;
        if (minute % 60 === 0) limits.push(limiter.limit(ROUTE)!);
      }
      current++;
    });
    assert.ok(offered > 300_000, `simulated ${offered} requests`);
    assert.equal(refused, 0);
    // The limit followed the traffic up without a reset: about 2 × the rising baseline.
    assert.ok(limits.at(-1)! > limits[0]! * 1.5, `limits by hour: ${limits.map(Math.round).join(', ')}`);
  });
});
