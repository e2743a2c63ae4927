/**
 * Hole 2 of the security review: a DNS-rebound page (foreign Host, loopback peer) that adds
 * `Authorization: Bearer anything` must not read the dashboard API, open its event stream or stop
 * a managed process. Only a verified admin token or session lets a foreign Host through.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { call, eventually, post, q, startGateway } from '../dashboard/helpers.js';

const TOKEN = 'a-very-long-admin-token-for-rebinding-tests';
const NODE = process.execPath;
const IDLE = 'setInterval(() => {}, 1000)';

/** A loopback-trusting gateway (the default) with a token configured and one running process. */
async function gateway(t: import('node:test').TestContext) {
  const h = await startGateway(
    t,
    `routes: []\nadmin:\n  token: ${TOKEN}\nprocesses:\n  - id: victim\n    command: ${q(NODE)}\n    args: ["-e", ${q(IDLE)}]\n    auto_start: true\n    stop_timeout: 2s\n`,
  );
  await eventually(() => h.gw.processes.get('victim')?.status === 'running', 5_000, 'victim running');
  const port = new URL(h.url).port;
  return { ...h, rebound: `rebind.evil.example:${port}`, port };
}

describe('access control: DNS rebinding', () => {
  it('refuses a rebound page that sends an unverified bearer token: no API read, no stream, no process stopped', async (t) => {
    const { gw, url, rebound } = await gateway(t);
    const forged = { host: rebound, authorization: 'Bearer anything', origin: `http://${rebound}` };
    for (const path of ['/dashboard/api/processes', '/dashboard/api/logs', '/dashboard/api/metrics', '/dashboard/api/stream']) {
      const r = await call(url, 'GET', path, { headers: forged });
      assert.equal(r.status, 403, `${path}: ${r.body}`);
      assert.equal(r.json.error.code, 'forbidden');
      assert.equal(r.headers['content-type'], 'application/json', `${path} must not open an event stream`);
    }
    // Same-origin from the rebound page's point of view: Origin and Sec-Fetch-Site match its Host.
    const stop = await post(url, '/dashboard/api/processes/victim/stop', {}, { ...forged, 'sec-fetch-site': 'same-origin' });
    assert.equal(stop.status, 403, stop.body);
    assert.equal(gw.processes.get('victim')!.status, 'running');
    // A lower-case scheme and an empty token are no better.
    for (const authorization of ['bearer x', 'Bearer ', 'Basic YTpi']) {
      assert.equal((await call(url, 'GET', '/dashboard/api/processes', { headers: { host: rebound, authorization } })).status, 403, authorization);
    }
  });

  it('lets a foreign Host through with the real admin token or a session made with it', async (t) => {
    const { gw, url, rebound, port } = await gateway(t);
    const ok = await call(url, 'GET', '/dashboard/api/processes', { headers: { host: rebound, authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200, ok.body);
    const login = await post(url, '/dashboard/api/session', { token: TOKEN }, { host: `127.0.0.1:${port}` });
    assert.equal(login.status, 204, login.body);
    const cookie = login.headers['set-cookie']![0]!.split(';')[0]!;
    const viaCookie = await call(url, 'GET', '/dashboard/api/processes', { headers: { host: `gw.example:${port}`, cookie } });
    assert.equal(viaCookie.status, 200, viaCookie.body);
    const stop = await post(url, '/dashboard/api/processes/victim/stop', {}, { host: rebound, authorization: `Bearer ${TOKEN}` });
    assert.equal(stop.status, 200, stop.body);
    await eventually(() => gw.processes.get('victim')!.status === 'stopped', 5_000, 'victim stopped');
  });
});

describe('access control: DNS rebinding of the analytics API', () => {
  const ANALYTICS = `analytics:\n  enabled: true\n  bucket_interval: 1s\n  analyzer_interval: 1s\n  window: 20s\n  retention: 10m\n`;

  it('refuses a rebound page reading /analytics/* and its dashboard alias, and admits the same reads from a loopback name or with the token', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-rebind-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const { url } = await startGateway(t, `routes: []\ndata_dir: ${q(dir)}\nadmin:\n  token: ${TOKEN}\n${ANALYTICS}`);
    const port = new URL(url).port;
    const rebound = `rebind.evil.example:${port}`;
    for (const path of ['/analytics/routes', '/analytics/anomalies', '/analytics/backends', '/dashboard/api/analytics/routes']) {
      const forged = await call(url, 'GET', path, { headers: { host: rebound, authorization: 'Bearer anything' } });
      assert.equal(forged.status, 403, `${path}: ${forged.body}`);
      assert.equal(forged.json.error.code, 'forbidden');
      const local = await call(url, 'GET', path, { headers: { host: `localhost:${port}` } });
      assert.equal(local.status, 200, `${path} from a loopback name: ${local.body}`);
      const withToken = await call(url, 'GET', path, { headers: { host: rebound, authorization: `Bearer ${TOKEN}` } });
      assert.equal(withToken.status, 200, `${path} with the token: ${withToken.body}`);
    }
  });
});
