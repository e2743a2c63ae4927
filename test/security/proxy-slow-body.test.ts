import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { send, startBackend, startGateway, until } from '../helpers/gateway.js';

const SLOW = 300;

function echoBody(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  let n = 0;
  req.on('data', (c: Buffer) => (n += c.length));
  req.on('end', () => res.end(JSON.stringify({ n })));
}

test('300 clients trickling request bodies hold no backend connection: other clients are served, stalled bodies get 408', async (t) => {
  const be = await startBackend(t, echoBody);
  const gw = await startGateway(
    t,
    `server:\n  upstream_connections: 4\n  upstream_queue_limit: 4\n  body_timeout: 1s\nroutes:\n  - path: /\n    backend: ${be.url}\n`,
  );
  const sockets: { socket: Socket; text: () => string }[] = [];
  t.after(() => sockets.forEach((s) => s.socket.destroy()));
  for (let i = 0; i < SLOW; i++) {
    const socket = connect(gw.port, '127.0.0.1');
    let buf = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (buf += c));
    socket.on('error', () => {});
    // Half declare their length, half are chunked: both are read by the gateway before a backend is involved.
    socket.write(i % 2 === 0 ? 'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n' : 'POST /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    sockets.push({ socket, text: () => buf });
  }
  let ticks = 0;
  const trickle = setInterval(() => {
    ticks++;
    sockets.forEach((s, i) => s.socket.writable && s.socket.write(i % 2 === 0 ? 'a' : '1\r\na\r\n'));
  }, 250);
  t.after(() => clearInterval(trickle));
  await until(() => ticks >= 2);
  for (let i = 0; i < 10; i++) {
    const started = Date.now();
    const r = await send(`${gw.url}/normal/${i}`, { method: 'POST', body: 'hello' });
    assert.equal(r.status, 200, `normal client request ${i}: ${r.text}`);
    assert.ok(Date.now() - started < 1000, 'served promptly');
  }
  assert.ok(!be.requests.some((r) => r.url === '/slow'), 'a trickled body took a backend connection');
  // The attackers stop sending: each stalled body is answered 408 once body_timeout passes.
  clearInterval(trickle);
  await until(() => sockets.every((s) => s.text().includes('\r\n\r\n')), 8000);
  for (const s of sockets) {
    assert.match(s.text(), /^HTTP\/1\.1 408 /);
    assert.match(s.text(), /"code":"request_timeout"/);
  }
  assert.ok(!be.requests.some((r) => r.url === '/slow'));
  assert.equal(gw.backends.get(be.url)!.breaker!.state, 'closed');
});

test('a body that stalls while streaming to the backend gets 408 and releases the connection without blaming the backend', async (t) => {
  const be = await startBackend(t, echoBody);
  const gw = await startGateway(t, `server:\n  request_buffer: 1KB\n  body_timeout: 500ms\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const backend = gw.backends.get(be.url)!;
  const socket = connect(gw.port, '127.0.0.1');
  t.after(() => socket.destroy());
  let buf = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (buf += c));
  socket.write(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n${'a'.repeat(3000)}`);
  await until(() => be.requests.some((r) => r.url === '/big'), 3000);
  await until(() => buf.includes('}'), 3000);
  assert.match(buf, /^HTTP\/1\.1 408 /);
  assert.match(buf, /"code":"request_timeout"/);
  await until(() => backend.inFlight === 0, 3000);
  assert.equal(backend.breaker!.state, 'closed');
  const r = await send(`${gw.url}/after`, { method: 'POST', body: 'x'.repeat(5000) });
  assert.deepEqual(r.json(), { n: 5000 });
});

test('bodies within server.request_buffer reach the backend whole (chunked ones with a Content-Length), longer ones intact', async (t) => {
  const seen: { te?: string; cl?: string }[] = [];
  const be = await startBackend(t, (req, res) => {
    seen.push({ te: req.headers['transfer-encoding'], cl: req.headers['content-length'] });
    echoBody(req, res);
  });
  const gw = await startGateway(t, `server:\n  request_buffer: 4KB\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const { Readable } = await import('node:stream');
  const small = await send(`${gw.url}/c`, { method: 'POST', body: Readable.from([Buffer.alloc(1000), Buffer.alloc(1000)]) });
  assert.deepEqual(small.json(), { n: 2000 });
  assert.deepEqual(seen.at(-1), { te: undefined, cl: '2000' });
  // Longer than the buffer: what was read goes first, the rest streams.
  const big = await send(`${gw.url}/c`, { method: 'POST', body: Readable.from(Array.from({ length: 10 }, () => Buffer.alloc(1000))) });
  assert.deepEqual(big.json(), { n: 10000 });
});
