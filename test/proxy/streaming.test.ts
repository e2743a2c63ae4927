import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { deadPort, rawRequest, send, startBackend, startGateway, until, wait } from '../helpers/gateway.js';

/** A raw TCP client of the gateway: `text()` is everything it received so far. */
function rawClient(t: { after: (fn: () => unknown) => void }, port: number) {
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let buf = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (buf += c));
  return { socket, text: () => buf };
}

test("a streamed response's first chunk arrives before the backend finishes", async (t) => {
  let finishBackend!: () => void;
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first\n');
    finishBackend = () => res.end('last\n');
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const chunks: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    httpRequest(`${gw.url}/stream`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => chunks.push(c));
      res.on('end', resolve);
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  await until(() => chunks.join('').includes('first'), 3000);
  assert.ok(!chunks.join('').includes('last'), 'the backend has not finished yet');
  finishBackend();
  await done;
  assert.equal(chunks.join(''), 'first\nlast\n');
});

test('server-sent events from a backend reach the client event by event', async (t) => {
  let push!: (s: string) => void;
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    push = (s) => res.write(s);
    req.on('close', () => res.end());
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const got: string[] = [];
  const req = httpRequest(`${gw.url}/events`, (res) => {
    assert.equal(res.headers['content-type'], 'text/event-stream');
    res.setEncoding('utf8');
    res.on('data', (c: string) => got.push(c));
  });
  req.end();
  await until(() => push !== undefined);
  for (let i = 0; i < 3; i++) {
    push(`data: ${i}\n\n`);
    await until(() => got.join('').includes(`data: ${i}\n\n`), 3000);
  }
  req.destroy();
});

test('a 10 MB upload streams through intact', async (t) => {
  const be = await startBackend(t, (req, res) => {
    const hash = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      n += c.length;
    });
    req.on('end', () => res.end(JSON.stringify({ n, sha: hash.digest('hex') })));
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const payload = randomBytes(10 * 1024 * 1024);
  const sized = await send(`${gw.url}/upload`, { method: 'POST', body: payload });
  assert.deepEqual(sized.json(), { n: payload.length, sha: createHash('sha256').update(payload).digest('hex') });
  // Chunked (no Content-Length): streamed in 64 KiB pieces.
  const pieces = Array.from({ length: 160 }, (_, i) => payload.subarray(i * 65536, (i + 1) * 65536));
  const chunked = await send(`${gw.url}/upload`, { method: 'POST', body: Readable.from(pieces) });
  assert.deepEqual(chunked.json(), { n: payload.length, sha: createHash('sha256').update(payload).digest('hex') });
});

test('a body over the limit is refused with 413, with or without Content-Length', async (t) => {
  const be = await startBackend(t, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const gw = await startGateway(t, `server:\n  body_limit: 1KB\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const big = Buffer.alloc(5000, 1);
  const sized = await send(`${gw.url}/u`, { method: 'POST', body: big });
  assert.equal(sized.status, 413);
  assert.equal(sized.json().error.code, 'body_too_large');
  // Chunked (no Content-Length): the limit is found while the body streams, and answered with 413.
  const chunk = (n: number) => `${n.toString(16)}\r\n${'a'.repeat(n)}\r\n`;
  const raw = await rawRequest(gw.port, `POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(800)}${chunk(800)}0\r\n\r\n`);
  assert.match(raw, /^HTTP\/1\.1 413 /);
  assert.match(raw, /"code":"body_too_large"/);
  const small = await send(`${gw.url}/u`, { method: 'POST', body: Buffer.alloc(500, 1) });
  assert.equal(small.status, 200);
});

test('a backend that answers slowly is read with backpressure, not buffered whole', async (t) => {
  const size = 32 * 1024 * 1024;
  let written = 0;
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (written < size) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  await new Promise<void>((resolve, reject) => {
    httpRequest(`${gw.url}/big`, (res) => {
      res.pause();
      setTimeout(() => {
        // The client has read nothing for 300 ms: the backend must have been held back far below 32 MB.
        assert.ok(written < 16 * 1024 * 1024, `backend wrote ${written} bytes while the client read none`);
        res.resume();
        res.on('end', resolve);
      }, 300);
    })
      .on('error', reject)
      .end();
  });
  assert.equal(written, size);
});

test('a WebSocket upgrade passes through to the backend and back', async (t) => {
  const be = await startBackend(t);
  const upgraded: import('node:stream').Duplex[] = [];
  be.server.on('upgrade', (req, socket) => {
    upgraded.push(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Seen-Path: ' + req.url + '\r\n\r\n');
    socket.pipe(socket);
  });
  const gw = await startGateway(t, `routes:\n  - path: /ws\n    backend: ${be.url}\n`);
  const { socket, text } = rawClient(t, gw.port);
  socket.write('GET /ws/chat?room=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  await until(() => text().includes('\r\n\r\n'));
  assert.match(text(), /^HTTP\/1\.1 101 /);
  assert.match(text(), /X-Seen-Path: \/ws\/chat\?room=1/);
  socket.write('ping-through-tunnel');
  await until(() => text().includes('ping-through-tunnel'));
  socket.destroy();
  for (const s of upgraded) s.destroy();
});

test('a client abort releases the upstream request', async (t) => {
  let upstreamClosed = false;
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.on('close', () => (upstreamClosed = true));
    // never answers
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const records: string[] = [];
  gw.bus.subscribe((r) => records.push(r.decision ?? ''));
  const ac = new AbortController();
  const p = send(`${gw.url}/slow`, { signal: ac.signal }).catch(() => 'aborted');
  await until(() => be.requests.some((r) => r.url === '/slow'));
  ac.abort();
  assert.equal(await p, 'aborted');
  await until(() => upstreamClosed, 3000);
  await until(() => records.includes('client_aborted'), 3000);
  await wait(10);
});

test('a client that closes a keep-alive connection releases the upstream requests still open on it, pipelined ones too', async (t) => {
  const closed: string[] = [];
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check'] || req.url === '/fast') return void res.end('ok');
    res.on('close', () => closed.push(req.url!));
    // never answers
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const records: string[] = [];
  gw.bus.subscribe((r) => records.push(`${r.path} ${r.decision ?? r.status}`));
  const client = rawClient(t, gw.port);
  // Two answered requests first: the connection's watch passes from one exchange to the next.
  client.socket.write('GET /fast HTTP/1.1\r\nHost: gw\r\n\r\n');
  await until(() => records.length === 1);
  client.socket.write('GET /fast HTTP/1.1\r\nHost: gw\r\n\r\n');
  await until(() => records.length === 2);
  // Then two pipelined requests the backend never answers, and the client goes away.
  client.socket.write('GET /slow-1 HTTP/1.1\r\nHost: gw\r\n\r\nGET /slow-2 HTTP/1.1\r\nHost: gw\r\n\r\n');
  await until(() => be.requests.filter((r) => r.url!.startsWith('/slow')).length === 2, 3000);
  client.socket.destroy();
  await until(() => closed.length === 2, 3000);
  await until(() => records.length === 4, 3000);
  assert.deepEqual(records.slice(2).sort(), ['/slow-1 client_aborted', '/slow-2 client_aborted']);
  assert.deepEqual(closed.sort(), ['/slow-1', '/slow-2']);
});

test('a client that leaves after its request was retried on another backend releases the retried upstream request', async (t) => {
  const closed: string[] = [];
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.on('close', () => closed.push(req.url!));
    // never answers
  });
  const dead = `http://127.0.0.1:${await deadPort()}`;
  const gw = await startGateway(t, `routes:\n  - path: /\n    backends: ["${dead}", "${be.url}"]\nhealthcheck:\n  interval: 3600\n`);
  const records: { path: string; decision?: string; retried?: unknown }[] = [];
  gw.bus.subscribe((r) => records.push({ path: r.path, decision: r.decision, retried: r.detail?.retried_from }));
  // Once the start-up probe has found the dead backend down, treat it as not probed yet, so it is picked.
  await until(() => gw.backends.get(dead)!.healthy === false, 3000);
  for (const b of gw.backends.values()) b.healthy = null;
  // Round robin: one of the first two requests goes to the dead backend first and is retried.
  for (let i = 0; i < 2; i++) {
    const client = rawClient(t, gw.port);
    client.socket.write(`GET /hang-${i} HTTP/1.1\r\nHost: gw\r\n\r\n`);
    await until(() => be.requests.some((r) => r.url === `/hang-${i}`), 3000);
    client.socket.destroy();
    await until(() => closed.includes(`/hang-${i}`) && records.some((r) => r.path === `/hang-${i}`), 3000);
  }
  assert.ok(records.some((r) => r.retried === dead), JSON.stringify(records));
  for (const r of records) assert.equal(r.decision, 'client_aborted', JSON.stringify(r));
});

test('a backend that hangs up on a WebSocket handshake gives the client 502', async (t) => {
  const be = await startBackend(t);
  be.server.on('upgrade', (_req, socket) => socket.destroy());
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text } = rawClient(t, gw.port);
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  await until(() => text().includes('\r\n\r\n'));
  assert.match(text(), /^HTTP\/1\.1 502 /);
});

test('a client sending Expect: 100-continue gets 100 Continue from the gateway and its body reaches the backend', async (t) => {
  const be = await startBackend(t, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => res.end(JSON.stringify({ body, expect: req.headers.expect ?? null })));
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text } = rawClient(t, gw.port);
  socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  await until(() => text().includes('100 Continue'));
  socket.write('hello');
  await until(() => text().includes('"body"'));
  assert.match(text(), /"body":"hello"/);
  assert.match(text(), /"expect":null/);
});
