import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { rawRequest, send, startBackend, startGateway, until, wait } from '../helpers/gateway.js';

test('requests with two Host headers get 400 and never open the breaker for everyone else', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const backend = gw.backends.get(be.url)!;
  for (let i = 0; i < 8; i++) {
    const raw = await rawRequest(gw.port, `GET /dup/${i} HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 400 /, `attempt ${i}`);
    assert.match(raw, /"code":"bad_request"/);
  }
  // Spelled differently, and on an upgrade request too.
  assert.match(await rawRequest(gw.port, 'GET /dup HTTP/1.1\r\nhost: a\r\nHOST: b\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.match(await rawRequest(gw.port, 'GET /dup HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'), /^HTTP\/1\.1 400 /);
  assert.ok(!be.requests.some((r) => r.url?.startsWith('/dup')), 'a duplicate-Host request reached the backend');
  assert.equal(backend.breaker!.state, 'closed');
  const ok = await send(`${gw.url}/fine`);
  assert.equal(ok.status, 200);
});

test('clients that abort their uploads never open the breaker', async (t) => {
  const be = await startBackend(t, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const gw = await startGateway(t, `server:\n  request_buffer: 1KB\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const backend = gw.backends.get(be.url)!;
  const decisions: (string | undefined)[] = [];
  gw.bus.subscribe((r) => decisions.push(r.decision));
  for (let i = 0; i < 7; i++) {
    // A large declared body streams to the backend; the client hangs up half way.
    const s = connect(gw.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(5000)}`);
    await until(() => backend.inFlight === 1, 3000);
    s.destroy();
    await until(() => decisions.length === i + 1, 3000);
  }
  assert.deepEqual(new Set(decisions), new Set(['client_aborted']));
  assert.equal(backend.breaker!.state, 'closed');
  assert.equal((await send(`${gw.url}/fine`, { method: 'POST', body: 'x' })).status, 200);
  await wait(10);
});
