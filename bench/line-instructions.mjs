#!/usr/bin/env node
/**
 * Instructions per record of the two per-request writers (an access-log line, a dashboard
 * request-log entry), counted by callgrind: the same on a quiet or a busy machine, unlike the CPU
 * times of bench/access-log-line.mjs. Each writer runs twice under valgrind, for SMALL and LARGE
 * records; the difference ÷ (LARGE − SMALL) is its cost per record, start-up and compiles excluded.
 *
 *   npm run build && node bench/line-instructions.mjs
 * Environment: SMALL (20,000), LARGE (60,000). Needs valgrind. About a minute per writer.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const DIST = new URL('../dist/', import.meta.url);

if (process.argv[2] === '--write') {
  // The child: N records through one writer (pooled records, as bench/access-log-line.mjs does).
  const [, , , writer, n] = process.argv;
  const base = Date.now();
  const records = [];
  for (let i = 0; i < 1024; i++) {
    const id = (i.toString(16) + 'a'.repeat(32)).slice(0, 32);
    records.push({
      id, time: base + i, method: 'GET', path: '/api/v1/users', query: i % 3 ? '' : 'page=2', route: '/api', backend: 'http://127.0.0.1:9001', status: 200,
      latencyMs: 1.2345 + (i % 97) / 7, bytesIn: 0, bytesOut: 57, clientIp: '127.0.0.1', consumer: i % 2 ? 'api-key-1' : undefined, decision: undefined,
      detail: undefined, verdicts: [], errorCode: undefined,
      requestHeaders: { host: '127.0.0.1:8080', 'user-agent': 'autocannon', 'x-api-key': '[redacted]', accept: '*/*' },
      responseHeaders: { 'content-type': 'application/json', 'content-length': '57', date: 'Sat, 28 Nov 2026 08:22:08 GMT', 'x-request-id': id },
    });
  }
  let write;
  if (writer === 'access') {
    const { accessLog, BatchedStream, createLogger } = await import(new URL('logging/index.js', DIST).href);
    const stream = new BatchedStream({ write() {}, writableLength: 0 }, { fd: null });
    write = accessLog(createLogger({ level: 'info', pretty: false }, stream));
  } else {
    const { RequestLogStore } = await import(new URL('dashboard/request-log.js', DIST).href);
    const ring = new RequestLogStore(1000, 500);
    write = (r) => ring.push(r);
  }
  for (let i = 0; i < Number(n); i++) write(records[i & 1023]);
  process.exit(0);
}

const small = Number(process.env.SMALL ?? 20_000);
const large = Number(process.env.LARGE ?? 60_000);
const dir = mkdtempSync(join(os.tmpdir(), 'microgate-lines-'));
function count(writer, n) {
  // valgrind reports the count on stderr.
  const r = spawnSync('valgrind', ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'cg.%p')}`, process.execPath, '--no-concurrent-recompilation', SELF, '--write', writer, String(n)], { encoding: 'utf8' });
  const m = /Collected : (\d+)/.exec(r.stderr ?? '');
  if (r.status !== 0 || !m) throw new Error(`valgrind ${writer} ${n}: exit ${r.status}\n${r.error ?? ''}${(r.stderr ?? '').slice(-2000)}`);
  return Number(m[1]);
}
try {
  for (const [writer, label] of [['access', 'access-log line'], ['request-log', 'request-log entry']]) {
    const perRecord = (count(writer, large) - count(writer, small)) / (large - small);
    console.log(`${label.padEnd(18)} ${Math.round(perRecord).toLocaleString('en-US').padStart(7)} instructions per record`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
