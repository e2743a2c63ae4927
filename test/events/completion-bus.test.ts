import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompletionBus, isSecretName, namesSecret, redactInPlace, SECRET_HEADERS } from '../../src/events/index.js';
import { completionRecord } from '../helpers/records.js';

test('a throwing listener is reported and the other listeners still get the record', () => {
  const errors: unknown[] = [];
  const bus = new CompletionBus((err) => errors.push(err));
  const got: string[] = [];
  bus.subscribe(() => {
    throw new Error('broken subscriber');
  });
  bus.subscribe((r) => got.push(r.id));
  bus.publish(completionRecord({ id: 'x1' }));
  assert.deepEqual(got, ['x1']);
  assert.equal((errors[0] as Error).message, 'broken subscriber');
});

test('unsubscribing stops delivery', () => {
  const bus = new CompletionBus();
  const got: string[] = [];
  const off = bus.subscribe((r) => got.push(r.id));
  bus.publish(completionRecord({ id: 'a' }));
  off();
  bus.publish(completionRecord({ id: 'b' }));
  assert.deepEqual(got, ['a']);
});

test('credential values are redacted in place, other headers untouched', () => {
  const headers: Record<string, unknown> = { authorization: 'Bearer t', 'x-api-key': 'k', cookie: 'c=1', accept: '*/*' };
  redactInPlace(headers);
  assert.equal(headers.authorization, '[redacted]');
  assert.equal(headers['x-api-key'], '[redacted]');
  assert.equal(headers.cookie, '[redacted]');
  assert.equal(headers.accept, '*/*');
});

test('a header list names a secret whatever the case of the name, and names of the same length that are not secrets do not', () => {
  for (const name of SECRET_HEADERS) {
    for (const spelled of [name, name.toUpperCase(), name[0]!.toUpperCase() + name.slice(1)]) {
      assert.equal(namesSecret(['host', 'x', spelled, 'v']), true, spelled);
    }
  }
  // accept/cookie, user-agent/set-cookie, x-trace-i/x-api-key, content-range/authorization share lengths.
  assert.equal(namesSecret(['Accept', '*/*', 'User-Agent', 'ua', 'Connection', 'close', 'X-Trace-I', '1', 'Content-Range', 'b', 'Host', 'h']), false);
  assert.equal(namesSecret([]), false);
  // Values are never taken for names.
  assert.equal(namesSecret(['x-note', 'cookie']), false);
});

test('no two secret header names share a length (the length table keeps one name per length)', () => {
  const lengths = [...SECRET_HEADERS].map((n) => n.length);
  assert.equal(new Set(lengths).size, lengths.length);
  for (const name of SECRET_HEADERS) assert.equal(isSecretName(name), true, name);
  for (const name of ['accept', 'set-cookies', 'cookie2', 'authorizatio', '', 'a'.repeat(200)]) assert.equal(isSecretName(name), false, name);
});
