#!/usr/bin/env node
/**
 * CPU cost of one access-log line and one dashboard request-log entry: the two per-request
 * writers of src/events/json-bytes.ts. Writes N records (as the gateway publishes them) through
 * each and prints CPU µs per record, median of ROUNDS.
 *
 *   npm run build && node bench/access-log-line.mjs
 * Environment: RECORDS (default 1,000,000), ROUNDS (default 5).
 */
import { perRecordWriters, POOL, sampleRecords } from './lib/records.mjs';

const N = Number(process.env.RECORDS ?? 1_000_000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const { access, requestLog } = await perRecordWriters();
const records = await sampleRecords();

function time(fn) {
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) fn(records[i & (POOL - 1)]);
  const d = process.cpuUsage(t0);
  return ((d.user + d.system) / N);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = { 'access-log line': access, 'request-log entry': requestLog, 'nothing (loop only)': () => {} };
for (const [name, fn] of Object.entries(rows)) {
  time(fn); // warm-up
  const runs = Array.from({ length: ROUNDS }, () => time(fn));
  console.log(`${name.padEnd(20)} ${median(runs).toFixed(3)} µs per record (median of ${ROUNDS}; ${runs.map((x) => x.toFixed(3)).join(' ')})`);
}
