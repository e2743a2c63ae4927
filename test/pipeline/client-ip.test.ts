import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientIpResolver, peerIpOf, pickRequestId } from '../../src/pipeline/index.js';

test('without trusted proxies the socket peer is the client and X-Forwarded-For is ignored', () => {
  const r = new ClientIpResolver([]);
  assert.equal(r.resolve('::ffff:10.0.0.5', '203.0.113.1'), '10.0.0.5');
});

test('behind trusted proxies the right-most untrusted hop is the client', () => {
  const r = new ClientIpResolver(['10.0.0.0/8', '2001:db8::/32']);
  assert.equal(r.resolve('10.0.0.5', '203.0.113.1, 10.1.1.1'), '203.0.113.1');
  assert.equal(r.resolve('10.0.0.5', '198.51.100.2, 203.0.113.1'), '203.0.113.1', 'a client cannot choose its own address by prepending hops');
  assert.equal(r.resolve('2001:db8::1', '2001:db9::7'), '2001:db9::7');
  assert.equal(r.resolve('192.0.2.9', '203.0.113.1'), '192.0.2.9', 'an untrusted peer is the client whatever it claims');
});

test('a garbage X-Forwarded-For from a trusted proxy falls back to the peer', () => {
  const r = new ClientIpResolver(['127.0.0.1']);
  assert.equal(r.resolve('127.0.0.1', 'not-an-ip, <script>'), '127.0.0.1');
});

test('request ids: 1-128 safe characters are reused, anything else is replaced by 128 random bits', () => {
  assert.equal(pickRequestId('abc-123_x.y:z'), 'abc-123_x.y:z');
  for (const bad of [undefined, '', 'a b', 'x'.repeat(129), ['a', 'b'], 'é']) assert.match(pickRequestId(bad as never), /^[0-9a-f]{32}$/);
  assert.notEqual(pickRequestId(undefined), pickRequestId(undefined));
});

test('fresh request ids are 32 hex characters and all different, across the batches they are cut from', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = pickRequestId(undefined);
    assert.match(id, /^[0-9a-f]{32}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 5000);
});

test('the peer address is read from a socket once and unwrapped from its IPv4-mapped form', () => {
  let reads = 0;
  const socket = {
    get remoteAddress() {
      reads++;
      return '::ffff:10.1.2.3';
    },
  };
  assert.equal(peerIpOf(socket), '10.1.2.3');
  assert.equal(peerIpOf(socket), '10.1.2.3');
  assert.equal(reads, 1);
  // A closed socket has no address: nothing is remembered, the next read asks again.
  let addr: string | undefined;
  const closed = {
    get remoteAddress() {
      return addr;
    },
  };
  assert.equal(peerIpOf(closed), '');
  addr = '::1';
  assert.equal(peerIpOf(closed), '::1');
});
