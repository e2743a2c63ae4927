#!/usr/bin/env node
/**
 * Instructions per request, counted by valgrind's callgrind: a cost that does not move with what
 * else the machine is doing. CPU time per request (bench/run.mjs) is the product figure, but on a
 * virtual machine whose host takes time away unseen it moves by 30-100% between runs of the same
 * build; the count of user-space instructions a target executes for a fixed number of requests is
 * the same to within a few percent run after run. It is what to compare two builds or the gateway
 * against the floor with, when the machine is noisy.
 *
 * What it counts: every instruction the target process executes in user space (all threads: the
 * main thread, V8's GC and compiler threads, libuv's pool), between a zeroing of the counters after
 * the warm-up and a dump after the measured requests. What it does not count: time in the kernel
 * (system calls, the loopback network) and cache misses: a target that makes more system calls per
 * request costs more than its instruction count says. The access log's writes are batched (one
 * write per 25 ms), so they add few system calls.
 *
 *   node bench/instructions.mjs                       # forwarder, mg-proxy, mg-full, mg-dash
 *   INSTR_TARGETS=forwarder,mg-proxy INSTR_ROUNDS=3 node bench/instructions.mjs
 *
 * Environment: INSTR_TARGETS (bench/lib/targets.mjs ids without Redis or workers), INSTR_ROUNDS (1),
 * INSTR_WARMUP (requests before the count, 4000), INSTR_REQUESTS (per counted window, 2000),
 * INSTR_MAX_WINDOWS (8), INSTR_SETTLE_PCT (3: counted windows until two in a row agree within it),
 * INSTR_LOG_FLUSH (MicroGate's logging.flush_interval under valgrind, 2500ms), INSTR_CHECKS (1: run bench/run.mjs's start-up checks first, as `npm run bench` does: a request without credentials, GET /metrics, the dashboard API), INSTR_NODE_ARGS (node flags for every target, default --no-concurrent-recompilation), INSTR_KEEP (a
 * folder to keep the callgrind dumps in, one per window, for callgrind_annotate), INSTR_CONNECTIONS (50), BENCH_BASELINE (a built checkout: its MicroGate rows run too, as <id>@base),
 * BENCH_MALLOC_ARENA_MAX (2: glibc's MALLOC_ARENA_MAX for every target, as `npm run bench` sets it; empty = glibc's default).
 * Needs valgrind (Debian package `valgrind`). A target serves ~70 requests a second under it: 3-6
 * minutes per target on this project's machine. bench/README.md says what the count leaves out.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { scriptScope } from './lib/children.mjs';
import { httpGet, waitUntil } from './lib/net.mjs';
import { settled } from './lib/stats.mjs';
import { freePorts, median } from './lib/system.mjs';
import { checkTarget, makeJwt, microgateConfig, requestHeaders, TARGETS } from './lib/targets.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ids = (process.env.INSTR_TARGETS ?? 'forwarder,mg-proxy,mg-full,mg-dash').split(',').map((s) => s.trim()).filter(Boolean);
const rounds = Number(process.env.INSTR_ROUNDS ?? 1);
const warmup = Number(process.env.INSTR_WARMUP ?? 4000);
const counted = Number(process.env.INSTR_REQUESTS ?? 2000);
const connections = Number(process.env.INSTR_CONNECTIONS ?? 50);
const maxWindows = Number(process.env.INSTR_MAX_WINDOWS ?? 8);
const settlePct = Number(process.env.INSTR_SETTLE_PCT ?? 3);
/** node's own flags for every target (see the header: compiling on the main thread makes warm-up short and steady). */
const nodeArgs = (process.env.INSTR_NODE_ARGS ?? '--no-concurrent-recompilation').split(' ').filter(Boolean);
/**
 * Under valgrind a target serves ~70 requests a second instead of ~8,000: whatever runs on a timer
 * runs ~100× as often per request. The access log's 25 ms flush would write every line or two
 * (a write, a new 64 KiB buffer) instead of every ~200; stretched 100×, it batches as it does natively.
 */
// INSTR_LOG_FLUSH= (empty) leaves the key out: a baseline built before the key existed refuses it.
const logFlushInterval = process.env.INSTR_LOG_FLUSH === '' ? undefined : (process.env.INSTR_LOG_FLUSH ?? '2500ms');
const keepDir = process.env.INSTR_KEEP ? resolve(process.env.INSTR_KEEP) : null;
const baseline = process.env.BENCH_BASELINE ? resolve(process.env.BENCH_BASELINE) : null;
/** Run `npm run bench`'s start-up checks (a 401, GET /metrics, the dashboard API, …) before the warm-up, so both benches count the same process state. */
const startChecks = process.env.INSTR_CHECKS === '1';

const targets = [];
for (const id of ids) {
  const t = TARGETS.find((x) => x.id === id && x.kind !== 'direct' && !x.redis && !x.workers);
  if (!t) {
    process.stderr.write(`instructions: unknown or unsupported target ${id} (Redis, workers and direct rows are not counted)\n`);
    process.exit(2);
  }
  targets.push({ ...t, root: ROOT });
  if (baseline && t.kind === 'microgate') targets.push({ ...t, id: `${t.id}@base`, label: `${t.label} (baseline)`, root: baseline });
}
try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  process.stderr.write('instructions: valgrind is not installed (apt-get install valgrind)\n');
  process.exit(2);
}

// The settled windows' dumps are kept for callgrind_annotate (by function: GC, builtins, libc; JIT code shows as ???).
const { children, tmpDir, cleanup } = scriptScope('instr', {
  beforeRemove(dir) {
    if (keepDir === null) return;
    mkdirSync(keepDir, { recursive: true });
    for (const f of readdirSync(dir).filter((n) => /\.out\.\d+$/.test(n))) renameSync(join(dir, f), join(keepDir, f));
  },
});

/** A fixed number of requests at a fixed concurrency; resolves with the count of non-2xx/errors. */
async function drive(url, headers, amount) {
  const r = await autocannon({ url, connections, pipelining: 1, amount, headers, timeout: 60 });
  const bad = r.errors + r.timeouts + r.non2xx;
  if (bad > 0) {
    const codes = Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => `${k}×${v.count}`).join(' ');
    process.stderr.write(`    ${bad} of ${r.requests.total} requests failed: ${r.errors} errors, ${r.timeouts} timeouts, status ${codes}\n`);
  }
  return { requests: r.requests.total, bad };
}

/** callgrind_control talks to the process through vgdb; the pid is valgrind's own (it runs the target in-process). */
function control(pid, flag) {
  execFileSync('callgrind_control', [flag, String(pid)], { stdio: 'ignore', timeout: 60_000 });
}

async function measure(target, backendUrl, jwt, round) {
  const [port] = await freePorts(1);
  const outPattern = join(tmpDir, `${target.id.replace('@', '_')}.r${round}.%p.out`);
  const vg = ['--tool=callgrind', `--callgrind-out-file=${outPattern}`, '--dump-instr=no', '--dump-line=no', '--compress-strings=no'];
  let args;
  let cwd;
  if (target.kind === 'script') {
    args = [...vg, process.execPath, ...nodeArgs, join(ROOT, target.script), '--port', String(port), '--backend', backendUrl, ...(target.args ?? [])];
  } else {
    const file = join(tmpDir, `${target.id.replace('@', '_')}.yml`);
    writeFileSync(file, microgateConfig(target, { port, backendUrl, jwtSecret: jwt.secret, dataDir: tmpDir, logFlushInterval }));
    args = [...vg, process.execPath, ...nodeArgs, ...(target.nodeArgs ?? []), join(target.root, 'bin/microgate'), '--config', file];
    cwd = tmpDir;
  }
  const child = children.spawn(target.id, 'valgrind', args, { cwd, env: TARGET_ENV });
  const url = `http://127.0.0.1:${port}/`;
  const headers = requestHeaders(target, jwt);
  const why = await waitUntil(() => httpGet(url, headers, 10_000), child, 180_000);
  if (why) throw new Error(`${target.id}: ${why}\n${child.tail()}`);
  if (startChecks) await checkTarget(target, url.slice(0, -1), headers);
  let bad = (await drive(url, headers, warmup)).bad;
  // Consecutive windows of the same process until two in a row agree within settlePct: a process
  // keeps getting cheaper for thousands of requests under valgrind (compiles, the young generation
  // growing), and a gateway with more code to compile settles later than the floor. The process's
  // figure is the mean of the last two windows.
  const perRequest = [];
  const prefix = `${target.id.replace('@', '_')}.r${round}.`;
  let result = { settled: false, figure: NaN };
  for (let i = 1; i <= maxWindows && !result.settled; i++) {
    control(child.pid, '-z');
    const m = await drive(url, headers, counted);
    control(child.pid, '-d');
    bad += m.bad;
    // One dump file per -d, numbered in order ("<pattern>.1", ".2", ...): the whole process, all threads.
    const dump = readdirSync(tmpDir).find((n) => n.startsWith(prefix) && n.endsWith(`.out.${i}`));
    const m1 = dump === undefined ? null : /^summary:\s+(\d+)/m.exec(readFileSync(join(tmpDir, dump), 'utf8'));
    if (!m1) throw new Error(`${target.id}: no callgrind dump for window ${i}`);
    perRequest.push(Number(m1[1]) / m.requests);
    result = settled(perRequest, settlePct);
  }
  await children.stop(child, 20_000);
  return { windows: perRequest, bad, settled: result.settled, perRequest: result.figure };
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');
/** Every target runs with the glibc arena setting `npm run bench` uses (bench/run.mjs), so the two benches measure the same processes. */
const ARENA_MAX = process.env.BENCH_MALLOC_ARENA_MAX ?? '2';
const TARGET_ENV = ARENA_MAX === '' ? process.env : { ...process.env, MALLOC_ARENA_MAX: ARENA_MAX };

async function main() {
  const [backendPort] = await freePorts(1);
  const backend = children.spawn('backend', process.execPath, [join(ROOT, 'bin/microgate-testbackend'), '--port', String(backendPort), '--quiet']);
  const backendUrl = `http://127.0.0.1:${backendPort}`;
  const why = await waitUntil(() => httpGet(`${backendUrl}/`), backend, 15_000);
  if (why) throw new Error(why);
  const jwt = await makeJwt();
  const results = new Map(targets.map((t) => [t.id, []]));
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? targets : [...targets].reverse();
    for (const t of order) {
      const r = await measure(t, backendUrl, jwt, round);
      results.get(t.id).push(r);
      process.stderr.write(`  [round ${round}/${rounds}] ${t.id.padEnd(14)} ${Math.round(r.perRequest).toLocaleString('en-US').padStart(9)} instructions/request (windows of ${counted}: ${r.windows.map(fmt).join(' / ')}${r.settled ? '' : `; NOT SETTLED within ${maxWindows} windows`}${r.bad ? `; ${r.bad} errors or non-2xx` : ''})\n`);
    }
  }
  const floorId = targets.find((t) => t.floor)?.id;
  const floor = floorId ? median(results.get(floorId).map((r) => r.perRequest)) : NaN;
  const lines = [
    `# Instructions per request (callgrind, user space, all threads)`,
    '',
    `- date: ${new Date().toISOString()}; node ${process.version}; ${rounds} round(s) (a new process each); ${warmup} warm-up requests, then counted windows of ${counted} requests at ${connections} connections until two in a row agree within ${settlePct}% (at most ${maxWindows}); a process's figure is the mean of its last two windows, a row's the median of its processes; node ${nodeArgs.join(' ') || '(no flags)'}; ${ARENA_MAX === '' ? "glibc's default malloc arenas" : `MALLOC_ARENA_MAX=${ARENA_MAX}`}`,
    '',
    '| target | instructions/request (median) | rounds | ÷ floor |',
    '|:--|--:|:--|--:|',
  ];
  for (const t of targets) {
    const rs = results.get(t.id);
    const med = median(rs.map((r) => r.perRequest));
    const bad = rs.reduce((s, r) => s + r.bad, 0);
    lines.push(`| ${t.label} | ${Math.round(med).toLocaleString('en-US')} | ${rs.map((r) => fmt(r.perRequest)).join(' / ')} | ${Number.isFinite(floor) && bad === 0 ? (med / floor).toFixed(3) + '×' : '—'}${bad ? ` ⚠ ${bad} failed requests: not this row's request path` : ''}${rs.some((r) => !r.settled) ? ' ⚠ not settled' : ''} |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
}

main().then(
  () => cleanup(0),
  (err) => {
    process.stderr.write(`instructions: ${err.stack ?? err}\n`);
    return cleanup(1);
  },
);
