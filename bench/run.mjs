#!/usr/bin/env node
/**
 * `npm run bench`: one backend, several targets in front of it (direct, a minimal node:http+undici
 * forwarder (the floor), fastify + @fastify/http-proxy, MicroGate in several configurations), each
 * its own child process pinned to one core, loaded by autocannon from this process on another core,
 * in interleaved rounds; a fixed CPU loop timed before and after every run flags disturbed runs,
 * which are rerun and kept out of medians and ratios. Prints one table (CPU/request, req/s, p50/p99,
 * RSS at start and after the run) and writes bench/results/latest.{md,json}.
 *
 * Environment: BENCH_ROUNDS (5: whole runs differ by ±0.1 in a ratio; five rounds steady the medians), BENCH_SECONDS (4), BENCH_CONNECTIONS (50), BENCH_WARMUP (1),
 * BENCH_LATENCY_SECONDS (1; 0 = skip the one-connection latency run), BENCH_TARGETS (comma list
 * of ids, see lib/targets.mjs; optional rows such as fwd-stream, fwd-object, mg-workers run only
 * when named), BENCH_DISTURB_PCT (20), BENCH_DISTURB_CORE_PCT (15), BENCH_DISTURBED_RETRIES (2), BENCH_RATE (0 = unlimited; else a
 * fixed offered load in req/s for the measured run), BENCH_NO_PIN=1,
 * BENCH_LOADGEN_CPU (0), BENCH_TARGET_CPU (1), BENCH_BACKEND_CPU (0), BENCH_START_TIMEOUT (15000 ms),
 * BENCH_FRESH (1: new backend and target processes every round; 0: one process each for the whole run),
 * BENCH_BASELINE (a built checkout of another commit: each MicroGate row also runs from it, as <id>@base),
 * BENCH_MALLOC_ARENA_MAX (2: glibc's MALLOC_ARENA_MAX for every target process, as docs/configuration.md recommends; empty = glibc's default).
 *
 * Exit status: 0 when every selected target was measured (rows with errors, missing policies or a
 * restart after an outside kill are flagged in the table, not hidden), 1 when a target never came
 * up, could not be restarted, or has no valid run; 130/143 on a signal.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Children } from './lib/children.mjs';
import { runLoad } from './lib/load.mjs';
import { httpGet, openEventStream, redisCommand, redisCommandsProcessed, waitUntil } from './lib/net.mjs';
import { markdown } from './lib/report.mjs';
import { disturbance, floorOf, ratio, usedRuns } from './lib/stats.mjs';
import { calibrate, CoreProbe } from './lib/calibrate.mjs';
import { allowedCpus, clockTicks, coreBusyTicks, cpuModel, freePorts, hasTaskset, median, pinPid, procCpuTicks, rssMb, treeSum } from './lib/system.mjs';
import { checkTarget, makeJwt, microgateConfig, requestHeaders, TARGETS } from './lib/targets.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(ROOT, 'bench', 'results');

function intEnv(name, def, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`bench: ${name} must be an integer from ${min} to ${max} (got "${raw}")\n`);
    process.exit(2);
  }
  return n;
}

const S = {
  rounds: intEnv('BENCH_ROUNDS', 5, 1, 50),
  seconds: intEnv('BENCH_SECONDS', 4, 1, 600),
  connections: intEnv('BENCH_CONNECTIONS', 50, 1, 4096),
  warmup: intEnv('BENCH_WARMUP', 1, 0, 60),
  latencySeconds: intEnv('BENCH_LATENCY_SECONDS', 1, 0, 60),
  startTimeoutMs: intEnv('BENCH_START_TIMEOUT', 15_000, 1_000, 120_000),
  loadgenCpu: intEnv('BENCH_LOADGEN_CPU', 0, 0, 4095),
  targetCpu: intEnv('BENCH_TARGET_CPU', 1, 0, 4095),
  backendCpu: intEnv('BENCH_BACKEND_CPU', 0, 0, 4095),
  // New processes (backend and targets) for every round: one process instance can sit 20-30% off
  // another of the same program for its whole life (JIT, heap layout), so medians need several.
  fresh: intEnv('BENCH_FRESH', 1, 0, 1) === 1,
  // A run is disturbed when the fixed CPU loop (lib/calibrate.mjs) timed before and after it moved by
  // more than this many % on the target's or the load generator's core; it is rerun up to
  // BENCH_DISTURBED_RETRIES times and kept out of the medians.
  disturbPct: intEnv('BENCH_DISTURB_PCT', 20, 1, 1000),
  disturbedRetries: intEnv('BENCH_DISTURBED_RETRIES', 2, 0, 10),
  // … or when other processes used more than this % of the target's core during the run.
  disturbCorePct: intEnv('BENCH_DISTURB_CORE_PCT', 15, 1, 100),
  // A fixed offered load for the measured run (0 = as fast as the target answers). At a fixed rate
  // CPU per request is compared at equal load: useful for before/after checks on a busy machine.
  rate: intEnv('BENCH_RATE', 0, 0, 10_000_000),
  // glibc's MALLOC_ARENA_MAX for every target process (the floor, fastify and MicroGate alike): the
  // setting docs/configuration.md ("Memory") recommends for production. Without it, V8's background
  // compiles leave ~10 MB in a thread's malloc arena in about one start of three. "" = glibc's default.
  mallocArenaMax: process.env.BENCH_MALLOC_ARENA_MAX ?? '2',
};
/** The environment of every target process. */
const TARGET_ENV = S.mallocArenaMax === '' ? process.env : { ...process.env, MALLOC_ARENA_MAX: S.mallocArenaMax };
const wanted = (process.env.BENCH_TARGETS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
for (const id of wanted) {
  if (!TARGETS.some((t) => t.id === id)) {
    process.stderr.write(`bench: unknown target "${id}" in BENCH_TARGETS (known: ${TARGETS.map((t) => t.id).join(', ')})\n`);
    process.exit(2);
  }
}
const chosen = wanted.length === 0 ? TARGETS.filter((t) => !t.optional) : TARGETS.filter((t) => wanted.includes(t.id));
// BENCH_BASELINE=<checkout>: every MicroGate row also runs from another built checkout (a git worktree
// of an earlier commit, `npm run build` done there), interleaved with this one: an A/B of two builds
// in one run, where two separate runs on a shared machine would differ by more than the change.
const baselineRoot = process.env.BENCH_BASELINE ?? '';
if (baselineRoot !== '' && !existsSync(join(baselineRoot, 'bin/microgate'))) {
  process.stderr.write(`bench: BENCH_BASELINE "${baselineRoot}" has no bin/microgate\n`);
  process.exit(2);
}
const selected = baselineRoot === '' ? chosen : chosen.flatMap((t) => (t.kind === 'microgate' ? [t, { ...t, id: `${t.id}@base`, label: `${t.label} [baseline build]`, root: baselineRoot }] : [t]));

const CLK = clockTicks();
const children = new Children();
let tmpDir = null;
let shuttingDown = false;
/** Times the calibration loop on the target's core (null when not pinned: the loop runs in this process only). */
let probe = null;
/** The quickest calibration loop seen on each core during this bench (ms): the quiet reference. */
const QUIETEST = { loadgen: Infinity, target: Infinity };

const log = (msg) => process.stderr.write(`${msg}\n`);

class FatalError extends Error {}

// ---- cleanup: every child goes, whatever way we leave ----------------------------------------
async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  probe?.stop();
  await children.stopAll(3000).catch(() => children.killAllNow());
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  process.exit(code);
}
let signals = 0;
for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
]) {
  process.on(sig, () => {
    if (++signals > 1) {
      children.killAllNow();
      process.exit(code);
    }
    log(`\nbench: ${sig}: stopping every child process`);
    void shutdown(code);
  });
}
process.on('exit', () => {
  probe?.stop();
  children.killAllNow();
});
process.on('uncaughtException', (err) => {
  log(`bench: ${err.stack ?? err}`);
  void shutdown(1);
});
process.on('unhandledRejection', (err) => {
  log(`bench: ${err?.stack ?? err}`);
  void shutdown(1);
});

// ---- start-up -----------------------------------------------------------------------------------
function pinningPlan() {
  if (process.env.BENCH_NO_PIN === '1') return { on: false, why: 'off (BENCH_NO_PIN=1)' };
  if (!hasTaskset()) return { on: false, why: 'off (taskset not found): every process shares all cores' };
  const cpus = allowedCpus();
  const need = [S.loadgenCpu, S.targetCpu, S.backendCpu];
  if (!need.every((c) => cpus.includes(c))) return { on: false, why: `off (cores ${need.join('/')} not all in the allowed set ${cpus.join(',')})` };
  if (S.loadgenCpu === S.targetCpu) return { on: false, why: 'off (load generator and target on the same core)' };
  return {
    on: true,
    why: `load generator (this process) on core ${S.loadgenCpu}; each target alone on core ${S.targetCpu}; backend${selected.some((t) => t.redis) ? ' and redis-server' : ''} on core ${S.backendCpu} (moved to core ${S.targetCpu} for the "direct" row, where it is the target)`,
  };
}

async function startBackend(port) {
  const child = children.spawn('backend', process.execPath, [join(ROOT, 'bin/microgate-testbackend'), '--port', String(port), '--host', '127.0.0.1', '--quiet'], {
    cpu: PIN.on ? S.backendCpu : null,
    env: TARGET_ENV, // the "direct" row's target
  });
  const url = `http://127.0.0.1:${port}`;
  const why = await waitUntil(() => httpGet(`${url}/`), child, S.startTimeoutMs);
  if (why) throw new FatalError(`${why}\n${child.tail()}`);
  return { child, url };
}

async function startRedis(port) {
  if (!existsSync('/usr/bin/redis-server')) return { child: null, why: 'redis-server not installed (/usr/bin/redis-server)' };
  const child = children.spawn('redis-server', '/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    cpu: PIN.on ? S.backendCpu : null,
  });
  const why = await waitUntil(
    async () => {
      if ((await redisCommand(port, 'PING')) !== 'PONG') throw new Error('no PONG');
    },
    child,
    S.startTimeoutMs,
  );
  return why ? { child: null, why: `${why}\n${child.tail()}` } : { child, why: null };
}

/** Spawns (or re-spawns) the process of a non-direct target on its port. */
function spawnTarget(state, ctx) {
  const { target } = state;
  const cpu = PIN.on && target.pin !== false ? S.targetCpu : null;
  if (target.kind === 'script') {
    state.child = children.spawn(target.id, process.execPath, [...(target.nodeArgs ?? []), join(ROOT, target.script), '--port', String(state.port), '--backend', ctx.backend.url, ...(target.args ?? [])], { cpu, env: TARGET_ENV });
  } else {
    // stdout (pino, access log) → /dev/null; stderr kept for config errors.
    state.child = children.spawn(target.id, process.execPath, [...(target.nodeArgs ?? []), join(target.root ?? ROOT, 'bin/microgate'), '--config', state.file], { cpu, cwd: tmpDir, env: TARGET_ENV });
  }
}

/** Starts one target; returns its state (status 'ready' or 'failed' with a reason). */
async function startTarget(target, ctx) {
  const state = { target, status: 'ready', child: null, url: '', port: 0, file: '', headers: requestHeaders(target, ctx.jwt), notes: [], flags: [], runs: [], deaths: 0, config: null };
  if (target.kind === 'direct') {
    state.child = ctx.backend.child;
    state.url = ctx.backend.url;
  } else {
    if (target.redis && !ctx.redis.child) {
      state.status = 'failed';
      state.flags.push(`NOT RUN: ${ctx.redis.why}`);
      return state;
    }
    state.port = ctx.ports.shift();
    state.url = `http://127.0.0.1:${state.port}`;
    if (target.kind === 'microgate') {
      state.config = microgateConfig(target, { port: state.port, backendUrl: ctx.backend.url, jwtSecret: ctx.jwt.secret, redisUrl: `redis://127.0.0.1:${ctx.redisPort}`, dataDir: join(tmpDir, `${target.id}-data`) });
      state.file = join(tmpDir, `${target.id}.yml`);
      writeFileSync(state.file, state.config);
    }
    spawnTarget(state, ctx);
  }
  const why = await waitUntil(() => httpGet(`${state.url}/`, state.headers), state.child, S.startTimeoutMs);
  if (why) {
    state.status = 'failed';
    let detail = state.child.tail(4);
    if (target.kind === 'microgate' && detail === '') detail = await diagnoseMicrogate(target, state);
    state.flags.push(`DID NOT START: ${why}${detail ? ` — ${detail.replace(/\s*\n\s*/g, ' | ')}` : ''}`);
    await children.stop(state.child);
    return state;
  }
  const check = await checkTarget(target, state.url, state.headers, { redisPort: ctx.redisPort }).catch((err) => ({ fatal: err.message, notes: [] }));
  for (const n of check.notes) (n.startsWith('MISSING') ? state.flags : state.notes).push(n);
  if (check.fatal) {
    state.status = 'failed';
    state.flags.push(`NOT PROXYING: ${check.fatal}`);
    if (state.child !== ctx.backend.child) await children.stop(state.child);
  }
  return state;
}

/** Before a round: stop every target and the backend, start them again on the same ports. */
async function freshProcesses(ctx, states, round) {
  const targets = states.filter((s) => s.status === 'ready' && s.target.kind !== 'direct');
  await Promise.all(targets.map((s) => children.stop(s.child)));
  await children.stop(ctx.backend.child);
  ctx.backend = await startBackend(ctx.backendPort);
  for (const s of states) if (s.target.kind === 'direct') s.child = ctx.backend.child;
  for (const s of targets) spawnTarget(s, ctx);
  await Promise.all(
    targets.map(async (s) => {
      const why = await waitUntil(() => httpGet(`${s.url}/`, s.headers), s.child, S.startTimeoutMs);
      if (why) {
        s.status = 'crashed';
        s.flags.push(`DID NOT START for round ${round}: ${why}`);
        await children.stop(s.child);
      }
    }),
  );
}

const MAX_RESTARTS = 2;

/** Why a child went away, in words (exit 0 from a gateway means something asked it to stop). */
function deathReason(child) {
  const graceful = child.exitCode === 0 && !child.exitSignal ? ' (a graceful exit: something outside the benchmark sent it SIGTERM/SIGINT)' : '';
  // An uncaught exception ends with a blank line and node's version: name the error line too.
  const lines = child.tail(40).split('\n');
  const error = lines.findLast((l) => /^\w*(Error|Exception)\b|^\w+Error:/.test(l.trim()));
  const tail = [error, ...child.tail(2).split('\n')].filter((l) => l !== undefined && l.trim() !== '').join(' / ');
  return `${child.describeExit()}${graceful}${tail ? ` — ${tail}` : ''}`;
}

/**
 * A target that died between runs (on a shared machine, someone else's cleanup may kill it) is
 * started again, at most MAX_RESTARTS times; the row says so. Returns false when it cannot run.
 */
async function ensureRunning(state, ctx, round) {
  if (!state.child.exited) return true;
  if (state.target.kind === 'direct') throw new FatalError(`the backend ${deathReason(state.child)}`);
  state.deaths++;
  if (state.deaths > MAX_RESTARTS) {
    state.status = 'crashed';
    state.flags.push(`GAVE UP after ${MAX_RESTARTS} restarts`);
    return false;
  }
  log(`  ${state.target.id} is not running (${deathReason(state.child)}): starting it again`);
  spawnTarget(state, ctx);
  const why = await waitUntil(() => httpGet(`${state.url}/`, state.headers), state.child, S.startTimeoutMs);
  if (why) {
    state.status = 'crashed';
    state.flags.push(`DID NOT RESTART in round ${round}: ${why}`);
    await children.stop(state.child);
    return false;
  }
  state.flags.push(`RESTARTED in round ${round}`);
  return true;
}

/** A MicroGate that failed with nothing on stderr logged why on stdout (pino): run it once more with stdout kept. */
async function diagnoseMicrogate(target, state) {
  const file = join(tmpDir, `${target.id}.yml`);
  const child = children.spawn(`${target.id}-diagnose`, process.execPath, [join(ROOT, 'bin/microgate'), '--config', file], { stdout: 'pipe', cwd: tmpDir });
  await Promise.race([child.exitPromise, new Promise((r) => setTimeout(r, 5000))]);
  await children.stop(child);
  const lines = child.output.split('\n').filter((l) => /"level":"(warn|error|fatal)"|error|Error/.test(l));
  return lines.slice(-3).join('\n').slice(0, 600);
}

// ---- measurement ------------------------------------------------------------------------------------
async function measure(state, ctx, round) {
  const backendPid = ctx.backend.child.pid;
  const isDirect = state.target.kind === 'direct';
  if (!(await ensureRunning(state, ctx, round))) return;
  const pid = state.child.pid;
  // A `server.workers` gateway is several processes: count the whole tree.
  const tree = state.target.pin === false;
  const cpuOf = tree ? (p) => treeSum(p, procCpuTicks) : procCpuTicks;
  const rssOf = tree ? (p) => treeSum(p, rssMb) : rssMb;
  if (isDirect && PIN.on) pinPid(backendPid, S.targetCpu);
  let stream = null;
  try {
    // RSS at start: the process as it is before this run's load (a fresh process in round 1 and with BENCH_FRESH=1).
    // A rerun of a disturbed run (same process) keeps the RSS its process had before its first run.
    if (state.rssPid !== pid) {
      state.rssPid = pid;
      state.rssStart = rssOf(pid);
    }
    const rssStart = state.rssStart;
    // A dashboard stream held open through the warm-up and the runs (closed in `finally`).
    if (state.target.sse) {
      stream = openEventStream(`${state.url}/dashboard/api/stream`);
      await stream.opened;
    }
    if (S.warmup > 0) await runLoad({ url: `${state.url}/`, connections: S.connections, duration: S.warmup, headers: state.headers });
    const sample = async () => ({
      cpu: cpuOf(pid),
      backend: procCpuTicks(backendPid),
      core: PIN.on ? coreBusyTicks(S.targetCpu) : NaN,
      loadCore: PIN.on ? coreBusyTicks(S.loadgenCpu) : NaN,
      redis: state.target.redis ? procCpuTicks(ctx.redis.child.pid) : NaN,
      redisCmds: state.target.redis ? await redisCommandsProcessed(ctx.redisPort) : NaN,
    });
    const calBefore = { loadgen: calibrate(), target: probe ? await probe.measure() : NaN };
    const before = await sample();
    const r = await runLoad({ url: `${state.url}/`, connections: S.connections, duration: S.seconds, headers: state.headers, rate: S.rate });
    const after = await sample();
    const calAfter = { loadgen: calibrate(), target: probe ? await probe.measure() : NaN };
    const single = S.latencySeconds > 0 ? await runLoad({ url: `${state.url}/`, connections: 1, duration: S.latencySeconds, headers: state.headers }) : null;
    const rssAfter = rssOf(pid);
    // Request events the open dashboard stream received (warm-up, run and one-connection run).
    const sseEvents = stream === null ? NaN : stream.close();
    stream = null;
    for (const k of ['loadgen', 'target']) for (const v of [calBefore[k], calAfter[k]]) if (Number.isFinite(v)) QUIETEST[k] = Math.min(QUIETEST[k], v);
    const wallS = r.wallMs / 1000;
    const cpuTicks = after.cpu - before.cpu;
    const usPerTick = 1e6 / CLK;
    const run = {
      round,
      requests: r.requests,
      seconds: r.seconds,
      rps: r.rps,
      p50: r.p50,
      p99: r.p99,
      p50Single: single ? single.p50 : NaN,
      p99Single: single ? single.p99 : NaN,
      cpuUsPerReq: r.requests > 0 ? (cpuTicks * usPerTick) / r.requests : NaN,
      cpuPct: (cpuTicks / CLK / wallS) * 100,
      backendUsPerReq: r.requests > 0 ? ((after.backend - before.backend) * usPerTick) / r.requests : NaN,
      redisUsPerReq: r.requests > 0 ? ((after.redis - before.redis) * usPerTick) / r.requests : NaN,
      redisCmdsPerReq: r.requests > 0 ? (after.redisCmds - before.redisCmds - 1) / r.requests : NaN,
      otherLoadPct: PIN.on ? Math.max(0, ((after.core - before.core - cpuTicks) / CLK / wallS) * 100) : NaN,
      // What ran on the load generator's core besides us, the backend and redis (other people's work).
      otherLoadgenCorePct: PIN.on && !isDirect ? Math.max(0, ((after.loadCore - before.loadCore) / CLK - (r.loadgenCpuPct / 100) * wallS - (after.backend - before.backend + (after.redis - before.redis || 0)) / CLK) / wallS * 100) : NaN,
      loadgenCpuPct: r.loadgenCpuPct,
      errors: r.errors,
      timeouts: r.timeouts,
      resets: r.resets,
      non2xx: r.non2xx + (single ? single.non2xx : 0),
      singleErrors: single ? single.errors + single.timeouts : 0,
      statusCodes: r.statusCodes,
      rssStartMb: rssStart,
      rssAfterMb: rssAfter,
      sseEvents,
      calBefore,
      calAfter,
    };
    // Disturbed: the loop moved between before and after, or ran slower than the quietest seen, or
    // other processes took a share of the target's core during the run itself (/proc/stat).
    const { calMovedPct, calSlowPct, reasons } = disturbance({ calBefore, calAfter, quietest: QUIETEST, otherLoadPct: run.otherLoadPct }, S);
    Object.assign(run, {
      calMovedPct,
      calSlowPct,
      disturbedBy: reasons.join(', '),
      disturbed: reasons.length > 0,
    });
    if (state.child.exited) {
      // Died under load: this run's numbers describe a dead process, not the target. Kept out of the medians.
      state.flags.push(`DIED in round ${round} (${deathReason(state.child)}); that run is discarded (${r.errors + r.timeouts} errors)`);
      log(`  [round ${round}/${S.rounds}] ${state.target.id.padEnd(9)} died during the run: ${deathReason(state.child)}`);
      return;
    }
    state.runs.push(run);
    log(
      `  [round ${round}/${S.rounds}] ${state.target.id.padEnd(12)} ${Math.round(run.rps).toString().padStart(6)} req/s  p50 ${run.p50.toFixed(2)} ms  p99 ${run.p99.toFixed(2)} ms  ` +
        `${run.cpuUsPerReq.toFixed(1)} µs/req (${run.cpuPct.toFixed(0)}% CPU)  RSS ${run.rssStartMb.toFixed(0)}→${run.rssAfterMb.toFixed(0)} MB` +
        `${run.errors + run.timeouts + run.non2xx > 0 ? `  errors ${run.errors + run.timeouts}, non-2xx ${run.non2xx}` : ''}` +
        `${run.disturbed ? `  DISTURBED (${run.disturbedBy}): not in the medians` : ''}`,
    );
    return run;
  } finally {
    stream?.close();
    if (isDirect && PIN.on && !ctx.backend.child.exited) pinPid(backendPid, S.backendCpu);
  }
}

function summarize(states) {
  const byId = Object.fromEntries(states.map((s) => [s.target.id, s]));
  for (const s of states) {
    if (s.runs.length === 0) continue;
    // Only undisturbed runs make the medians; a row with none keeps its numbers but gets no ratio.
    const { clean, used, disturbedOnly } = usedRuns(s.runs);
    const pick = (k) => median(used.map((r) => r[k]));
    const sum = (k) => s.runs.reduce((a, r) => a + r[k], 0);
    s.median = {
      runsClean: clean.length,
      runsTotal: s.runs.length,
      disturbedOnly,
      rssStartMb: pick('rssStartMb'),
      rssAfterMb: pick('rssAfterMb'),
      rps: pick('rps'),
      p50: pick('p50'),
      p99: pick('p99'),
      p50Single: pick('p50Single'),
      cpuUsPerReq: pick('cpuUsPerReq'),
      cpuPct: pick('cpuPct'),
      backendUsPerReq: pick('backendUsPerReq'),
      redisUsPerReq: pick('redisUsPerReq'),
      redisCmdsPerReq: pick('redisCmdsPerReq'),
      otherLoadPct: pick('otherLoadPct'),
      otherLoadgenCorePct: pick('otherLoadgenCorePct'),
      loadgenCpuPct: pick('loadgenCpuPct'),
      errors: sum('errors') + sum('timeouts') + sum('singleErrors'),
      non2xx: sum('non2xx'),
      rpsMin: Math.min(...used.map((r) => r.rps)),
      rpsMax: Math.max(...used.map((r) => r.rps)),
    };
    if (clean.length === 0) s.flags.push('every run disturbed: numbers shown, no ratio');
    else if (clean.length < s.runs.length) s.notes.push(`${s.runs.length - clean.length} disturbed run(s) left out`);
    const m = s.median;
    if (m.errors > 0) s.flags.push(`${m.errors} errors/timeouts`);
    if (m.non2xx > 0) {
      const codes = {};
      for (const r of s.runs) for (const [c, n] of Object.entries(r.statusCodes)) if (!c.startsWith('2')) codes[c] = (codes[c] ?? 0) + n;
      s.flags.push(`${m.non2xx} non-2xx (${Object.entries(codes).map(([c, n]) => `${c}×${n}`).join(', ') || 'in the 1-connection run'})`);
    }
    if (s.target.sse) {
      const last = s.runs[s.runs.length - 1];
      const sent = last.requests;
      if (!(last.sseEvents > 0)) s.flags.push('MISSING dashboard stream: no request events received');
      else s.notes.push(`dashboard stream open: ${last.sseEvents.toLocaleString('en-US')} request events received in the last round (warm-up and runs; ${sent.toLocaleString('en-US')} requests measured)`);
    }
    if (m.loadgenCpuPct >= 95) s.notes.push(`load generator saturated (${m.loadgenCpuPct.toFixed(0)}% of a core): req/s is a lower bound`);
    if (m.otherLoadPct >= 10) s.notes.push(`other processes used ${m.otherLoadPct.toFixed(0)}% of the target's core ${S.targetCpu}`);
    if (m.otherLoadgenCorePct >= 10) s.notes.push(`other processes used ${m.otherLoadgenCorePct.toFixed(0)}% of the load generator's core ${S.loadgenCpu}`);
  }
  const direct = byId.direct?.median;
  // The floor: the cheapest (CPU/request) forwarder variant with an undisturbed run; `forwarder`
  // unless fwd-stream / fwd-object were run too and came out cheaper.
  const floor = floorOf(states);
  if (floor && states.filter((s) => s.target.floor && s.median && !s.median.disturbedOnly).length > 1) floor.notes.unshift('the floor: cheapest forwarder variant in this run');
  const fwd = floor?.median;
  for (const s of states) {
    if (!s.median) continue;
    // No ratio from disturbed rounds: both rows need at least one undisturbed run.
    s.median.rpsVsDirect = ratio(s.median, direct, 'rps');
    s.median.cpuVsForwarder = ratio(s.median, fwd, 'cpuUsPerReq');
    s.median.p99VsForwarder = ratio(s.median, fwd, 'p99');
  }

  const lines = [];
  const us = (x) => `${x.toFixed(1)} µs`;
  const clean = (id) => (byId[id]?.median && !byId[id].median.disturbedOnly ? byId[id].median : null);
  const mgp = clean('mg-proxy');
  const fst = clean('fastify');
  const fwdC = fwd ?? null;
  const budget = (x, max) => (x <= max ? `within the ${max}× target` : `ABOVE the ${max}× target`);
  if (mgp && fwdC) {
    const r = mgp.cpuUsPerReq / fwdC.cpuUsPerReq;
    lines.push(
      `MicroGate proxy only (defaults): ${us(mgp.cpuUsPerReq)} CPU/request = ${r.toFixed(2)}× the floor (${us(fwdC.cpuUsPerReq)}), ${budget(r, 1.1)}` +
        (fst ? `; ${(mgp.cpuUsPerReq / fst.cpuUsPerReq).toFixed(2)}× fastify + @fastify/http-proxy (${us(fst.cpuUsPerReq)})` : '') +
        '.',
    );
  }
  const mga = clean('mg-analytics');
  if (mga && mgp) lines.push(`Analytics record path: ${mga.cpuUsPerReq >= mgp.cpuUsPerReq ? '+' : ''}${us(mga.cpuUsPerReq - mgp.cpuUsPerReq)} CPU/request over proxy only (target ≤ 1 µs; differences inside the CPU spread below are noise).`);
  const dashC = clean('mg-dash');
  if (dashC && fwdC) {
    const r = dashC.cpuUsPerReq / fwdC.cpuUsPerReq;
    lines.push(`Full chain + dashboard: ${us(dashC.cpuUsPerReq)} CPU/request = ${r.toFixed(2)}× the floor, ${budget(r, 1.2)}${fst ? `; ${(dashC.cpuUsPerReq / fst.cpuUsPerReq).toFixed(2)}× fastify` : ''}.`);
  }
  const fullC = clean('mg-full');
  if (fullC && fwdC) {
    const r = fullC.p99 / fwdC.p99;
    lines.push(`Tail at ${S.connections} connections: full chain p99 ${fullC.p99.toFixed(2)} ms = ${r.toFixed(2)}× the floor's ${fwdC.p99.toFixed(2)} ms, ${budget(r, 1.5)}${dashC ? `; with the dashboard ${dashC.p99.toFixed(2)} ms (${(dashC.p99 / fwdC.p99).toFixed(2)}×)` : ''}.`);
  }
  // One gateway process per row (a `server.workers` row sums three processes: reported on its own line).
  const mgRows = states.filter((s) => s.target.kind === 'microgate' && s.median && !s.target.workers);
  if (mgRows.length > 0) {
    const worstAfter = mgRows.reduce((a, s) => (s.median.rssAfterMb > a.median.rssAfterMb ? s : a));
    const worstStart = mgRows.reduce((a, s) => (s.median.rssStartMb > a.median.rssStartMb ? s : a));
    lines.push(
      `Memory (MicroGate rows, median RSS): at start at most ${worstStart.median.rssStartMb.toFixed(0)} MB (${worstStart.target.id}; target ≤ 70 MB), after the run at most ${worstAfter.median.rssAfterMb.toFixed(0)} MB (${worstAfter.target.id}; target ≤ 120 MB)` +
        (fwdC ? `; the floor: ${fwdC.rssStartMb.toFixed(0)} → ${fwdC.rssAfterMb.toFixed(0)} MB.` : '.'),
    );
  }
  const wrk = clean('mg-workers');
  if (wrk && mgp) lines.push(`server.workers: 2 (not pinned; load generator and backend share the same 2 cores): ${Math.round(wrk.rps)} req/s vs ${Math.round(mgp.rps)} req/s for one pinned process (${(wrk.rps / mgp.rps).toFixed(2)}×), ${us(wrk.cpuUsPerReq)} CPU/request and RSS ${wrk.rssStartMb.toFixed(0)} → ${wrk.rssAfterMb.toFixed(0)} MB summed over the primary and its two workers.`);
  const disturbed = states.reduce((a, s) => a + s.runs.filter((r) => r.disturbed).length, 0);
  const total = states.reduce((a, s) => a + s.runs.length, 0);
  lines.push(
    `Disturbance check: a fixed CPU loop timed before and after every run on both cores, and the target core's time used by other processes during the run; ` +
      `${disturbed} of ${total} runs were disturbed (loop moved or slower than the quietest by more than ${S.disturbPct}%, or others took more than ${S.disturbCorePct}% of the target's core) and are left out of the medians and ratios (each was rerun, at most ${S.disturbedRetries} times).`,
  );
  // Policies a row should include but that were not visibly on: said next to every number that depends on them.
  const missing = (id) => {
    const parts = (byId[id]?.flags ?? []).filter((f) => f.startsWith('MISSING ')).map((f) => f.slice(8).split(':')[0]);
    return parts.length > 0 ? ` — ⚠ without ${parts.join(', ')} (not on yet)` : '';
  };
  const full = byId['mg-full']?.median;
  if (full && mgp) {
    lines.push(
      `Full chain (API key, rate limit, breaker, metrics, access log) costs ${us(full.cpuUsPerReq - mgp.cpuUsPerReq)} more CPU per request than proxy only (${((full.cpuUsPerReq / mgp.cpuUsPerReq - 1) * 100).toFixed(0)}%; budget 15%)${missing('mg-full')}.`,
    );
  }
  const dash = byId['mg-dash']?.median;
  if (dash && full) lines.push(`The dashboard (request log, live metrics, SSE history) adds ${us(dash.cpuUsPerReq - full.cpuUsPerReq)} per request${missing('mg-dash')}.`);
  const sse = byId['mg-sse']?.median;
  if (sse && dash) lines.push(`One open dashboard stream (every request also sent as an event) adds ${us(sse.cpuUsPerReq - dash.cpuUsPerReq)} per request over the dashboard row${missing('mg-sse')}.`);
  const jwt = byId['mg-jwt']?.median;
  if (jwt && full) lines.push(`JWT (HS256) instead of an API key: ${jwt.cpuUsPerReq >= full.cpuUsPerReq ? '+' : ''}${us(jwt.cpuUsPerReq - full.cpuUsPerReq)} CPU per request${missing('mg-jwt')}.`);
  const red = byId['mg-redis']?.median;
  if (red && full && !(red.redisCmdsPerReq >= 0.5)) {
    lines.push(`Redis store row: only ${Number.isFinite(red.redisCmdsPerReq) ? red.redisCmdsPerReq.toFixed(2) : '?'} Redis commands per request, so the store is not (yet) on the request path; its numbers are the full chain's.`);
  } else if (red && full) {
    const d1 = red.p50Single - full.p50Single;
    const d32 = red.p50 - full.p50;
    lines.push(
      `Redis store adds ${Number.isFinite(d1) ? `${d1.toFixed(3)} ms p50 per request at 1 connection (${full.p50Single.toFixed(3)} → ${red.p50Single.toFixed(3)} ms)` : 'n/a at 1 connection'}` +
        ` and ${d32.toFixed(2)} ms p50 at ${S.connections} connections (${full.p50.toFixed(2)} → ${red.p50.toFixed(2)} ms, mostly queueing from lower throughput); ` +
        `gateway CPU ${red.cpuUsPerReq >= full.cpuUsPerReq ? '+' : ''}${us(red.cpuUsPerReq - full.cpuUsPerReq)}/request; redis-server ${us(red.redisUsPerReq)}/request, ${red.redisCmdsPerReq.toFixed(2)} Redis commands/request (commands run inside a Lua script count too).`,
    );
  }
  const spread = states.filter((s) => s.median && s.runs.length > 1).map((s) => `${s.target.id} ${(((s.median.rpsMax - s.median.rpsMin) / s.median.rps) * 100).toFixed(0)}%`);
  if (spread.length > 0) lines.push(`Spread across rounds ((max − min) / median), req/s: ${spread.join(', ')}.`);
  const cpuSpread = states
    .filter((s) => s.median && s.runs.length > 1)
    .map((s) => {
      const v = s.runs.filter((r) => !r.disturbed || s.median.disturbedOnly).map((r) => r.cpuUsPerReq);
      return `${s.target.id} ${(((Math.max(...v) - Math.min(...v)) / s.median.cpuUsPerReq) * 100).toFixed(0)}%`;
    });
  if (cpuSpread.length > 0) lines.push(`Spread across rounds, CPU/request: ${cpuSpread.join(', ')} (differences smaller than this are noise).`);
  lines.push('Every MicroGate row runs with logging.level "info" and the access log on (the defaults), written to stdout → /dev/null.');
  lines.push('⚠ marks a row with errors, non-2xx answers, a target that did not run, or a policy the row should include that was not visibly on (MISSING …).');
  return lines;
}

// ---- main --------------------------------------------------------------------------------------
const PIN = pinningPlan();

async function main() {
  if (!existsSync(join(ROOT, 'dist/cli/microgate.js')) || !existsSync(join(ROOT, 'dist/cli/testbackend.js'))) {
    throw new FatalError('dist/ is missing: run `npm run build` (or `npx tsc -p tsconfig.build.json`) first');
  }
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpuModel: cpuModel(),
    cores: os.cpus().length,
    allowedCores: allowedCpus().join(','),
    clockTicks: CLK,
    loadavgStart: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    loadavgEnd: '',
    pinning: PIN.why,
    ...S,
    targets: selected.map((t) => t.id),
  };
  // Pinned only now: os/affinity facts above describe the machine, not the pinned process.
  if (PIN.on && !pinPid(process.pid, S.loadgenCpu)) throw new FatalError(`could not pin the load generator to core ${S.loadgenCpu}`);
  log(`MicroGate benchmark — ${meta.date}`);
  log(`node ${meta.node}; ${meta.cpuModel}; ${meta.cores} cores; load average ${meta.loadavgStart}`);
  log(`pinning: ${meta.pinning}`);
  log(`${S.rounds} round(s) × ${selected.length} target(s) × (${S.warmup} s warm-up + ${S.seconds} s at ${S.connections} connections${S.rate > 0 ? ` (${S.rate} req/s offered)` : ''} + ${S.latencySeconds} s at 1 connection)${S.fresh ? ', new processes every round' : ''}`);

  tmpDir = mkdtempSync(join(os.tmpdir(), 'microgate-bench-'));
  if (PIN.on) probe = new CoreProbe(S.targetCpu);
  const ports = await freePorts(selected.length + 2);
  const backendPort = ports.shift();
  const redisPort = ports.shift();
  const backend = await startBackend(backendPort);
  const redis = selected.some((t) => t.redis) ? await startRedis(redisPort) : { child: null, why: 'not selected' };
  const ctx = { backend, backendPort, redis, redisPort, ports, jwt: await makeJwt() };

  const states = [];
  for (const t of selected) {
    const s = await startTarget(t, ctx);
    log(`started ${t.id.padEnd(9)} ${s.status === 'ready' ? 'ready' : s.flags.join('; ')}${s.flags.length && s.status === 'ready' ? `  (${s.flags.join('; ')})` : ''}`);
    states.push(s);
  }

  for (let round = 1; round <= S.rounds; round++) {
    if (round > 1 && S.fresh) await freshProcesses(ctx, states, round);
    // Rotate the order each round so no target always runs first (or right after the same neighbour).
    // Every other round runs backwards, so no target always follows the same neighbour.
    const ready = states.filter((s) => s.status === 'ready');
    const order = ready.map((_, i) => ready[(i + round - 1) % ready.length]);
    if (round % 2 === 0) order.reverse();
    for (const s of order) {
      if (s.status !== 'ready') continue;
      if (ctx.backend.child.exited) throw new FatalError(`the backend ${deathReason(ctx.backend.child)}`);
      // A disturbed run is repeated (same processes, warmed up again), at most S.disturbedRetries times.
      for (let attempt = 0; attempt <= S.disturbedRetries; attempt++) {
        const run = await measure(s, ctx, round);
        if (!run?.disturbed) break;
      }
    }
  }
  meta.loadavgEnd = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  if (ctx.redis.child && !ctx.redis.child.exited) {
    // Which commands the store sent, over the whole run (start-up checks included).
    const info = await redisCommand(redisPort, 'INFO', 'commandstats').catch(() => '');
    meta.redisCommandStats = Object.fromEntries([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
  }

  const summary = summarize(states);
  if (meta.redisCommandStats) {
    const top = Object.entries(meta.redisCommandStats).filter(([c]) => c !== 'info' && c !== 'ping').sort((a, b) => b[1] - a[1]);
    const reqs = states.find((s) => s.target.redis)?.runs.reduce((a, r) => a + r.requests, 0) ?? 0;
    if (top.length > 0) summary.splice(-2, 0, `Redis commands over the whole run (${reqs} measured requests): ${top.slice(0, 6).map(([c, n]) => `${c} ${n}`).join(', ')}.`);
  }
  const rows = states.map((s) => ({ id: s.target.id, label: s.target.label, status: s.status, median: s.median ?? null, flags: s.flags, notes: s.notes }));
  const md = markdown({ meta, rows, summary });
  process.stdout.write(`\n${md}`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.md'), md);
  const json = {
    meta,
    rows: states.map((s) => ({ id: s.target.id, label: s.target.label, status: s.status, url: s.url, headers: Object.keys(s.headers), median: s.median ?? null, flags: s.flags, notes: s.notes, runs: s.runs, config: s.config })),
    summary,
  };
  writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify(json, null, 2) + '\n');
  log(`\nwrote ${join('bench', 'results', 'latest.md')} and latest.json`);
  return states.some((s) => s.status !== 'ready' || s.runs.length === 0) ? 1 : 0;
}

main().then(
  (code) => shutdown(code),
  (err) => {
    log(`bench: ${err instanceof FatalError ? err.message : (err?.stack ?? err)}`);
    return shutdown(1);
  },
);
