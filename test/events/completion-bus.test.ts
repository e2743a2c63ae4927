import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompletionBus, headerListOf, redactList, redactListed, secretNameOf, SECRET_HEADERS } from '../../src/events/index.js';
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

test('credential values in a header list are redacted in place whatever the case of the name, other headers untouched', () => {
  const list = ['Authorization', 'Bearer t', 'x-api-key', 'k', 'cookie', 'c=1', 'Accept', '*/*', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'x-note', 'cookie'];
  redactList(list);
  assert.deepEqual(list, ['Authorization', '[redacted]', 'x-api-key', '[redacted]', 'cookie', '[redacted]', 'Accept', '*/*', 'Set-Cookie', '[redacted]', 'set-cookie', '[redacted]', 'x-note', 'cookie']);
  redactList(undefined);
});

test('a header object becomes a header list with one pair per value', () => {
  assert.deepEqual(headerListOf({ 'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], 'content-length': 12, skipped: undefined }), ['content-type', 'text/plain', 'set-cookie', 'a=1', 'set-cookie', 'b=2', 'content-length', '12']);
});

test('the secret headers a raw list names are redacted in the parsed object whatever the case of the name, and nothing else is', () => {
  for (const name of SECRET_HEADERS) {
    for (const spelled of [name, name.toUpperCase(), name[0]!.toUpperCase() + name.slice(1)]) {
      const headers: Record<string, unknown> = { host: 'h', [name]: 'secret-value', accept: '*/*' };
      redactListed(headers, ['Host', 'h', spelled, 'secret-value', 'Accept', '*/*']);
      assert.deepEqual(headers, { host: 'h', [name]: '[redacted]', accept: '*/*' }, spelled);
    }
  }
  // accept/cookie, user-agent/set-cookie, x-trace-i/x-api-key, content-range/authorization share lengths.
  const plain: Record<string, unknown> = { accept: '*/*', 'user-agent': 'ua', connection: 'close', 'x-trace-i': '1', 'content-range': 'b', 'x-note': 'cookie' };
  redactListed(plain, ['Accept', '*/*', 'User-Agent', 'ua', 'Connection', 'close', 'X-Trace-I', '1', 'Content-Range', 'b', 'x-note', 'cookie']);
  assert.deepEqual(plain, { accept: '*/*', 'user-agent': 'ua', connection: 'close', 'x-trace-i': '1', 'content-range': 'b', 'x-note': 'cookie' });
  // A name the list has but the object does not (nothing to redact) adds nothing.
  const none: Record<string, unknown> = {};
  redactListed(none, ['Cookie', 'c=1']);
  assert.deepEqual(none, {});
});

test('no two secret header names share a length (the length table keeps one name per length)', () => {
  const lengths = [...SECRET_HEADERS].map((n) => n.length);
  assert.equal(new Set(lengths).size, lengths.length);
  for (const name of SECRET_HEADERS) assert.equal(secretNameOf(name), name, name);
  for (const name of ['accept', 'set-cookies', 'cookie2', 'authorizatio', '', 'a'.repeat(200)]) assert.equal(secretNameOf(name), null, name);
});
