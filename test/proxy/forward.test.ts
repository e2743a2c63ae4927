import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CompletionRecord } from '../../src/events/index.js';
import { rawRequest, send, startBackend, startGateway } from '../helpers/gateway.js';

function echoHandler(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ url: req.url, headers: req.headers, rawHeaders: req.rawHeaders });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      connection: 'keep-alive, x-backend-private',
      'x-backend-private': 'secret-hop',
      'keep-alive': 'timeout=5',
      'x-kept': 'yes',
    });
    res.end(body);
  });
}

test('the longest matching prefix wins, on a path-segment boundary', async (t) => {
  const a = await startBackend(t);
  const b = await startBackend(t);
  const gw = await startGateway(
    t,
    `routes:
  - path: /api
    backend: ${a.url}
  - path: /api/v1
    backend: ${b.url}
`,
  );
  assert.equal((await send(`${gw.url}/api/v1/users`)).json().port, b.port);
  assert.equal((await send(`${gw.url}/api/v1`)).json().port, b.port);
  assert.equal((await send(`${gw.url}/api/v10`)).json().port, a.port);
  assert.equal((await send(`${gw.url}/api/other`)).json().port, a.port);
  const miss = await send(`${gw.url}/apix`);
  assert.equal(miss.status, 404);
  assert.equal(miss.json().error.code, 'not_found');
  assert.equal(miss.json().error.request_id, miss.headers['x-request-id']);
});

test('the full path and query string reach the backend unchanged', async (t) => {
  const be = await startBackend(t, echoHandler);
  const gw = await startGateway(t, `routes:\n  - path: /api/v2\n    backend: ${be.url}\n`);
  const r = await send(`${gw.url}/api/v2/echo/sub?q=1&r=2&enc=%2F%20`);
  assert.equal(r.json().url, '/api/v2/echo/sub?q=1&r=2&enc=%2F%20');
});

test('strip_prefix removes the route prefix before forwarding', async (t) => {
  const be = await startBackend(t, echoHandler);
  const gw = await startGateway(t, `routes:\n  - path: /svc\n    backend: ${be.url}\n    strip_prefix: true\n`);
  assert.equal((await send(`${gw.url}/svc/users/7?x=1`)).json().url, '/users/7?x=1');
  assert.equal((await send(`${gw.url}/svc`)).json().url, '/');
  assert.equal((await send(`${gw.url}/svc?x=1`)).json().url, '/?x=1');
});

test('hop-by-hop headers are removed both ways and X-Forwarded-* are set', async (t) => {
  const be = await startBackend(t, echoHandler);
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const raw = await rawRequest(
    gw.port,
    'GET /x HTTP/1.1\r\nHost: public.example:8443\r\nConnection: close, x-drop-me\r\nX-Drop-Me: 1\r\nTE: trailers\r\n' +
      'Proxy-Authorization: Basic abc\r\nX-Forwarded-For: 203.0.113.9\r\nX-Custom: kept\r\n\r\n',
  );
  const [head, body] = raw.split('\r\n\r\n') as [string, string];
  const r = { json: () => JSON.parse(body), headers: Object.fromEntries(head.split('\r\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()])) };
  const seen = r.json().headers;
  assert.equal(seen['x-drop-me'], undefined);
  assert.equal(seen.te, undefined);
  assert.equal(seen['proxy-authorization'], undefined);
  assert.equal(seen['x-custom'], 'kept');
  assert.equal(seen.host, 'public.example:8443', 'Host is preserved');
  assert.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  assert.equal(seen['x-forwarded-host'], 'public.example:8443');
  assert.equal(seen['x-forwarded-proto'], 'http');
  assert.match(seen['x-request-id'], /^[0-9a-f]{32}$/);
  assert.equal(r.headers['x-backend-private'], undefined, 'a response header named in Connection is dropped');
  assert.equal(r.headers['keep-alive'] === 'timeout=5', false);
  assert.equal(r.headers['x-kept'], 'yes');
});

test('Upgrade and HTTP2-Settings without a Connection upgrade are never forwarded on a plain request', async (t) => {
  const be = await startBackend(t, echoHandler);
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const raw = await rawRequest(gw.port, 'GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQ\r\nConnection: close\r\n\r\n');
  const seen = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).headers;
  assert.equal(seen.upgrade, undefined);
  assert.equal(seen['http2-settings'], undefined);
});

test('a generated request id is returned to the client and forwarded to the backend', async (t) => {
  const be = await startBackend(t, echoHandler);
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const r = await send(`${gw.url}/x`);
  assert.match(String(r.headers['x-request-id']), /^[0-9a-f]{32}$/);
  assert.equal(r.json().headers['x-request-id'], r.headers['x-request-id']);
});

test('a valid client request id is reused and an invalid one is replaced', async (t) => {
  const be = await startBackend(t, echoHandler);
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const ok = await send(`${gw.url}/x`, { headers: { 'x-request-id': 'trace-42.a:b_c' } });
  assert.equal(ok.headers['x-request-id'], 'trace-42.a:b_c');
  assert.equal(ok.json().headers['x-request-id'], 'trace-42.a:b_c');
  for (const bad of ['has space', 'x'.repeat(129), '<script>', 'a,b']) {
    const r = await send(`${gw.url}/x`, { headers: { 'x-request-id': bad } });
    assert.match(String(r.headers['x-request-id']), /^[0-9a-f]{32}$/, `replaced: ${bad}`);
    assert.equal(r.json().headers['x-request-id'], r.headers['x-request-id']);
  }
});

test('every request emits exactly one completion record naming route, backend and real milliseconds', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /api\n    backend: ${be.url}\n`);
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  const ok = await send(`${gw.url}/api/a?q=1`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
  await send(`${gw.url}/nowhere`);
  assert.equal(records.length, 2);
  const [first, second] = records as [CompletionRecord, CompletionRecord];
  assert.equal(first.id, ok.headers['x-request-id']);
  assert.equal(first.method, 'POST');
  assert.equal(first.path, '/api/a');
  assert.equal(first.query, 'q=1');
  assert.equal(first.route, '/api');
  assert.equal(first.backend, be.url);
  assert.equal(first.status, 200);
  assert.equal(first.bytesIn, 5);
  assert.ok(first.bytesOut > 0);
  assert.ok(first.latencyMs > 0 && first.latencyMs < 5000, `latency in ms: ${first.latencyMs}`);
  assert.equal(first.clientIp, '127.0.0.1');
  assert.equal(second.route, null);
  assert.equal(second.status, 404);
  assert.equal(second.decision, 'not_found');
});

test('round-robin sends the first request to the first backend, then in order', async (t) => {
  const bs = [await startBackend(t), await startBackend(t), await startBackend(t)];
  const gw = await startGateway(t, `routes:\n  - path: /\n    backends: [${bs.map((b) => `"${b.url}"`).join(', ')}]\n`);
  const ports = [];
  for (let i = 0; i < 6; i++) ports.push((await send(`${gw.url}/`)).json().port);
  assert.deepEqual(ports, [bs[0]!.port, bs[1]!.port, bs[2]!.port, bs[0]!.port, bs[1]!.port, bs[2]!.port]);
});

test('random balancing spreads requests over every backend', async (t) => {
  const bs = [await startBackend(t), await startBackend(t)];
  const gw = await startGateway(t, `routes:\n  - path: /\n    strategy: random\n    backends: [${bs.map((b) => `"${b.url}"`).join(', ')}]\n`);
  const seen = new Set<number>();
  for (let i = 0; i < 40; i++) seen.add((await send(`${gw.url}/`)).json().port);
  assert.equal(seen.size, 2);
});

test('an unhealthy backend is skipped and a route with none available answers 503 no_healthy_backend', async (t) => {
  const a = await startBackend(t);
  const b = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /\n    backends: ["${a.url}", "${b.url}"]\n`);
  gw.backends.get(a.url)!.healthy = false;
  for (let i = 0; i < 4; i++) assert.equal((await send(`${gw.url}/`)).json().port, b.port);
  gw.backends.get(b.url)!.healthy = false;
  const r = await send(`${gw.url}/`);
  assert.equal(r.status, 503);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.json().error.code, 'no_healthy_backend');
  assert.equal(r.json().error.request_id, r.headers['x-request-id']);
});

test('requests with dot segments cannot walk out of a route prefix', async (t) => {
  const be = await startBackend(t, echoHandler);
  const gw = await startGateway(t, `routes:\n  - path: /public\n    backend: ${be.url}\n`);
  for (const p of ['/public/../admin', '/public/%2e%2e/admin', '/public/./x', '/public/%2E%2E%2Fadmin']) {
    const raw = await rawRequest(gw.port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 400 /, p);
    assert.match(raw, /"code":"bad_request"/);
  }
  assert.deepEqual(be.requests.filter((r) => !r.headers['x-health-check']).map((r) => r.url), []);
});
