import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { createGateway } from '../../src/gateway.js';
import { deadPort, send, silentLogger, startBackend, until } from '../helpers/gateway.js';

const root = new URL('../../', import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('close() lets an in-flight request finish before the gateway stops', async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    setTimeout(() => res.end('finished'), 500);
  });
  const gw = createGateway(parseConfig(`routes:\n  - path: /\n    backend: ${be.url}\n`), { logger: silentLogger, defaultMetrics: false });
  await gw.start({ port: 0, host: '127.0.0.1' });
  const url = gw.url;
  const inflight = send(`${url}/slow`);
  await until(() => be.requests.some((r) => r.url === '/slow'));
  const closing = gw.close();
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.text, 'finished');
  await closing;
  await assert.rejects(send(`${url}/after`), 'no longer accepting');
});

test('shutdown_timeout bounds how long a stuck request can hold shutdown', async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    // never answers
  });
  const gw = createGateway(parseConfig(`server:\n  shutdown_timeout: "300ms"\nroutes:\n  - path: /\n    backend: ${be.url}\n`), { logger: silentLogger, defaultMetrics: false });
  await gw.start({ port: 0, host: '127.0.0.1' });
  const inflight = send(`${gw.url}/stuck`).catch((e) => e);
  await until(() => be.requests.some((r) => r.url === '/stuck'));
  const started = Date.now();
  await gw.close();
  assert.ok(Date.now() - started < 2000, `close took ${Date.now() - started} ms`);
  await inflight;
});

test('close() is safe after a failed start', async () => {
  const port = await deadPort();
  const blocker = createGateway(parseConfig(`server:\n  port: ${port}\n`), { logger: silentLogger, defaultMetrics: false });
  await blocker.start({ port, host: '127.0.0.1' });
  const gw = createGateway(parseConfig(`server:\n  port: ${port}\n`), { logger: silentLogger, defaultMetrics: false });
  await assert.rejects(gw.start({ port, host: '127.0.0.1' }));
  await gw.close();
  await blocker.close();
});

test('SIGTERM with a 1 s request in flight completes it, exits 0 and leaves no child process', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-shutdown-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const [gwPort, bePort] = [await deadPort(), await deadPort()];
  const file = join(dir, 'config.yml');
  writeFileSync(
    file,
    `server:\n  port: ${gwPort}\n  host: 127.0.0.1\nroutes:\n  - path: /api\n    backend: http://127.0.0.1:${bePort}\nlogging:\n  level: warn\n  access_log: false\ndashboard:\n  enabled: false\nprocesses:\n  - id: be\n    command: ${join(root, 'bin/microgate-testbackend')}\n    args: ["--port", "${bePort}", "--latency-ms", "1000"]\n    port: ${bePort}\n    auto_start: true\n`,
  );
  const child = spawn(process.execPath, [join(root, 'bin/microgate'), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  t.after(() => child.kill('SIGKILL'));
  await until(async () => (await send(`http://127.0.0.1:${gwPort}/health`).catch(() => null))?.status === 200, 15000, 100);
  const procs = await send(`http://127.0.0.1:${gwPort}/health`);
  assert.equal(procs.status, 200);
  // Find the backend's pid through /proc: it is our grandchild, listening on bePort.
  const { execSync } = await import('node:child_process');
  const pid = Number(execSync(`pgrep -f -- "--port ${bePort} --latency-ms 1000"`).toString().trim().split('\n')[0]);
  assert.ok(pid > 0 && alive(pid));
  const inflight = send(`http://127.0.0.1:${gwPort}/api/slow`);
  // The backend logs each request it receives (the gateway echoes its output): SIGTERM once it has this one.
  await until(() => out.includes('GET /api/slow'), 10000);
  child.kill('SIGTERM');
  const r = await inflight;
  assert.equal(r.status, 200, 'the in-flight request completed');
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, out);
  assert.equal(alive(pid), false, 'the managed backend was stopped');
});

test('a second signal forces the exit while a request still holds the drain', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-force-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    // never answers
  });
  const gwPort = await deadPort();
  const file = join(dir, 'config.yml');
  writeFileSync(file, `server:\n  port: ${gwPort}\n  host: 127.0.0.1\n  shutdown_timeout: 60s\nroutes:\n  - path: /\n    backend: ${be.url}\nlogging:\n  level: info\n  access_log: false\ndashboard:\n  enabled: false\n`);
  const child = spawn(process.execPath, [join(root, 'bin/microgate'), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  t.after(() => child.kill('SIGKILL'));
  await until(async () => (await send(`http://127.0.0.1:${gwPort}/health`).catch(() => null))?.status === 200, 15000, 100);
  const stuck = send(`http://127.0.0.1:${gwPort}/stuck`).catch(() => 'cut');
  await until(() => be.requests.some((r) => r.url === '/stuck'));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  child.kill('SIGTERM');
  // The first signal was handled (it says so) and the process is still there, held by the drain.
  await until(() => out.includes('shutting down: draining in-flight requests'), 10000);
  assert.equal(child.exitCode, null, 'the first signal waits for the in-flight request');
  const started = Date.now();
  child.kill('SIGINT');
  const code = await exited;
  assert.ok(Date.now() - started < 3000, 'the second signal exits at once');
  assert.notEqual(code, 0);
  assert.equal(await stuck, 'cut');
});

test('on SIGTERM with drain_delay, /health/ready turns 503 while requests are still served, then the process exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mg-drain-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const be = await startBackend(t);
  const gwPort = await deadPort();
  const file = join(dir, 'config.yml');
  writeFileSync(file, `server:\n  port: ${gwPort}\n  host: 127.0.0.1\n  drain_delay: 2s\nroutes:\n  - path: /\n    backend: ${be.url}\nlogging:\n  level: info\n  access_log: false\ndashboard:\n  enabled: false\n`);
  const child = spawn(process.execPath, [join(root, 'bin/microgate'), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  t.after(() => child.kill('SIGKILL'));
  const base = `http://127.0.0.1:${gwPort}`;
  await until(async () => (await send(`${base}/health/ready`).catch(() => null))?.status === 200, 15000, 100);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  child.kill('SIGTERM');
  await until(() => out.includes('shutting down: draining in-flight requests'), 10000);
  const ready = await send(`${base}/health/ready`);
  assert.equal(ready.status, 503);
  assert.equal(ready.json().status, 'draining');
  assert.equal((await send(`${base}/during-drain`)).status, 200, 'traffic is still served during the drain delay');
  assert.equal(await exited, 0);
});
