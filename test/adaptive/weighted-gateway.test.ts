/**
 * Latency-weighted balancing in a running gateway (`weighted_lb.enabled`, one-second analytics
 * buckets): weights show in /analytics/backends and /metrics, and a backend turned slow loses its
 * share of the traffic within seconds.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { send, startBackend } from '../helpers/gateway.js';
import { startLearningGateway } from './gateway-helpers.js';

describe('weighted balancing in a running gateway', () => {
  it('shows every backend weight, and a backend turned much slower (3 → 400 ms: far above the latency noise of a loaded test machine) loses most of its share', async (t) => {
    const delay = { fast: 3, slow: 3 };
    const hits = { fast: 0, slow: 0 };
    const backend = (name: 'fast' | 'slow') =>
      startBackend(t, (req, res) => {
        hits[name]++;
        req.resume();
        setTimeout(() => res.end('ok'), delay[name]);
      });
    const fast = await backend('fast');
    const slow = await backend('slow');
    const { gw } = await startLearningGateway(
      t,
      `  - path: /api
    backends: [${fast.url}, ${slow.url}]
`,
      `weighted_lb:
  enabled: true
  rebalance_interval: 1s
`,
    );
    /** 4 concurrent clients for `ms`. */
    const load = async (ms: number) => {
      const end = Date.now() + ms;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (Date.now() < end) await send(`${gw.url}/api/x`);
        }),
      );
    };
    await load(2_000);
    const before = (await send(`${gw.url}/analytics/backends`)).json().backends;
    // Shown for every backend. Not checked against a level: a weight is a moment's view of a fast
    // EWMA, squared, against a pool mean recomputed at most so often, and on a loaded test machine
    // two equal backends read 0.28 and 0.28 once, 1.44 and 0.62 another time. The traffic share
    // below is what says neither was penalised.
    for (const b of before) assert.ok(typeof b.weight === 'number' && b.weight > 0, JSON.stringify(before));
    assert.ok(hits.slow > 0.3 * (hits.fast + hits.slow), `even share before: ${JSON.stringify(hits)}`);
    const metrics = (await send(`${gw.url}/metrics`)).text;
    assert.match(metrics, new RegExp(`gateway_backend_weight\\{backend="${slow.url}"\\} [\\d.]+`));

    delay.slow = 400;
    await load(1_000); // the fast EWMA sees it
    hits.fast = hits.slow = 0;
    await load(3_000);
    const share = hits.slow / (hits.fast + hits.slow);
    assert.ok(share < 0.2, `slow backend kept ${(share * 100).toFixed(1)}% (${JSON.stringify(hits)})`);
    assert.ok(hits.slow > 0, 'the floor keeps a trickle');
    const after = (await send(`${gw.url}/analytics/backends`)).json().backends;
    const w = Object.fromEntries(after.map((b: any) => [b.backend, b.weight]));
    assert.ok(w[slow.url] < w[fast.url] / 4, JSON.stringify(w));
  });

  it('weighs a route that asks for `strategy: weighted` on its own, weighted_lb off', async (t) => {
    // Two equal backends answering in 5 ms: a scheduler pause of a few ms on a loaded machine is
    // then noise against their latency, not a 10× difference against a sub-millisecond one.
    const answer = (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      setTimeout(() => res.end('ok'), 5);
    };
    const a = await startBackend(t, answer);
    const b = await startBackend(t, answer);
    const { gw } = await startLearningGateway(
      t,
      `  - path: /api
    backends: [${a.url}, ${b.url}]
    strategy: weighted
`,
    );
    for (let i = 0; i < 40; i++) assert.equal((await send(`${gw.url}/api/x`)).status, 200);
    const backends = (await send(`${gw.url}/analytics/backends`)).json().backends;
    for (const x of backends) assert.ok(typeof x.weight === 'number', JSON.stringify(backends));
    assert.ok(a.requests.length > 5 && b.requests.length > 5, `${a.requests.length} / ${b.requests.length} ${JSON.stringify(backends)}`);
  });
});
