/**
 * The benchmark's child processes: spawned (optionally pinned with `taskset -c N`, which execs, so
 * the pid we hold is the measured process itself), their output tail kept for error messages, and
 * all of them stopped on the way out: SIGTERM, then SIGKILL after a grace period.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { hasTaskset } from './system.mjs';

const TAIL_BYTES = 8 * 1024;

export class Child {
  constructor(name, proc) {
    this.name = name;
    this.proc = proc;
    this.pid = proc.pid;
    this.output = '';
    this.exited = false;
    this.exitCode = null;
    this.exitSignal = null;
    this.spawnError = null;
    this.exitPromise = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
      proc.once('error', (err) => {
        // spawn failure (ENOENT …): no 'exit' follows
        this.spawnError = err;
        this.exited = true;
        resolve();
      });
    });
  }

  capture(stream) {
    if (!stream) return;
    stream.setEncoding('utf8');
    stream.on('data', (s) => {
      this.output += s;
      if (this.output.length > 2 * TAIL_BYTES) this.output = this.output.slice(-TAIL_BYTES);
    });
  }

  /** Last lines of what the process wrote (stderr, and stdout when piped). */
  tail(lines = 8) {
    return this.output.trim().split('\n').slice(-lines).join('\n');
  }

  describeExit() {
    if (this.spawnError) return `could not be spawned (${this.spawnError.message})`;
    if (this.exitSignal) return `was killed by ${this.exitSignal}`;
    return `exited with code ${this.exitCode}`;
  }
}

export class Children {
  #list = [];

  /**
   * Spawns a command. `cpu` (number or null) pins it with taskset when available; stdout is
   * 'ignore' (→ /dev/null) unless asked otherwise; stderr is kept for diagnostics.
   */
  spawn(name, command, args, { cpu = null, stdout = 'ignore', env = process.env, cwd } = {}) {
    const pinned = cpu !== null && hasTaskset();
    const proc = spawn(pinned ? 'taskset' : command, pinned ? ['-c', String(cpu), command, ...args] : args, {
      stdio: ['ignore', stdout, 'pipe'],
      env,
      cwd,
    });
    const child = new Child(name, proc);
    child.capture(proc.stderr);
    if (stdout === 'pipe') child.capture(proc.stdout);
    this.#list.push(child);
    return child;
  }

  /** Stops one child: SIGTERM, SIGKILL after graceMs. Resolves once it has exited. */
  async stop(child, graceMs = 3000) {
    if (child.exited) return;
    try {
      child.proc.kill('SIGTERM');
    } catch {
      // already gone
    }
    let timer;
    const killed = new Promise((resolve) => {
      timer = setTimeout(() => {
        try {
          child.proc.kill('SIGKILL');
        } catch {
          // already gone
        }
        resolve();
      }, graceMs);
    });
    await Promise.race([child.exitPromise, killed]);
    clearTimeout(timer);
    await child.exitPromise;
  }

  /** Stops every child still running, newest first being irrelevant: all at once. */
  async stopAll(graceMs = 3000) {
    await Promise.all(this.#list.map((c) => this.stop(c, graceMs)));
  }

  /** Last resort, synchronous (for process 'exit'): SIGKILL whatever is still running. */
  killAllNow() {
    for (const c of this.#list) {
      if (!c.exited) {
        try {
          c.proc.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }
}

/**
 * A script's children and scratch folder, both gone however the script ends: `cleanup(code)`
 * when it is done, Ctrl-C, SIGTERM or an uncaught error (reported under `name`). `beforeRemove`
 * runs before the folder is removed (to keep some of its files).
 * @param {string} name
 * @param {{ beforeRemove?: (tmpDir: string) => void }} [opts]
 */
export function scriptScope(name, { beforeRemove } = {}) {
  const children = new Children();
  const tmpDir = mkdtempSync(join(os.tmpdir(), `microgate-${name}-`));
  let done = false;
  async function cleanup(code) {
    if (done) return;
    done = true;
    await children.stopAll(5000).catch(() => children.killAllNow());
    beforeRemove?.(tmpDir);
    rmSync(tmpDir, { recursive: true, force: true });
    process.exit(code);
  }
  process.on('SIGINT', () => void cleanup(130));
  process.on('SIGTERM', () => void cleanup(143));
  process.on('exit', () => children.killAllNow());
  process.on('uncaughtException', (err) => {
    process.stderr.write(`${name}: ${err.stack ?? err}\n`);
    void cleanup(1);
  });
  return { children, tmpDir, cleanup };
}
