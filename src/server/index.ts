/**
 * Server: the node:http listener with its timeouts and HTTP/1.1 hygiene, the JSON error writer,
 * and the guard of the admin surface (token, session cookie or loopback) with its login endpoint.
 * It routes nothing itself: the gateway hands it one request handler and one upgrade handler, and
 * decides which admin paths go through the guard.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { systemClock, type Clock } from '../clock.js';
import type { AdminConfig, ServerConfig } from '../config/index.js';
import { errorBody, ERROR_CODES, type ErrorCode } from '../errors.js';
import { clientKey, isLoopback, newRequestId, normalizeIp, pickRequestId } from '../pipeline/index.js';
import { acceptedUpgrades, DEFAULT_UPGRADES } from '../proxy/index.js';
import type { RateLimitStore, TakeResult } from '../store/index.js';

export interface ServerHandlers {
  request: (req: IncomingMessage, res: ServerResponse) => void;
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The upgrade tokens (lower-case) the route of a request admits; default: websocket only. */
  upgrades?: (req: IncomingMessage) => readonly string[];
}

/**
 * Creates the listener with the configured timeouts. Bad HTTP framing is answered 400/431 and never
 * reaches a handler; so are requests that parse but must not be served (see {@link refusalOf}).
 * An upgrade to a protocol the route does not admit is served as plain HTTP/1.1 instead.
 */
export function createHttpServer(config: ServerConfig, handlers: ServerHandlers): Server {
  const maxRawHeaders = config.max_headers * 2;
  const onRequest = handlers.request;
  const onUpgrade = handlers.upgrade;
  const upgrades = handlers.upgrades;
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
    function serveRequest(req: IncomingMessage, res: ServerResponse): void {
      const refusal = refusalOf(req, maxRawHeaders);
      if (refusal !== null) {
        res.shouldKeepAlive = false;
        sendError(res, ERROR_CODES[refusal.code].status, refusal.code, refusal.message, pickRequestId(req.headers['x-request-id']));
        return;
      }
      onRequest(req, res);
    },
  );
  // Node drops header lines beyond this from req.headers (not rawHeaders): one more than the limit lets refusalOf see the excess.
  server.maxHeadersCount = config.max_headers + 1;
  server.on('upgrade', function serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', ignoreSocketError);
    let refusal = refusalOf(req, maxRawHeaders);
    const offered = acceptedUpgrades(req.headers.upgrade, upgrades === undefined ? DEFAULT_UPGRADES : upgrades(req));
    if (offered === '') {
      // h2c or any token the route does not list: strip it and serve the request as plain HTTP/1.1.
      if (refusal === null) return void downgradeUpgrade(server, req, socket as Socket, head);
    } else if (refusal === null && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0)) {
      refusal = { code: 'bad_request', message: 'A protocol upgrade request carries no body' };
    }
    if (refusal !== null) {
      writeRawError(socket, refusal.code, refusal.message, pickRequestId(req.headers['x-request-id']));
      return;
    }
    onUpgrade(req, socket, head);
  });
  server.on('clientError', onClientError);
  // Beyond this many client connections (tunnels included) node closes a new one as soon as it is accepted.
  server.maxConnections = config.max_connections;
  return server;
}

function ignoreSocketError(): void {}

interface Refusal {
  code: ErrorCode;
  message: string;
}

const HTTP09: Refusal = { code: 'bad_request', message: 'HTTP/0.9 requests are not served' };
const HTTP_VERSION: Refusal = { code: 'http_version_not_supported', message: 'Only HTTP/1.0 and HTTP/1.1 are served on this port' };
const DUPLICATE_HOST: Refusal = { code: 'bad_request', message: 'More than one Host header' };

/**
 * Why a request that parsed must not be served, or null: an HTTP version other than 1.x (0.9 → 400,
 * 2.0 and later → 505), more header fields than `server.max_headers` (431: node would silently drop
 * the rest, Content-Length included), or a duplicate Host (400: which one the backend believes is
 * anyone's guess). O(header count), no allocation on the way through.
 */
export function refusalOf(req: IncomingMessage, maxRawHeaders: number): Refusal | null {
  if (req.httpVersionMajor !== 1) return req.httpVersionMajor === 0 ? HTTP09 : HTTP_VERSION;
  const raw = req.rawHeaders;
  if (raw.length > maxRawHeaders) {
    return { code: 'header_too_large', message: `More than ${maxRawHeaders / 2} request header fields` };
  }
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host') && ++hosts > 1) return DUPLICATE_HOST;
  }
  return null;
}

/**
 * Serves an upgrade request whose protocol is not admitted as the plain HTTP/1.1 request it also is:
 * its head is rewritten without `Upgrade`, `HTTP2-Settings` and the `Connection` tokens naming them,
 * put back in front of whatever followed it, and the socket is handed to the server again (node's
 * documented way to inject a connection). Body framing, keep-alive, auth and limits then apply as
 * to any request.
 */
export function downgradeUpgrade(server: Server, req: IncomingMessage, socket: Socket, head: Buffer): void {
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade' || lower === 'http2-settings') continue;
    let value = raw[i + 1]!;
    if (lower === 'connection') {
      value = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && !/^(upgrade|http2-settings)$/i.test(t))
        .join(', ');
      if (value === '') continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  const rewritten = Buffer.from(text + '\r\n', 'latin1');
  socket.off('error', ignoreSocketError);
  socket.unshift(head.length === 0 ? rewritten : Buffer.concat([rewritten, head]));
  server.emit('connection', socket);
}

/** Writes a JSON error straight to a socket that has no response object (bad framing, upgrade refusals) and closes it. */
function writeRawError(socket: Duplex, code: ErrorCode, message: string, requestId: string): void {
  const { status, message: reason } = ERROR_CODES[code];
  const body = errorBody(code, message, requestId);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.once('finish', destroyAfterFinish);
}

function destroyAfterFinish(this: Duplex): void {
  this.destroy();
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
  writeRawError(socket, code, message, newRequestId());
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

/** The admin session cookie. */
export const SESSION_COOKIE = 'microgate_admin';
/** Lifetime of an admin session in seconds (12 h); also the cookie's Max-Age. */
export const SESSION_TTL_S = 43_200;
/** GET: how is this request admitted; POST: log in with the admin token; DELETE: log out. */
export const SESSION_PATH = '/dashboard/api/session';
/**
 * The cookie goes to the dashboard only. On Path=/ the browser would attach it to every proxied
 * request too, handing a live admin session to each upstream (admin paths are never proxied).
 */
const COOKIE_PATH = '/dashboard';
/** The dashboard API prefix (the dashboard's API_PREFIX: its internals are not imported here). */
const DASHBOARD_API = '/dashboard/api';
const LOGIN_BODY_LIMIT = 4 * 1024;
/** Login attempts per client (IPv6: per /64): a burst of 10, then one every 10 s. */
const LOGIN_BURST = 10;
const LOGIN_REFILL_PER_SEC = 0.1;
/** Logged-out sessions remembered until they expire; beyond this the signing key is replaced. */
const MAX_REVOKED = 10_000;
/** At most this many `microgate_admin` values of one request are checked. */
const MAX_COOKIE_VALUES = 4;
/** `<expiry, s since the epoch>.<16 random bytes>.<HMAC-SHA256 of "expiry.nonce">`, base64url. */
const SESSION_VALUE = /^(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;
const SESSION_METHODS = 'GET, HEAD, POST, DELETE';
const ADMIN_CHALLENGE = { 'www-authenticate': 'Bearer realm="microgate-admin"' };

/** How the guard admitted a request. */
export type AdminVia = 'token' | 'cookie' | 'loopback';

/** What a call to the session endpoint did, for the gateway's log. */
export type SessionOutcome = 'login' | 'wrong_token' | 'throttled' | 'logout';

const admitted = new WeakMap<IncomingMessage, AdminVia>();

/**
 * How the admin guard admitted `req`: null when it refused or was not asked (public paths). Lets
 * later checks tell a caller that proved itself (token, session) from one trusted for its address.
 */
export function admittedBy(req: IncomingMessage): AdminVia | null {
  return admitted.get(req) ?? null;
}

/**
 * The dashboard's page and assets: everything under /dashboard/ but the API. They hold no data and
 * carry the login form, so they load without credentials; the API they call is guarded.
 */
export function isDashboardUi(path: string): boolean {
  if (path !== '/dashboard' && !path.startsWith('/dashboard/')) return false;
  return !(path === DASHBOARD_API || path.startsWith(DASHBOARD_API + '/'));
}

/**
 * DNS rebinding: a web page whose name was re-pointed at 127.0.0.1 reaches a loopback-trusting
 * gateway from the victim's browser, with a `Host` naming the attacker's domain (and a matching
 * Origin). A loopback peer not admitted by a verified token or session must use a loopback name.
 * The mere presence of an Authorization header proves nothing: the page can add any value it likes.
 */
export function isRebound(req: IncomingMessage): boolean {
  const via = admitted.get(req);
  if (via === 'token' || via === 'cookie') return false;
  if (!isLoopback(normalizeIp(req.socket.remoteAddress ?? ''))) return false;
  return !isLoopbackHost(req.headers.host ?? '');
}

/** `Content-Type: application/json`, with or without parameters such as charset. */
export function isJsonRequest(req: IncomingMessage): boolean {
  const ct = req.headers['content-type'];
  if (typeof ct !== 'string') return false;
  const semi = ct.indexOf(';');
  return (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

/**
 * A browser request from another site: `Sec-Fetch-Site` other than same-origin/none, or an
 * `Origin` that is not this host (or the opaque "null"). Non-browser clients send neither and pass.
 */
export function isCrossSiteRequest(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    const u = new URL(origin);
    return u.host === '' || u.host.toLowerCase() !== (req.headers.host ?? '').toLowerCase();
  } catch {
    return true;
  }
}

export interface AdminGuardOptions {
  /** Session expiry is measured on this clock (tests move a ManualClock). */
  clock?: Clock;
}

/** What the session endpoint needs from the gateway. */
export interface SessionContext {
  requestId: string;
  /** The client address (X-Forwarded-For only through trusted proxies): the login throttle's key. */
  clientIp: string;
  /** Holds the login throttle's buckets. */
  store: Pick<RateLimitStore, 'take'>;
  onOutcome?: (outcome: SessionOutcome) => void;
}

/** What {@link AdminGuard.admit} needs: the session context and what to run once admitted. */
export interface AdminContext extends SessionContext {
  proceed: () => void;
}

function denyAdmin(res: ServerResponse, id: string): void {
  sendError(res, 401, 'admin_unauthorized', 'Admin token required (Authorization: Bearer <admin.token>, or log in at /dashboard/)', id, ADMIN_CHALLENGE);
}

/** Runs `then` with a store answer that may or may not be a promise; a throw or rejection goes to `fail`. */
function settle(take: () => TakeResult | Promise<TakeResult>, then: (r: TakeResult) => void, fail: () => void): void {
  let r: TakeResult | Promise<TakeResult>;
  try {
    r = take();
  } catch {
    return fail();
  }
  if (typeof (r as Promise<TakeResult>).then === 'function') (r as Promise<TakeResult>).then(then, fail);
  else then(r as TakeResult);
}

/**
 * Admin access: `Authorization: Bearer <admin.token>` (compared in constant time), a session
 * cookie from logging in with that token, or a loopback peer when `admin.allow_loopback`. The peer
 * is the socket address: X-Forwarded-For never grants admin access.
 *
 * A session is `<expiry>.<nonce>.<HMAC-SHA256(key, expiry.nonce)>` with a random key per process:
 * it expires, cannot be forged, reveals nothing about the token (no offline guessing from a
 * stolen cookie), and a restart logs everyone out. Logging out revokes the value on the server.
 */
export class AdminGuard {
  readonly #tokenHash: Buffer | null;
  readonly #allowLoopback: boolean;
  readonly #clock: Clock;
  #key = randomBytes(32);
  /** Logged-out session values → their expiry (s). */
  readonly #revoked = new Map<string, number>();

  constructor(config: AdminConfig, opts: AdminGuardOptions = {}) {
    this.#tokenHash = config.token ? createHash('sha256').update(config.token).digest() : null;
    this.#allowLoopback = config.allow_loopback;
    this.#clock = opts.clock ?? systemClock;
  }

  /** Whether anyone can prove admin rights (Bearer or login): `admin.token` is set. */
  get loginEnabled(): boolean {
    return this.#tokenHash !== null;
  }

  /** How `req` is admitted (token first, then session, then loopback), or null; remembered for {@link admittedBy}. */
  via(req: IncomingMessage): AdminVia | null {
    const via = this.#check(req);
    if (via !== null) admitted.set(req, via);
    return via;
  }

  #check(req: IncomingMessage): AdminVia | null {
    // Without a token nobody can log in, so no session can be valid either.
    if (this.#tokenHash !== null) {
      const auth = req.headers.authorization;
      if (typeof auth === 'string' && /^bearer /i.test(auth) && this.#isToken(auth.slice(7).trim())) return 'token';
      if (req.headers.cookie !== undefined && this.#sessionsIn(req).length > 0) return 'cookie';
    }
    return this.#allowLoopback && isLoopback(normalizeIp(req.socket.remoteAddress ?? '')) ? 'loopback' : null;
  }

  #isToken(presented: string): boolean {
    return timingSafeEqual(createHash('sha256').update(presented).digest(), this.#tokenHash!);
  }

  /** The valid, unexpired, not revoked session values the request carries. */
  #sessionsIn(req: IncomingMessage): string[] {
    const header = req.headers.cookie;
    if (header === undefined) return [];
    const valid: string[] = [];
    let seen = 0;
    // Another site under a parent domain can add a second cookie of this name: check each, none wins by order.
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq === -1 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
      if (++seen > MAX_COOKIE_VALUES) break;
      const value = part.slice(eq + 1).trim();
      if (this.#isSession(value)) valid.push(value);
    }
    return valid;
  }

  #isSession(value: string): boolean {
    const m = SESSION_VALUE.exec(value);
    if (m === null) return false;
    // Compared as text, not decoded bytes: base64url has spare bits, and a revoked value must not come back re-spelled.
    const expected = Buffer.from(this.#mac(m[1]!, m[2]!));
    if (!timingSafeEqual(Buffer.from(m[3]!), expected)) return false;
    return Number(m[1]) > this.#nowS() && !this.#revoked.has(value);
  }

  #mac(expiry: string, nonce: string): string {
    return createHmac('sha256', this.#key).update(`${expiry}.${nonce}`).digest('base64url');
  }

  #nowS(): number {
    return Math.floor(this.#clock.now() / 1000);
  }

  #issue(): string {
    const expiry = String(this.#nowS() + SESSION_TTL_S);
    const nonce = randomBytes(16).toString('base64url');
    return `${expiry}.${nonce}.${this.#mac(expiry, nonce)}`;
  }

  #revoke(values: string[]): void {
    if (values.length === 0) return;
    if (this.#revoked.size + values.length > MAX_REVOKED) {
      const now = this.#nowS();
      for (const [v, expiry] of this.#revoked) if (expiry <= now) this.#revoked.delete(v);
    }
    if (this.#revoked.size + values.length > MAX_REVOKED) {
      // Forgetting a revocation would bring a logged-out session back: end every session instead.
      this.#key = randomBytes(32);
      this.#revoked.clear();
      return;
    }
    for (const v of values) this.#revoked.set(v, Number(v.slice(0, v.indexOf('.'))));
  }

  /** An `Authorization` header while a token is configured: an attempt at the admin token, right or wrong. */
  #presentsToken(req: IncomingMessage): boolean {
    return this.#tokenHash !== null && req.headers.authorization !== undefined;
  }

  /**
   * Guards one admin request: calls `ctx.proceed` when the token, a session or a loopback peer
   * admits it, else answers 401. A request presenting a token is a credential attempt: while the
   * address's sign-in bucket is empty it gets 429 whether the token is right or wrong (the bucket
   * is looked at first, without spending it), and a wrong token spends one attempt. A failing
   * store (fail-closed) answers 503 and never admits.
   */
  admit(req: IncomingMessage, res: ServerResponse, ctx: AdminContext): void {
    if (!this.#presentsToken(req)) {
      if (this.via(req) !== null) ctx.proceed();
      else denyAdmin(res, ctx.requestId);
      return;
    }
    const key = loginKey(ctx.clientIp);
    // No throttle state (Redis failing with cluster.fail_closed): a token cannot be checked safely.
    const onStoreError = (): void => sendError(res, 503, 'store_unavailable', 'Admin token check unavailable: the rate-limit store is failing', ctx.requestId);
    const afterCharge = (r: TakeResult): void => {
      if (r.allowed) return denyAdmin(res, ctx.requestId);
      sendThrottled(res, r, ctx.requestId, 'failed admin attempts');
      ctx.onOutcome?.('throttled');
    };
    const afterPeek = (r: TakeResult): void => {
      if (!r.allowed) {
        sendThrottled(res, r, ctx.requestId, 'failed admin attempts');
        ctx.onOutcome?.('throttled');
        return;
      }
      const via = this.via(req);
      if (via === 'token') return ctx.proceed();
      // A wrong token is an attempt even when a session or the loopback rule admits the request
      // anyway: otherwise the answer (e.g. under a foreign Host) would tell a right token apart.
      if (via !== null) settle(() => ctx.store.take(key, LOGIN_BURST, LOGIN_REFILL_PER_SEC), ctx.proceed, ctx.proceed);
      else settle(() => ctx.store.take(key, LOGIN_BURST, LOGIN_REFILL_PER_SEC), afterCharge, onStoreError);
    };
    settle(() => ctx.store.take(key, LOGIN_BURST, LOGIN_REFILL_PER_SEC, 0), afterPeek, onStoreError);
  }

  /**
   * Answers {@link SESSION_PATH}. GET: `{authenticated, via, login_enabled}`. POST `{"token"}`:
   * 204 with the session cookie, 401 for a wrong token, 429 when the client's attempts are used up.
   * DELETE: revokes the session and clears the cookie. POST and DELETE need JSON and same-origin.
   * Never throws for bad input; a failing store rejects (the caller answers 500).
   */
  async session(req: IncomingMessage, res: ServerResponse, ctx: SessionContext): Promise<void> {
    const method = req.method ?? 'GET';
    const id = ctx.requestId;
    if (method === 'GET' || method === 'HEAD') {
      // It answers whether a bearer token is right, so it is a credential attempt like any other.
      const bearer = this.#presentsToken(req);
      if (bearer) {
        const peek = await ctx.store.take(loginKey(ctx.clientIp), LOGIN_BURST, LOGIN_REFILL_PER_SEC, 0);
        if (!peek.allowed) {
          sendThrottled(res, peek, id, 'failed admin attempts');
          ctx.onOutcome?.('throttled');
          return;
        }
      }
      const via = this.via(req);
      if (bearer && via !== 'token') await ctx.store.take(loginKey(ctx.clientIp), LOGIN_BURST, LOGIN_REFILL_PER_SEC);
      // A loopback peer under a foreign host name is what DNS rebinding looks like, and the API refuses it.
      const shown = via === 'loopback' && !isLoopbackHost(req.headers.host ?? '') ? null : via;
      sendJson(res, 200, { authenticated: shown !== null, via: shown, login_enabled: this.loginEnabled });
      return;
    }
    if (method !== 'POST' && method !== 'DELETE') {
      sendError(res, 405, 'method_not_allowed', `${method} is not allowed here (allowed: ${SESSION_METHODS})`, id, { allow: SESSION_METHODS });
      return;
    }
    if (isCrossSiteRequest(req)) {
      sendError(res, 403, 'forbidden', 'cross-site requests to the admin session are refused', id);
      return;
    }
    if (!isJsonRequest(req)) {
      sendError(res, 415, 'unsupported_media_type', 'Content-Type must be application/json', id);
      return;
    }
    const secure = isSecure(req);
    if (method === 'DELETE') {
      this.#revoke(this.#sessionsIn(req));
      sendEmpty(res, { 'set-cookie': sessionCookie('', 0, secure) });
      ctx.onOutcome?.('logout');
      return;
    }
    if (this.#tokenHash === null) {
      const message = this.#allowLoopback
        ? 'Remote admin access is disabled: no admin.token is configured, so only loopback callers (http://localhost) reach the dashboard'
        : 'Admin access is disabled: no admin.token is configured';
      sendError(res, 403, 'forbidden', message, id);
      return;
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, LOGIN_BODY_LIMIT);
    } catch (err) {
      if (err instanceof BodyTooLarge) sendError(res, 413, 'body_too_large', `body larger than ${LOGIN_BODY_LIMIT} bytes`, id, { connection: 'close' });
      else res.destroy();
      return;
    }
    let token: unknown;
    try {
      token = (JSON.parse(raw.toString('utf8')) as { token?: unknown } | null)?.token;
    } catch {
      token = undefined;
    }
    if (typeof token !== 'string' || token === '') {
      sendError(res, 400, 'bad_request', 'body must be {"token": "<admin.token>"}', id);
      return;
    }
    // Every attempt costs a token before the answer is known, so a run of guesses cannot tell a right one apart.
    const taken = await ctx.store.take(loginKey(ctx.clientIp), LOGIN_BURST, LOGIN_REFILL_PER_SEC);
    if (!taken.allowed) {
      sendThrottled(res, taken, id, 'login attempts');
      ctx.onOutcome?.('throttled');
      return;
    }
    if (!this.#isToken(token)) {
      sendError(res, 401, 'admin_unauthorized', 'Wrong admin token', id, ADMIN_CHALLENGE);
      ctx.onOutcome?.('wrong_token');
      return;
    }
    sendEmpty(res, { 'set-cookie': sessionCookie(this.#issue(), SESSION_TTL_S, secure) });
    ctx.onOutcome?.('login');
  }
}

function sessionCookie(value: string, maxAge: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=${COOKIE_PATH}; Max-Age=${maxAge}${secure ? '; Secure' : ''}`;
}

function sendEmpty(res: ServerResponse, headers: Record<string, string>): void {
  res.statusCode = 204;
  res.setHeader('cache-control', 'no-store');
  for (const k of Object.keys(headers)) res.setHeader(k, headers[k]!);
  res.end();
}

/**
 * The browser reached us over HTTPS: a TLS socket, or a TLS-terminating proxy in front
 * (X-Forwarded-Proto, or the page's Origin). Untrusted hints are fine here: a false one only keeps
 * the sender's own cookie off plain HTTP.
 */
function isSecure(req: IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  const proto = req.headers['x-forwarded-proto'];
  if (typeof proto === 'string' && proto.split(',')[0]!.trim().toLowerCase() === 'https') return true;
  return typeof req.headers.origin === 'string' && req.headers.origin.toLowerCase().startsWith('https://');
}

/** A loopback host name (`localhost`, `*.localhost`, `127.x.x.x`, `::1`) in a Host header. */
function isLoopbackHost(hostHeader: string): boolean {
  let host: string;
  if (hostHeader.startsWith('[')) {
    const end = hostHeader.indexOf(']');
    host = end === -1 ? hostHeader : hostHeader.slice(1, end);
  } else {
    const colon = hostHeader.indexOf(':');
    host = (colon === -1 ? hostHeader : hostHeader.slice(0, colon)).toLowerCase();
  }
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The sign-in throttle's bucket of a client: its address, or its /64 for IPv6 (one host commonly holds a whole /64). */
function loginKey(clientIp: string): string {
  return `admin-login:${clientKey(clientIp)}`;
}

function retryAfterS(r: TakeResult): number {
  return Math.max(1, Math.ceil(r.retryAfterMs / 1000));
}

function sendThrottled(res: ServerResponse, r: TakeResult, id: string, what: string): void {
  const retry = retryAfterS(r);
  sendError(res, 429, 'rate_limited', `Too many ${what}: try again in ${retry} s`, id, { 'retry-after': String(retry) });
}

export class BodyTooLarge extends Error {}

/** Reads the whole body, rejecting with BodyTooLarge beyond `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (Number(req.headers['content-length']) > limit) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('request aborted'));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
