import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BucketKeys, clientKey } from '../../src/pipeline/index.js';
import { MAX_REMEMBERED_KEYS } from '../../src/pipeline/client-key.js';

test('a bucket key is the prefix and the derived part, the same string each time a part comes again', () => {
  const keys = new BucketKeys('r:/api i:', clientKey);
  assert.equal(keys.of('192.0.2.1'), 'r:/api i:192.0.2.1');
  assert.equal(keys.of('2001:db8:a:b::1'), 'r:/api i:2001:db8:a:b::/64');
  assert.equal(keys.of('2001:db8:a:b:ffff::2'), 'r:/api i:2001:db8:a:b::/64');
  const plain = new BucketKeys('c:');
  assert.equal(plain.of('alice'), 'c:alice');
  assert.equal(plain.of('alice'), plain.of('alice'));
});

test('past the parts it remembers it starts over and still makes every key right', () => {
  const keys = new BucketKeys('c:');
  const first = keys.of('c0');
  for (let i = 1; i <= MAX_REMEMBERED_KEYS + 10; i++) {
    assert.equal(keys.of(`c${i}`), `c:c${i}`);
    assert.ok(keys.size <= MAX_REMEMBERED_KEYS, `holds ${keys.size} parts`);
  }
  assert.equal(keys.size, 11, 'started over once, at the limit');
  assert.equal(keys.of('c0'), first);
});
