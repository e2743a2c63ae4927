/**
 * Clean start and load-balancer health through real gateways: auto-start processes are probed
 * before the gateway listens (the first request is served, not 503), start_timeout bounds the wait,
 * /health/live and /health/ready are public admin paths, and /health/ready is 503 while draining.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { send, startBackend, startGateway, deadPort, until } from '../helpers/gateway.js';
import { captureLogger, TESTBACKEND } from './helpers.js';

describe('clean start', () => {
  test('the first request after start() is served by a freshly auto-started process, never 503 no_healthy_backend', { timeout: 60_000 }, async (t) => {
    // Three rounds: the old start-up answered 503 on the first request every time.
    for (let round = 0; round < 3; round++) {
      const port = await deadPort();
      const gw = await startGateway(
        t,
        `routes:\n  - path: /api\n    backend: http://127.0.0.1:${port}\nprocesses:\n  - id: be\n    command: ${TESTBACKEND}\n    args: ["--port", "${port}", "--quiet"]\n    port: ${port}\n    auto_start: true\n`,
      );
      const first = await send(`${gw.url}/api/hello`);
      assert.equal(first.status, 200, `round ${round}: ${first.text}`);
      assert.equal(first.json().port, port);
      assert.equal((await send(`${gw.url}/health/ready`)).status, 200);
      await gw.close();
    }
  });

  test('start_timeout bounds the wait for a process that never answers its probe, and says so in the log', { timeout: 30_000 }, async (t) => {
    const port = await deadPort();
    const { logger, lines } = captureLogger();
    const started = performance.now();
    const gw = await startGateway(
      t,
      `routes:\n  - path: /api\n    backend: http://127.0.0.1:${port}\nprocesses:\n  - id: mute\n    command: ${process.execPath}\n    args: ["-e", "setInterval(() => {}, 1000)"]\n    port: ${port}\n    auto_start: true\n    start_timeout: 700ms\n`,
      { logger },
    );
    const took = performance.now() - started;
    assert.ok(took >= 650 && took < 5_000, `start() took ${took} ms`);
    const warn = lines.find((l) => l.process === 'mute' && /start_timeout/.test(l.msg));
    assert.ok(warn, JSON.stringify(lines));
    assert.equal(warn.level, 'warn');
    assert.equal(warn.start_timeout_ms, 700);
    assert.equal(gw.processes.get('mute')!.status, 'running');
  });

  test('a process that exits at start ends the wait at once instead of holding start-up for start_timeout', { timeout: 30_000 }, async (t) => {
    const port = await deadPort();
    const started = performance.now();
    const gw = await startGateway(
      t,
      `routes:\n  - path: /api\n    backend: http://127.0.0.1:${port}\nprocesses:\n  - id: dies\n    command: ${process.execPath}\n    args: ["-e", "process.exit(3)"]\n    port: ${port}\n    auto_start: true\n    start_timeout: 20s\n`,
    );
    assert.ok(performance.now() - started < 10_000);
    assert.equal(gw.processes.get('dies')!.status, 'crashed');
  });
});

describe('/health/live and /health/ready', () => {
  test('are answered by the gateway itself and public like /health, even with allow_loopback off and an admin token set', async (t) => {
    const be = await startBackend(t);
    const gw = await startGateway(t, `admin:\n  token: "0123456789abcdef0123"\n  allow_loopback: false\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
    const live = await send(`${gw.url}/health/live`);
    assert.equal(live.status, 200);
    assert.deepEqual(live.json(), { status: 'alive' });
    const ready = await send(`${gw.url}/health/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.json(), { status: 'ready' });
    assert.ok(!be.requests.some((r) => r.url?.startsWith('/health/')), 'never proxied');
    // The dashboard API stays guarded: public health does not open the admin surface.
    assert.equal((await send(`${gw.url}/dashboard/api/processes`)).status, 401);
  });

  test('need the admin token when admin.public_health is false', async (t) => {
    const be = await startBackend(t);
    const gw = await startGateway(t, `admin:\n  token: "0123456789abcdef0123"\n  allow_loopback: false\n  public_health: false\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
    for (const p of ['/health', '/health/live', '/health/ready']) assert.equal((await send(`${gw.url}${p}`)).status, 401, p);
    const auth = { authorization: 'Bearer 0123456789abcdef0123' };
    assert.equal((await send(`${gw.url}/health/ready`, { headers: auth })).status, 200);
  });

  test('a route cannot claim /health/live or /health/ready', async () => {
    const { parseConfig } = await import('../../src/config/load.js');
    assert.throws(() => parseConfig('routes:\n  - path: /health/ready\n    backend: http://127.0.0.1:1\n', 't.yml'), /answered by the gateway itself/);
  });

  test('while draining, /health/ready answers 503 and requests are still served until drain_delay ends; /health/live stays 200', { timeout: 30_000 }, async (t) => {
    const be = await startBackend(t);
    const gw = await startGateway(t, `server:\n  drain_delay: 1500ms\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
    assert.equal((await send(`${gw.url}/health/ready`)).status, 200);
    const closing = gw.close();
    let closed = false;
    void closing.then(() => (closed = true));
    const ready = await send(`${gw.url}/health/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(ready.json(), { status: 'draining' });
    assert.equal(ready.headers['retry-after'], '1');
    assert.equal((await send(`${gw.url}/health/live`)).status, 200);
    const served = await send(`${gw.url}/still-served`);
    assert.equal(served.status, 200, 'traffic that arrives during the delay is served');
    assert.equal(served.headers.connection, 'close', 'and told to reconnect (elsewhere)');
    assert.equal(closed, false, 'the listener is still open during the delay');
    await closing;
    await assert.rejects(send(`${gw.url}/health/ready`), 'the listener closed after the delay');
  });

  test('with Redis unreachable and failing open, /health is 200 "degraded" and requests are served', { timeout: 30_000 }, async (t) => {
    const be = await startBackend(t);
    const deadRedis = await deadPort();
    const gw = await startGateway(t, `cluster:\n  redis_url: redis://127.0.0.1:${deadRedis}\n  timeout: 50ms\nratelimit:\n  max_tokens: 100\n  refill_rate: 10\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
    assert.equal((await send(`${gw.url}/x`)).status, 200);
    const h = (await until(async () => {
      const r = await send(`${gw.url}/health`);
      return r.json().status === 'degraded' ? r : null;
    }))!;
    assert.equal(h.status, 200, h.text);
    assert.match(h.json().degraded[0], /cluster store unreachable/);
    assert.equal((await send(`${gw.url}/health/ready`)).status, 200);
  });

  test('with Redis unreachable and fail_closed, /health is 503 "degraded"', { timeout: 30_000 }, async (t) => {
    const be = await startBackend(t);
    const deadRedis = await deadPort();
    const gw = await startGateway(t, `cluster:\n  redis_url: redis://127.0.0.1:${deadRedis}\n  timeout: 50ms\n  fail_closed: true\nratelimit:\n  max_tokens: 100\n  refill_rate: 10\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
    await send(`${gw.url}/x`);
    const h = (await until(async () => {
      const r = await send(`${gw.url}/health`);
      return r.json().status === 'degraded' ? r : null;
    }))!;
    assert.equal(h.status, 503);
  });
});

describe('clean start through the command line', () => {
  test('the first request right after bin/microgate prints "listening" is served by its auto-started backend', { timeout: 60_000 }, async (t) => {
    const { spawn } = await import('node:child_process');
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { root } = await import('./helpers.js');
    const [gwPort, bePort] = [await deadPort(), await deadPort()];
    const dir = mkdtempSync(join(tmpdir(), 'mg-clean-start-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'config.yml');
    writeFileSync(
      file,
      `server:\n  port: ${gwPort}\n  host: 127.0.0.1\nroutes:\n  - path: /api\n    backend: http://127.0.0.1:${bePort}\nlogging:\n  level: warn\n  access_log: false\ndashboard:\n  enabled: false\nprocesses:\n  - id: be\n    command: ${TESTBACKEND}\n    args: ["--port", "${bePort}", "--quiet"]\n    port: ${bePort}\n    auto_start: true\n`,
    );
    const child = spawn(process.execPath, [join(root, 'bin/microgate'), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stderr.on('data', (c) => (out += c));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c) => {
        out += c;
        if (out.includes('MicroGate listening')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const first = await send(`http://127.0.0.1:${gwPort}/api/first`);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json().port, bePort);
    child.kill('SIGTERM');
    assert.equal(await new Promise((r) => child.once('exit', r)), 0);
  });
});
