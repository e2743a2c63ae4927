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
import { perRecordWriters, POOL, sampleRecords } from './lib/records.mjs';

const SELF = fileURLToPath(import.meta.url);

if (process.argv[2] === '--write') {
  // The child: N records through one writer.
  const [, , , writer, n] = process.argv;
  const writers = await perRecordWriters();
  const write = writer === 'access' ? writers.access : writers.requestLog;
  const records = await sampleRecords();
  for (let i = 0; i < Number(n); i++) write(records[i & (POOL - 1)]);
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
