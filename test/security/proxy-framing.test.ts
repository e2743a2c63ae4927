import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawRequest, send, startBackend, startGateway } from '../helpers/gateway.js';
import { rawBackend } from './proxy-helpers.js';

test('a backend 204 carrying a body gives the client 502, and counts against the backend', async (t) => {
  const be = await rawBackend(t, (socket) => {
    socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 11\r\n\r\nhidden-body');
  });
  const gw = await startGateway(t, `circuitbreaker:\n  threshold: 2\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const r = await send(`${gw.url}/x`);
  assert.equal(r.status, 502);
  assert.equal(r.json().error.code, 'upstream_error');
  assert.match(r.json().error.message, /204/);
  await send(`${gw.url}/x`);
  assert.equal(gw.backends.get(be.url)!.breaker!.state, 'open');
});

test('a backend 204 followed by body bytes it did not announce gives 502; a clean 204 is relayed', async (t) => {
  const be = await rawBackend(t, (socket, head) => {
    if (head.startsWith('GET /sneaky')) socket.write('HTTP/1.1 204 No Content\r\nX-Kept: 1\r\n\r\nhidden-body');
    else socket.write('HTTP/1.1 204 No Content\r\nX-Kept: 1\r\n\r\n');
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const sneaky = await send(`${gw.url}/sneaky`);
  assert.equal(sneaky.status, 502);
  assert.match(sneaky.json().error.message, /body with a 204/);
  const clean = await send(`${gw.url}/clean`);
  assert.equal(clean.status, 204);
  assert.equal(clean.headers['x-kept'], '1');
  assert.equal(clean.text, '');
});

test('a backend 304 with Transfer-Encoding gives 502; a plain 304 is relayed', async (t) => {
  const be = await rawBackend(t, (socket, head) => {
    if (head.startsWith('GET /chunked')) socket.write('HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
    else socket.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n');
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  assert.equal((await send(`${gw.url}/chunked`)).status, 502);
  const ok = await send(`${gw.url}/plain`);
  assert.equal(ok.status, 304);
  assert.equal(ok.headers.etag, '"v1"');
});

test('more header fields than server.max_headers get 431 and are never forwarded with the body dropped', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `server:\n  max_headers: 20\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  let headers = '';
  for (let i = 0; i < 25; i++) headers += `X-F${i}: ${i}\r\n`;
  // Content-Length comes last, where a count limit would have cut it off and left the body as a next request.
  const raw = await rawRequest(gw.port, `POST /many HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n`);
  assert.match(raw, /^HTTP\/1\.1 431 /);
  assert.match(raw, /"code":"header_too_large"/);
  assert.equal(be.requests.filter((r) => !r.headers['x-health-check']).length, 0);
  let fine = '';
  for (let i = 0; i < 15; i++) fine += `X-F${i}: ${i}\r\n`;
  assert.match(await rawRequest(gw.port, `GET /ok HTTP/1.1\r\nHost: x\r\n${fine}Connection: close\r\n\r\n`), /^HTTP\/1\.1 200 /);
});

test('an HTTP/2.0 request line gets 505 and an HTTP/0.9 one gets 400, neither forwarded', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const h2 = await rawRequest(gw.port, 'GET /v2 HTTP/2.0\r\nHost: x\r\n\r\n');
  assert.match(h2, /^HTTP\/1\.1 505 /);
  assert.match(h2, /"code":"http_version_not_supported"/);
  const h09 = await rawRequest(gw.port, 'GET /v09\r\n\r\n');
  assert.match(h09, /^HTTP\/1\.1 400 /);
  assert.match(h09, /"code":"bad_request"/);
  assert.ok(!be.requests.some((r) => r.url?.startsWith('/v')));
  assert.match(await rawRequest(gw.port, 'GET /v10 HTTP/1.0\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 200 /);
});
