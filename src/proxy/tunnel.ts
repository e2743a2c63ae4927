/**
 * The Upgrade (WebSocket) tunnel. The handshake is replayed to the chosen backend through node's
 * HTTP client, which parses the answer: only a real `101` switching to a token the gateway offered
 * becomes a tunnel (two sockets piped together until either side closes or both fall silent for
 * `tunnel_idle_timeout`). Any other answer is relayed as an ordinary response and the client
 * connection is closed, so bytes sent after the handshake never reach the backend unchecked.
 * It must not write raw error responses: failures go through `fail` (the one JSON error writer).
 */
import { request as httpRequest, ServerResponse, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Backend } from '../balancer/index.js';
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/index.js';
import { normalizeIp, upstreamPath } from '../pipeline/index.js';
import { responseHeaderList, upstreamHeaders } from './headers.js';
import { acceptedUpgrades, isOffered } from './upgrade.js';

export interface TunnelOptions {
  stripCredentials: boolean;
  /** A tunnel with no bytes either way for this long is closed, ms (0 = never). */
  idleTimeoutMs: number;
  fail: (ctx: RequestContext, err: GatewayError) => void;
  done: (ctx: RequestContext) => void;
  onConnectFailure: (backend: Backend) => void;
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * The response object of an Upgrade request: written like any response, and the client
 * connection is closed once it is finished (nobody parses further requests on an upgrade socket).
 */
export function upgradeResponse(req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new ServerResponse(req);
  res.assignSocket(socket as Socket);
  res.shouldKeepAlive = false;
  res.once('finish', endSocketAfterResponse);
  return res;
}

function endSocketAfterResponse(this: ServerResponse): void {
  // After a 101 the socket was detached and belongs to the tunnel.
  const socket = this.socket;
  if (socket !== null) socket.destroySoon();
}

export function tunnel(opts: TunnelOptions) {
  return function tunnelStage(ctx: RequestContext): void {
    const route = ctx.route!;
    const offered = acceptedUpgrades(ctx.req.headers.upgrade, route.config.upgrades);
    if (offered === '') {
      // The listener downgrades such requests before the pipeline; this is the backstop.
      ctx.backend!.breaker?.release();
      ctx.decision = 'bad_request';
      throw new GatewayError('bad_request', 'Upgrade to this protocol is not allowed on this route');
    }
    new Handshake(ctx, opts, offered).start();
  };
}

/** One handshake (and, after a 101, its tunnel). */
class Handshake {
  readonly ctx: RequestContext;
  readonly opts: TunnelOptions;
  readonly backend: Backend;
  readonly offered: string;
  readonly client: Socket;
  upstreamReq: ClientRequest | null = null;
  upstream: Socket | null = null;
  timer: NodeJS.Timeout | null = null;
  /** A verdict on the handshake was reached (answer, failure or client gone). */
  settled = false;

  constructor(ctx: RequestContext, opts: TunnelOptions, offered: string) {
    this.ctx = ctx;
    this.opts = opts;
    this.backend = ctx.backend!;
    this.offered = offered;
    this.client = ctx.req.socket;
  }

  start(): void {
    const { ctx, backend } = this;
    const req = ctx.req;
    const headers = upstreamHeaders(req.rawHeaders, {
      peerIp: normalizeIp(this.client.remoteAddress ?? ''),
      requestId: ctx.id,
      proto: (this.client as { encrypted?: boolean }).encrypted ? 'https' : 'http',
      stripCredentials: this.opts.stripCredentials && !ctx.route!.isPublic,
      upgrade: this.offered,
    });
    const origin = backend.origin;
    const https = origin.protocol === 'https:';
    const host = origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname;
    const options = {
      host,
      port: Number(origin.port) || (https ? 443 : 80),
      method: req.method,
      path: backend.basePath + upstreamPath(ctx.route!, req.url!),
      headers,
      agent: false as const,
      setHost: false,
      // SNI carries names only.
      servername: https && isIP(host) === 0 ? host : undefined,
    };
    let up: ClientRequest;
    try {
      up = https ? httpsRequest(options) : httpRequest(options);
    } catch (err) {
      // A header node's client will not send: the client's request is at fault, not the backend.
      backend.breaker?.release();
      ctx.decision = 'bad_request';
      throw new GatewayError('bad_request', `Request cannot be forwarded: ${(err as Error).message}`, { cause: err });
    }
    this.upstreamReq = up;
    up.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => this.onSwitch(res, socket, head));
    up.on('response', (res: IncomingMessage) => this.onAnswer(res));
    up.on('error', (err: NodeJS.ErrnoException) => this.onError(err));
    up.on('socket', (socket: Socket) => socket.once('connect', () => this.arm(ctx.route!.timeoutMs, 'UND_ERR_HEADERS_TIMEOUT')));
    this.arm(backend.connectTimeoutMs, 'UND_ERR_CONNECT_TIMEOUT');
    this.client.once('close', () => this.onClientGone());
    this.client.on('error', ignoreError);
    up.end();
  }

  /** One timer for the whole handshake: connect, then the answer. */
  arm(ms: number, code: string): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.settled) return;
    this.timer = setTimeout(() => this.upstreamReq!.destroy(Object.assign(new Error(`upstream handshake timed out (${code})`), { code })), ms);
  }

  settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    if (this.timer !== null) clearTimeout(this.timer);
    return true;
  }

  /** The backend answered 101. */
  onSwitch(res: IncomingMessage, upstream: Socket, head: Buffer): void {
    if (!this.settle()) {
      upstream.destroy();
      return;
    }
    const { ctx, backend, client } = this;
    if (!isOffered(res.headers.upgrade, this.offered)) {
      // A switch to something the gateway did not offer (h2c, or nothing named): never a tunnel.
      upstream.destroy();
      backend.breaker?.failure();
      ctx.decision = 'upstream_error';
      this.opts.fail(ctx, new GatewayError('upstream_error', `Backend switched to a protocol that was not offered (${res.headers.upgrade ?? 'none'})`));
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    backend.breaker?.success();
    this.upstream = upstream;
    ctx.res.statusCode = 101;
    ctx.res.detachSocket(client);
    let text = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`;
    const raw = res.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i]!.length === 12 && raw[i]!.toLowerCase() === 'x-request-id') continue;
      text += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    text += `x-request-id: ${ctx.id}\r\n\r\n`;
    ctx.bytesOut += head.length;
    client.write(text);
    if (head.length > 0) client.write(head);
    // Bytes the client sent after its handshake go up only now that the backend switched.
    if (ctx.upgradeHead !== null && ctx.upgradeHead.length > 0) upstream.write(ctx.upgradeHead);
    upstream.on('error', destroyPeer);
    client.on('error', destroyPeer);
    (upstream as Peered)[kPeer] = client;
    (client as Peered)[kPeer] = upstream;
    upstream.on('close', destroyPeer);
    client.on('close', destroyPeer);
    if (this.opts.idleTimeoutMs > 0) {
      // Every byte either way passes the client socket, so its inactivity timer is the tunnel's.
      client.setTimeout(this.opts.idleTimeoutMs);
      client.once('timeout', closeIdleTunnel);
    }
    upstream.pipe(client);
    client.pipe(upstream);
    client.resume();
    this.opts.done(ctx);
  }

  /** Any final answer other than 101: relayed as a normal response; the client connection then closes. */
  onAnswer(res: IncomingMessage): void {
    if (!this.settle()) {
      res.destroy();
      return;
    }
    const { ctx, backend } = this;
    if (res.statusCode! >= 500) backend.breaker?.failure();
    else backend.breaker?.success();
    const out = ctx.res;
    if (out.destroyed) {
      res.destroy();
      ctx.decision = 'client_aborted';
      this.opts.done(ctx);
      return;
    }
    const seen = { contentLength: null, chunked: false, responseSecrets: false };
    const list = responseHeaderList(res.rawHeaders, ctx.id, ctx.extraHeaders, seen);
    ctx.responseSecrets = seen.responseSecrets;
    try {
      out.writeHead(res.statusCode!, list);
    } catch (err) {
      res.destroy();
      ctx.decision = 'upstream_error';
      this.opts.fail(ctx, new GatewayError('upstream_error', 'Backend answered with a header that cannot be relayed', { cause: err }));
      return;
    }
    ctx.responseHeaders = list;
    res.on('data', (chunk: Buffer) => {
      ctx.bytesOut += chunk.length;
      if (!out.write(chunk)) {
        res.pause();
        out.once('drain', () => res.resume());
      }
    });
    res.on('end', () => {
      out.end();
      this.opts.done(ctx);
    });
    res.on('error', () => {
      ctx.decision = 'upstream_error';
      out.destroy();
      this.opts.done(ctx);
    });
    res.on('aborted', () => {
      ctx.decision = 'upstream_error';
      out.destroy();
      this.opts.done(ctx);
    });
  }

  onError(err: NodeJS.ErrnoException): void {
    if (!this.settle()) return;
    const { ctx, backend } = this;
    const code = err.code ?? '';
    if (CONNECT_ERRORS.has(code)) this.opts.onConnectFailure(backend);
    backend.breaker?.failure();
    const timeout = code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT';
    ctx.decision = timeout ? 'upstream_timeout' : 'upstream_error';
    this.opts.fail(
      ctx,
      new GatewayError(ctx.decision, timeout ? 'Upstream did not answer the handshake in time' : `Upstream handshake failed (${code || err.message})`, { cause: err }),
    );
  }

  onClientGone(): void {
    if (!this.settle()) return;
    this.upstreamReq?.destroy();
    this.backend.breaker?.release();
    this.ctx.decision = 'client_aborted';
    this.opts.done(this.ctx);
  }
}

function ignoreError(): void {}

const kPeer = Symbol('tunnelPeer');
type Peered = Socket & { [kPeer]?: Socket };

function destroyPeer(this: Peered): void {
  const peer = this[kPeer];
  if (peer !== undefined && !peer.destroyed) peer.destroy();
  if (!this.destroyed) this.destroy();
}

function closeIdleTunnel(this: Peered): void {
  this.destroy();
  this[kPeer]?.destroy();
}
