/**
 * The proof: 20 reloads in a row, alternating two valid configs that change routes, backends, API
 * keys and limits, under a steady load of 4 concurrent keep-alive clients, cost 0 failed requests
 * and 0 socket errors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startBackend } from '../helpers/gateway.js';
import { get, postReload, sample, startFromFile } from './helpers.js';

interface CannonResult {
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  '2xx': number;
  requests: { total: number };
}
type Cannon = Promise<CannonResult> & { stop(): void };
/** autocannon has no type declarations; its programmatic API is used as in bench/lib/load.mjs. */
const autocannon = (await import('autocannon' as string)).default as (opts: Record<string, unknown>) => Cannon;

describe('reload under load', () => {
  it('20 reloads under 4 concurrent clients cost 0 failed requests and 0 socket errors', async (t) => {
    const a = await startBackend(t);
    const b = await startBackend(t);
    const c = await startBackend(t);
    const common = `analytics:\n  enabled: false\nlogging:\n  level: silent\n`;
    const one = `routes:\n  - path: /a\n    backend: ${a.url}\n  - path: /b\n    backend: ${b.url}\nauth:\n  api_keys: [key-one-123456, shared-key-123456]\nratelimit:\n  max_tokens: 100000\n  refill_rate: 100000\n${common}`;
    const two = `routes:\n  - path: /a\n    backends: [${a.url}, ${c.url}]\n  - path: /c\n    backend: ${b.url}\nauth:\n  api_keys: [key-two-123456, shared-key-123456]\nratelimit:\n  max_tokens: 200000\n  refill_rate: 200000\n${common}`;
    const { gw, write } = await startFromFile(t, one);

    const agent = new Agent({ keepAliveTimeout: 30_000, connections: 4, pipelining: 1 });
    t.after(() => agent.close());
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const client = async (): Promise<void> => {
      // Bounded: at most 50 000 requests per client, and only until the reloads are done.
      for (let i = 0; i < 50_000 && !stop; i++) {
        try {
          const res = await request(`${gw.url}/a/item`, { headers: { 'x-api-key': 'shared-key-123456' }, dispatcher: agent });
          await res.body.dump();
          if (res.statusCode === 200) ok++;
          else failures.push(`status ${res.statusCode}`);
        } catch (err) {
          failures.push(`socket: ${(err as Error).message}`);
        }
      }
    };
    const clients = [client(), client(), client(), client()];

    const results: string[] = [];
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 60));
      await write(i % 2 === 0 ? two : one);
      const out = await postReload(gw.url);
      results.push(`${out.status} ${out.body.result}`);
      assert.equal(out.status, 200, JSON.stringify(out.body));
      if (i % 2 === 0) {
        assert.deepEqual(out.body.routes, { added: ['/c'], removed: ['/b'], changed: ['/a'] });
        assert.deepEqual(out.body.backends, { added: [c.url], removed: [], changed: [] });
        assert.deepEqual(out.body.sections, ['ratelimit', 'auth']);
      }
    }
    await new Promise((r) => setTimeout(r, 60));
    stop = true;
    await Promise.all(clients);

    assert.deepEqual(failures, [], `failed requests: ${failures.length}`);
    assert.ok(ok > 200, `a steady load ran through the reloads (${ok} requests)`);
    assert.equal(gw.generation, 20);
    t.diagnostic(`${ok} requests, 0 failed, across 20 reloads`);
    // The last config (one) is in force: key-two is gone, /b is back.
    assert.equal((await get(`${gw.url}/a/x`, { 'x-api-key': 'key-two-123456' })).status, 401);
    assert.equal((await get(`${gw.url}/b/x`, { 'x-api-key': 'key-one-123456' })).status, 200);
    const metrics = (await get(`${gw.url}/metrics`)).body as string;
    assert.equal(sample(metrics, 'gateway_config_reloads_total{result="success"}'), 20);
    assert.equal(sample(metrics, 'gateway_config_reloads_total{result="failure"}'), 0);
  });

  it('autocannon, 4 connections: 20 reloads through reloadFromFile (what SIGHUP calls) cost 0 errors and 0 non-2xx', async (t) => {
    const a = await startBackend(t);
    const b = await startBackend(t);
    const common = `dashboard:\n  enabled: false\nanalytics:\n  enabled: false\nlogging:\n  level: silent\n`;
    const one = `routes:\n  - path: /a\n    backend: ${a.url}\nauth:\n  api_keys: [key-one-123456, shared-key-123456]\nratelimit:\n  max_tokens: 100000\n  refill_rate: 100000\n${common}`;
    const two = `routes:\n  - path: /a\n    backends: [${b.url}, ${a.url}]\n  - path: /z\n    backend: ${b.url}\nauth:\n  api_keys: [shared-key-123456]\nratelimit:\n  max_tokens: 50000\n  refill_rate: 50000\n  scope: route\n${common}`;
    const { gw, write } = await startFromFile(t, one);
    const cannon = autocannon({ url: `${gw.url}/a/item`, connections: 4, pipelining: 1, duration: 60, amount: 200_000, timeout: 10, headers: { 'x-api-key': 'shared-key-123456' } });
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 60));
      await write(i % 2 === 0 ? two : one);
      const out = await gw.reloadFromFile();
      assert.equal(out.result, 'success', JSON.stringify(out));
    }
    await new Promise((r) => setTimeout(r, 60));
    cannon.stop();
    const r = await cannon;
    t.diagnostic(`autocannon: ${r.requests.total} requests, ${r['2xx']} 2xx, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts, ${r.resets} resets`);
    assert.equal(r.errors, 0);
    assert.equal(r.timeouts, 0);
    assert.equal(r.non2xx, 0);
    assert.ok(r['2xx'] > 200, `a steady load ran through the reloads (${r['2xx']})`);
    assert.equal(gw.generation, 20);
  });
});
