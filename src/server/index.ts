/**
 * Server: the node:http listener with its timeouts and HTTP/1.1 hygiene, the JSON error writer,
 * and the guard of the admin surface (token or loopback). It routes nothing itself: the gateway
 * hands it one request handler and one upgrade handler.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { AdminConfig, ServerConfig } from '../config/index.js';
import { errorBody, ERROR_CODES, type ErrorCode } from '../errors.js';
import { isLoopback, newRequestId, normalizeIp } from '../pipeline/index.js';

export interface ServerHandlers {
  request: (req: IncomingMessage, res: ServerResponse) => void;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** Creates the listener with the configured timeouts; bad HTTP framing is answered 400/431 and never reaches a handler. */
export function createHttpServer(config: ServerConfig, handlers: ServerHandlers): Server {
  const server = createServer(
    {
      requestTimeout: config.request_timeout,
      headersTimeout: config.header_timeout,
      keepAliveTimeout: config.idle_timeout,
      maxHeaderSize: config.max_header_size,
      connectionsCheckingInterval: Math.min(1_000, config.header_timeout),
      // Strict parsing: ambiguous framing (CL+TE, duplicate CL, obs-fold) is refused by llhttp.
      insecureHTTPParser: false,
      requireHostHeader: true,
    },
    handlers.request,
  );
  server.on('upgrade', handlers.upgrade);
  server.on('clientError', onClientError);
  if (config.max_connections !== undefined) server.maxConnections = config.max_connections;
  return server;
}

/** The parser refused a request (bad framing, oversized headers, timeout): answer once with JSON and close. */
function onClientError(err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: Duplex): void {
  if (!socket.writable || (err.code === 'ECONNRESET' && !socket.readable)) {
    socket.destroy();
    return;
  }
  let code: ErrorCode = 'bad_request';
  let message = 'Malformed HTTP request';
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    code = 'header_too_large';
    message = 'Request header fields too large';
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT') {
    socket.destroy();
    return;
  } else if (err.code) {
    message = `Malformed HTTP request (${err.code})`;
  }
  const status = ERROR_CODES[code].status;
  const body = errorBody(code, message, newRequestId());
  socket.end(
    `HTTP/1.1 ${status} ${ERROR_CODES[code].message}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Writes a JSON error response (or cuts the connection if a response already started). */
export function sendError(res: ServerResponse, status: number, code: string, message: string, requestId: string, headers?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(code, message, requestId);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('x-request-id', requestId);
  res.setHeader('cache-control', 'no-store');
  if (headers) for (const k of Object.keys(headers)) res.setHeader(k, headers[k]!);
  res.end(body);
}

/** Writes a JSON body with a status. */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers?: Record<string, string>): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  if (headers) for (const k of Object.keys(headers)) res.setHeader(k, headers[k]!);
  res.end(body);
}

/**
 * Admin access: `Authorization: Bearer <admin.token>` (compared in constant time), or a loopback
 * peer when `admin.allow_loopback`. The peer is the socket address: X-Forwarded-For never grants
 * admin access.
 */
export class AdminGuard {
  readonly #tokenHash: Buffer | null;
  readonly #allowLoopback: boolean;

  constructor(config: AdminConfig) {
    this.#tokenHash = config.token ? createHash('sha256').update(config.token).digest() : null;
    this.#allowLoopback = config.allow_loopback;
  }

  allows(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    if (this.#tokenHash !== null && typeof auth === 'string' && /^bearer /i.test(auth)) {
      const presented = createHash('sha256').update(auth.slice(7).trim()).digest();
      if (timingSafeEqual(presented, this.#tokenHash)) return true;
    }
    return this.#allowLoopback && isLoopback(normalizeIp(req.socket.remoteAddress ?? ''));
  }
}
