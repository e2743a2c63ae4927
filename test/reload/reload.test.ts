/**
 * Hot reload through real gateways: what changes live, what carries over (buckets, breakers,
 * in-flight requests), managed processes, settings that need a restart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAlive, waitUntil } from '../cli/helpers.js';
import { deadPort, startBackend } from '../helpers/gateway.js';
import { get, startFromFile } from './helpers.js';

const QUIET = `dashboard:\n  enabled: false\nanalytics:\n  enabled: false\nlogging:\n  level: silent\n`;

describe('hot reload', () => {
  it('swaps routes and backends: an added route serves, a removed one answers 404', async (t) => {
    const a = await startBackend(t);
    const b = await startBackend(t);
    const { gw, write } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}`);
    assert.equal((await get(`${gw.url}/a/x`)).status, 200);
    await write(`routes:\n  - path: /b\n    backend: ${b.url}\n${QUIET}`);
    const out = await gw.reloadFromFile();
    assert.equal(out.result, 'success');
    assert.ok(out.result === 'success');
    assert.deepEqual(out.routes, { added: ['/b'], removed: ['/a'], changed: [] });
    assert.deepEqual(out.backends, { added: [b.url], removed: [a.url], changed: [] });
    assert.equal(out.generation, 1);
    assert.equal((await get(`${gw.url}/a/x`)).status, 404);
    const r = await get(`${gw.url}/b/x`);
    assert.equal(r.status, 200);
    assert.equal(r.body.port, b.port);
  });

  it('a file with no settings (emptied, or only comments) is refused on reload: routes stay, with a problem at line 1', async (t) => {
    // An editor or a deploy that rewrites the file in place leaves it empty for a moment; taken as
    // a config, it is a valid one with every default and no routes, and a reload then dropped them all.
    const a = await startBackend(t);
    const { gw, write } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}`);
    for (const text of ['', '\n  \n', '# being rewritten\n', '~\n']) {
      await write(text);
      const out = await gw.reloadFromFile();
      assert.ok(out.result === 'error', JSON.stringify(text));
      assert.equal(out.reason, 'invalid');
      assert.equal(out.problems.length, 1);
      assert.equal(out.problems[0]!.line, 1);
      assert.match(out.problems[0]!.message, /^the file has no settings \(it is empty or holds only comments\)/);
      assert.equal((await get(`${gw.url}/a/x`)).status, 200, 'the route is still served');
    }
    // What a file says in full still reloads.
    await write(`routes:\n  - path: /a\n    backend: ${a.url}\n  - path: /b\n    backend: ${a.url}\n${QUIET}`);
    assert.equal((await gw.reloadFromFile()).result, 'success');
  });

  it('a changed API key takes effect and the old one stops working', async (t) => {
    const a = await startBackend(t);
    const base = `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}`;
    const { gw, write } = await startFromFile(t, `${base}auth:\n  api_keys: [old-key-123456]\n`);
    assert.equal((await get(`${gw.url}/a/x`, { 'x-api-key': 'old-key-123456' })).status, 200);
    await write(`${base}auth:\n  api_keys: [new-key-123456]\n`);
    const out = await gw.reloadFromFile();
    assert.ok(out.result === 'success');
    assert.deepEqual(out.sections, ['auth']);
    assert.equal((await get(`${gw.url}/a/x`, { 'x-api-key': 'old-key-123456' })).status, 401);
    assert.equal((await get(`${gw.url}/a/x`, { 'x-api-key': 'new-key-123456' })).status, 200);
  });

  it('an unchanged auth section keeps the same authenticator', async (t) => {
    const a = await startBackend(t);
    const auth = `auth:\n  api_keys: [some-key-123456]\n`;
    const { gw, write } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}${auth}`);
    const before = gw.authenticator;
    await write(`routes:\n  - path: /a\n    backend: ${a.url}\n  - path: /b\n    backend: ${a.url}\n${QUIET}${auth}`);
    assert.equal((await gw.reloadFromFile()).result, 'success');
    assert.ok(before !== null);
    assert.equal(gw.authenticator, before);
  });

  it('a bucket of an unchanged consumer carries over: a reload does not refill it', async (t) => {
    const a = await startBackend(t);
    const limit = `ratelimit:\n  max_tokens: 3\n  refill_rate: 0.001\n`;
    const { gw, write } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}${limit}`);
    for (let i = 0; i < 3; i++) assert.equal((await get(`${gw.url}/a/x`)).status, 200);
    assert.equal((await get(`${gw.url}/a/x`)).status, 429);
    await write(`routes:\n  - path: /a\n    backend: ${a.url}\n  - path: /b\n    backend: ${a.url}\n${QUIET}${limit}`);
    const out = await gw.reloadFromFile();
    assert.ok(out.result === 'success');
    assert.deepEqual(out.routes.added, ['/b']);
    assert.equal((await get(`${gw.url}/a/x`)).status, 429, 'still empty after the reload');
    assert.equal((await get(`${gw.url}/b/x`)).status, 429, 'the same client bucket on the new route');
  });

  it("an unchanged backend's open breaker stays open, and its Backend object is the same", async (t) => {
    const failing = await startBackend(t, (req, res) => {
      req.resume();
      res.writeHead(req.headers['x-health-check'] !== undefined ? 200 : 500).end();
    });
    const cfg = (extra: string) => `routes:\n  - path: /a\n    backend: ${failing.url}\n${extra}circuitbreaker:\n  threshold: 2\n  timeout: 10m\nhealthcheck:\n  interval: 10m\n${QUIET}`;
    const { gw, write } = await startFromFile(t, cfg(''));
    const backend = gw.backends.get(failing.url)!;
    for (let i = 0; i < 2; i++) assert.equal((await get(`${gw.url}/a/x`)).status, 500);
    assert.equal(backend.breaker?.state, 'open');
    assert.equal((await get(`${gw.url}/a/x`)).status, 503);
    await write(cfg(`  - path: /other\n    backend: ${failing.url}\n`));
    assert.equal((await gw.reloadFromFile()).result, 'success');
    assert.equal(gw.backends.get(failing.url), backend);
    assert.equal(backend.breaker?.state, 'open');
    const r = await get(`${gw.url}/a/x`);
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'breaker_open');
  });

  it('a request in flight finishes on the old config; a removed backend’s pool closes after it', async (t) => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const slow = await startBackend(t, (req, res) => {
      req.resume();
      if (req.headers['x-health-check'] !== undefined) return void res.writeHead(200).end();
      void held.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"slow":true}'));
    });
    const other = await startBackend(t);
    const { gw, write } = await startFromFile(t, `routes:\n  - path: /slow\n    backend: ${slow.url}\n${QUIET}`);
    const backend = gw.backends.get(slow.url)!;
    const inFlight = get(`${gw.url}/slow/x`);
    await waitUntil(() => slow.requests.some((r) => r.headers['x-health-check'] === undefined), 5_000, 'the request reached the backend');
    await write(`routes:\n  - path: /other\n    backend: ${other.url}\n${QUIET}`);
    const out = await gw.reloadFromFile();
    assert.ok(out.result === 'success');
    assert.deepEqual(out.backends.removed, [slow.url]);
    assert.equal((await get(`${gw.url}/slow/x`)).status, 404, 'new requests see the new config');
    assert.equal(backend.pool.destroyed, false, 'the pool stays open while a request is on it');
    release();
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { slow: true });
    await waitUntil(() => backend.pool.destroyed, 5_000, 'the dropped pool is closed once its request finished');
  });

  it('an added process starts and a removed one stops', async (t) => {
    const a = await startBackend(t);
    const proc = (id: string) => `  - id: ${id}\n    command: ${process.execPath}\n    args: ["-e", "setInterval(() => {}, 1000)"]\n    auto_start: true\n`;
    const { gw, write } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\nprocesses:\n${proc('one')}${QUIET}`);
    await waitUntil(() => gw.processes.get('one')?.status === 'running', 10_000, 'process one runs');
    const pidOne = gw.processes.get('one')!.pid!;
    await write(`routes:\n  - path: /a\n    backend: ${a.url}\nprocesses:\n${proc('two')}${QUIET}`);
    const out = await gw.reloadFromFile();
    assert.ok(out.result === 'success');
    assert.deepEqual(out.processes.started, ['two']);
    assert.deepEqual(out.processes.stopped, ['one']);
    assert.equal(gw.processes.get('one'), undefined);
    assert.equal(isAlive(pidOne), false, 'the removed process exited');
    await waitUntil(() => gw.processes.get('two')?.status === 'running', 10_000, 'process two runs');
  });

  it('a port change is reported as restart_required and the running value stays', async (t) => {
    const a = await startBackend(t);
    const { gw, write } = await startFromFile(t, `server:\n  port: 18080\nroutes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}`);
    await write(`server:\n  port: 18081\n  body_limit: 1mb\nroutes:\n  - path: /a\n    backend: ${a.url}\ndashboard:\n  enabled: false\nanalytics:\n  enabled: false\nlogging:\n  level: warn\n`);
    const out = await gw.reloadFromFile();
    assert.ok(out.result === 'success');
    assert.deepEqual(out.restart_required, ['server.port', 'logging']);
    assert.deepEqual(out.sections, ['server.body_limit']);
    assert.equal(gw.config.server.port, 18080);
    assert.equal(gw.config.server.body_limit, 1_000_000);
    assert.equal(gw.config.logging.level, 'silent');
    assert.equal((await get(`${gw.url}/a/x`)).status, 200);
  });

  it('a backend whose pool settings change is replaced, and its old pool closed', async (t) => {
    const a = await startBackend(t);
    const cfg = (timeout: string) => `routes:\n  - path: /a\n    backend: ${a.url}\n    connect_timeout: ${timeout}\n${QUIET}`;
    const { gw, write } = await startFromFile(t, cfg('2s'));
    const old = gw.backends.get(a.url)!;
    assert.equal((await get(`${gw.url}/a/x`)).status, 200);
    await write(cfg('3s'));
    const out = await gw.reloadFromFile();
    assert.ok(out.result === 'success');
    assert.deepEqual(out.backends, { added: [], removed: [], changed: [a.url] });
    const now = gw.backends.get(a.url)!;
    assert.notEqual(now, old);
    assert.equal(now.connectTimeoutMs, 3000);
    assert.equal((await get(`${gw.url}/a/x`)).status, 200);
    await waitUntil(() => old.pool.destroyed, 5_000, 'the replaced pool is closed');
  });

  it('twenty reloads leave one set of backends and no pools open but the ones in use', async (t) => {
    const a = await startBackend(t);
    const b = await startBackend(t);
    const one = `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}`;
    const two = `routes:\n  - path: /a\n    backends: [${a.url}, ${b.url}]\n${QUIET}`;
    const { gw, write } = await startFromFile(t, one);
    const seen = new Set<unknown>();
    for (let i = 0; i < 20; i++) {
      await write(i % 2 === 0 ? two : one);
      assert.equal((await gw.reloadFromFile()).result, 'success');
      for (const backend of gw.backends.values()) seen.add(backend);
    }
    assert.equal(gw.generation, 20);
    assert.deepEqual([...gw.backends.keys()], [a.url]);
    const live = gw.backends.get(a.url)!;
    await waitUntil(() => [...seen].every((x) => x === live || (x as typeof live).pool.destroyed), 5_000, 'dropped pools closed');
    assert.equal(live.pool.destroyed, false);
  });
});

describe('hot reload of a managed process with a route', () => {
  it('an added process with a route is started and probed before the reload answers', async (t) => {
    const a = await startBackend(t);
    const port = await deadPort();
    const server = `require('http').createServer((q, s) => s.end('from-process')).listen(process.env.PORT, '127.0.0.1')`;
    const base = `routes:\n  - path: /a\n    backend: ${a.url}\n  - path: /p\n    backend: ${a.url}\n${QUIET}healthcheck:\n  interval: 10m\n`;
    const { gw, write } = await startFromFile(t, base);
    await write(`${base}processes:\n  - id: web\n    command: ${process.execPath}\n    args: ["-e", "${server}"]\n    port: ${port}\n    route: /p\n    auto_start: true\n`);
    const out = await gw.reloadFromFile();
    assert.ok(out.result === 'success');
    assert.deepEqual(out.backends.added, [`http://localhost:${port}`]);
    assert.equal(gw.processes.get('web')?.status, 'running');
    assert.equal(gw.backends.get(`http://localhost:${port}`)?.healthy, true, 'probed before the reload answered');
  });
});
