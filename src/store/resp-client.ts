/**
 * The gateway's Redis connection: one socket speaking RESP2, commands pipelined in order, replies
 * matched first in, first out. It does what the gateway's Redis users need (src/store/redis-link.ts)
 * and no more: `sendCommand` with string arguments, AUTH and SELECT from the URL, TLS for
 * `rediss://`, a connect timeout, reconnection forever on a caller's backoff, no offline queue
 * (a command while disconnected fails at once) and a bound on commands awaiting replies.
 *
 * Why not node-redis (docs/decisions.md, "Redis client"): loading it costs ~17 MB of RSS (its ~380
 * command modules: 11.5 MB of that) for the one call the gateway makes, `sendCommand`.
 *
 * Replies: simple string → string, integer → number, bulk string → string (UTF-8) or null, array →
 * array or null, error → the command's promise rejects with a RespError carrying Redis's message
 * (inside an array, a RespError element). A server that breaks the protocol (a reply nobody asked
 * for, a malformed frame, a reply over 64 MiB) gets its connection closed, which fails what was
 * pending.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { systemClock, timersOf, type Clock, type TimerClock, type TimerHandle } from '../clock.js';
import { parseRedisUrl, type RedisTarget } from './redis-url.js';

/** An error reply from Redis (`-ERR ...`, `-NOSCRIPT ...`): the message is Redis's text. */
export class RespError extends Error {
  override name = 'RespError';
}

/** The connection is not ready (connecting, reconnecting, or closed): the command was not sent. */
export class RespOfflineError extends Error {
  override name = 'RespOfflineError';
  constructor() {
    super('redis: the client is offline');
  }
}

export interface RespClientOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS). */
  url: string;
  /** A connection attempt not established (TLS and handshake included) within this long is abandoned (ms). */
  connectTimeoutMs: number;
  /** The wait before reconnect attempt `retries` (0, 1, 2 … since the last good connection), in ms. */
  reconnectDelay: (retries: number) => number;
  /** Commands awaiting a reply beyond which a new one fails at once. Unset: no bound. */
  queueMax?: number;
  /** Extra TLS options for `rediss://` (a private CA, say); the host name is checked as usual. */
  tls?: ConnectionOptions;
  /** Largest reply accepted; a larger one (or an unended line that long) is a protocol error. Default 64 MiB. */
  maxReplyBytes?: number;
  /**
   * The clock whose timers schedule reconnect attempts (the backoff), so tests run it in simulated
   * time. Default: real, unref'd timers. The connect timeout stays on real time: it bounds a real
   * socket's handshake.
   */
  clock?: Clock;
}

/**
 * The largest reply the client takes by default. The gateway's replies are a few hundred bytes (an
 * HGETALL of one analytics bucket is the largest); the bound keeps a lying server from making the
 * client buffer without end (a line that never ends, a huge bulk length).
 */
const MAX_REPLY_BYTES = 64 * 1024 * 1024;
const MAX_ARRAY = 1 << 24;
const MAX_DEPTH = 16;
/** Returned by the parser when the buffer ends inside a reply. */
const INCOMPLETE = Symbol('incomplete');

class ProtocolError extends Error {
  override name = 'RespProtocolError';
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class RespClient extends EventEmitter {
  readonly #opts: RespClientOptions;
  readonly #target: RedisTarget;
  #socket: Socket | null = null;
  #open = false;
  #ready = false;
  #destroyed = false;
  #retries = 0;
  #reconnectTimer: TimerHandle | null = null;
  readonly #timers: TimerClock;
  #connectTimer: NodeJS.Timeout | null = null;
  /** Commands sent (or to be sent with the next write), oldest first from `#head`. */
  #pending: Pending[] = [];
  #head = 0;
  /** Handshake replies still expected before the connection is ready. */
  #handshake = 0;
  /**
   * Encoded commands not yet written: written together in the event loop's check phase, so the
   * commands of every request handled in one loop iteration go out in one write (a write per
   * command cost ~8 µs of kernel time per request more in the Redis-store row).
   */
  #out = '';
  #flushQueued = false;
  /** Bytes received but not yet parsed (an incomplete reply). */
  #in: Buffer | null = null;
  #firstReady: { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } | null = null;
  readonly #flushBound = (): void => this.#flush();
  readonly #maxReply: number;

  constructor(opts: RespClientOptions) {
    super();
    this.#opts = opts;
    this.#target = parseRedisUrl(opts.url);
    this.#maxReply = opts.maxReplyBytes ?? MAX_REPLY_BYTES;
    this.#timers = timersOf(opts.clock ?? systemClock);
  }

  /** connect() was called and destroy() was not: connected, connecting or waiting to reconnect. */
  get isOpen(): boolean {
    return this.#open && !this.#destroyed;
  }

  /** Connected, handshake done: commands are sent. */
  get isReady(): boolean {
    return this.#ready;
  }

  /** Commands awaiting a reply. */
  get pendingCount(): number {
    return this.#pending.length - this.#head;
  }

  /**
   * Starts connecting; resolves once the first connection is ready. Failed attempts are reported as
   * 'error' events and retried on the reconnect backoff, so this waits until Redis answers; it
   * rejects only when the client is destroyed first.
   */
  connect(): Promise<void> {
    if (this.#destroyed) return Promise.reject(new Error('redis: the client was destroyed'));
    if (this.#firstReady !== null) return this.#firstReady.promise;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {}); // a caller that stopped waiting must not see an unhandled rejection
    this.#firstReady = { promise, resolve, reject };
    this.#open = true;
    this.#attempt();
    return promise;
  }

  /** Sends one command (string arguments); resolves with its reply, rejects with a RespError for an error reply. */
  sendCommand(args: readonly string[]): Promise<unknown> {
    if (!this.#ready) return Promise.reject(new RespOfflineError());
    const max = this.#opts.queueMax;
    if (max !== undefined && this.pendingCount >= max) return Promise.reject(new Error(`redis: ${max} commands already await a reply`));
    return new Promise<unknown>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#write(args);
    });
  }

  /** Closes the connection now; pending commands fail, and nothing reconnects. Safe more than once. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#ready = false;
    if (this.#reconnectTimer !== null) this.#timers.clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#clearConnectTimer();
    this.#socket?.destroy();
    this.#socket = null;
    this.#failPending(new Error('redis: the client was destroyed'));
    this.#firstReady?.reject(new Error('redis: the client was destroyed'));
  }

  #attempt(): void {
    const t = this.#target;
    const socket = t.tls
      ? tlsConnect({ host: t.host, port: t.port, ...(isIP(t.host) === 0 ? { servername: t.host } : {}), ...this.#opts.tls })
      : netConnect({ host: t.host, port: t.port });
    this.#socket = socket;
    this.#in = null;
    this.#out = '';
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5_000);
    this.#connectTimer = setTimeout(() => socket.destroy(new Error(`redis: connection not ready after ${this.#opts.connectTimeoutMs}ms`)), this.#opts.connectTimeoutMs);
    this.#connectTimer.unref();
    socket.once(t.tls ? 'secureConnect' : 'connect', () => this.#onConnected(socket));
    socket.on('data', (chunk: Buffer) => this.#onData(socket, chunk));
    socket.on('error', (err) => this.#emitError(err));
    socket.once('close', () => this.#onClose(socket));
  }

  #onConnected(socket: Socket): void {
    if (socket !== this.#socket) return;
    const t = this.#target;
    const steps: string[][] = [];
    if (t.password !== '') steps.push(t.username !== '' ? ['AUTH', t.username, t.password] : ['AUTH', t.password]);
    if (t.db !== 0) steps.push(['SELECT', String(t.db)]);
    if (steps.length === 0) return this.#becomeReady();
    this.#handshake = steps.length;
    for (const step of steps) {
      this.#pending.push({
        resolve: () => {
          if (--this.#handshake === 0) this.#becomeReady();
        },
        // A refused AUTH or SELECT (wrong password, no such database): report it and try again later.
        reject: (err) => {
          if (socket !== this.#socket) return;
          this.#emitError(new Error(`redis: ${step[0]} failed: ${err.message}`));
          socket.destroy();
        },
      });
      this.#write(step);
    }
  }

  #becomeReady(): void {
    this.#clearConnectTimer();
    this.#ready = true;
    this.#retries = 0;
    this.emit('ready');
    this.#firstReady?.resolve();
  }

  #onClose(socket: Socket): void {
    if (socket !== this.#socket) return;
    this.#socket = null;
    this.#clearConnectTimer();
    const wasReady = this.#ready;
    this.#ready = false;
    this.#handshake = 0;
    this.#failPending(new Error('redis: the connection closed before the reply'));
    if (this.#destroyed) return;
    if (wasReady) this.#emitError(new Error('redis: the connection closed unexpectedly'));
    const delay = Math.max(0, this.#opts.reconnectDelay(this.#retries++));
    this.#reconnectTimer = this.#timers.setTimeout(() => {
      this.#reconnectTimer = null;
      if (!this.#destroyed) this.#attempt();
    }, delay);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
  }

  #emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #failPending(err: Error): void {
    const pending = this.#pending;
    const head = this.#head;
    this.#pending = [];
    this.#head = 0;
    for (let i = head; i < pending.length; i++) pending[i]!.reject(err);
  }

  /** Appends one command in RESP (an array of bulk strings) to what the next write sends. */
  #write(args: readonly string[]): void {
    let s = `*${args.length}\r\n`;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
    }
    this.#out += s;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushBound);
    }
  }

  #flush(): void {
    this.#flushQueued = false;
    const out = this.#out;
    this.#out = '';
    if (out !== '' && this.#socket !== null) this.#socket.write(out);
  }

  #onData(socket: Socket, chunk: Buffer): void {
    if (socket !== this.#socket) return;
    const buf = this.#in === null ? chunk : Buffer.concat([this.#in, chunk]);
    this.#in = null;
    let pos = 0;
    try {
      // A refused handshake step destroys the socket: the replies after it in this chunk are not handed out.
      while (pos < buf.length && !socket.destroyed) {
        cursor = pos;
        const reply = parseReply(buf, 0, this.#maxReply);
        if (reply === INCOMPLETE) break;
        pos = cursor;
        if (this.#head >= this.#pending.length) throw new ProtocolError('a reply nobody asked for');
        const p = this.#pending[this.#head]!;
        this.#pending[this.#head++] = undefined as unknown as Pending;
        if (this.#head === this.#pending.length) {
          this.#pending = [];
          this.#head = 0;
        } else if (this.#head >= 1024 && this.#head * 2 >= this.#pending.length) {
          this.#pending = this.#pending.slice(this.#head);
          this.#head = 0;
        }
        if (reply instanceof RespError) p.reject(reply);
        else p.resolve(reply);
      }
    } catch (err) {
      this.#emitError(err instanceof ProtocolError ? new Error(`redis: protocol error (${err.message}); closing the connection`) : (err as Error));
      socket.destroy();
      return;
    }
    if (pos < buf.length) {
      if (buf.length - pos > this.#maxReply) {
        this.#emitError(new Error(`redis: protocol error (a reply over ${this.#maxReply} bytes); closing the connection`));
        socket.destroy();
        return;
      }
      this.#in = pos === 0 ? buf : buf.subarray(pos);
    }
  }
}

/** Where the parser reads (module state: one parse runs at a time, synchronously). */
let cursor = 0;

/** The line starting at `cursor` (up to CR LF), as [start, end) of its text; -1 when incomplete. */
function lineEnd(buf: Buffer): number {
  const cr = buf.indexOf(13, cursor);
  if (cr === -1 || cr + 1 >= buf.length) return -1;
  if (buf[cr + 1] !== 10) throw new ProtocolError('CR not followed by LF');
  return cr;
}

/** A decimal integer in buf[start, end), optionally negative. */
function intAt(buf: Buffer, start: number, end: number): number {
  let i = start;
  let neg = false;
  if (buf[i] === 45 /* - */) {
    neg = true;
    i++;
  }
  if (i === end || end - i > 18) throw new ProtocolError('malformed integer');
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) throw new ProtocolError('malformed integer');
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

/** Parses one reply at `cursor`, advancing it; INCOMPLETE (cursor unspecified) when the buffer ends first. */
function parseReply(buf: Buffer, depth: number, maxBytes: number): unknown {
  if (cursor >= buf.length) return INCOMPLETE;
  const type = buf[cursor]!;
  const start = cursor + 1;
  cursor = start;
  const end = lineEnd(buf);
  if (end === -1) return INCOMPLETE;
  cursor = end + 2;
  switch (type) {
    case 43: // + simple string
      return buf.toString('utf8', start, end);
    case 45: // - error
      return new RespError(buf.toString('utf8', start, end));
    case 58: // : integer
      return intAt(buf, start, end);
    case 36: {
      // $ bulk string
      const len = intAt(buf, start, end);
      if (len === -1) return null;
      if (len < 0 || len > maxBytes) throw new ProtocolError(`bulk string of ${len} bytes`);
      if (cursor + len + 2 > buf.length) return INCOMPLETE;
      const s = buf.toString('utf8', cursor, cursor + len);
      if (buf[cursor + len] !== 13 || buf[cursor + len + 1] !== 10) throw new ProtocolError('bulk string not ended by CR LF');
      cursor += len + 2;
      return s;
    }
    case 42: {
      // * array
      const n = intAt(buf, start, end);
      if (n === -1) return null;
      if (n < 0 || n > MAX_ARRAY) throw new ProtocolError(`array of ${n} elements`);
      if (depth >= MAX_DEPTH) throw new ProtocolError('arrays nested too deep');
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const v = parseReply(buf, depth + 1, maxBytes);
        if (v === INCOMPLETE) return INCOMPLETE;
        out.push(v);
      }
      return out;
    }
    default:
      throw new ProtocolError(`unknown reply type 0x${type.toString(16)}`);
  }
}
