/**
 * Helpers for the CLI tests: run `bin/microgate` and `bin/microgate-testbackend` as child
 * processes (they load the compiled dist/, so run `npx tsc -p tsconfig.build.json` first).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MICROGATE = join(ROOT, 'bin/microgate');
export const TESTBACKEND = join(ROOT, 'bin/microgate-testbackend');

export function assertBuilt(): void {
  for (const f of ['dist/cli/microgate.js', 'dist/cli/testbackend.js']) {
    assert.ok(existsSync(join(ROOT, f)), `${f} is missing: run \`npx tsc -p tsconfig.build.json\` before the CLI tests`);
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a bin script to completion (killed after timeoutMs). */
export function run(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The test process's environment without variables that would change the gateway's behaviour. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.MICROGATE_CONFIG;
  delete env.PORT;
  delete env.NODE_OPTIONS;
  return { ...env, ...extra };
}

/** A long-running child whose output is collected; killed (SIGKILL) after the test if still alive. */
export class Running {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(t: TestContext, bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.child = spawn(process.execPath, [bin, ...args], { cwd: opts.cwd ?? ROOT, env: opts.env ?? cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8').on('data', (c: string) => (this.stdout += c));
    this.child.stderr.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    t.after(async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits until stdout matches `re` and returns the match; fails if the process exits first. */
  async waitForStdout(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.stdout);
      if (m) return m;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        assert.fail(`process exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${re}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      if (Date.now() > deadline) assert.fail(`no ${re} within ${timeoutMs}ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      await sleep(25);
    }
  }

  /** Waits for the exit, failing after timeoutMs. */
  async waitForExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs}ms\nstdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Starts the test backend on a random port and returns it with its base URL. */
export async function startTestBackend(t: TestContext, args: string[] = []): Promise<{ proc: Running; url: string; port: number }> {
  const proc = new Running(t, TESTBACKEND, ['--port', '0', ...args]);
  const m = await proc.waitForStdout(/test backend listening on http:\/\/[^:]+:(\d+)/);
  const port = Number(m[1]);
  return { proc, url: `http://127.0.0.1:${port}`, port };
}

export { freePort } from '../helpers/ports.js';

/** A temporary directory removed after the test; `write` puts a file in it and returns its path. */
export async function tempDir(t: TestContext): Promise<{ dir: string; write(name: string, text: string): Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return {
    dir,
    async write(name, text) {
      const file = join(dir, name);
      await writeFile(file, text);
      return file;
    },
  };
}

/** Direct children of `pid`, read from /proc. */
export function childrenOf(pid: number): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the ")" that closes the command name: state ppid ...
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      out.push({ pid: Number(name), cmdline: readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim() });
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** The `server:` block of a gateway of two workers on a free port of 127.0.0.1 (3 s to shut down). */
export const TWO_WORKERS_SERVER = `server:
  port: 0
  host: 127.0.0.1
  workers: 2
  shutdown_timeout: 3s
`;

/** The sum of metric `name` over its series in the gateway's /metrics at `url`. */
export async function metric(url: string, name: string): Promise<number> {
  const res = await request(`${url}/metrics`);
  const text = await res.body.text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name + '{') || line.startsWith(name + ' ')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${timeoutMs}ms`);
    await sleep(50);
  }
}
