/**
 * Hole 4 of the security review: a raw backslash is a path separator to many backends (Windows
 * servers, some frameworks), so `/pub/x\..\..\api/v1/private` on a public route would reach the
 * protected `/api/v1/private`. The gateway refuses any raw backslash in the path (400), and refuses
 * dot segments however they are spelled (`%2e`, `%5c`, `%2f`, mixed), for requests and upgrades.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { startBackend, startGateway } from '../helpers/gateway.js';
import { rawExchange } from './access-helpers.js';

/** What reached the backend, health probes aside. */
function proxied(backend: { requests: import('node:http').IncomingMessage[] }): (string | undefined)[] {
  return backend.requests.filter((r) => r.headers['x-health-check'] === undefined).map((r) => r.url);
}

async function setup(t: TestContext) {
  const backend = await startBackend(t);
  const gw = await startGateway(
    t,
    `auth:\n  api_keys: ["key-for-path-tests-0001"]\nroutes:\n  - path: /pub\n    backend: ${backend.url}\n    public: true\n  - path: /api/v1\n    backend: ${backend.url}\n`,
  );
  return { backend, gw };
}

/** Status line and body of a raw request on its own connection. */
async function raw(port: number, target: string, extra = ''): Promise<{ status: number; text: string }> {
  return rawExchange(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`);
}

const ATTACKS = [
  '/pub/x\\..\\..\\api/v1/private',
  '/pub\\..\\api/v1/private',
  '/pub/x\\..',
  '/pub/x\\.\\y',
  '/pub/a\\b',
  '/pub/x%5c..%5c..%5capi/v1/private',
  '/pub/x%5C..%5C..%5Capi/v1/private',
  '/pub/x%5c..\\..\\api/v1/private',
  '/pub/x\\..%5c..%5capi/v1/private',
  '/pub/x/..%5c..%5capi/v1/private',
  '/pub/x%2f..%2f..%2fapi/v1/private',
  '/pub/x/%2e%2e/%2e%2e/api/v1/private',
  '/pub/x\\%2e%2e\\%2e%2e\\api/v1/private',
  '/pub/x/.%2e/api/v1/private',
  '/pub/..;/api/v1/private',
  '/pub/x/..;jsessionid=1/..;/api/v1/private',
];

describe('access control: backslash and dot-segment paths', () => {
  it('refuses every backslash or dot-segment spelling on a public route with 400 before the backend sees it', async (t) => {
    const { backend, gw } = await setup(t);
    for (const target of ATTACKS) {
      const r = await raw(gw.port, target);
      assert.equal(r.status, 400, `${target}: ${r.text}`);
      assert.match(r.text, /"code":"bad_request"/, target);
    }
    assert.deepEqual(
      proxied(backend),
      [],
      'no attack reached the backend',
    );
    // A plain public path still works, and so does a percent-encoded backslash that walks nowhere.
    assert.equal((await raw(gw.port, '/pub/x/y')).status, 200);
    assert.equal((await raw(gw.port, '/pub/file%5cname')).status, 200);
    assert.deepEqual(
      proxied(backend),
      ['/pub/x/y', '/pub/file%5cname'],
    );
  });

  it('refuses the same paths on an upgrade request before any tunnel is opened', async (t) => {
    const { backend, gw } = await setup(t);
    const upgrade = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    for (const target of ATTACKS) {
      const r = await raw(gw.port, target, upgrade);
      assert.equal(r.status, 400, `${target}: ${r.text}`);
    }
    assert.equal(proxied(backend).length, 0, 'no upgrade reached the backend');
  });
});
