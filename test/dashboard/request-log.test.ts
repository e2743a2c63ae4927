import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_ENTRY_BYTES, MAX_FIELD_CHARS, RequestLogStore, type RequestLog } from '../../src/dashboard/request-log.js';
import { headerListOf, SECRET_HEADERS, type CompletionRecord, type HeaderList } from '../../src/events/index.js';
import { completionRecord, generatedId } from '../helpers/records.js';

/** The entry a record must become, built as an object (the store writes the same JSON as bytes). */
function expected(r: CompletionRecord): RequestLog {
  const headers = (h: object | undefined): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(h ?? {})) {
      if (v === undefined) continue;
      const name = k.toLowerCase();
      out[name] = SECRET_HEADERS.has(name) ? '[redacted]' : Array.isArray(v) ? v.join(', ') : String(v);
    }
    return out;
  };
  // A list: each name once (lower-cased, first place kept), its values joined.
  const listed = (list: HeaderList | undefined): Record<string, string> => {
    const out: Record<string, string> = {};
    for (let i = 0; i < (list?.length ?? 0); i += 2) {
      const name = list![i]!.toLowerCase();
      out[name] = SECRET_HEADERS.has(name) ? '[redacted]' : out[name] === undefined ? list![i + 1]! : `${out[name]}, ${list![i + 1]!}`;
    }
    return out;
  };
  return JSON.parse(
    JSON.stringify({
      id: r.id,
      timestamp: new Date(r.time).toISOString(),
      method: r.method,
      path: r.path,
      query: r.query,
      status: r.status,
      latency_ms: Math.round(r.latencyMs * 1000) / 1000,
      client_ip: r.clientIp,
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      backend: r.backend,
      route: r.route ?? '',
      consumer: r.consumer,
      decision: r.decision,
      detail: r.detail,
      verdicts: r.verdicts.length > 0 ? r.verdicts : undefined,
      error: r.errorCode,
      request_headers: headers(r.requestHeaders),
      response_headers: listed(r.responseHeaders),
    }),
  ) as RequestLog;
}

/** The one entry a store holds for `r`. */
function entryOf(r: CompletionRecord): RequestLog {
  const log = new RequestLogStore(1);
  log.push(r);
  return log.search({ limit: 1 })[0]!;
}

function rec(over: Partial<CompletionRecord> = {}): CompletionRecord {
  return completionRecord({
    id: 'r1',
    time: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
    path: '/api/x',
    latencyMs: 12.3456789,
    requestHeaders: { host: 'gw', accept: '*/*' },
    responseHeaders: ['content-type', 'application/json'],
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

  it("gives an entry's JSON as bytes (its length and a copy) while it is kept, and -1 once it is evicted", () => {
    const log = new RequestLogStore(2);
    const seqs = [1, 2, 3].map((i) => log.push(rec({ id: `r${i}`, path: `/caf\u00e9/${i}` })));
    assert.equal(log.byteLength(seqs[0]!), -1, 'evicted');
    for (const seq of seqs.slice(1)) {
      const json = log.json(seq)!;
      assert.equal(log.byteLength(seq), Buffer.byteLength(json));
      const into = Buffer.alloc(log.byteLength(seq) + 7, 0x2e);
      log.copyTo(seq, into, 3);
      assert.equal(into.toString('utf8', 3, 3 + log.byteLength(seq)), json);
      assert.equal(into.toString('latin1', 0, 3) + into.toString('latin1', 3 + log.byteLength(seq)), '.......');
    }
    assert.equal(log.byteLength(seqs[2]! + 1), -1, 'not yet written');
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

describe('request log entries', () => {
  it('are the JSON of the request as the API shows it: latency in real ms to the microsecond, ISO timestamp', () => {
    const j = entryOf(rec());
    assert.equal(j.latency_ms, 12.346);
    assert.equal(j.timestamp, '2025-01-02T03:04:05.678Z');
    assert.equal(j.backend, 'http://127.0.0.1:9001');
    assert.equal(j.route, '/api');
    assert.deepEqual(j, expected(rec()));
  });

  it("are exact for an id the gateway made (written from its bytes), in the id and in the response's X-Request-Id, and after crossing to the cluster primary as JSON", () => {
    for (let i = 0; i < 5; i++) {
      const g = generatedId();
      const r = rec({ ...g, responseHeaders: ['content-type', 'application/json', 'x-request-id', g.id, 'RateLimit', '"default";r=9;t=1'] });
      const j = entryOf(r);
      assert.equal(j.id, g.id);
      assert.equal(j.response_headers['x-request-id'], g.id);
      assert.deepEqual(j, expected(r));
      assert.deepEqual(entryOf(JSON.parse(JSON.stringify(r)) as CompletionRecord), expected(r));
    }
  });

  it('leave out consumer, decision and error when the request had none', () => {
    const j = entryOf(rec());
    assert.equal('consumer' in j, false);
    assert.equal('decision' in j, false);
    assert.equal('error' in j, false);
    const r = rec({ consumer: 'key-1', decision: 'rate_limited', errorCode: 'rate_limited', detail: { limit: 5 }, verdicts: [{ policy: 'adaptive', verdict: 'would_refuse' } as never] });
    const k = entryOf(r);
    assert.equal(k.consumer, 'key-1');
    assert.equal(k.decision, 'rate_limited');
    assert.equal(k.error, 'rate_limited');
    assert.deepEqual(k.detail, { limit: 5 });
    assert.deepEqual(k, expected(r));
  });

  it('hold no credential: authorization, API key and cookies are redacted before anything is stored', () => {
    const r = rec({
      requestHeaders: { authorization: 'Bearer abc', 'x-api-key': 'k-secret', cookie: 'c=1', accept: 'x', 'x-multi': ['a', 'b'] },
      responseHeaders: ['set-cookie', 's=1', 'Content-Length', '12'],
    });
    const log = new RequestLogStore(4);
    const seq = log.push(r);
    const text = log.json(seq)!;
    for (const secret of ['Bearer abc', 'k-secret', 'c=1', 's=1']) assert.equal(text.includes(secret), false, `${secret} must not be stored`);
    const j = JSON.parse(text) as RequestLog;
    assert.equal(j.request_headers.authorization, '[redacted]');
    assert.equal(j.request_headers['x-multi'], 'a, b');
    assert.equal(j.response_headers['set-cookie'], '[redacted]');
    assert.equal(j.response_headers['content-length'], '12');
    assert.deepEqual(j, expected(r));
  });

  it('are exact for hostile and non-ASCII text (quotes, controls, UTF-8, lone surrogates)', () => {
    const r = rec({ path: '/a"b\\c\n{"x":1}/caf\u00e9/\ud83d\ude00/\udc00', query: 'q=\u0000\u2603', consumer: 'sub"\u0001', requestHeaders: { 'x-latin1': '\u00ff\u00e9' } });
    assert.deepEqual(entryOf(r), expected(r));
  });

  it('are exact past the tables of known header names and field values, for names in any case or not ASCII, and for no headers at all', () => {
    const log = new RequestLogStore(1);
    for (let i = 0; i < 1300; i++) {
      const requestHeaders: Record<string, string> = { [`x-name-${i}`]: `v${i}`, 'X-API-KEY': 'upper-secret', [`x-caf\u00e9-${i % 3}`]: '\u00e9', 'x-"q"': 'a"b' };
      const r = rec({ method: i % 2 ? 'GET' : `M\u00c9${i}`, route: i % 5 ? `/r${i}` : null, backend: i % 7 ? `http://b${i}:1` : '', consumer: i % 3 ? `c${i}` : undefined, decision: i % 11 ? undefined : 'rate_limited', requestHeaders, responseHeaders: i % 4 ? [] : undefined });
      log.push(r);
      const j = log.search({ limit: 1 })[0]!;
      assert.deepEqual(j, expected(r), `entry ${i}`);
      assert.equal(j.request_headers['x-api-key'], '[redacted]');
    }
  });

  it('are exact when header values repeat, alternate, change, are long, quoted or not ASCII', () => {
    const log = new RequestLogStore(1);
    const values = ['a', 'a', 'a', 'b', 'a', 'b', 'b', 'b', 'x"y', 'x"y', 'x"y', 'caf\u00e9', 'caf\u00e9', 'caf\u00e9', 'v'.repeat(300), 'v'.repeat(300), 'v'.repeat(300), '', '', 'a'];
    for (const [i, v] of values.entries()) {
      const r = rec({ requestHeaders: { 'x-repeat': v, host: `h${i % 2}` }, responseHeaders: ['date', i < 10 ? 'Sat, 28 Nov 2026 08:22:08 GMT' : 'Sat, 28 Nov 2026 08:22:09 GMT'] });
      log.push(r);
      assert.deepEqual(log.search({ limit: 1 })[0], expected(r), `entry ${i}: ${JSON.stringify(v).slice(0, 20)}`);
    }
  });

  it('are exact when header objects change shape between entries: names move, appear, vanish, a secret takes another name\'s place, more than 64 names', () => {
    const log = new RequestLogStore(1);
    const pool = ['host', 'accept', 'x-api-key', 'authorization', 'user-agent', 'Cookie', 'x-trace', 'content-type'];
    let seed = 7;
    const next = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    for (let i = 0; i < 400; i++) {
      const requestHeaders: Record<string, string | string[]> = {};
      const count = i % 50 === 0 ? 70 : next(pool.length + 1);
      for (let k = 0; k < count; k++) {
        const name = k < pool.length && i % 50 !== 0 ? pool[next(pool.length)]! : `x-many-${k}`;
        requestHeaders[name] = next(3) === 0 ? [`a${k}`, 'b'] : `v${next(2)}`;
      }
      const responseHeaders = headerListOf(i % 2 ? { 'set-cookie': ['s=1'], date: 'd' } : { date: 'd', 'set-cookie': ['s=1'], etag: `"${next(2)}"` });
      const r = rec({ requestHeaders, responseHeaders });
      log.push(r);
      assert.deepEqual(log.search({ limit: 1 })[0], expected(r), `entry ${i}`);
    }
  });

  it('show a response header sent more than once (in any case) as one member with its values joined, for short and long lists', () => {
    const log = new RequestLogStore(1);
    const short = ['Vary', 'accept', 'content-type', 'text/plain', 'vary', 'origin', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'VARY', 'x'];
    let r = rec({ responseHeaders: short });
    log.push(r);
    let j = log.search({ limit: 1 })[0]!;
    assert.deepEqual(j.response_headers, { vary: 'accept, origin, x', 'content-type': 'text/plain', 'set-cookie': '[redacted]' });
    assert.deepEqual(Object.keys(j.response_headers), ['vary', 'content-type', 'set-cookie']);
    assert.deepEqual(j, expected(r));
    const long: string[] = [];
    for (let i = 0; i < 40; i++) long.push(`X-Name-${i % 25}`, `v${i}`);
    long.push('Cookie', 'c=1');
    r = rec({ responseHeaders: long });
    log.push(r);
    j = log.search({ limit: 1 })[0]!;
    assert.equal(j.response_headers['x-name-3'], 'v3, v28');
    assert.equal(j.response_headers['x-name-24'], 'v24');
    assert.equal(j.response_headers.cookie, '[redacted]');
    assert.deepEqual(j, expected(r));
  });

  it('cut a field longer than MAX_FIELD_CHARS and leave out header values beyond MAX_ENTRY_BYTES, and say so', () => {
    const longPath = '/' + 'p'.repeat(MAX_FIELD_CHARS * 2);
    const big: Record<string, string> = {};
    for (let i = 0; i < 10; i++) big[`x-big-${i}`] = 'v'.repeat(MAX_ENTRY_BYTES / 8);
    const j = entryOf(rec({ path: longPath, requestHeaders: { accept: '*/*', ...big } }));
    assert.equal(j.truncated, true);
    assert.equal(j.path, longPath.slice(0, MAX_FIELD_CHARS));
    assert.equal(j.request_headers.accept, '*/*');
    assert.ok(Object.keys(j.request_headers).length < 11);
    assert.equal(entryOf(rec()).truncated, undefined);
  });
});

describe('request log ring', () => {
  it('keeps as many large entries as fit its bytes, newest first, each intact', () => {
    const log = new RequestLogStore(1000);
    const value = 'h'.repeat(10_000);
    for (let i = 0; i < 1000; i++) log.push(rec({ id: `big-${i}`, requestHeaders: { 'x-h': value } }));
    const all = log.search({ limit: 1000 });
    assert.ok(all.length > 20 && all.length < 1000, `kept ${all.length}`);
    assert.deepEqual(
      all.map((e) => e.id),
      Array.from({ length: all.length }, (_, i) => `big-${999 - i}`),
    );
    for (const e of all) assert.equal(e.request_headers['x-h'], value);
    assert.equal(log.size, all.length);
  });

  it('keeps entries for replay beyond what search serves, and forgets evicted ones', () => {
    const log = new RequestLogStore(2, 5);
    const seqs = Array.from({ length: 8 }, (_, i) => log.push(rec({ id: `r${i}` })));
    assert.deepEqual(
      log.search({ limit: 10 }).map((e) => e.id),
      ['r7', 'r6'],
    );
    assert.equal(log.find('r4'), undefined, 'find sees what search sees');
    assert.equal(JSON.parse(log.json(seqs[3]!)!).id, 'r3');
    assert.equal(log.json(seqs[2]!), undefined);
    assert.equal(log.json(seqs[7]! + 1), undefined);
  });

  it('wraps around its bytes many times without mixing entries up', () => {
    const log = new RequestLogStore(300);
    for (let i = 0; i < 20_000; i++) {
      log.push(rec({ id: `w${i}`, path: `/p/${'x'.repeat(i % 900)}`, requestHeaders: { 'x-i': String(i) } }));
      if (i % 997 === 0) {
        const newest = log.search({ limit: 300 });
        newest.forEach((e, k) => {
          assert.equal(e.id, `w${i - k}`);
          assert.equal(e.request_headers['x-i'], String(i - k));
          assert.equal(e.path.length, 3 + ((i - k) % 900));
        });
      }
    }
  });
});
