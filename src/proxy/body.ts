/**
 * Request bodies before a backend is involved: a small body (Content-Length up to
 * `server.request_buffer`, or a chunked one until that much arrived) is read whole before a backend
 * is chosen, so a client trickling its body holds a socket of ours, never a backend connection.
 * A body that stalls for `server.body_timeout` is answered 408 `request_timeout` (buffered or
 * already streaming), and the upstream exchange, if any, is abandoned without blaming the backend.
 * Requests without a body pass straight through: nothing is allocated for them.
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/index.js';

export interface BodyOptions {
  /** Largest request body in bytes; larger → 413. */
  bodyLimit: number;
  /** Bodies up to this many bytes are read whole before the next stage (0 = never). */
  bufferBytes: number;
  /** Longest silence while a body arrives, ms (0 = none). */
  timeoutMs: number;
  fail: (ctx: RequestContext, err: GatewayError) => void;
  done: (ctx: RequestContext) => void;
}

const kBody = Symbol('requestBody');
type Tagged = IncomingMessage & { [kBody]?: BodyState };

/** Stage factory: buffers small bodies and arms the body timeout; must run before the balance stage. */
export function bufferBody(opts: BodyOptions) {
  const cap = opts.bufferBytes === 0 ? 0 : Math.min(opts.bufferBytes, opts.bodyLimit);
  return function bufferBodyStage(ctx: RequestContext): void {
    const req = ctx.req;
    const len = req.headers['content-length'];
    let n = -1;
    if (len !== undefined) {
      n = Number(len);
      if (!(n > 0)) return ctx.next();
    } else if (req.headers['transfer-encoding'] === undefined) {
      return ctx.next();
    }
    const buffer = cap > 0 && n <= cap;
    if (opts.timeoutMs === 0 && !buffer) return ctx.next();
    const state = new BodyState(ctx, opts, buffer ? cap : 0);
    (req as Tagged)[kBody] = state;
    if (opts.timeoutMs > 0) {
      req.socket.setTimeout(opts.timeoutMs);
      req.on('timeout', onBodyTimeout);
      req.once('end', disarmBodyTimeout);
    }
    if (!buffer) return ctx.next();
    req.on('data', onBufferData);
    req.on('end', onBufferEnd);
    req.on('close', onBufferClose);
  };
}

class BodyState {
  readonly ctx: RequestContext;
  readonly opts: BodyOptions;
  /** Bytes to read whole before going on; 0 when the body streams. */
  readonly cap: number;
  chunks: Buffer[] = [];
  size = 0;
  buffering: boolean;

  constructor(ctx: RequestContext, opts: BodyOptions, cap: number) {
    this.ctx = ctx;
    this.opts = opts;
    this.cap = cap;
    this.buffering = cap > 0;
  }

  stopBuffering(): void {
    this.buffering = false;
    const req = this.ctx.req;
    req.off('data', onBufferData);
    req.off('end', onBufferEnd);
    req.off('close', onBufferClose);
  }

  data(chunk: Buffer): void {
    const size = this.size + chunk.length;
    this.size = size;
    this.chunks.push(chunk);
    if (size <= this.cap) return;
    const ctx = this.ctx;
    this.stopBuffering();
    ctx.bytesIn = size;
    if (size > this.opts.bodyLimit) {
      ctx.decision = 'body_too_large';
      ctx.res.shouldKeepAlive = false;
      this.opts.fail(ctx, new GatewayError('body_too_large', `Request body exceeds ${this.opts.bodyLimit} bytes`));
      return;
    }
    // A chunked body longer than the buffer: what arrived goes first, the rest streams.
    ctx.req.pause();
    ctx.bodyPrefix = this.chunks;
    ctx.next();
  }

  end(): void {
    this.stopBuffering();
    const ctx = this.ctx;
    ctx.bytesIn = this.size;
    ctx.body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    ctx.next();
  }

  /** The client went away before its body was complete. */
  aborted(): void {
    this.stopBuffering();
    const ctx = this.ctx;
    if (ctx.finished) return;
    ctx.decision = 'client_aborted';
    this.opts.done(ctx);
  }

  expire(): void {
    if (this.buffering) this.stopBuffering();
    const ctx = this.ctx;
    if (ctx.finished) return;
    ctx.res.shouldKeepAlive = false;
    ctx.decision = 'request_timeout';
    // Streaming into a backend already: stop that exchange; the backend did nothing wrong.
    ctx.exchange?.abandon();
    this.opts.fail(ctx, new GatewayError('request_timeout', `No request body bytes arrived for ${this.opts.timeoutMs} ms`));
  }
}

function onBufferData(this: Tagged, chunk: Buffer): void {
  this[kBody]!.data(chunk);
}

function onBufferEnd(this: Tagged): void {
  this[kBody]!.end();
}

function onBufferClose(this: Tagged): void {
  if (!this.complete) this[kBody]!.aborted();
}

function onBodyTimeout(this: Tagged): void {
  disarmBodyTimeout.call(this);
  if (!this.complete) this[kBody]?.expire();
}

function disarmBodyTimeout(this: Tagged): void {
  this.off('timeout', onBodyTimeout);
  // The server sets its own keep-alive timeout once the response is finished.
  const socket = this.socket;
  if (socket !== null && !this[kBody]!.ctx.res.writableFinished) socket.setTimeout(0);
}
