/**
 * `bin/microgate-testbackend` as a real child process: the reference answer, start-up flags,
 * Go-style flags, the runtime control endpoint and flag errors.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { assertBuilt, cleanEnv, freePort, run, Running, startTestBackend, TESTBACKEND } from './helpers.js';

before(assertBuilt);

async function call(url: string, init: RequestInit = {}) {
  const started = performance.now();
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), text, json: text ? JSON.parse(text) : undefined, ms: performance.now() - started };
}

describe('default answer', () => {
  test('answers any method and path with 200 {"message":"Hello from backend","path":…,"port":N}', async (t) => {
    const { url, port } = await startTestBackend(t);
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/api/v1/hello'],
      ['POST', '/orders'],
      ['PUT', '/a/b/c'],
      ['DELETE', '/x'],
      ['PATCH', '/y'],
      ['OPTIONS', '/z'],
    ] as const) {
      const r = await call(url + path, { method, body: method === 'POST' || method === 'PUT' || method === 'PATCH' ? '{"a":1}' : undefined });
      assert.equal(r.status, 200, `${method} ${path}`);
      assert.equal(r.type, 'application/json');
      assert.deepEqual(r.json, { message: 'Hello from backend', path, port });
    }
  });

  test('reports the path without the query string, keys in the reference order, newline-terminated', async (t) => {
    const { url, port } = await startTestBackend(t);
    const r = await call(`${url}/api/v1/hello?x=1&y=2`);
    assert.equal(r.text, `{"message":"Hello from backend","path":"/api/v1/hello","port":${port}}\n`);
  });

  test('logs each request as "[backend:PORT] METHOD path"', async (t) => {
    const { proc, url, port } = await startTestBackend(t);
    await call(`${url}/logged?q=1`, { method: 'DELETE' });
    await proc.waitForStdout(new RegExp(`\\[backend:${port}\\] DELETE /logged\\n`));
  });

  test('--quiet does not log requests', async (t) => {
    const { proc, url } = await startTestBackend(t, ['--quiet']);
    await call(`${url}/silent`);
    assert.doesNotMatch(proc.stdout, /\/silent/);
  });

  test('exits 0 on SIGTERM', async (t) => {
    const { proc } = await startTestBackend(t);
    proc.child.kill('SIGTERM');
    assert.deepEqual(await proc.waitForExit(5_000), { code: 0, signal: null });
  });
});

describe('start-up flags', () => {
  test('--host chooses the listen address', async (t) => {
    const proc = new Running(t, TESTBACKEND, ['--port', '0', '--host', '127.0.0.1']);
    const m = await proc.waitForStdout(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    assert.equal((await call(`http://127.0.0.1:${m[1]}/`)).status, 200);
  });

  test('--latency-ms delays every answer', async (t) => {
    const { url } = await startTestBackend(t, ['--latency-ms', '300']);
    const r = await call(`${url}/slow`);
    assert.equal(r.status, 200);
    assert.ok(r.ms >= 280, `answered after ${r.ms}ms`);
  });

  test('--error-rate 1 answers 500 every time', async (t) => {
    const { url, port } = await startTestBackend(t, ['--error-rate', '1']);
    for (let i = 0; i < 5; i++) {
      const r = await call(`${url}/x`);
      assert.equal(r.status, 500);
      assert.deepEqual(r.json, { error: 'injected failure', path: '/x', port });
    }
  });

  test('--status sets the status of the normal answer', async (t) => {
    const { url, port } = await startTestBackend(t, ['--status', '503']);
    const r = await call(`${url}/x`);
    assert.equal(r.status, 503);
    assert.deepEqual(r.json, { message: 'Hello from backend', path: '/x', port });
  });

  test('takes the Go-style "-port N" of the reference config', async (t) => {
    const port = await freePort();
    const proc = new Running(t, TESTBACKEND, ['-port', String(port)]);
    await proc.waitForStdout(new RegExp(`listening on http://127\\.0\\.0\\.1:${port}\\b`));
    assert.equal((await call(`http://127.0.0.1:${port}/`)).json.port, port);
  });

  test('takes the port from PORT when no flag gives one (the process manager sets it)', async (t) => {
    const port = await freePort();
    const proc = new Running(t, TESTBACKEND, [], { env: cleanEnv({ PORT: String(port) }) });
    await proc.waitForStdout(new RegExp(`listening on http://127\\.0\\.0\\.1:${port}\\b`));
  });

  test('--help prints the usage and exits 0', async () => {
    const r = await run(TESTBACKEND, ['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: microgate-testbackend/);
  });

  for (const args of [['--bogus'], ['--port', 'abc'], ['--port', '70000'], ['--error-rate', '2'], ['--status', '700'], ['--latency-ms=-1'], ['--latency-ms', '-1'], ['-nope', '1']]) {
    test(`exits 2 with the usage for invalid flags: ${args.join(' ')}`, async () => {
      const r = await run(TESTBACKEND, args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^microgate-testbackend: [\s\S]+\nUsage:/);
      assert.equal(r.stdout, '');
    });
  }

  test('exits 1 with a message when the port is taken', async (t) => {
    const { port } = await startTestBackend(t);
    const r = await run(TESTBACKEND, ['--port', String(port)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /EADDRINUSE/);
  });
});

describe('runtime control endpoint', () => {
  test('GET /__control shows the current settings', async (t) => {
    const { url } = await startTestBackend(t, ['--latency-ms', '5', '--status', '202']);
    const r = await call(`${url}/__control`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { latency_ms: 5, jitter_ms: 0, error_rate: 0, status: 202 });
  });

  test('POST /__control changes the status and latency without a restart, and /__control/reset restores the flags', async (t) => {
    const { proc, url } = await startTestBackend(t);
    const pid = proc.pid;
    const set = await call(`${url}/__control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status: 503, latency_ms: 300 }) });
    assert.equal(set.status, 200);
    assert.deepEqual(set.json, { latency_ms: 300, jitter_ms: 0, error_rate: 0, status: 503 });
    const slow = await call(`${url}/x`);
    assert.equal(slow.status, 503);
    assert.ok(slow.ms >= 280, `answered after ${slow.ms}ms`);
    const reset = await call(`${url}/__control/reset`, { method: 'POST' });
    assert.deepEqual(reset.json, { latency_ms: 0, jitter_ms: 0, error_rate: 0, status: 200 });
    const fast = await call(`${url}/x`);
    assert.equal(fast.status, 200);
    assert.ok(fast.ms < 250);
    assert.equal(proc.pid, pid);
    assert.equal(proc.child.exitCode, null, 'never restarted');
  });

  test('POST /__control with error_rate 1 makes every answer 500 until changed back', async (t) => {
    const { url } = await startTestBackend(t);
    await call(`${url}/__control`, { method: 'POST', body: '{"error_rate":1}' });
    assert.equal((await call(`${url}/a`)).status, 500);
    await call(`${url}/__control`, { method: 'POST', body: '{"error_rate":0}' });
    assert.equal((await call(`${url}/a`)).status, 200);
  });

  test('a partial update keeps the other settings', async (t) => {
    const { url } = await startTestBackend(t, ['--status', '201']);
    const r = await call(`${url}/__control`, { method: 'POST', body: '{"jitter_ms":10}' });
    assert.deepEqual(r.json, { latency_ms: 0, jitter_ms: 10, error_rate: 0, status: 201 });
  });

  for (const [label, body] of [
    ['an unknown setting', '{"colour":"red"}'],
    ['a status out of range', '{"status":42}'],
    ['an error_rate above 1', '{"error_rate":1.5}'],
    ['a string where a number belongs', '{"latency_ms":"100"}'],
    ['a body that is not JSON', 'status=503'],
  ] as const) {
    test(`rejects ${label} with 400 and changes nothing`, async (t) => {
      const { url } = await startTestBackend(t);
      const r = await call(`${url}/__control`, { method: 'POST', body });
      assert.equal(r.status, 400);
      assert.equal(typeof r.json.error, 'string');
      assert.deepEqual((await call(`${url}/__control`)).json, { latency_ms: 0, jitter_ms: 0, error_rate: 0, status: 200 });
    });
  }

  test('rejects DELETE on /__control with 405', async (t) => {
    const { url } = await startTestBackend(t);
    assert.equal((await call(`${url}/__control`, { method: 'DELETE' })).status, 405);
  });
});
