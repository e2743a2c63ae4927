import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { call, post, q, startBackend, startGateway, type Reply } from './helpers.js';

const NODE = process.execPath;
/** A command listed in admin.allowed_commands that does not exist: starting it fails. */
const MISSING = '/nonexistent/microgate-test-binary';

async function gateway(t: TestContext, extra = '') {
  const backend = await startBackend(t, { delayMs: 20 });
  const h = await startGateway(
    t,
    `routes:
  - path: /api/v2
    backend: ${backend.url}
  - path: /api
    backend: ${backend.url}
healthcheck: { interval: 1h }
processes:
  - id: first
    command: ${q(NODE)}
    args: ["-e", "setInterval(() => {}, 1000)"]
    port: 41001
  - id: second
    command: /bin/sleep
    args: ["60"]
admin:
  allowed_commands: [${q(NODE)}, ${q(MISSING)}]
${extra}`,
  );
  return { ...h, backend };
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.body);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.json.error.code, code);
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(r.json.error.request_id, r.headers['x-request-id']);
}

const newProcess = (over: Record<string, unknown> = {}) => ({ id: 'added', command: NODE, args: ['-e', '0'], port: 41050, route: '/api', ...over });

describe('dashboard API: processes', () => {
  it('lists processes in config order with healthy false while stopped', async (t) => {
    const { url } = await gateway(t);
    const r = await call(url, 'GET', '/dashboard/api/processes');
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.json.processes.map((p: { id: string; status: string; healthy: boolean }) => [p.id, p.status, p.healthy]),
      [
        ['first', 'stopped', false],
        ['second', 'stopped', false],
      ],
    );
    assert.equal(r.json.processes[0].port, 41001);
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  it('answers an empty list, not null, when no process is configured', async (t) => {
    const { url } = await startGateway(t, 'routes: []\n');
    assert.deepEqual((await call(url, 'GET', '/dashboard/api/processes')).json, { processes: [] });
  });

  it('registers a process with an allowed command (201), adds its backend to the route and does not start it', async (t) => {
    const { url, gw } = await gateway(t);
    const r = await post(url, '/dashboard/api/processes', newProcess());
    assert.equal(r.status, 201, r.body);
    assert.equal(r.json.id, 'added');
    assert.equal(r.json.status, 'stopped');
    assert.equal(r.json.route, '/api');
    assert.equal(r.json.healthy, false);
    assert.equal(r.headers.location, '/dashboard/api/processes/added');
    const list = (await call(url, 'GET', '/dashboard/api/processes')).json.processes;
    assert.deepEqual(
      list.map((p: { id: string }) => p.id),
      ['first', 'second', 'added'],
    );
    assert.ok(gw.routes.find('/api')!.backends.some((b) => b.url === 'http://localhost:41050'));
    assert.equal(gw.routes.find('/api/v2')!.backends.length, 1, 'other routes are untouched');
  });

  it('refuses any command the config does not name (403) and registers nothing', async (t) => {
    const { url, gw } = await gateway(t);
    for (const command of ['/bin/sh', 'node', `${NODE} `, '/bin/sleep/../sh']) {
      const r = await post(url, '/dashboard/api/processes', newProcess({ command }));
      assertError(r, 403, 'forbidden');
    }
    // A command listed under processes[] is allowed for new processes too.
    assert.equal((await post(url, '/dashboard/api/processes', newProcess({ id: 'sleeper', command: '/bin/sleep', args: ['1'], route: undefined }))).status, 201);
    assert.deepEqual(
      gw.processes.list().map((p) => p.id),
      ['first', 'second', 'sleeper'],
    );
  });

  it('rejects an unknown route with 400 and leaves no process and no backend behind', async (t) => {
    const { url, gw } = await gateway(t);
    const before = gw.backends.size;
    const r = await post(url, '/dashboard/api/processes', newProcess({ route: '/nope' }));
    assertError(r, 400, 'bad_request');
    assert.match(r.json.error.message, /route "\/nope" not found/);
    assert.equal(gw.processes.has('added'), false);
    assert.equal(gw.backends.size, before);
    assert.equal((await call(url, 'GET', '/dashboard/api/processes')).json.processes.length, 2);
  });

  it('answers 409 for a duplicate id or a port another process uses', async (t) => {
    const { url } = await gateway(t);
    assertError(await post(url, '/dashboard/api/processes', newProcess({ id: 'first' })), 409, 'conflict');
    assertError(await post(url, '/dashboard/api/processes', newProcess({ port: 41001 })), 409, 'conflict');
  });

  it('validates every field of a new process (400) and accepts no extra field such as env', async (t) => {
    const { url, gw } = await gateway(t);
    const bad: Record<string, unknown>[] = [
      newProcess({ id: '' }),
      newProcess({ id: 'a/b' }),
      newProcess({ id: 'x'.repeat(65) }),
      newProcess({ id: 7 }),
      newProcess({ command: '' }),
      newProcess({ command: 5 }),
      newProcess({ args: 'serve' }),
      newProcess({ args: [1, 2] }),
      newProcess({ args: new Array(65).fill('a') }),
      newProcess({ port: 0 }),
      newProcess({ port: 65536 }),
      newProcess({ port: 80.5 }),
      newProcess({ port: '8080' }),
      newProcess({ route: 5 }),
      newProcess({ env: { LD_PRELOAD: '/tmp/x.so' } }),
      newProcess({ cwd: '/' }),
    ];
    for (const body of bad) assertError(await post(url, '/dashboard/api/processes', body), 400, 'bad_request');
    assertError(await post(url, '/dashboard/api/processes', [newProcess()]), 400, 'bad_request');
    assertError(await call(url, 'POST', '/dashboard/api/processes', { raw: '{"id":', headers: { 'content-type': 'application/json' } }), 400, 'bad_request');
    assertError(await call(url, 'POST', '/dashboard/api/processes', { raw: '', headers: { 'content-type': 'application/json' } }), 400, 'bad_request');
    assert.equal(gw.processes.list().length, 2);
  });

  it('refuses a body over 16 KiB with 413', async (t) => {
    const { url } = await gateway(t);
    const r = await post(url, '/dashboard/api/processes', newProcess({ args: ['x'.repeat(17 * 1024)] }));
    assertError(r, 413, 'body_too_large');
  });

  it('starts a failing command: 500 with the reason, and the process shows as crashed', async (t) => {
    const { url } = await gateway(t);
    assert.equal((await post(url, '/dashboard/api/processes', newProcess({ id: 'ghost', command: MISSING, route: undefined }))).status, 201);
    const r = await post(url, '/dashboard/api/processes/ghost/start');
    assertError(r, 500, 'process_start_failed');
    assert.match(r.json.error.message, /failed to start process/);
    const p = (await call(url, 'GET', '/dashboard/api/processes/ghost')).json;
    assert.equal(p.status, 'crashed');
  });

  it('answers 404 for an unknown process and 409 for stopping a stopped one', async (t) => {
    const { url } = await gateway(t);
    for (const action of ['start', 'stop', 'restart']) assertError(await post(url, `/dashboard/api/processes/nobody/${action}`), 404, 'not_found');
    assertError(await call(url, 'GET', '/dashboard/api/processes/nobody'), 404, 'not_found');
    assertError(await call(url, 'GET', '/dashboard/api/processes/nobody/logs'), 404, 'not_found');
    assertError(await post(url, '/dashboard/api/processes/first/stop'), 409, 'conflict');
    assertError(await post(url, '/dashboard/api/processes/first/explode'), 404, 'not_found');
  });

  it('returns a process log tail, oldest first, as a list', async (t) => {
    const { url } = await gateway(t);
    const r = await call(url, 'GET', '/dashboard/api/processes/first/logs?lines=5');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { lines: [] });
  });
});

describe('dashboard API: routes, logs and metrics', () => {
  it('lists the route prefixes sorted', async (t) => {
    const { url } = await gateway(t);
    assert.deepEqual((await call(url, 'GET', '/dashboard/api/routes')).json, { routes: ['/api', '/api/v2'] });
  });

  it('logs proxied requests newest first with real ms latency, the chosen backend and redacted credentials', async (t) => {
    const { url, backend } = await gateway(t);
    await call(url, 'GET', '/api/one?x=1', { headers: { 'x-request-id': 'req-one', authorization: 'Bearer top-secret', 'x-api-key': 'key-secret-123' } });
    await call(url, 'POST', '/api/v2/two', { body: { a: 1 }, headers: { 'x-request-id': 'req-two' } });
    await call(url, 'GET', '/nowhere', { headers: { 'x-request-id': 'req-three' } });
    const logs = (await call(url, 'GET', '/dashboard/api/logs')).json.logs;
    assert.deepEqual(
      logs.map((l: { id: string }) => l.id),
      ['req-three', 'req-two', 'req-one'],
    );
    const one = logs[2];
    assert.equal(one.method, 'GET');
    assert.equal(one.path, '/api/one');
    assert.equal(one.query, 'x=1');
    assert.equal(one.status, 200);
    assert.equal(one.route, '/api');
    assert.equal(one.backend, backend.url);
    assert.ok(one.latency_ms >= 15 && one.latency_ms < 5_000, `latency ${one.latency_ms} is real milliseconds`);
    assert.match(one.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(one.client_ip, '127.0.0.1');
    assert.equal(one.request_headers.authorization, '[redacted]');
    assert.equal(one.request_headers['x-api-key'], '[redacted]');
    assert.equal(one.response_headers['set-cookie'], '[redacted]');
    assert.equal(one.response_headers['content-type'], 'application/json');
    const text = (await call(url, 'GET', '/dashboard/api/logs')).body;
    assert.equal(text.includes('top-secret') || text.includes('key-secret-123') || text.includes('secret-cookie'), false);
    assert.equal(logs[1].bytes_in, 7);
    assert.equal(logs[0].status, 404);
    assert.equal(logs[0].route, '');
    assert.equal(logs[0].backend, '');
    assert.equal(logs[0].error, 'not_found');
  });

  it('filters logs by status code, status class, path substring and limit', async (t) => {
    const { url } = await gateway(t);
    for (const p of ['/api/a', '/api/b', '/api/v2/c', '/missing']) await call(url, 'GET', p);
    const ids = async (qs: string) => (await call(url, 'GET', `/dashboard/api/logs?${qs}`)).json.logs.map((l: { path: string }) => l.path);
    assert.deepEqual(await ids('status=404'), ['/missing']);
    assert.deepEqual(await ids('status=2xx'), ['/api/v2/c', '/api/b', '/api/a']);
    assert.deepEqual(await ids('status=4XX'), ['/missing']);
    assert.deepEqual(await ids('path=/v2'), ['/api/v2/c']);
    assert.deepEqual(await ids('limit=2'), ['/missing', '/api/v2/c']);
    assert.deepEqual(await ids('status=500'), []);
    assert.deepEqual(await ids('limit=abc'), ['/missing', '/api/v2/c', '/api/b', '/api/a']);
    assertError(await call(url, 'GET', '/dashboard/api/logs?status=abc'), 400, 'bad_request');
  });

  it('caps the log limit at the log capacity', async (t) => {
    const { url } = await gateway(t, 'dashboard: { log_capacity: 3 }\n');
    for (let i = 0; i < 5; i++) await call(url, 'GET', `/api/${i}`);
    assert.equal((await call(url, 'GET', '/dashboard/api/logs?limit=100')).json.logs.length, 3);
  });

  it('finds one log entry by request ID and answers 404 for an unknown one', async (t) => {
    const { url } = await gateway(t);
    await call(url, 'GET', '/api/x', { headers: { 'x-request-id': 'abc:123' } });
    const r = await call(url, 'GET', '/dashboard/api/logs/abc%3A123');
    assert.equal(r.status, 200);
    assert.equal(r.json.id, 'abc:123');
    assertError(await call(url, 'GET', '/dashboard/api/logs/nope'), 404, 'not_found');
    assertError(await call(url, 'GET', '/dashboard/api/logs/'), 400, 'bad_request');
  });

  it('answers metrics with backend counts and uptime', async (t) => {
    const { url } = await gateway(t);
    const m = (await call(url, 'GET', '/dashboard/api/metrics')).json;
    assert.equal(m.total_backends, 1);
    assert.equal(typeof m.uptime, 'string');
    assert.equal(m.sparklines.latency.length, 30);
  });
});

describe('dashboard API: methods and paths', () => {
  it('answers 405 with Allow for a wrong method on every endpoint', async (t) => {
    const { url } = await gateway(t);
    const cases: [string, string, string][] = [
      ['PUT', '/dashboard/api/processes', 'GET, HEAD, POST'],
      ['DELETE', '/dashboard/api/processes/first', 'GET, HEAD'],
      ['GET', '/dashboard/api/processes/first/start', 'POST'],
      ['GET', '/dashboard/api/processes/first/stop', 'POST'],
      ['GET', '/dashboard/api/processes/first/restart', 'POST'],
      ['POST', '/dashboard/api/processes/first/logs', 'GET, HEAD'],
      ['POST', '/dashboard/api/routes', 'GET, HEAD'],
      ['POST', '/dashboard/api/logs', 'GET, HEAD'],
      ['DELETE', '/dashboard/api/logs/x', 'GET, HEAD'],
      ['POST', '/dashboard/api/metrics', 'GET, HEAD'],
      ['POST', '/dashboard/api/stream', 'GET'],
      ['OPTIONS', '/dashboard/api/processes', 'GET, HEAD, POST'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await call(url, method, path, { headers: { 'content-type': 'application/json' } });
      assertError(r, 405, 'method_not_allowed');
      assert.equal(r.headers.allow, allow, `${method} ${path}`);
    }
  });

  it('answers 404 JSON for unknown API paths', async (t) => {
    const { url } = await gateway(t);
    for (const p of ['/dashboard/api', '/dashboard/api/', '/dashboard/api/nope', '/dashboard/api/routes/x', '/dashboard/api/processes/first/logs/x']) {
      assertError(await call(url, 'GET', p), 404, 'not_found');
    }
  });

  it('answers HEAD on read endpoints without a body', async (t) => {
    const { url } = await gateway(t);
    const r = await call(url, 'HEAD', '/dashboard/api/routes');
    assert.equal(r.status, 200);
    assert.equal(r.body, '');
  });
});

describe('dashboard API: security', () => {
  it('refuses a mutating call without a JSON content type (415)', async (t) => {
    const { url, gw } = await gateway(t);
    const body = JSON.stringify(newProcess());
    assertError(await call(url, 'POST', '/dashboard/api/processes', { raw: body }), 415, 'unsupported_media_type');
    assertError(await call(url, 'POST', '/dashboard/api/processes', { raw: body, headers: { 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    assertError(
      await call(url, 'POST', '/dashboard/api/processes', { raw: 'id=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      415,
      'unsupported_media_type',
    );
    assertError(await call(url, 'POST', '/dashboard/api/processes/first/start', { raw: '' }), 415, 'unsupported_media_type');
    assert.equal(gw.processes.has('added'), false);
    assert.equal(gw.processes.get('first')!.status, 'stopped');
    const ok = await call(url, 'POST', '/dashboard/api/processes', { raw: body, headers: { 'content-type': 'Application/JSON; charset=utf-8' } });
    assert.equal(ok.status, 201);
  });

  it('refuses cross-site callers (403) and accepts same-origin ones', async (t) => {
    const { url, gw } = await gateway(t);
    const host = new URL(url).host;
    const callers: Record<string, string>[] = [{ origin: 'http://evil.example' }, { origin: 'null' }, { origin: `http://${host}.evil.example` }, { 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }];
    for (const headers of callers) {
      assertError(await post(url, '/dashboard/api/processes', newProcess(), headers), 403, 'forbidden');
      assertError(await post(url, '/dashboard/api/processes/first/start', {}, headers), 403, 'forbidden');
    }
    assert.equal(gw.processes.has('added'), false);
    assert.equal(gw.processes.get('first')!.status, 'stopped');
    const ok = await post(url, '/dashboard/api/processes', newProcess(), { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' });
    assert.equal(ok.status, 201, ok.body);
  });

  it('refuses a loopback caller using a foreign host name (DNS rebinding) unless it sends a token', async (t) => {
    const { url } = await gateway(t);
    const port = new URL(url).port;
    assertError(await call(url, 'GET', '/dashboard/api/processes', { headers: { host: `rebind.evil.example:${port}` } }), 403, 'forbidden');
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `app.localhost:${port}`]) {
      assert.equal((await call(url, 'GET', '/dashboard/api/processes', { headers: { host } })).status, 200, host);
    }
  });

  it('never sends Access-Control-Allow-Origin', async (t) => {
    const { url } = await gateway(t);
    const origin = { origin: 'http://evil.example' };
    const replies = [
      await call(url, 'GET', '/dashboard/api/processes', { headers: origin }),
      await call(url, 'GET', '/dashboard/api/logs', { headers: origin }),
      await call(url, 'OPTIONS', '/dashboard/api/processes', { headers: { ...origin, 'access-control-request-method': 'POST' } }),
      await post(url, '/dashboard/api/processes', newProcess(), origin),
    ];
    for (const r of replies) {
      assert.equal(r.headers['access-control-allow-origin'], undefined);
      assert.equal(r.headers['access-control-allow-methods'], undefined);
    }
  });
});

describe('dashboard API: admin token', () => {
  it('answers 401 without the admin token and 200 with it when loopback is not trusted', async (t) => {
    const token = 'a-very-long-admin-token-for-tests';
    const { url } = await startGateway(t, `routes: []\nadmin:\n  token: ${token}\n  allow_loopback: false\n`);
    for (const p of ['/dashboard/api/processes', '/dashboard/api/stream', '/dashboard/api/metrics']) {
      const r = await call(url, 'GET', p);
      assertError(r, 401, 'admin_unauthorized');
    }
    assert.equal((await call(url, 'GET', '/dashboard/api/processes', { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401);
    const ok = await call(url, 'GET', '/dashboard/api/processes', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json, { processes: [] });
    // With a token, a foreign Host is fine (the token is the proof, not the network).
    const port = new URL(url).port;
    assert.equal((await call(url, 'GET', '/dashboard/api/routes', { headers: { authorization: `Bearer ${token}`, host: `gw.example:${port}` } })).status, 200);
  });
});
