/**
 * Issue 7, item 9: an IPv6 client holds a whole /64 and can pick a new source address for every
 * request, so per-address buckets gave it 2^64 of them. Rate-limit buckets (and the credential
 * failure budget) of IPv6 clients are kept per /64, as the sign-in throttle already was.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey } from '../../src/pipeline/index.js';
import { startBackend, startGateway } from '../helpers/gateway.js';
import { rawExchange } from './access-helpers.js';

function from(port: number, forwardedFor: string, headers = ''): Promise<number> {
  return rawExchange(port, `GET /api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: ${forwardedFor}\r\nConnection: close\r\n${headers}\r\n`).then((r) => r.status);
}

describe('access control: IPv6 clients', () => {
  it('gives every address of one IPv6 /64 a single rate-limit bucket, and another /64 its own', async (t) => {
    const backend = await startBackend(t);
    const gw = await startGateway(
      t,
      `server:\n  trusted_proxies: ["127.0.0.1"]\nroutes:\n  - path: /api\n    backend: ${backend.url}\nratelimit:\n  max_tokens: 3\n  refill_rate: 0.001\n`,
    );
    // A rotating source address inside 2001:db8:1:2::/64, written in several spellings.
    const rotating = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:DB8:1:2:0:0:0:3', '2001:0db8:0001:0002::4', '2001:db8:1:2::5'];
    const statuses = [];
    for (const addr of rotating) statuses.push(await from(gw.port, addr));
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    // The neighbouring /64 and an IPv4 client are other clients.
    assert.equal(await from(gw.port, '2001:db8:1:3::1'), 200);
    assert.equal(await from(gw.port, '203.0.113.9'), 200);
  });

  it('keeps one credential failure budget per IPv6 /64', async (t) => {
    const backend = await startBackend(t);
    const gw = await startGateway(
      t,
      `server:\n  trusted_proxies: ["127.0.0.1"]\nauth:\n  api_keys: ["the-right-key-for-ipv6"]\n  failure_budget:\n    max_failures: 3\nroutes:\n  - path: /api\n    backend: ${backend.url}\n`,
    );
    for (let i = 1; i <= 3; i++) assert.equal(await from(gw.port, `2001:db8:9:9::${i}`, `X-API-Key: wrong-key-${i}\r\n`), 401);
    assert.equal(await from(gw.port, '2001:db8:9:9::abcd', 'X-API-Key: the-right-key-for-ipv6\r\n'), 429);
    assert.equal(await from(gw.port, '2001:db8:9:a::1', 'X-API-Key: the-right-key-for-ipv6\r\n'), 200);
  });
});

describe('clientKey', () => {
  it('keeps an IPv4 address as it is and reduces IPv6 to its /64 in one spelling', () => {
    assert.equal(clientKey('203.0.113.7'), '203.0.113.7');
    for (const a of ['2001:db8:a:b::1', '2001:DB8:A:B:1:2:3:4', '2001:0db8:000a:000b::', '2001:db8:a:b::1.2.3.4', '2001:db8:a:b::1%eth0']) {
      assert.equal(clientKey(a), '2001:db8:a:b::/64', a);
    }
    assert.equal(clientKey('::1:2:3:4:5:6'), '0:0:1:2::/64');
    assert.equal(clientKey('1::2:3:4:5:6'), '1:0:0:2::/64');
    assert.equal(clientKey('::1'), '0:0:0:0::/64');
  });
});
