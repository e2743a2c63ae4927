import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompletionBus, redactInPlace } from '../../src/events/index.js';
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
