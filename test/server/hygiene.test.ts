import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { rawRequest, send, startBackend, startGateway, until } from '../helpers/gateway.js';

async function gatewayWithProbe(t: Parameters<typeof startGateway>[0], extra = '') {
  const be = await startBackend(t);
  const gw = await startGateway(t, `${extra}routes:\n  - path: /\n    backend: ${be.url}\n`);
  const forwarded = () => be.requests.filter((r) => !r.headers['x-health-check']).length;
  return { gw, be, forwarded };
}

test('Content-Length together with Transfer-Encoding is refused with 400 and never forwarded', async (t) => {
  const { gw, forwarded } = await gatewayWithProbe(t);
  const raw = await rawRequest(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.match(raw, /"code":"bad_request"/);
  assert.equal(forwarded(), 0);
});

test('a duplicate Content-Length is refused with 400 and never forwarded', async (t) => {
  const { gw, forwarded } = await gatewayWithProbe(t);
  const raw = await rawRequest(gw.port, 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 10\r\n\r\nabc');
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.equal(forwarded(), 0);
});

test('an obs-fold header line is refused with 400 and never forwarded', async (t) => {
  const { gw, forwarded } = await gatewayWithProbe(t);
  const raw = await rawRequest(gw.port, 'GET /x HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.equal(forwarded(), 0);
});

test('oversized request headers are refused with 431 and never forwarded', async (t) => {
  const { gw, forwarded } = await gatewayWithProbe(t, 'server:\n  max_header_size: 4096\n');
  const raw = await rawRequest(gw.port, `GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
  assert.match(raw, /^HTTP\/1\.1 431 /);
  assert.match(raw, /"code":"header_too_large"/);
  assert.equal(forwarded(), 0);
});

test('a request without a Host header is refused with 400', async (t) => {
  const { gw, forwarded } = await gatewayWithProbe(t);
  const raw = await rawRequest(gw.port, 'GET /x HTTP/1.1\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.equal(forwarded(), 0);
});

test('an absolute-form request target is refused with 400', async (t) => {
  const { gw, forwarded } = await gatewayWithProbe(t);
  const raw = await rawRequest(gw.port, 'GET http://evil.example/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 400 /);
  assert.equal(forwarded(), 0);
});

test('a slowloris attacker holding hundreds of connections cannot keep normal clients from being served', async (t) => {
  const { gw } = await gatewayWithProbe(t, 'server:\n  header_timeout: "2s"\n');
  const sockets: Socket[] = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  const connected: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) {
    const s = connect(gw.port, '127.0.0.1');
    s.on('error', () => {});
    connected.push(new Promise<void>((r) => s.once('connect', () => r()).once('close', () => r())));
    s.write('GET / HTTP/1.1\r\nHost: a\r\n');
    sockets.push(s);
  }
  // Trickle a header byte now and then, as slowloris does.
  const trickle = setInterval(() => sockets.forEach((s) => s.writable && s.write('X-a: b\r\n')), 200);
  t.after(() => clearInterval(trickle));
  // Every attacker connection is established before the normal clients come.
  await Promise.all(connected);
  for (let i = 0; i < 20; i++) {
    const started = Date.now();
    const r = await send(`${gw.url}/ok`);
    assert.equal(r.status, 200);
    assert.ok(Date.now() - started < 1000, 'served promptly');
  }
  // The header timeout (2 s) eventually drops the attackers: wait for it, bounded.
  const closedCount = () => sockets.filter((s) => s.destroyed || s.readableEnded || !s.writable).length;
  await until(() => closedCount() > 250, 10_000, 50).catch(() => {});
  const closed = closedCount();
  assert.ok(closed > 250, `only ${closed} of 300 slow connections were dropped by the header timeout`);
});
