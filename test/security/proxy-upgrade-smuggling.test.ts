import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import type { CompletionRecord } from '../../src/events/index.js';
import { startBackend, startGateway, until, wait } from '../helpers/gateway.js';
import { rawBackend, rawClient } from './proxy-helpers.js';

const KEY = 'k-0123456789abcdef';
const AUTH = `auth:\n  api_keys: ["${KEY}"]\n`;
const SMUGGLED = 'GET /api/v1/private HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n';

test('a WebSocket handshake answered 200 is relayed as a plain response and the connection closed: a smuggled request never reaches the backend', async (t) => {
  const be = await rawBackend(t, (socket) => {
    // Answers 200 and keeps reading: whatever comes next on this connection would be served.
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello');
  });
  const gw = await startGateway(t, `${AUTH}routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text, closed } = rawClient(t, gw.port);
  socket.write(`GET /ws HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await until(() => text().includes('hello'));
  assert.match(text(), /^HTTP\/1\.1 200 /);
  assert.match(text(), /\r\nconnection: close\r\n/i);
  // The attacker's next request, without credentials, on the same connection.
  if (!socket.destroyed) socket.write(SMUGGLED);
  await until(closed, 3000);
  await wait(50);
  assert.equal(be.connections.length, 1);
  assert.doesNotMatch(be.seen(), /private/, 'the smuggled request reached the backend');
});

test('a handshake answered with a status line that merely contains 101 is not a tunnel', async (t) => {
  const be = await rawBackend(t, (socket) => {
    socket.write('HTTP/1.1 200 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n');
  });
  const gw = await startGateway(t, `${AUTH}routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text, closed } = rawClient(t, gw.port);
  socket.write(`GET /ws HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
  await until(() => text().includes('\r\n\r\n'));
  assert.match(text(), /^HTTP\/1\.1 200 /);
  if (!socket.destroyed) socket.write(SMUGGLED);
  await until(closed, 3000);
  assert.doesNotMatch(be.seen(), /private/);
});

test('an h2c upgrade is stripped and proxied as plain HTTP/1.1, and the connection stays under auth', async (t) => {
  const be = await startBackend(t);
  const upgrades: string[] = [];
  be.server.on('upgrade', (req, socket) => {
    // A backend that happily switches to HTTP/2 for anyone who asks.
    upgrades.push(String(req.headers.upgrade));
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
  });
  const gw = await startGateway(t, `${AUTH}routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text } = rawClient(t, gw.port);
  socket.write(
    `GET /h2 HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
  );
  await until(() => text().includes('"path":"/h2"'));
  assert.match(text(), /^HTTP\/1\.1 200 /);
  assert.deepEqual(upgrades, []);
  const seen = be.requests.find((r) => r.url === '/h2')!;
  assert.equal(seen.headers.upgrade, undefined);
  assert.equal(seen.headers['http2-settings'], undefined);
  assert.doesNotMatch(String(seen.headers.connection ?? ''), /upgrade|http2-settings/i);
  // The next request on the connection, without credentials, meets auth like any other.
  socket.write('GET /api/v1/private HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => /HTTP\/1\.1 401 /.test(text()));
  assert.ok(!be.requests.some((r) => r.url === '/api/v1/private'));
});

/** Upgraded backend sockets are not the backend server's to close: destroyed first (hooks run in order). */
function upgradedSockets(t: { after: (fn: () => unknown) => void }): Duplex[] {
  const list: Duplex[] = [];
  t.after(() => list.forEach((s) => s.destroy()));
  return list;
}

test('an upgrade token outside the route list is stripped even when listed next to an allowed one', async (t) => {
  const upgraded = upgradedSockets(t);
  const be = await startBackend(t);
  const upgrades: string[] = [];
  be.server.on('upgrade', (req, socket) => {
    upgrades.push(String(req.headers.upgrade));
    upgraded.push(socket);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`);
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text } = rawClient(t, gw.port);
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c, WebSocket\r\n\r\n');
  await until(() => text().includes('\r\n\r\n'));
  assert.match(text(), /^HTTP\/1\.1 101 /);
  assert.deepEqual(upgrades, ['WebSocket']);
});

test('a backend that switches to a protocol nobody asked for gets the client a 502, not a tunnel', async (t) => {
  const be = await rawBackend(t, (socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text, closed } = rawClient(t, gw.port);
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  await until(() => text().includes('}'));
  assert.match(text(), /^HTTP\/1\.1 502 /);
  assert.match(text(), /"code":"upstream_error"/);
  await until(closed, 3000);
});

test('routes[].upgrades admits the listed tokens, case-insensitively', async (t) => {
  const upgraded = upgradedSockets(t);
  const be = await startBackend(t);
  be.server.on('upgrade', (req, socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`);
    socket.pipe(socket);
    upgraded.push(socket);
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n    upgrades: [websocket, My-Proto]\n`);
  const { socket, text } = rawClient(t, gw.port);
  socket.write('GET /p HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: my-proto\r\n\r\n');
  await until(() => text().includes('\r\n\r\n'));
  assert.match(text(), /^HTTP\/1\.1 101 /);
  socket.write('echo-me');
  await until(() => text().includes('echo-me'));
});

test("the tunnel's 502 is a JSON error carrying the request id", async (t) => {
  const be = await startBackend(t);
  be.server.on('upgrade', (_req, socket) => socket.destroy());
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text } = rawClient(t, gw.port);
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nX-Request-Id: tunnel-502-id\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  await until(() => text().includes('}'));
  assert.match(text(), /^HTTP\/1\.1 502 /);
  assert.match(text(), /content-type: application\/json/i);
  const body = JSON.parse(text().slice(text().indexOf('\r\n\r\n') + 4));
  assert.deepEqual(body, { error: { code: 'upstream_error', message: body.error.message, request_id: 'tunnel-502-id' } });
});

test('a handshake answered without switching keeps the answer\'s headers in the completion record, a credential among them redacted', async (t) => {
  const be = await rawBackend(t, (socket) => {
    socket.write('HTTP/1.1 403 Forbidden\r\nSet-Cookie: session=backend-secret\r\nX-Reason: no-ws\r\nContent-Length: 2\r\n\r\nno');
  });
  const gw = await startGateway(t, `${AUTH}routes:\n  - path: /\n    backend: ${be.url}\n`);
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  const { socket, text } = rawClient(t, gw.port);
  socket.write(`GET /ws HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await until(() => text().includes('\r\n\r\nno'));
  assert.match(text(), /\r\nSet-Cookie: session=backend-secret\r\n/i, 'the client gets the cookie');
  await until(() => records.length > 0);
  const list = records[0]!.responseHeaders!;
  const value = (name: string) => list.find((n, i) => i % 2 === 0 && n.toLowerCase() === name) && list[list.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === name) + 1];
  assert.equal(value('set-cookie'), '[redacted]');
  assert.equal(value('x-reason'), 'no-ws');
  assert.equal(value('x-request-id'), records[0]!.id);
  assert.ok(!JSON.stringify(records[0]).includes('backend-secret'));
});
