import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { accessLog, BatchedStream, createLogger } from '../../src/logging/index.js';
import { parseConfig } from '../../src/config/load.js';
import type { CompletionRecord } from '../../src/events/index.js';
import { createGateway } from '../../src/gateway.js';
import { send, startBackend } from '../helpers/gateway.js';
import { completionRecord, generatedId } from '../helpers/records.js';

function capture() {
  const chunks: string[] = [];
  const stream = new BatchedStream({ write: (c: string | Uint8Array) => chunks.push(Buffer.from(c).toString('utf8')) }, { fd: null });
  const logger = createLogger({ level: 'info', pretty: false }, stream);
  return { logger, stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

test("one JSON line per request with the reference's fields plus route, backend and latency in ms", () => {
  const { logger, stream, lines } = capture();
  const log = accessLog(logger);
  log(completionRecord({ id: 'abc', path: '/api/v1/hello', status: 200, latencyMs: 1.23456, backend: 'http://localhost:9001', route: '/api/v1', consumer: 'mobile' }));
  stream.flush();
  const [line] = lines();
  assert.equal(line.level, 'info');
  assert.equal(line.msg, 'request');
  assert.equal(line.type, 'access');
  assert.match(line.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(line.request_id, 'abc');
  assert.equal(line.method, 'GET');
  assert.equal(line.path, '/api/v1/hello');
  assert.equal(line.status, 200);
  assert.equal(line.duration_ms, 1.235);
  assert.equal(line.client_ip, '127.0.0.1');
  assert.equal(line.route, '/api/v1');
  assert.equal(line.backend, 'http://localhost:9001');
  assert.equal(line.consumer, 'mobile');
});

test('an id the gateway made is written from its bytes as the same text', () => {
  const { logger, stream, lines } = capture();
  const ids = [generatedId(), generatedId(), generatedId()];
  for (const g of ids) accessLog(logger)(completionRecord(g));
  stream.flush();
  assert.deepEqual(
    lines().map((l) => l.request_id),
    ids.map((g) => g.id),
  );
});

test('hostile paths and consumers are escaped, so a line stays one valid JSON object', () => {
  const { logger, stream, lines } = capture();
  accessLog(logger)(completionRecord({ path: '/a"b\\c\n{"injected":true}', consumer: 'sub\u0000"x' }));
  stream.flush();
  const all = lines();
  assert.equal(all.length, 1);
  assert.equal(all[0].path, '/a"b\\c\n{"injected":true}');
  assert.equal(all[0].consumer, 'sub\u0000"x');
});

test('lines are batched and written together, in the order they were logged, and flushSync writes what is pending', () => {
  const { logger, stream, lines } = capture();
  const log = accessLog(logger);
  for (let i = 0; i < 3; i++) log(completionRecord({ id: `r${i}` }));
  logger.info('plain line');
  log(completionRecord({ id: 'r3' }));
  assert.equal(lines().length, 0, 'nothing written before the flush');
  logger.flush();
  assert.deepEqual(
    lines().map((l) => l.request_id ?? l.msg),
    ['r0', 'r1', 'r2', 'plain line', 'r3'],
  );
});

test('non-ASCII text is written as UTF-8, exactly as JSON.stringify would', () => {
  const { logger, stream, lines } = capture();
  const path = '/caf\u00e9/\u2603/\ud83d\ude00/\udc00lone/\u00ff\u0080';
  accessLog(logger)(completionRecord({ path, consumer: '\u043a\u043b\u0438\u0435\u043d\u0442' }));
  stream.flush();
  const [line] = lines();
  assert.equal(line.path, path);
  assert.equal(line.consumer, '\u043a\u043b\u0438\u0435\u043d\u0442');
});

test('a line too long for the buffer is still written whole, as one valid line', () => {
  const { logger, stream, lines } = capture();
  const path = '/' + 'a'.repeat(20_000);
  accessLog(logger)(completionRecord({ id: 'long', path }));
  accessLog(logger)(completionRecord({ id: 'short' }));
  logger.flush();
  stream.flush();
  const all = lines();
  assert.deepEqual(all.map((l) => l.request_id).sort(), ['long', 'short']);
  assert.equal(all.find((l) => l.request_id === 'long').path, path);
});

test('a line written after the buffer filled up is flushed by the timer, not left waiting for the next line', async () => {
  const chunks: string[] = [];
  const stream = new BatchedStream({ write: (c: string | Uint8Array) => chunks.push(Buffer.from(c).toString('utf8')) }, { fd: null, flushMs: 5 });
  const line = `${'x'.repeat(999)}\n`;
  // The 64th line finds too little room (3 bytes per character at worst) in the 64 KiB buffer: the
  // first 63 are written at once, and it goes into a fresh buffer, the last line of the burst.
  for (let i = 0; i < 64; i++) stream.write(line);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(chunks.join('').length, 64 * 1000);
});

test('logging.flush_interval is how long a pending line may wait: the timer fires then, not at the default 25 ms', async () => {
  const chunks: string[] = [];
  const stream = new BatchedStream({ write: (c: string | Uint8Array) => chunks.push(Buffer.from(c).toString('utf8')) }, { fd: null, flushMs: 400 });
  stream.write('{"msg":"one"}\n');
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(chunks.length, 0, 'still waiting well past the default interval');
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(chunks.join(''), '{"msg":"one"}\n');
});

test("the gateway's own logger writes stdout through a batched stream with the configured flush interval", () => {
  const stdoutStream = (logger: ReturnType<typeof createLogger>) => (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  const configured = stdoutStream(createLogger(parseConfig(`logging:\n  pretty: false\n  flush_interval: 2s\n`).logging));
  assert.ok(configured instanceof BatchedStream);
  assert.equal(configured.flushMs, 2000);
  const byDefault = stdoutStream(createLogger(parseConfig('logging:\n  pretty: false\n').logging));
  assert.equal((byDefault as BatchedStream).flushMs, 25);
});

test('a request through a gateway is logged once, without its API key or bearer token', async (t) => {
  const { logger, stream, lines } = capture();
  const be = await startBackend(t);
  const gw = createGateway(parseConfig(`auth:\n  api_keys: ["key-abc123-secret"]\nroutes:\n  - path: /api\n    backend: ${be.url}\n`), { logger, defaultMetrics: false });
  t.after(() => gw.close());
  await gw.start({ port: 0, host: '127.0.0.1' });
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  await send(`${gw.url}/api/x`, { headers: { 'x-api-key': 'key-abc123-secret', authorization: 'Bearer some.jwt.token' } });
  stream.flush();
  const access = lines().filter((l) => l.type === 'access');
  assert.equal(access.length, 1);
  assert.equal(access[0].status, 200);
  assert.equal(access[0].consumer, 'api-key-1');
  assert.equal(records[0]!.requestHeaders['x-api-key'], '[redacted]');
  assert.equal(records[0]!.requestHeaders.authorization, '[redacted]');
  assert.ok(!JSON.stringify(lines()).includes('key-abc123-secret'));
  assert.ok(!JSON.stringify(lines()).includes('some.jwt.token'));
});

test('items deferred with different line writers are each written by their own writer, in order', () => {
  const chunks: string[] = [];
  const stream = new BatchedStream({ write: (c: string | Uint8Array) => chunks.push(Buffer.from(c).toString('utf8')) }, { fd: null });
  const writer = (tag: string) => ({
    maxBytes: () => 64,
    write: (w: import('../../src/events/json-bytes.js').JsonBytes, item: number) => {
      w.raw(`${tag}${item}\n`);
    },
    text: (item: number) => `${tag}${item}\n`,
  });
  const a = writer('a');
  const b = writer('b');
  stream.defer(1, a);
  stream.defer(2, b);
  stream.defer(3, a);
  stream.flushSync();
  assert.equal(chunks.join(''), 'a1\nb2\na3\n');
});

test('deferred items are written into the buffer every 32, not kept until the output flush (a record holds its request alive)', () => {
  const chunks: string[] = [];
  const stream = new BatchedStream({ write: (c: string | Uint8Array) => chunks.push(Buffer.from(c).toString('utf8')) }, { fd: null, flushMs: 60_000 });
  const written: number[] = [];
  const writer = {
    maxBytes: () => 64,
    write: (w: import('../../src/events/json-bytes.js').JsonBytes, item: number) => {
      written.push(item);
      w.raw(`${item}\n`);
    },
    text: (item: number) => `${item}\n`,
  };
  for (let i = 0; i < 31; i++) stream.defer(i, writer);
  assert.equal(written.length, 0, 'up to 31 wait');
  stream.defer(31, writer);
  assert.equal(written.length, 32, 'the 32nd writes all of them');
  assert.deepEqual(chunks, [], 'into the buffer: the output gets them at the flush');
  for (let i = 32; i < 40; i++) stream.defer(i, writer);
  stream.flushSync();
  assert.equal(chunks.join(''), Array.from({ length: 40 }, (_, i) => `${i}\n`).join(''));
});

test('access lines are dropped and counted, not queued without bound, while stdout does not keep up', () => {
  const chunks: string[] = [];
  let pending = 0;
  // A pipe whose reader has stalled: everything written stays in its queue.
  const sink = {
    write(c: string | Uint8Array) {
      chunks.push(Buffer.from(c).toString('utf8'));
      pending += c.length;
    },
    get writableLength() {
      return pending;
    },
  };
  const stream = new BatchedStream(sink, { fd: null, maxPendingBytes: 4096 });
  const log = accessLog(createLogger({ level: 'info', pretty: false }, stream));
  for (let i = 0; i < 2000; i++) log(completionRecord({ id: `r${i}`, path: '/api/x', status: 200 }));
  stream.flush();
  for (let i = 0; i < 2000; i++) log(completionRecord({ id: `s${i}`, path: '/api/x', status: 200 }));
  stream.flush();
  const lines = chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const access = lines.filter((l) => l.type === 'access');
  // At most one batch (256 lines) goes out past the limit: the one that was being written when it was reached.
  assert.ok(pending < 4096 + 256 * 400, `the stalled pipe holds ${pending} bytes: lines were queued past the limit`);
  assert.ok(access.length < 4000, 'some lines were dropped');
  assert.equal(stream.dropped, 4000 - access.length, 'every dropped line is counted');
  assert.equal(lines.filter((l) => l.level === 'warn' && /not keeping up/.test(l.msg)).length, 1, 'one warning, not one per line');
});
