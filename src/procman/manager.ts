/**
 * Managed backend processes: start, stop (SIGTERM, then SIGKILL after a grace period, always
 * waiting for the exit), restart, an output ring buffer per process, an optional on-failure
 * restart policy with exponential, capped backoff (timed by the injected clock), and an event on
 * every transition. Children get a minimal environment (see childEnv), never the gateway's secrets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { systemClock, timersOf, type Clock, type TimerClock, type TimerHandle } from '../clock.js';
import type { ProcessConfig } from '../config/index.js';

export type ProcessStatus = 'running' | 'stopped' | 'crashed';

/** The public view of a process (reference JSON shape plus exit details). */
export interface ProcessInfo {
  id: string;
  command: string;
  args: string[];
  port: number;
  route?: string;
  status: ProcessStatus;
  pid?: number;
  started_at?: string;
  exit_code?: number | null;
  exit_signal?: string | null;
  restarts: number;
  last_error?: string;
  /** Crashed with an on-failure restart pending: milliseconds from the crash to the next start. */
  restart_in_ms?: number;
}

export interface OutputLine {
  id: string;
  line: string;
  stream: 'stdout' | 'stderr';
}

export interface ProcessManagerEvents {
  /** Every transition: started, stopped, crashed, added, start failure. */
  process: [ProcessInfo];
  /** Every line a process prints. */
  output: [OutputLine];
}

const OUTPUT_LINES = 500;
const MAX_LINE = 8 * 1024;
/** First restart delay after a crash; doubles on each crash in a row, up to BACKOFF_MAX_MS. */
export const BACKOFF_START_MS = 1_000;
export const BACKOFF_MAX_MS = 30_000;
/** A process that ran this long before failing resets its backoff. */
const STABLE_MS = 10_000;

class Managed {
  readonly config: ProcessConfig;
  status: ProcessStatus = 'stopped';
  child: ChildProcess | null = null;
  startedAt: Date | null = null;
  exitCode: number | null = null;
  exitSignal: string | null = null;
  lastError: string | undefined = undefined;
  restarts = 0;
  readonly backoff = new Backoff({ firstMs: BACKOFF_START_MS, maxMs: BACKOFF_MAX_MS, stableMs: STABLE_MS });
  restartTimer: TimerHandle | null = null;
  /** Delay of the pending restart (shown as restart_in_ms while crashed). */
  restartInMs: number | null = null;
  stopping = false;
  /** A start is under way (spawned, not yet confirmed): a second start is a conflict. */
  starting = false;
  exited: Promise<void> = Promise.resolve();
  readonly lines: string[] = [];
  partial = { stdout: '', stderr: '' };

  constructor(config: ProcessConfig) {
    this.config = config;
  }
}

export interface ProcessManagerOptions {
  /** Directory relative commands and cwd are resolved against (the gateway's working directory by default). */
  baseDir?: string;
  /** Echo child output to the gateway's own stdout/stderr. */
  echo?: boolean;
  /** Time and timers for the restart backoff (default: the system clock). */
  clock?: Clock;
  /** Where crashes and restarts are logged (one line per crash, with exit code and backoff). */
  logger?: ProcessLogger;
  /** The gateway's environment, filtered for children (default: process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The few logger methods the manager uses (pino's signature). */
export interface ProcessLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Variables a child gets from the gateway's environment unless its config says inherit_env: true. */
const PASSED_ENV = new Set(['PATH', 'HOME', 'LANG', 'TZ', 'NODE_ENV', 'PORT']);

/**
 * The environment of a managed process: PATH, HOME, LANG, LC_*, TZ, NODE_ENV and PORT from the
 * gateway's own environment (everything with `inherit_env: true`), then the process's `env`, then
 * PORT from its `port`. Secrets that `${ENV}` put into the gateway's config stay in the gateway.
 */
export function childEnv(cfg: Pick<ProcessConfig, 'env' | 'port' | 'inherit_env'>, parent: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(parent)) {
    if (v === undefined) continue;
    if (cfg.inherit_env === true || PASSED_ENV.has(k) || k.startsWith('LC_')) env[k] = v;
  }
  Object.assign(env, cfg.env);
  if (cfg.port !== undefined) env.PORT = String(cfg.port);
  return env;
}

export class ProcessManager extends EventEmitter<ProcessManagerEvents> {
  readonly #procs = new Map<string, Managed>();
  readonly #baseDir: string;
  readonly #echo: boolean;
  readonly #clock: TimerClock;
  readonly #logger: ProcessLogger | null;
  readonly #env: NodeJS.ProcessEnv;
  #closing = false;

  constructor(opts: ProcessManagerOptions = {}) {
    super();
    this.#baseDir = opts.baseDir ?? process.cwd();
    this.#echo = opts.echo ?? false;
    this.#clock = timersOf(opts.clock ?? systemClock);
    this.#logger = opts.logger ?? null;
    this.#env = opts.env ?? process.env;
  }

  /** Registers a process (status stopped). Throws on a duplicate id. */
  add(config: ProcessConfig): ProcessInfo {
    if (this.#procs.has(config.id)) throw new ProcessError('conflict', `process with ID ${config.id} already exists`);
    const m = new Managed(config);
    this.#procs.set(config.id, m);
    const info = this.#info(m);
    this.emit('process', info);
    return info;
  }

  /** Removes a stopped process (used to roll back a failed registration). */
  remove(id: string): void {
    const m = this.#procs.get(id);
    if (m && m.status !== 'running') this.#procs.delete(id);
  }

  has(id: string): boolean {
    return this.#procs.has(id);
  }

  list(): ProcessInfo[] {
    return [...this.#procs.values()].map((m) => this.#info(m));
  }

  get(id: string): ProcessInfo | undefined {
    const m = this.#procs.get(id);
    return m ? this.#info(m) : undefined;
  }

  /** The last `n` output lines, oldest first. */
  logs(id: string, n: number): string[] | undefined {
    const m = this.#procs.get(id);
    if (!m) return undefined;
    return m.lines.slice(Math.max(0, m.lines.length - n));
  }

  /** Starts a process; resolves once it spawned, rejects (and emits `crashed`) if it cannot be spawned. */
  async start(id: string): Promise<ProcessInfo> {
    const m = this.#must(id);
    if (m.status === 'running' || m.starting) throw new ProcessError('conflict', `process ${id} is already running`);
    if (this.#closing) throw new ProcessError('unavailable', 'the gateway is shutting down');
    this.#cancelRestart(m);
    m.starting = true;
    try {
      await this.#spawn(m);
    } finally {
      m.starting = false;
    }
    return this.#info(m);
  }

  /** Stops a process: SIGTERM, then SIGKILL after its stop_timeout; resolves after it exited. */
  async stop(id: string): Promise<ProcessInfo> {
    const m = this.#must(id);
    this.#cancelRestart(m);
    if (m.status !== 'running' || m.child === null) throw new ProcessError('conflict', `process ${id} is not running`);
    await this.#terminate(m);
    return this.#info(m);
  }

  async restart(id: string): Promise<ProcessInfo> {
    const m = this.#must(id);
    if (m.status === 'running') await this.#terminate(m);
    return this.start(id);
  }

  /** Stops every running process and waits for all of them to exit. */
  async stopAll(): Promise<void> {
    this.#closing = true;
    const waits: Promise<void>[] = [];
    for (const m of this.#procs.values()) {
      this.#cancelRestart(m);
      if (m.child !== null) waits.push(this.#terminate(m));
    }
    await Promise.all(waits);
  }

  /** Last resort on a forced exit: SIGKILL everything now, synchronously. */
  killAllNow(): void {
    for (const m of this.#procs.values()) {
      if (m.child !== null) signalGroup(m.child, 'SIGKILL');
    }
  }

  #cancelRestart(m: Managed): void {
    if (m.restartTimer !== null) this.#clock.clearTimeout(m.restartTimer);
    m.restartTimer = null;
    m.restartInMs = null;
  }

  #must(id: string): Managed {
    const m = this.#procs.get(id);
    if (!m) throw new ProcessError('not_found', `process with ID ${id} not found`);
    return m;
  }

  #spawn(m: Managed): Promise<void> {
    const cfg = m.config;
    const command = cfg.command.includes('/') ? resolve(this.#baseDir, cfg.command) : cfg.command;
    const env = childEnv(cfg, this.#env);
    return new Promise<void>((resolveStart, rejectStart) => {
      let child: ChildProcess;
      try {
        child = spawn(command, cfg.args, {
          cwd: cfg.cwd ? resolve(this.#baseDir, cfg.cwd) : this.#baseDir,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
          // Its own process group, so a stop reaches what it started too (a shell's server child).
          detached: true,
        });
      } catch (err) {
        this.#startFailed(m, err as Error);
        rejectStart(new ProcessError('start_failed', `failed to start process: ${(err as Error).message}`));
        return;
      }
      m.child = child;
      m.stopping = false;
      let spawned = false;
      let streamsOpen = 2;
      let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
      let resolveExited!: () => void;
      m.exited = new Promise<void>((r) => (resolveExited = r));

      const finish = () => {
        // Runs once the process exited and both pipes drained, so no trailing output is lost.
        if (exitInfo === null || streamsOpen > 0) return;
        const { code, signal } = exitInfo;
        exitInfo = null;
        this.#flushPartial(m);
        if (m.child === child) this.#exited(m, code, signal);
        resolveExited();
      };
      for (const [stream, name] of [
        [child.stdout!, 'stdout'],
        [child.stderr!, 'stderr'],
      ] as const) {
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => this.#output(m, name, chunk));
        stream.once('close', () => {
          streamsOpen--;
          finish();
        });
      }
      child.once('spawn', () => {
        spawned = true;
        m.status = 'running';
        m.startedAt = new Date(this.#clock.now());
        m.exitCode = null;
        m.exitSignal = null;
        m.lastError = undefined;
        this.emit('process', this.#info(m));
        resolveStart();
      });
      child.once('error', (err) => {
        if (spawned) return;
        streamsOpen = 0;
        m.child = null;
        this.#startFailed(m, err);
        resolveExited();
        rejectStart(new ProcessError('start_failed', `failed to start process: ${err.message}`));
      });
      child.once('exit', (code, signal) => {
        if (!spawned) return;
        exitInfo = { code, signal };
        // It ended without being asked: what it started goes with it (as systemd ends a service's
        // control group), or a restart would find the port still taken by its orphaned server.
        if (!m.stopping) endGroup(child, m.config.stop_timeout);
        // Pipes held open by a grandchild must not hold up the status forever.
        setTimeout(() => {
          streamsOpen = 0;
          finish();
        }, 2_000).unref();
        finish();
      });
    });
  }

  #startFailed(m: Managed, err: Error): void {
    m.status = 'crashed';
    m.lastError = err.message;
    m.startedAt = null;
    this.#pushLine(m, 'stderr', `[microgate] failed to start: ${err.message}`);
    this.emit('process', this.#info(m));
  }

  #exited(m: Managed, code: number | null, signal: NodeJS.Signals | null): void {
    const ranMs = m.startedAt ? this.#clock.now() - m.startedAt.getTime() : 0;
    m.child = null;
    m.startedAt = null;
    m.exitCode = code;
    m.exitSignal = signal;
    // Asked to stop: stopped, however it ended. Otherwise a signal death or non-zero exit is a crash.
    const crashed = !m.stopping && (signal !== null || (code !== null && code !== 0));
    m.status = crashed ? 'crashed' : 'stopped';
    m.lastError = crashed ? (signal !== null ? `killed by ${signal}` : `exit status ${code}`) : undefined;
    const restarting = crashed && m.config.restart === 'on-failure' && !this.#closing;
    let delay = 0;
    if (restarting) {
      // Exponential and capped; a process that ran a while before failing starts over at 1 s.
      delay = m.backoff.next(ranMs);
      m.restartInMs = delay;
      m.restartTimer = this.#clock.setTimeout(() => {
        m.restartTimer = null;
        m.restartInMs = null;
        if (this.#closing || m.status === 'running' || m.starting) return;
        m.restarts++;
        this.#spawn(m).catch(() => {});
      }, delay);
    }
    const what = crashed ? `crashed: ${m.lastError}${restarting ? `; restarting in ${formatMs(delay)}` : ''}` : 'stopped';
    this.#pushLine(m, 'stderr', `[microgate] process ${m.config.id} ${what}`);
    if (crashed && this.#logger !== null) {
      const fields = { process: m.config.id, exit_code: code, exit_signal: signal, restarts: m.restarts, backoff_ms: restarting ? delay : null };
      this.#logger.warn(fields, restarting ? `managed process crashed; restarting in ${formatMs(delay)}` : 'managed process crashed');
    }
    this.emit('process', this.#info(m));
  }

  /**
   * SIGTERM to the process and everything it started in its group; SIGKILL to what is left of the
   * group once stop_timeout has passed (the process itself, or children it leaves behind when it
   * exits first: a wrapper shell whose server child still holds the port).
   */
  async #terminate(m: Managed): Promise<void> {
    const child = m.child;
    if (child === null) return;
    m.stopping = true;
    const exited = m.exited;
    signalGroup(child, 'SIGTERM');
    const deadline = performance.now() + m.config.stop_timeout;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), m.config.stop_timeout);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.#pushLine(m, 'stderr', `[microgate] ${m.config.id} did not exit within ${m.config.stop_timeout}ms of SIGTERM: SIGKILL`);
      signalGroup(child, 'SIGKILL');
      await exited;
    } else {
      // The process is gone; what it started may still be stopping.
      while (groupAlive(child) && performance.now() < deadline) await sleep(GROUP_POLL_MS);
      if (groupAlive(child)) {
        this.#pushLine(m, 'stderr', `[microgate] processes ${m.config.id} started were still running ${m.config.stop_timeout}ms after SIGTERM: SIGKILL`);
        signalGroup(child, 'SIGKILL');
      }
    }
    // A SIGKILL lands when the process is next scheduled: stop returns once the group is gone (or 1 s later).
    for (let i = 0; i < 20 && groupAlive(child); i++) await sleep(GROUP_POLL_MS);
  }

  #output(m: Managed, stream: 'stdout' | 'stderr', chunk: string): void {
    if (this.#echo) (stream === 'stdout' ? process.stdout : process.stderr).write(chunk);
    let text = m.partial[stream] + chunk;
    let nl: number;
    while ((nl = text.indexOf('\n')) !== -1) {
      this.#pushLine(m, stream, text.slice(0, nl).replace(/\r$/, ''));
      text = text.slice(nl + 1);
    }
    if (text.length > MAX_LINE) {
      this.#pushLine(m, stream, text.slice(0, MAX_LINE));
      text = '';
    }
    m.partial[stream] = text;
  }

  #flushPartial(m: Managed): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (m.partial[stream] !== '') this.#pushLine(m, stream, m.partial[stream]);
      m.partial[stream] = '';
    }
  }

  #pushLine(m: Managed, stream: 'stdout' | 'stderr', text: string): void {
    const line = text.length > MAX_LINE ? text.slice(0, MAX_LINE) : text;
    m.lines.push(line);
    if (m.lines.length > OUTPUT_LINES) m.lines.splice(0, m.lines.length - OUTPUT_LINES);
    this.emit('output', { id: m.config.id, line, stream });
  }

  #info(m: Managed): ProcessInfo {
    const c = m.config;
    const info: ProcessInfo = {
      id: c.id,
      command: c.command,
      args: [...c.args],
      port: c.port ?? 0,
      status: m.status,
      restarts: m.restarts,
    };
    if (c.route !== undefined) info.route = c.route;
    if (m.child?.pid !== undefined && m.status === 'running') info.pid = m.child.pid;
    if (m.startedAt !== null) info.started_at = m.startedAt.toISOString();
    if (m.status !== 'running') {
      info.exit_code = m.exitCode;
      info.exit_signal = m.exitSignal;
    }
    if (m.lastError !== undefined) info.last_error = m.lastError;
    if (m.restartInMs !== null && m.status !== 'running') info.restart_in_ms = m.restartInMs;
    return info;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** Errors of the process manager, with a stable code the API maps to HTTP statuses. */
export class ProcessError extends Error {
  readonly code: 'not_found' | 'conflict' | 'start_failed' | 'unavailable';
  constructor(code: ProcessError['code'], message: string) {
    super(message);
    this.name = 'ProcessError';
    this.code = code;
  }
}

/** How often a stopping process group is looked at for members still alive (ms). */
const GROUP_POLL_MS = 50;

/** Signals the child's process group (it leads one: spawned detached), or the child alone if that fails. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) {
      process.kill(-child.pid, signal);
      return;
    }
  } catch {
    /* no such group (all gone), or not ours: fall back to the child */
  }
  try {
    child.kill(signal);
  } catch {
    /* already gone */
  }
}

/** SIGTERM to what is left of an exited child's group, SIGKILL to what outlives `graceMs`. */
function endGroup(child: ChildProcess, graceMs: number): void {
  if (!groupAlive(child)) return;
  signalGroup(child, 'SIGTERM');
  setTimeout(() => {
    if (groupAlive(child)) signalGroup(child, 'SIGKILL');
  }, graceMs).unref();
}

/**
 * Whether any process of the child's group is still running. A member that exited but was not yet
 * reaped (a zombie: its parent, the shell, is gone and init reaps it when it gets to it) answers
 * `kill(0)` like a live one, so on Linux the group is read from /proc and zombies are left out.
 * Synchronous: it runs only while a managed process stops, every GROUP_POLL_MS at most.
 */
function groupAlive(child: ChildProcess): boolean {
  const pgid = child.pid;
  if (pgid === undefined) return false;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  const group = String(pgid);
  for (const entry of entries) {
    const c = entry.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so read after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3);
    if (fields[2] === group && fields[0] !== 'Z') return true;
  }
  return false;
}
