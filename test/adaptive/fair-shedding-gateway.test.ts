/**
 * Fair shedding through a running gateway on the real clock (one-second analytics buckets): after
 * the route learns its steady traffic from five clients, a sixth client floods it. The flood is
 * refused with explained 429s while the steady clients, each within its fair share, keep being
 * served. The simulated-time scenarios (test/adaptive/route-limit-scenarios.test.ts) hold the exact
 * numbers; this proves the same shape end to end.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { send, startBackend, until, wait } from '../helpers/gateway.js';
import { startLearningGateway } from './gateway-helpers.js';

const STEADY = ['steady-key-1', 'steady-key-2', 'steady-key-3', 'steady-key-4', 'steady-key-5'];
const SPIKER = 'spiker-key-1';

describe('fair shedding in a running gateway', () => {
  it('refuses a flooding client while steady clients within their fair share are still served', async (t) => {
    const backend = await startBackend(t);
    const keys = [...STEADY, SPIKER].map((k) => `    - "${k}"`).join('\n');
    const { gw } = await startLearningGateway(
      t,
      `  - path: /api\n    backend: ${backend.url}\n`,
      `auth:\n  api_keys:\n${keys}\nadaptive_rate_limit:\n  enabled: true\n  multiplier: 2\n  min_limit: 60\n  max_limit: 100000\n  learning_period: 3s\n  burst: 2s\n`,
    );
    const url = `${gw.url}/api/x`;
    let stop = false;
    const steadyStatus: number[] = [];
    let counting = false;
    // Each steady client: one request every 250 ms (about 240/min; 1200/min together).
    const steady = STEADY.map(async (key) => {
      while (!stop) {
        const r = await send(url, { headers: { 'x-api-key': key } });
        if (counting) steadyStatus.push(r.status);
        await wait(250);
      }
    });
    const learned = await until(
      async () => {
        await wait(500);
        const route = (await send(`${gw.url}/analytics/routes`)).json().routes[0];
        return route.current_rate_limit !== null ? route : null;
      },
      20_000,
      0,
    );
    assert.ok(learned.current_rate_limit > 0);

    // The flood: as fast as one connection goes, for 5 s.
    counting = true;
    const spikeStatus: number[] = [];
    let explained = '';
    const end = Date.now() + 5_000;
    while (Date.now() < end) {
      const r = await send(url, { headers: { 'x-api-key': SPIKER } });
      spikeStatus.push(r.status);
      if (r.status === 429 && explained === '') explained = r.json().error.message;
    }
    await wait(1_000);
    stop = true;
    await Promise.all(steady);

    const spikeRefused = spikeStatus.filter((s) => s === 429).length;
    const steadyRefused = steadyStatus.filter((s) => s === 429).length;
    // Over 5 s the route admits about L/12 plus its burst: everything the flood sends beyond that is excess.
    assert.ok(spikeStatus.length > 200, `the flood sent only ${spikeStatus.length} requests`);
    assert.ok(spikeRefused / spikeStatus.length >= 0.8, `flood: ${spikeRefused} of ${spikeStatus.length} refused`);
    assert.match(explained, /^route \/api limit \d+\/min learned from \d+\/min × 2; this client \d+\/min, fair share \d+\/min/);
    assert.ok(steadyStatus.length >= 60, `steady clients sent ${steadyStatus.length} during the flood`);
    assert.ok(steadyRefused <= Math.max(1, Math.floor(steadyStatus.length * 0.02)), `steady clients: ${steadyRefused} of ${steadyStatus.length} refused`);
  });
});
