import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startGateway, until } from '../helpers/gateway.js';
import { rawBackend, rawClient } from './proxy-helpers.js';

test('a close-delimited backend body cut by a reset aborts the client response instead of ending it cleanly', async (t) => {
  const be = await rawBackend(t, (socket) => {
    // No Content-Length, no chunking: the body ends when the connection does. Then a reset.
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial-body');
    setTimeout(() => socket.resetAndDestroy(), 50);
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const decisions: (string | undefined)[] = [];
  gw.bus.subscribe((r) => decisions.push(r.decision));
  const { socket, text, closed } = rawClient(t, gw.port);
  socket.write('GET /file HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(closed, 3000);
  assert.match(text(), /^HTTP\/1\.1 200 /);
  assert.match(text(), /partial-body/);
  assert.doesNotMatch(text(), /\r\n0\r\n\r\n$/, 'the truncated body was framed as complete');
  assert.deepEqual(decisions, ['upstream_error']);
});

test('a close-delimited backend body that ends with a clean close still arrives complete', async (t) => {
  const be = await rawBackend(t, (socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nwhole-body');
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text } = rawClient(t, gw.port);
  socket.write('GET /file HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => text().endsWith('0\r\n\r\n'), 3000);
  assert.match(text(), /whole-body/);
});

test('a chunked backend body cut by a reset aborts the client response', async (t) => {
  const be = await rawBackend(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => socket.resetAndDestroy(), 50);
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text, closed } = rawClient(t, gw.port);
  socket.write('GET /file HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(closed, 3000);
  assert.match(text(), /hello/);
  assert.doesNotMatch(text(), /\r\n0\r\n\r\n$/);
});
