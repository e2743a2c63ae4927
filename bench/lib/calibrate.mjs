/**
 * Was the machine disturbed during a run? A fixed CPU loop is timed before and after every measured
 * run on the load generator's core (in this process) and on the target's core (in a small pinned
 * child that waits for "go"). On a quiet core the loop takes the same time both times; when other
 * work shares the core, the scheduler gives it time slices and the loop stretches. A run whose loop
 * moved by more than BENCH_DISTURB_PCT % on either core is marked disturbed and kept out of the
 * medians and ratios (bench/run.mjs reruns it).
 *
 * Run as a script (`node calibrate.mjs --serve`): answers each "go" line on stdin with the loop's ms.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hasTaskset } from './system.mjs';

const ITERATIONS = 4_000_000; // ~10-20 ms on a current x86 core

/** Times the fixed loop (ms of wall time): integer xorshift, no allocation, nothing the JIT can drop. */
export function cpuLoopMs() {
  const t0 = performance.now();
  let x = 2463534242;
  for (let i = 0; i < ITERATIONS; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  const ms = performance.now() - t0;
  if (x === 0) process.stderr.write(''); // keeps x alive
  return ms;
}

/** Best of three short loops: one stray time slice should not flag a run, a sustained neighbour should. */
export function calibrate() {
  return Math.min(cpuLoopMs(), cpuLoopMs(), cpuLoopMs());
}

/** A pinned child that times the loop on the target's core on request. */
export class CoreProbe {
  constructor(cpu) {
    const self = fileURLToPath(import.meta.url);
    const pinned = cpu !== null && hasTaskset();
    this.proc = spawn(pinned ? 'taskset' : process.execPath, pinned ? ['-c', String(cpu), process.execPath, self, '--serve'] : [self, '--serve'], { stdio: ['pipe', 'pipe', 'ignore'] });
    this.proc.stdout.setEncoding('utf8');
    this.buf = '';
    this.waiters = [];
    this.proc.stdout.on('data', (d) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.waiters.shift()?.(Number(line));
      }
    });
    this.proc.on('exit', () => {
      for (const w of this.waiters.splice(0)) w(NaN);
    });
  }
  /** ms of the loop on the probe's core (NaN if the probe is gone). */
  measure() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve(NaN);
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.proc.stdin.write('go\n');
    });
  }
  stop() {
    this.proc.kill('SIGTERM');
  }
}

if (process.argv[2] === '--serve') {
  calibrate(); // JIT warm-up
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    for (const _ of d.split('\n').slice(0, -1)) process.stdout.write(`${calibrate()}\n`);
  });
  process.stdin.on('end', () => process.exit(0));
}
