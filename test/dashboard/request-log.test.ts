import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestLogStore, toRequestLog, withoutSecrets } from '../../src/dashboard/request-log.js';
import type { CompletionRecord } from '../../src/events/index.js';
import { completionRecord } from '../helpers/records.js';

function rec(over: Partial<CompletionRecord> = {}): CompletionRecord {
  return completionRecord({
    id: 'r1',
    time: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
    path: '/api/x',
    latencyMs: 12.3456789,
    requestHeaders: { host: 'gw', accept: '*/*' },
    responseHeaders: { 'content-type': 'application/json' },
    ...over,
  });
}

describe('request log store', () => {
  it('returns entries newest first and evicts the oldest beyond its capacity', () => {
    const log = new RequestLogStore(3);
    for (let i = 1; i <= 5; i++) log.push(rec({ id: `r${i}` }));
    assert.equal(log.size, 3);
    assert.deepEqual(
      log.search({ limit: 10 }).map((r) => r.id),
      ['r5', 'r4', 'r3'],
    );
  });

  it('filters by exact status, status class and path substring, and honours the limit', () => {
    const log = new RequestLogStore(10);
    log.push(rec({ id: 'a', status: 200, path: '/api/users' }));
    log.push(rec({ id: 'b', status: 404, path: '/api/orders' }));
    log.push(rec({ id: 'c', status: 502, path: '/api/users/1' }));
    log.push(rec({ id: 'd', status: 503, path: '/other' }));
    assert.deepEqual(log.search({ limit: 10, status: { exact: 404 } }).map((r) => r.id), ['b']);
    assert.deepEqual(log.search({ limit: 10, status: { cls: 5 } }).map((r) => r.id), ['d', 'c']);
    assert.deepEqual(log.search({ limit: 10, path: '/users' }).map((r) => r.id), ['c', 'a']);
    assert.deepEqual(log.search({ limit: 1, status: { cls: 5 }, path: '/api' }).map((r) => r.id), ['c']);
    assert.deepEqual(log.search({ limit: 10, path: '/USERS' }), []);
  });

  it('finds the newest entry with a repeated request ID', () => {
    const log = new RequestLogStore(10);
    log.push(rec({ id: 'same', status: 200 }));
    log.push(rec({ id: 'same', status: 500 }));
    assert.equal(log.find('same')?.status, 500);
    assert.equal(log.find('missing'), undefined);
  });

  it('refuses a capacity that is not a positive integer', () => {
    assert.throws(() => new RequestLogStore(0), RangeError);
  });
});

describe('request log JSON', () => {
  it('reports latency in real milliseconds rounded to the microsecond, with an ISO timestamp', () => {
    const j = toRequestLog(rec());
    assert.equal(j.latency_ms, 12.346);
    assert.equal(j.timestamp, '2025-01-02T03:04:05.678Z');
    assert.equal(j.backend, 'http://127.0.0.1:9001');
    assert.equal(j.route, '/api');
  });

  it('leaves out consumer, decision and error when the request had none', () => {
    const j = JSON.parse(JSON.stringify(toRequestLog(rec())));
    assert.equal('consumer' in j, false);
    assert.equal('decision' in j, false);
    assert.equal('error' in j, false);
    const k = toRequestLog(rec({ consumer: 'key-1', decision: 'rate_limited', errorCode: 'rate_limited', detail: { limit: 5 } }));
    assert.equal(k.consumer, 'key-1');
    assert.equal(k.decision, 'rate_limited');
    assert.equal(k.error, 'rate_limited');
    assert.deepEqual(k.detail, { limit: 5 });
  });

  it('keeps a record without credentials as is and copies one with credentials, redacted', () => {
    const plain = rec();
    assert.equal(withoutSecrets(plain), plain);
    const secret = rec({
      requestHeaders: { authorization: 'Bearer abc', 'x-api-key': 'k', cookie: 'c=1', accept: 'x', 'x-multi': ['a', 'b'] },
      responseHeaders: { 'set-cookie': ['s=1'] },
    });
    const clean = withoutSecrets(secret);
    assert.notEqual(clean, secret);
    assert.equal((secret.requestHeaders as Record<string, string>).authorization, 'Bearer abc', 'the shared record is not mutated');
    const text = JSON.stringify(clean);
    for (const s of ['Bearer abc', '"k"', 'c=1', 's=1']) assert.equal(text.includes(s), false, `${s} must not be retained`);
    const j = toRequestLog(clean);
    assert.equal(j.request_headers.authorization, '[redacted]');
    assert.equal(j.request_headers['x-multi'], 'a, b');
    assert.equal(j.response_headers['set-cookie'], '[redacted]');
  });
});
