#!/usr/bin/env node
/**
 * CPU cost of one access-log line and one dashboard request-log entry: the two per-request
 * writers of src/events/json-bytes.ts. Writes N records (as the gateway publishes them) through
 * each and prints CPU µs per record, median of ROUNDS.
 *
 *   npm run build && node bench/access-log-line.mjs
 * Environment: RECORDS (default 1,000,000), ROUNDS (default 5).
 */
import { fileURLToPath } from 'node:url';

const { accessLog, BatchedStream, createLogger } = await import(fileURLToPath(new URL('../dist/logging/index.js', import.meta.url)));
const { RequestLogStore } = await import(fileURLToPath(new URL('../dist/dashboard/request-log.js', import.meta.url)));

const N = Number(process.env.RECORDS ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const sink = { write() {}, writableLength: 0 };
const stream = new BatchedStream(sink, { fd: null });
const log = accessLog(createLogger({ level: 'info', pretty: false }, stream));
const ring = new RequestLogStore(1000, 500);

const POOL = 1024;
const base = Date.now();
const records = [];
for (let i = 0; i < POOL; i++) {
  records.push({
    id: (i.toString(16) + 'a'.repeat(32)).slice(0, 32), time: base + i, method: 'GET', path: '/api/v1/users', query: i % 3 ? '' : 'page=2',
    route: '/api', backend: 'http://127.0.0.1:9001', status: 200, latencyMs: 1.2345 + (i % 97) / 7, bytesIn: 0, bytesOut: 57,
    clientIp: '127.0.0.1', consumer: i % 2 ? 'api-key-1' : undefined, decision: undefined, detail: undefined, verdicts: [], errorCode: undefined,
    requestHeaders: { host: '127.0.0.1:8080', 'user-agent': 'autocannon', 'x-api-key': '[redacted]', accept: '*/*' },
    responseHeaders: ['content-type', 'application/json', 'content-length', '57', 'x-request-id', 'abc'],
  });
}
for (const r of records) r.responseHeaders = { 'content-type': 'application/json', 'content-length': '57', date: 'Sat, 28 Nov 2026 08:22:08 GMT', 'x-request-id': r.id };

function time(fn) {
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) fn(records[i & (POOL - 1)]);
  const d = process.cpuUsage(t0);
  return ((d.user + d.system) / N);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = { 'access-log line': (r) => log(r), 'request-log entry': (r) => ring.push(r), 'nothing (loop only)': () => {} };
for (const [name, fn] of Object.entries(rows)) {
  time(fn); // warm-up
  const runs = Array.from({ length: ROUNDS }, () => time(fn));
  console.log(`${name.padEnd(20)} ${median(runs).toFixed(3)} µs per record (median of ${ROUNDS}; ${runs.map((x) => x.toFixed(3)).join(' ')})`);
}
