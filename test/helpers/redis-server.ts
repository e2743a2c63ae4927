/**
 * A private, throw-away redis-server per test file: free port, no persistence, stopped in `after`.
 * Tests can pause it (SIGSTOP), resume it, kill it and restart it on the same port.
 * Missing binary: skip locally, but FAIL when `CI` is set (Redis tests must never be skipped in CI).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './ports.js';

export const REDIS_SERVER_BIN = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

/** A skip reason for `describe(..., { skip })`, or false when redis-server exists. Throws in CI when it does not. */
export function redisSkipReason(): string | false {
  if (existsSync(REDIS_SERVER_BIN)) return false;
  const msg = `${REDIS_SERVER_BIN} not found (set REDIS_SERVER_BIN or install redis-server)`;
  if (process.env.CI) throw new Error(`${msg}: Redis tests must run in CI, refusing to skip them`);
  return msg;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Never leave a server behind, even when the test process dies early.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

export { freePort };

/** Resolves true when the server answers PING with +PONG within `ms`. */
function pingOnce(port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(done, ms, false);
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

export class RedisServer {
  readonly port: number;
  #child: ChildProcess | null = null;
  #output = '';

  private constructor(port: number) {
    this.port = port;
  }

  /** Starts a server on a free port and waits until it answers PING. */
  static async start(): Promise<RedisServer> {
    const skip = redisSkipReason();
    if (skip !== false) throw new Error(skip);
    let lastErr: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = new RedisServer(await freePort());
      try {
        await server.#spawn();
        return server;
      } catch (err) {
        lastErr = err; // most likely someone took the port between probe and bind
        await server.stop();
      }
    }
    throw lastErr;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async #spawn(): Promise<void> {
    this.#output = '';
    const child = spawn(
      REDIS_SERVER_BIN,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir(), '--loglevel', 'warning'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    track(child);
    const collect = (d: Buffer): void => {
      if (this.#output.length < 8192) this.#output += d.toString();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let exited = false;
    child.once('exit', () => (exited = true));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`redis-server exited at start on port ${this.port}:\n${this.#output}`);
      if (await pingOnce(this.port, 200)) return;
      await sleep(20);
    }
    throw new Error(`redis-server did not answer PING on port ${this.port} within 10s:\n${this.#output}`);
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  /** Thaws a paused process (SIGCONT). */
  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** Kills the process (SIGKILL, also works while paused) and waits for it to exit. Data is lost. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts a fresh (empty) server on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  /** Stops the server for good; safe to call twice. */
  async stop(): Promise<void> {
    await this.kill();
  }
}
