/**
 * Analytics behind a real gateway and a real backend, built by the gateway's module list from
 * `analytics.enabled` (completion bus, /analytics/ behind the admin guard, metrics, snapshot at close).
 * One-second buckets on the real clock: an anomaly is served by /analytics/anomalies within 3 s of
 * a spike, and counted in /metrics; a restarted gateway serves its learned baselines at once.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { Analytics } from '../../src/analytics/index.js';
import type { Gateway } from '../../src/gateway.js';
import { send, startBackend, startGateway, until, wait } from '../helpers/gateway.js';

const ANALYTICS = `analytics:
  enabled: true
  bucket_interval: 1s
  analyzer_interval: 1s
  window: 20s
  retention: 10m
`;

async function setup(t: TestContext, dataDir: string): Promise<{ gw: Gateway; analytics: Analytics }> {
  const backend = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /api\n    backend: ${backend.url}\ndata_dir: ${dataDir}\n${ANALYTICS}`);
  const analytics = gw.services.need('analytics');
  return { gw, analytics };
}

/** `perTick` requests every 250 ms for `ms`. */
async function steady(gw: Gateway, ms: number, perTick = 5): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await Promise.all(Array.from({ length: perTick }, () => send(`${gw.url}/api/x`)));
    await wait(250);
  }
}

describe('analytics in a running gateway', () => {
  it('serves an anomaly in /analytics/anomalies within 3 s of a spike, and counts it in /metrics', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-an-gw-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { gw } = await setup(t, dir);
    await steady(gw, 13_000);
    const before = (await send(`${gw.url}/analytics/anomalies`)).json();
    assert.equal(before.count, 0, JSON.stringify(before));
    const routes = (await send(`${gw.url}/analytics/routes`)).json();
    assert.equal(routes.routes[0].route, '/api');
    assert.equal(routes.routes[0].learning, false);
    assert.ok(Math.abs(routes.routes[0].avg_rate - 1200) < 400, `avg_rate ${routes.routes[0].avg_rate}/min`);
    const spikeAt = Date.now();
    for (let i = 0; i < 8; i++) await Promise.all(Array.from({ length: 40 }, () => send(`${gw.url}/api/spike`)));
    const found = await until(async () => {
      const body = (await send(`${gw.url}/analytics/anomalies?route=/api`)).json();
      return body.count > 0 ? body : null;
    }, 4_500, 100);
    const a = found.anomalies[0];
    assert.equal(a.metric, 'request_rate');
    assert.ok(Date.parse(a.timestamp) >= Math.floor(spikeAt / 1000) * 1000 - 1000, `${a.timestamp} vs spike at ${new Date(spikeAt).toISOString()}`);
    const seenAfter = Date.now() - (Date.parse(a.timestamp) + 1000);
    assert.ok(seenAfter <= 3_000, `served ${seenAfter} ms after its bucket ended`);
    const metrics = (await send(`${gw.url}/metrics`)).text;
    assert.match(metrics, /gateway_anomalies_total\{route="\/api",metric="request_rate"\} 1/);
  });

  it('keeps its learned baselines across a restart (snapshot in data_dir)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-an-gw-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const first = await setup(t, dir);
    await steady(first.gw, 12_000);
    await first.analytics.analyze();
    const learned = (await send(`${first.gw.url}/analytics/routes`)).json().routes[0];
    assert.equal(learned.learning, false);
    await first.gw.close();
    const second = await setup(t, dir);
    const again = (await send(`${second.gw.url}/analytics/routes`)).json().routes[0];
    assert.equal(again.learning, false, 'no relearning after a restart');
    assert.ok(Math.abs(again.avg_rate - learned.avg_rate) <= 0.1 * learned.avg_rate + 1, `${again.avg_rate} vs ${learned.avg_rate}`);
  });
});
