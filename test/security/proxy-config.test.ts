import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load, onlyProblem } from '../config/helpers.js';

const route = (extra: string) => `routes:\n  - path: "/ws"\n    backend: "http://127.0.0.1:9001"\n${extra}`;

test('the proxy hardening keys have safe defaults', () => {
  const c = load(route(''));
  assert.equal(c.server.max_connections, 10_000);
  assert.equal(c.server.max_headers, 100);
  assert.equal(c.server.request_buffer, 64 * 1024);
  assert.equal(c.server.body_timeout, 30_000);
  assert.equal(c.server.tunnel_idle_timeout, 600_000);
  assert.deepEqual(c.routes[0]!.upgrades, ['websocket']);
});

test('routes[].upgrades is kept lower-case and request_buffer 0 turns buffering off', () => {
  const c = load(`server:\n  request_buffer: 0\n${route('    upgrades: [WebSocket, "My-Proto/2"]\n')}`);
  assert.deepEqual(c.routes[0]!.upgrades, ['websocket', 'my-proto/2']);
  assert.equal(c.server.request_buffer, 0);
});

test('an h2c upgrade token is refused with its position', () => {
  const p = onlyProblem(route('    upgrades: [websocket, h2c]\n'));
  assert.equal(p.key, 'routes[0].upgrades[1]');
  assert.equal(p.line, 4);
  assert.match(p.message, /h2c cannot be tunnelled/);
});

test('an upgrade entry that is not a token is refused', () => {
  assert.match(onlyProblem(route('    upgrades: ["web socket"]\n')).message, /upgrade token/);
});

test('max_headers and the new durations are validated', () => {
  assert.equal(onlyProblem(`server:\n  max_headers: 5000\n${route('')}`).key, 'server.max_headers');
  assert.equal(onlyProblem(`server:\n  body_timeout: "soon"\n${route('')}`).key, 'server.body_timeout');
  assert.equal(onlyProblem(`server:\n  tunnel_idle_timeout: 0\n${route('')}`).key, 'server.tunnel_idle_timeout');
  assert.equal(onlyProblem(`server:\n  max_connections: 0\n${route('')}`).key, 'server.max_connections');
});
