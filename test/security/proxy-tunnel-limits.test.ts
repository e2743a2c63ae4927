import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { rawRequest, startBackend, startGateway, until, wait } from '../helpers/gateway.js';
import { rawClient } from './proxy-helpers.js';

test('a tunnel with no bytes either way for tunnel_idle_timeout is closed; a busy one stays open', async (t) => {
  const upgraded: Duplex[] = [];
  t.after(() => upgraded.forEach((s) => s.destroy()));
  const be = await startBackend(t);
  be.server.on('upgrade', (_req, socket) => {
    upgraded.push(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.pipe(socket);
  });
  const gw = await startGateway(t, `server:\n  tunnel_idle_timeout: 600ms\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const { socket, text, closed } = rawClient(t, gw.port);
  socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  await until(() => text().includes('\r\n\r\n'));
  // Busy for two idle periods: every message still comes back.
  for (let i = 0; i < 12; i++) {
    socket.write(`m${i};`);
    await until(() => text().includes(`m${i};`), 2000);
    await wait(100);
  }
  // Then silent: the gateway closes it.
  const silentSince = Date.now();
  await until(closed, 3000);
  assert.ok(Date.now() - silentSince >= 400, 'closed before the idle timeout');
  await until(() => upgraded.every((s) => s.destroyed || s.readableEnded), 3000);
});

test('beyond server.max_connections a new connection is closed at once and everyone else is still served', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `server:\n  max_connections: 5\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const held: Socket[] = [];
  t.after(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 5; i++) {
    const s = connect(gw.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('connect', () => r()));
    held.push(s);
  }
  await wait(50);
  const started = Date.now();
  const refused = await rawRequest(gw.port, 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 3000).catch(() => '');
  assert.equal(refused, '');
  assert.ok(Date.now() - started < 1000, 'the excess connection was not closed fast');
  held.pop()!.destroy();
  await until(async () => /^HTTP\/1\.1 200 /.test(await rawRequest(gw.port, 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 1000).catch(() => '')), 3000);
});
