/** The adaptive limit's client of an anonymous request: the IPv4 address, or an IPv6 address's /64. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { clientKey } from '../../src/adaptive/index.js';

it('keys an IPv4 client by its address and an IPv6 client by its /64, however the address is written', () => {
  assert.equal(clientKey('203.0.113.7'), '203.0.113.7');
  assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:DB8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(clientKey('::ffff:198.51.100.9'), '198.51.100.9');
});
