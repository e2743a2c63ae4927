/** A backend as every part sees it: its URL, its connection pool, its health and its breaker. */
import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';

/**
 * undici's Pool and its request API alone: the package's index also loads fetch, WebSocket, the
 * cache and mock agents and more, about 8 MB of RSS at start that the gateway never uses. undici
 * is pinned to one version in package.json and has no `exports` map, so these paths are stable;
 * test/gateway/lazy-loading.test.ts checks that the index is never loaded and that health checks
 * (`pool.request`) and proxying (`pool.dispatch`) work.
 */
const requireUndici = createRequire(import.meta.url);
const Pool: typeof UndiciPool = requireUndici('undici/lib/dispatcher/pool.js');
// What undici's index does on load: put request/stream/pipeline/connect/upgrade on every dispatcher.
const dispatcherProto = (requireUndici('undici/lib/dispatcher/dispatcher.js') as { prototype: Record<string, unknown> }).prototype;
if (dispatcherProto.request === undefined) Object.assign(dispatcherProto, requireUndici('undici/lib/api/index.js'));

/** The circuit breaker contract the balancer and proxy rely on (implemented in src/breaker). */
export interface BreakerGate {
  /** May a request go to this backend now? In half-open this reserves a probe slot when it says yes. */
  allow(): boolean;
  /** The request that allow() admitted succeeded / failed (5xx, connect error, timeout) / ended without a verdict (client abort). */
  success(): void;
  failure(): void;
  release(): void;
  readonly state: 'closed' | 'open' | 'half_open';
}

export interface BackendOptions {
  connectTimeoutMs: number;
  connections: number;
  /** Requests allowed to wait for a connection beyond `connections`. */
  queueLimit?: number;
  keepAliveTimeoutMs?: number;
  healthPath: string;
}

export class Backend {
  /** The URL as configured, e.g. "http://localhost:9001". Used as its name everywhere. */
  readonly url: string;
  readonly origin: URL;
  /** Path prefix of the backend URL ("" for none), prepended to forwarded paths. */
  readonly basePath: string;
  readonly healthPath: string;
  readonly connectTimeoutMs: number;
  readonly pool: UndiciPool;
  /** null = not probed yet (treated as available), then true/false from health checks. */
  healthy: boolean | null = null;
  breaker: BreakerGate | null = null;
  /** Requests dispatched to this backend and not finished yet (running plus waiting for a connection). */
  inFlight = 0;
  /** inFlight may not exceed this: connections + the queue limit. */
  readonly maxInFlight: number;

  constructor(url: string, opts: BackendOptions) {
    this.url = url;
    this.origin = new URL(url);
    const base = this.origin.pathname.replace(/\/+$/, '');
    this.basePath = base;
    this.healthPath = opts.healthPath;
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.maxInFlight = opts.connections + (opts.queueLimit ?? 1024);
    this.pool = new Pool(this.origin.origin, {
      connections: opts.connections,
      pipelining: 1,
      connect: { timeout: opts.connectTimeoutMs },
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 4_000,
      // Timeouts are set per request by the proxy; these are only upper bounds.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  /** Healthy (or not yet probed) and not held open by its breaker. Does not reserve a half-open slot. */
  get up(): boolean {
    return this.healthy !== false && (this.breaker === null || this.breaker.state !== 'open');
  }

  /** Can a request go here now? Reserves a half-open probe slot when it answers yes. */
  tryAcquire(): boolean {
    if (this.healthy === false) return false;
    return this.breaker === null || this.breaker.allow();
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}
