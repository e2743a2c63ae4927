/**
 * The forwarding stage: streams the request to the selected backend through its undici Pool and
 * streams the answer back, with backpressure both ways. One handler object per request; no other
 * per-request allocation beyond the upstream header list.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Backend } from '../balancer/index.js';
import { GatewayError } from '../errors.js';
import type { RequestContext, UpstreamExchange } from '../pipeline/index.js';
import { upstreamPath } from '../pipeline/index.js';
import type { BodyWatch, Watched as Timed } from './body-watch.js';
import { responseHeaderList, upstreamHeaders, type RawResponseInfo } from './headers.js';
import { deferUntilParsed, upstreamResetting } from './upstream-reset.js';

export interface ForwardOptions {
  /** Largest request body in bytes; larger → 413. */
  bodyLimit: number;
  /** Ends exchanges whose response body goes silent for `server.upstream_body_timeout`. */
  bodyWatch: BodyWatch;
  stripCredentials: boolean;
  /** Ends the request: writes a gateway error response (if none started) and publishes the completion record. */
  fail: (ctx: RequestContext, err: GatewayError) => void;
  /** Publishes the completion record after a proxied response ended or broke. */
  done: (ctx: RequestContext) => void;
  /** A backend refused or timed out a connection (passive health signal). */
  onConnectFailure: (backend: Backend) => void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET_EARLY']);
/** The code of the error that ends an exchange whose body went silent (./body-watch.ts); undici's own name for it. */
const BODY_TIMEOUT = 'UND_ERR_BODY_TIMEOUT';
const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT', BODY_TIMEOUT, 'UND_ERR_CONNECT_TIMEOUT']);
/** Errors caused by the client's own request (undici refused a header, the body did not match its length). */
const CLIENT_ERRORS = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_NOT_SUPPORTED']);
/** The code of the error that aborts a 204/304 answer carrying a body. */
const BODY_NOT_ALLOWED = 'MG_UPSTREAM_BODY_NOT_ALLOWED';

/** Stage factory: forwards ctx to ctx.backend (chosen by the balance stage). */
export function forward(opts: ForwardOptions) {
  return function forwardStage(ctx: RequestContext): void {
    const req = ctx.req;
    const len = req.headers['content-length'];
    let hasBody = false;
    if (len !== undefined) {
      const n = Number(len);
      if (n > opts.bodyLimit) {
        ctx.decision = 'body_too_large';
        ctx.detail = { limit: opts.bodyLimit, content_length: n };
        // The body is not read: close the connection after answering so it cannot be smuggled as a next request.
        ctx.res.shouldKeepAlive = false;
        ctx.backend?.breaker?.release();
        throw new GatewayError('body_too_large', `Request body exceeds ${opts.bodyLimit} bytes`);
      }
      if (ctx.body === null) ctx.bytesIn = n;
      hasBody = n > 0;
    } else if (req.headers['transfer-encoding'] !== undefined) {
      hasBody = true;
    }
    const backend = ctx.backend!;
    if (backend.inFlight >= backend.maxInFlight) {
      // Every connection is busy and the queue is full (a hung or overwhelmed backend): fail fast
      // instead of queueing without bound. Not the backend's fault as far as its breaker goes.
      backend.breaker?.release();
      ctx.decision = 'upstream_saturated';
      throw new GatewayError('upstream_saturated', undefined, { headers: { 'retry-after': '1' } });
    }
    const handler = new ForwardHandler(ctx, opts, hasBody, hasBody && len === undefined && ctx.body === null);
    handler.dispatch(backend);
  };
}

/**
 * One exchange with a backend, as undici's handler. It is written to undici's raw-header handler API
 * (onConnect, onHeaders, onData, onComplete, onError): undici 7 runs a handler of its newer API
 * (onRequestStart, onResponseStart, …) through a wrapper that builds a header object and a
 * controller for every response (~6,000 instructions a request), where this one turns the
 * backend's header Buffers into the client's list directly. The raw API is marked deprecated and
 * gone in undici 8 (node ≥ 22.19): moving there means onRequestStart/onResponseStart again, with
 * the list built from `controller.rawHeaders` (docs/decisions.md, "Speed").
 */
class ForwardHandler implements Dispatcher.DispatchHandler, UpstreamExchange, Timed, RawResponseInfo {
  readonly ctx: RequestContext;
  readonly opts: ForwardOptions;
  readonly hasBody: boolean;
  /** The request body: buffered whole, the client's stream, or (unknown length) a counting stream that enforces the limit. */
  readonly body: Buffer | Readable | null;
  readonly headers: string[];
  readonly path: string;
  /** undici's abort for the exchange in progress (onConnect), and whether it was called. */
  abortUpstream: ((err?: Error) => void) | null = null;
  aborted = false;
  /** undici's resume (onHeaders), for a response body paused while the client drains. */
  resumeUpstream: (() => void) | null = null;
  paused = false;
  /** What the backend's headers said besides the list (RawResponseInfo). */
  contentLength: string | null = null;
  chunked = false;
  responseSecrets = false;
  backend: Backend | null = null;
  started = false;
  ended = false;
  retried = false;
  clientGone = false;
  status = 0;
  /** Resumes the upstream body once the client's socket drained (made at the first pause). */
  onClientDrain: (() => void) | null = null;
  /** A 204/304's header list, held back until the backend's bytes after it are seen (a body there → 502). */
  noContent: string[] | null = null;
  /** The body watch's links (./body-watch.ts): set while the response body streams. */
  watchPrev: Timed | null = null;
  watchNext: Timed | null = null;
  heardAt = -1;

  constructor(ctx: RequestContext, opts: ForwardOptions, hasBody: boolean, unknownLength: boolean) {
    this.ctx = ctx;
    this.opts = opts;
    this.hasBody = hasBody;
    this.body = hasBody ? (ctx.body !== null ? ctx.body : unknownLength ? countedBody(this) : ctx.req) : null;
    const req = ctx.req;
    this.headers = upstreamHeaders(req.rawHeaders, {
      peerIp: ctx.peerIp,
      requestId: ctx.id,
      proto: (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
      stripCredentials: opts.stripCredentials && ctx.route !== null && !ctx.route.isPublic,
    });
    this.path = upstreamPath(ctx.route!, req.url!);
    watchClient(this);
    // On the context, not the response: a property added to node's response object costs a hidden-class
    // transition and an out-of-object property store on every request.
    ctx.exchange = this;
  }

  dispatch(backend: Backend): void {
    backend.inFlight++;
    this.backend = backend;
    this.ctx.backend = backend;
    const route = this.ctx.route!;
    const path = backend.basePath === '' ? this.path : backend.basePath + this.path;
    backend.pool.dispatch(
      {
        path,
        method: this.ctx.req.method as Dispatcher.HttpMethod,
        headers: this.headers,
        body: this.body,
        headersTimeout: route.timeoutMs,
        // The body's silence is timed by opts.bodyWatch: undici's body timer cost an object a request.
        bodyTimeout: 0,
        idempotent: false,
        blocking: false,
      },
      this,
    );
  }

  /** Ends the exchange in progress with `err` (once; before onConnect there is none: onConnect looks at clientGone). */
  abort(err: Error): void {
    const abort = this.abortUpstream;
    if (abort === null || this.aborted) return;
    this.aborted = true;
    abort(err);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort;
    this.aborted = false;
    if (this.clientGone) this.abort(new Error('client aborted'));
  }

  /** The backend's status and headers (raw: names and values as Buffers). Returns whether undici may read on. */
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) {
      // 1xx interim responses are not relayed. undici restarts its headers timer at each one, so a
      // backend sending them without end (a 103 every few ms) would hold the request forever: the
      // route's timeout counts from the request's start, whatever comes before the final answer.
      if (performance.now() - this.ctx.startedAt > this.ctx.route!.timeoutMs) {
        this.abort(Object.assign(new Error(`Backend sent only interim (1xx) answers for more than ${this.ctx.route!.timeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
      }
      return true;
    }
    const ctx = this.ctx;
    const list = responseHeaderList(rawHeaders, ctx.id, ctx.extraHeaders, this);
    if ((statusCode === 204 || statusCode === 304) && (this.chunked || (statusCode === 204 && this.contentLength !== null && this.contentLength !== '0'))) {
      // A body where none may be (Transfer-Encoding, or on a 204 a non-zero Content-Length; a 304
      // repeats the representation's): the backend is broken or lying. Relaying an empty reply would hide it.
      this.abort(Object.assign(new Error(`Backend sent a body with a ${statusCode} response`), { code: BODY_NOT_ALLOWED }));
      return true;
    }
    this.resumeUpstream = resume;
    this.status = statusCode;
    ctx.responseSecrets = this.responseSecrets;
    this.opts.bodyWatch.add(this);
    if (statusCode === 204 || statusCode === 304) {
      // Nothing to stream: written at the end, once the backend is known not to have sent a body anyway.
      this.noContent = list;
      ctx.responseHeaders = list;
      return true;
    }
    this.started = true;
    const res = ctx.res;
    if (res.headersSent || res.destroyed) {
      this.clientGone = true;
      this.abort(new Error('client aborted'));
      return true;
    }
    try {
      res.writeHead(statusCode, list);
    } catch (err) {
      // A header Node will not send (invalid characters): answer 502 rather than relay it.
      this.started = false;
      this.abort(err as Error);
      return true;
    }
    ctx.responseHeaders = list;
    // A streamed response (SSE, chunked) shows its headers at once; a sized one sends them with its first bytes.
    if (this.contentLength === null) res.flushHeaders();
    return true;
  }

  /** A piece of the response body. Returns false to pause undici until the client drained (resume). */
  onData(chunk: Buffer): boolean {
    this.ctx.bytesOut += chunk.length;
    this.opts.bodyWatch.heard(this);
    if (this.ctx.res.write(chunk)) return true;
    this.paused = true;
    this.ctx.res.once('drain', (this.onClientDrain ??= () => this.resume()));
    return false;
  }

  /** The client drained: read on (the silence is timed from here, as undici did). */
  resume(): void {
    this.opts.bodyWatch.heard(this);
    if (!this.paused) return;
    this.paused = false;
    this.resumeUpstream?.();
  }

  /** The backend sent nothing for the body timeout: end the exchange as timed out. */
  bodyTimedOut(): void {
    this.abort(Object.assign(new Error(`Backend response body silent for more than ${this.opts.bodyWatch.timeoutMs} ms`), { code: BODY_TIMEOUT }));
  }

  onComplete(): void {
    if (upstreamResetting()) {
      // undici ends a close-delimited body at a connection reset; a proxy cannot tell that from truncation.
      this.onError(Object.assign(new Error('upstream connection reset before the body ended'), { code: 'ECONNRESET' }));
      return;
    }
    if (this.noContent !== null && deferUntilParsed(this)) return;
    this.complete();
  }

  /**
   * The client failed its request body (it stalled): stop this exchange, unless it ended, without a
   * verdict on the backend. The caller answers the client.
   */
  abandon(): void {
    if (this.ended) return;
    this.ended = true;
    unwatchClient(this);
    this.opts.bodyWatch.remove(this);
    this.clientGone = true;
    this.abort(new Error('client request body stalled'));
    this.backend?.breaker?.release();
  }

  /** The rest of the backend's bytes were parsed: `broken` when they held a body after the 204/304 (a parse error). */
  verdict(broken: boolean): void {
    if (broken) this.onError(Object.assign(new Error(`Backend sent a body with a ${this.status} response`), { code: BODY_NOT_ALLOWED }));
    else this.complete();
  }

  complete(): void {
    this.backend!.inFlight--;
    this.ended = true;
    unwatchClient(this);
    this.opts.bodyWatch.remove(this);
    const ctx = this.ctx;
    if (this.noContent !== null && !ctx.res.headersSent && !ctx.res.destroyed) {
      try {
        ctx.res.writeHead(this.status, this.noContent);
      } catch (err) {
        ctx.decision = 'upstream_error';
        this.backend!.breaker?.failure();
        this.opts.fail(ctx, new GatewayError('upstream_error', 'Backend answered with a header that cannot be relayed', { cause: err }));
        return;
      }
    }
    ctx.res.end();
    const breaker = this.backend!.breaker;
    if (breaker !== null) {
      if (this.status >= 500) breaker.failure();
      else breaker.success();
    }
    this.opts.done(ctx);
  }

  onError(err: Error): void {
    this.backend!.inFlight--;
    if (this.ended) return;
    this.ended = true;
    unwatchClient(this);
    this.opts.bodyWatch.remove(this);
    const ctx = this.ctx;
    const backend = this.backend!;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (this.clientGone) {
      backend.breaker?.release();
      ctx.decision = 'client_aborted';
      this.opts.done(ctx);
      return;
    }
    if (!this.started && (CLIENT_ERRORS.has(code) || requestBroken(ctx))) {
      // The client's own request failed (a header undici refuses, a body cut short): not the backend's doing.
      backend.breaker?.release();
      if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') {
        ctx.decision = 'bad_request';
        ctx.res.shouldKeepAlive = false;
        this.opts.fail(ctx, new GatewayError('bad_request', `Request cannot be forwarded: ${err.message}`));
      } else {
        ctx.decision = 'client_aborted';
        ctx.res.shouldKeepAlive = false;
        if (ctx.res.destroyed) this.opts.done(ctx);
        else this.opts.fail(ctx, new GatewayError('bad_request', 'Request body ended before its declared length'));
      }
      return;
    }
    const connectFailure = CONNECT_ERRORS.has(code) && !this.started;
    if (connectFailure) this.opts.onConnectFailure(backend);
    if (this.started) {
      // Headers are gone: the only honest signal left is to cut the response short.
      backend.breaker?.failure();
      ctx.decision = TIMEOUT_ERRORS.has(code) ? 'upstream_timeout' : 'upstream_error';
      ctx.errorCode = ctx.decision;
      ctx.res.destroy(err);
      this.opts.done(ctx);
      return;
    }
    backend.breaker?.failure();
    if (connectFailure && !this.retried && !this.hasBody && IDEMPOTENT.has(ctx.req.method!)) {
      const other = ctx.route!.selector.pick(backend);
      if (other !== null && other.inFlight >= other.maxInFlight) other.breaker?.release();
      else if (other !== null) {
        this.retried = true;
        this.ended = false;
        this.abortUpstream = null;
        this.aborted = false;
        this.resumeUpstream = null;
        this.paused = false;
        watchClient(this);
        ctx.detail = { retried_from: backend.url };
        this.dispatch(other);
        return;
      }
    }
    if (TIMEOUT_ERRORS.has(code)) {
      ctx.decision = 'upstream_timeout';
      this.opts.fail(ctx, new GatewayError('upstream_timeout', `Upstream did not answer in time (${code})`, { cause: err }));
    } else if (code === BODY_NOT_ALLOWED) {
      ctx.decision = 'upstream_error';
      this.opts.fail(ctx, new GatewayError('upstream_error', err.message, { cause: err }));
    } else {
      ctx.decision = 'upstream_error';
      this.opts.fail(ctx, new GatewayError('upstream_error', `Upstream request failed (${code || err.name})`, { cause: err }));
    }
  }
}

/** The client's request stream broke before its body was complete (aborted upload). */
function requestBroken(ctx: RequestContext): boolean {
  const req = ctx.req;
  return !req.complete && (req.destroyed || req.errored !== null);
}

/** A body of unknown length, counted as it streams; the part read ahead by the buffer stage goes first. */
function countedBody(handler: ForwardHandler): Readable {
  const counter = new BodyCounter(handler);
  const prefix = handler.ctx.bodyPrefix;
  if (prefix !== null) for (let i = 0; i < prefix.length; i++) counter.push(prefix[i]);
  return handler.ctx.req.pipe(counter);
}

/**
 * A client that goes away mid-exchange must stop the upstream requests it left open. The
 * connection's socket is watched, once per connection, and holds the exchanges open on it (one,
 * or several when the client pipelines): a listener on every response cost ~700 instructions a
 * request, and node never closes the responses queued behind the one it is writing, so a
 * pipelined request's upstream was not released when its client left.
 */
const kExchanges = Symbol('forwardExchanges');
type Watched = { [kExchanges]?: ForwardHandler[] };

function watchClient(handler: ForwardHandler): void {
  const socket = handler.ctx.req.socket as unknown as Watched & Pick<NodeJS.EventEmitter, 'on'>;
  let open = socket[kExchanges];
  if (open === undefined) {
    open = socket[kExchanges] = [];
    socket.on('close', onClientSocketClose);
  } else if (open.length > 0) {
    // An exchange that ended without saying so (none should) is not kept for the connection's life.
    for (let i = open.length - 1; i >= 0; i--) if (open[i]!.ctx.finished) open.splice(i, 1);
  }
  open.push(handler);
}

function unwatchClient(handler: ForwardHandler): void {
  const open = (handler.ctx.req.socket as unknown as Watched)[kExchanges];
  if (open === undefined) return;
  const last = open.length - 1;
  if (last >= 0 && open[last] === handler) open.pop();
  else {
    const i = open.indexOf(handler);
    if (i !== -1) open.splice(i, 1);
  }
}

function onClientSocketClose(this: Watched): void {
  const open = this[kExchanges];
  if (open === undefined || open.length === 0) return;
  for (const handler of open.splice(0)) clientGone(handler);
}

function clientGone(handler: ForwardHandler): void {
  if (handler.ended || handler.ctx.res.writableFinished) return;
  handler.clientGone = true;
  handler.abort(new Error('client aborted'));
}

/** Counts a body of unknown length (chunked) as it streams and stops it at the body limit. */
class BodyCounter extends Transform {
  readonly #handler: ForwardHandler;
  constructor(handler: ForwardHandler) {
    super();
    this.#handler = handler;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const handler = this.#handler;
    const ctx = handler.ctx;
    ctx.bytesIn += chunk.length;
    if (ctx.bytesIn > handler.opts.bodyLimit) {
      if (!handler.started && !handler.ended) {
        handler.ended = true;
        ctx.decision = 'body_too_large';
        handler.abort(new Error('body too large'));
        handler.backend?.breaker?.release();
        ctx.res.shouldKeepAlive = false;
        handler.opts.fail(ctx, new GatewayError('body_too_large', `Request body exceeds ${handler.opts.bodyLimit} bytes`));
      }
      ctx.req.unpipe(this);
      ctx.req.resume();
      cb(new Error('request body exceeds the limit'));
      return;
    }
    cb(null, chunk);
  }
}
