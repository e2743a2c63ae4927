import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/clock.js';
import { LatencyWeightedBalancer, type BackendBaseline, type ResponseOutcome } from '../../src/adaptive/index.js';
import { Backend } from '../../src/balancer/index.js';
import { CircuitBreaker } from '../../src/breaker/index.js';
import { EventQueue, seededRandom } from './sim.js';

class FakeBackend {
  readonly url: string;
  inFlight = 0;
  up = true;
  constructor(url: string) {
    this.url = url;
  }
}

type Done = { b: FakeBackend; start: number; outcome: ResponseOutcome };

/**
 * Poisson arrivals at `perSec`, each picked and completed after `latency(url, t)` ms (± 20% jitter);
 * feedback flows back at completion time. Returns per-second pick counts per backend.
 */
function simulate(opts: { backends: FakeBackend[]; perSec: number; seconds: number; latency: (url: string, t: number) => number; fails?: (url: string, t: number) => boolean; baselines?: Record<string, BackendBaseline>; seed?: number }) {
  const clock = new ManualClock(0);
  const random = seededRandom(opts.seed ?? 1);
  const lb = new LatencyWeightedBalancer(opts.backends, {
    clock,
    random: seededRandom((opts.seed ?? 1) + 100),
    baselines: opts.baselines ? { backend: (url) => opts.baselines![url] ?? null } : null,
    rebalanceIntervalMs: 300_000,
  });
  const perSecond = new Map<string, number[]>(opts.backends.map((b) => [b.url, new Array(opts.seconds).fill(0)]));
  const q = new EventQueue<Done | null>();
  const end = opts.seconds * 1000;
  q.push(0, null);
  while (q.size > 0) {
    const t = q.peekTime();
    if (t >= end) break;
    const ev = q.pop();
    clock.set(t);
    if (ev === null) {
      const b = lb.pick();
      assert.ok(b !== null);
      b.inFlight++;
      perSecond.get(b.url)![Math.floor(t / 1000)]!++;
      const fail = opts.fails?.(b.url, t) ?? false;
      const ms = fail ? 1 : opts.latency(b.url, t) * (0.8 + 0.4 * random());
      q.push(t + ms, { b, start: t, outcome: fail ? 'failure' : 'success' });
      q.push(t + (-Math.log(1 - random()) * 1000) / opts.perSec, null);
    } else {
      ev.b.inFlight--;
      lb.onResponse(ev.b.url, t - ev.start, ev.outcome);
    }
  }
  const share = (url: string, from: number, to: number) => {
    let mine = 0;
    let all = 0;
    for (const [u, counts] of perSecond) {
      for (let s = from; s < to; s++) {
        all += counts[s]!;
        if (u === url) mine += counts[s]!;
      }
    }
    return mine / all;
  };
  return { lb, share, clock };
}

describe('latency-weighted balancing', () => {
  // Shares over the 5 s ending 10 s into the slowdown and 30 s after recovery; three loads, since in-flight counts weigh in.
  for (const perSec of [50, 200, 1000]) {
    it(`takes ≥ 80% of a 5×-slower backend’s share within 10 s and gives ≥ 80% back within 30 s of recovery (${perSec} req/s)`, (t) => {
      const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
      const baselines = { 'http://a': { latencyMs: 20, errorRate: 0, sampleSize: 10_000 }, 'http://b': { latencyMs: 20, errorRate: 0, sampleSize: 10_000 } };
      // b is 5× slower from 60 s to 120 s.
      const { share } = simulate({ backends, perSec, seconds: 180, baselines, latency: (url, ms) => (url === 'http://b' && ms >= 60_000 && ms < 120_000 ? 100 : 20) });
      const before = share('http://b', 40, 60);
      const slow = share('http://b', 65, 70);
      const back = share('http://b', 145, 150);
      t.diagnostic(`b's share: before ${(before * 100).toFixed(1)}%, 5-10 s into the slowdown ${(slow * 100).toFixed(1)}% (lost ${(100 * (1 - slow / before)).toFixed(1)}%), 25-30 s after recovery ${(back * 100).toFixed(1)}%`);
      assert.ok(before > 0.4 && before < 0.6, `before: ${before}`);
      assert.ok(slow <= before * 0.2, `lost only ${(100 * (1 - slow / before)).toFixed(1)}% of its share`);
      assert.ok(back >= before * 0.8, `regained only ${((100 * back) / before).toFixed(1)}% of its share`);
    });
  }

  it('holds the same on three backends without baselines (EWMA alone)', () => {
    const backends = ['http://a', 'http://b', 'http://c'].map((u) => new FakeBackend(u));
    const { share } = simulate({ backends, perSec: 300, seconds: 150, seed: 5, latency: (url, ms) => (url === 'http://c' && ms >= 40_000 && ms < 90_000 ? 50 : 10) });
    const before = share('http://c', 20, 40);
    assert.ok(share('http://c', 48, 50) <= before * 0.2);
    assert.ok(share('http://c', 118, 120) >= before * 0.8);
  });

  it('does not take a backend’s share for one slow response (a pause), only for a run of them', () => {
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    // One response of b's, 30 s in, takes 20× its usual time (a GC pause, a slow endpoint).
    let spiked = false;
    const latency = (url: string, ms: number) => {
      if (url === 'http://b' && ms >= 30_000 && !spiked) {
        spiked = true;
        return 200;
      }
      return 10;
    };
    const { share } = simulate({ backends, perSec: 100, seconds: 45, seed: 3, latency });
    assert.ok(spiked);
    const before = share('http://b', 20, 30);
    const after = share('http://b', 31, 45);
    assert.ok(after > 0.4, `b kept ${(after * 100).toFixed(1)}% after one slow response (before: ${(before * 100).toFixed(1)}%)`);
  });

  it('does not hold a slow first response (a cold connection) against a backend', () => {
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const first = new Set<string>();
    const latency = (url: string) => {
      if (url === 'http://b' && !first.has(url)) {
        first.add(url);
        return 100;
      }
      return 5;
    };
    const { share } = simulate({ backends, perSec: 100, seconds: 10, seed: 4, latency });
    assert.ok(first.has('http://b'));
    const s = share('http://b', 1, 10);
    assert.ok(s > 0.4, `b got ${(s * 100).toFixed(1)}% after a slow first response`);
  });

  it('keeps a slow backend at the weight floor, so it still gets a trickle of traffic', () => {
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const { share, lb } = simulate({ backends, perSec: 200, seconds: 60, latency: (url) => (url === 'http://b' ? 2_000 : 5) });
    const w = lb.weights().find((x) => x.backend === 'http://b')!;
    assert.equal(w.floored, true);
    const s = share('http://b', 30, 60);
    assert.ok(s > 0.005 && s < 0.1, `b's share ${s}`);
  });

  it('does not starve the slower of two backends (proportional, not better-of-two)', () => {
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const { share } = simulate({ backends, perSec: 100, seconds: 60, latency: (url) => (url === 'http://b' ? 12 : 10) });
    const s = share('http://b', 30, 60);
    assert.ok(s > 0.35 && s < 0.5, `b at 1.2× the latency gets ${s}`);
  });

  it('penalises a backend that fails fast instead of rewarding its low latency', () => {
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const { share } = simulate({ backends, perSec: 200, seconds: 60, latency: () => 20, fails: (url, ms) => url === 'http://b' && ms >= 30_000 });
    // At the floor (5% of the mean weight) b would get ~2.5%; the in-flight term lifts it to ~10%
    // (a holds ~4 requests at 200 req/s × 20 ms, b's failures none): 9.2-10.2% over six seeds.
    // Rewarded for its 1 ms answers, it would take most of the traffic.
    const s = share('http://b', 35, 60);
    assert.ok(s < 0.12, `fast-failing b keeps ${s}`);
  });

  it('starts a new backend at the mean weight', () => {
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const { lb } = simulate({ backends, perSec: 100, seconds: 20, latency: (url) => (url === 'http://b' ? 40 : 10) });
    lb.add(new FakeBackend('http://c'));
    const weights = lb.weights();
    const mean = (weights[0]!.weight + weights[1]!.weight) / 2;
    assert.ok(Math.abs(weights[2]!.weight - mean) / mean < 0.05, JSON.stringify(weights));
    assert.equal(weights[2]!.latencyMs, null);
  });

  it('gives a backend without responses yet the mean weight as soon as another has one (no 250 ms head start)', () => {
    const clock = new ManualClock(0);
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const lb = new LatencyWeightedBalancer(backends, { clock, random: seededRandom(7) });
    lb.pick();
    // a answers in 0.2 ms; b has not answered yet. Same instant: no periodic recompute has run.
    lb.onResponse('http://a', 0.2, 'success');
    const picks = { 'http://a': 0, 'http://b': 0 } as Record<string, number>;
    for (let i = 0; i < 400; i++) picks[lb.pick()!.url]!++;
    const w = lb.weights();
    assert.ok(Math.abs(w[0]!.weight - w[1]!.weight) < 1e-9, JSON.stringify(w));
    assert.ok(picks['http://b']! > 150, JSON.stringify(picks));
  });

  it('weighs by the baseline’s latency and error rate until responses arrive', () => {
    const clock = new ManualClock(0);
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const lb = new LatencyWeightedBalancer(backends, {
      clock,
      baselines: { backend: (url) => (url === 'http://a' ? { latencyMs: 10, errorRate: 0, sampleSize: 500 } : { latencyMs: 10, errorRate: 0.5, sampleSize: 500 }) },
    });
    const [a, b] = lb.weights();
    assert.ok(Math.abs(b!.weight / a!.weight - 0.5) < 1e-9);
    assert.equal(a!.baselineLatencyMs, 10);
  });

  it('carries each backend’s fast EWMA over a reload', () => {
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const { lb, clock } = simulate({ backends, perSec: 100, seconds: 10, latency: (url) => (url === 'http://b' ? 100 : 10) });
    const next = new LatencyWeightedBalancer([...backends, new FakeBackend('http://c')], { clock, previous: lb });
    const w = next.weights();
    assert.ok(w[1]!.weight < w[0]!.weight * 0.1, JSON.stringify(w));
    assert.equal(w[2]!.ewmaLatencyMs, null);
  });

  it('carries each backend’s recent latencies over a reload, so one slow response after it moves nothing', () => {
    const backends = [new FakeBackend('http://a'), new FakeBackend('http://b')];
    const { lb, clock } = simulate({ backends, perSec: 100, seconds: 10, latency: () => 10 });
    const next = new LatencyWeightedBalancer(backends, { clock, previous: lb });
    const before = next.weights()[1]!.ewmaLatencyMs!;
    assert.ok(before > 5 && before < 15, `b's EWMA before: ${before}`);
    // The first response after the reload is a spike: with the last two latencies carried over it
    // is the median's outlier; without them it would be the EWMA's first input and count at once.
    clock.advance(5);
    next.onResponse('http://b', 200, 'success');
    const after = next.weights()[1]!.ewmaLatencyMs!;
    assert.ok(after < 15, `b's EWMA after one 200 ms response: ${after}`);
  });

  it('keeps the previous baseline when the baseline source throws', () => {
    const clock = new ManualClock(0);
    let fail = false;
    const errors: unknown[] = [];
    const lb = new LatencyWeightedBalancer([new FakeBackend('http://a')], {
      clock,
      onError: (e) => errors.push(e),
      baselines: {
        backend: () => {
          if (fail) throw new Error('down');
          return { latencyMs: 10, errorRate: 0, sampleSize: 100 };
        },
      },
    });
    fail = true;
    lb.rebalance();
    assert.equal(lb.weights()[0]!.baselineLatencyMs, 10);
    assert.ok(errors.length >= 1);
  });

  it('skips unavailable and excluded backends and answers null when none is left', () => {
    const clock = new ManualClock(0);
    const backends = ['http://a', 'http://b', 'http://c'].map((u) => new FakeBackend(u));
    const lb = new LatencyWeightedBalancer(backends, { clock });
    backends[0]!.up = false;
    for (let i = 0; i < 50; i++) assert.notEqual(lb.pick(backends[1]!)?.url, 'http://a');
    for (let i = 0; i < 50; i++) assert.equal(lb.pick(backends[1]!)?.url, 'http://c');
    backends[2]!.up = false;
    assert.equal(lb.pick(backends[1]!), null);
  });

  it('balances the gateway’s own Backend objects, honouring health and an open breaker', async (t) => {
    const clock = new ManualClock(0);
    const opts = { connectTimeoutMs: 1_000, connections: 1, healthPath: '/' };
    const backends = [new Backend('http://127.0.0.1:9', opts), new Backend('http://127.0.0.1:10', opts), new Backend('http://127.0.0.1:11', opts)];
    t.after(() => Promise.all(backends.map((b) => b.close())));
    const lb = new LatencyWeightedBalancer<Backend>(backends, { clock, random: seededRandom(4) });
    backends[0]!.healthy = false;
    backends[1]!.breaker = new CircuitBreaker({ threshold: 1, timeout: 60_000, half_open_requests: 1 }, { clock });
    backends[1]!.breaker.failure();
    for (let i = 0; i < 20; i++) {
      const b = lb.pick();
      assert.equal(b, backends[2]);
      lb.onResponse(b!.url, 5, 'success');
    }
    backends[2]!.healthy = false;
    assert.equal(lb.pick(), null);
  });
});
