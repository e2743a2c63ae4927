/**
 * Dashboard test helpers: a real gateway on port 0 with the dashboard mounted, in-process
 * backends, a plain HTTP client (full control over Host, Origin and Content-Type) and an SSE
 * reader that parses the stream as a browser would.
 */
import { request, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { Clock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import type { Dashboard, DashboardOptions } from '../../src/dashboard/index.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logging/index.js';
import { dashboardModule } from '../../src/modules.js';

export interface Harness {
  gw: Gateway;
  dashboard: Dashboard;
  url: string;
  /** Log lines the gateway wrote (JSON). */
  logs: string[];
}

/**
 * A gateway from YAML, dashboard mounted (by the gateway's module list, or here when the config
 * has `dashboard.enabled: false`), listening on 127.0.0.1:0; closed after the test.
 */
export async function startGateway(
  t: TestContext,
  yaml: string,
  opts: { clock?: Clock; dashboard?: DashboardOptions; start?: boolean } = {},
): Promise<Harness> {
  const logs: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(line);
      cb();
    },
  });
  const config = parseConfig(yaml, 'test.yml', {});
  const logger = createLogger({ level: 'debug', pretty: false }, dest);
  const gw = createGateway(config, { logger, defaultMetrics: false, dashboard: opts.dashboard, ...(opts.clock ? { clock: opts.clock } : {}) });
  if (gw.services.get('dashboard') === undefined) gw.mount(dashboardModule);
  const dashboard = gw.services.need('dashboard');
  t.after(() => gw.close());
  if (opts.start !== false) await gw.start({ port: 0, host: '127.0.0.1' });
  return { gw, dashboard, url: gw.url, logs };
}

/** An in-process backend answering JSON; `delayMs` delays and `status` sets each answer (health probes always get 200). */
export async function startBackend(t: TestContext, opts: { delayMs?: number; status?: number } = {}): Promise<{ url: string; port: number; server: Server }> {
  const server = createServer((req, res) => {
    const answer = () => {
      const probe = req.headers['x-health-check'] !== undefined;
      res.writeHead(probe ? 200 : (opts.status ?? 200), { 'content-type': 'application/json', 'set-cookie': 'session=secret-cookie' });
      res.end(JSON.stringify({ path: req.url }));
    };
    if (opts.delayMs) setTimeout(answer, opts.delayMs);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    return closed;
  });
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, port, server };
}

export { freePort } from '../helpers/ports.js';

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

/** One HTTP request without keep-alive; `path` is sent verbatim. JSON bodies get `Content-Type: application/json` unless headers say otherwise. */
export function call(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const u = new URL(base);
  const headers: Record<string, string> = { ...opts.headers };
  let payload: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    payload = JSON.stringify(opts.body);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  if (payload !== undefined) headers['content-length'] = String(Buffer.byteLength(payload));
  return new Promise((resolve, reject) => {
    // The path is sent exactly as given (no URL normalisation), so traversal attempts reach the server.
    const req = request({ hostname: u.hostname, port: u.port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        let json: unknown;
        try {
          json = body ? JSON.parse(body) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** POST with a JSON body (the content type mutating calls require). */
export function post(base: string, path: string, body: unknown = {}, headers: Record<string, string> = {}): Promise<Reply> {
  return call(base, 'POST', path, { body, headers });
}

export interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  /** Comment lines (": ping" gives "ping"). */
  comments: string[];
}

/** An SSE connection that parses blocks as they arrive. */
export class SseReader {
  readonly events: SseEvent[] = [];
  status = 0;
  headers: IncomingHttpHeaders = {};
  raw = '';
  ended = false;
  #buf = '';
  #waiters: (() => void)[] = [];
  #req: ReturnType<typeof request> | null = null;

  static async open(base: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const r = new SseReader();
    await r.#open(base, headers);
    return r;
  }

  #open(base: string, headers: Record<string, string>): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = request(new URL('/dashboard/api/stream', base), { headers: { accept: 'text/event-stream', ...headers }, agent: false }, (res) => {
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => this.#feed(chunk));
        res.on('end', () => this.#end());
        res.on('error', () => this.#end());
        res.on('close', () => this.#end());
        resolve();
      });
      req.on('error', (err) => {
        this.#end();
        reject(err);
      });
      req.end();
      this.#req = req;
    });
  }

  #end(): void {
    this.ended = true;
    this.#wake();
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #feed(chunk: string): void {
    this.raw += chunk;
    this.#buf += chunk;
    let i: number;
    while ((i = this.#buf.indexOf('\n\n')) !== -1) {
      const block = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 2);
      const ev: SseEvent = { comments: [] };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          ev.comments.push(line.slice(1).trim());
          continue;
        }
        const c = line.indexOf(':');
        const field = c === -1 ? line : line.slice(0, c);
        const value = c === -1 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'id' || field === 'event' || field === 'data' || field === 'retry') ev[field] = value;
      }
      this.events.push(ev);
    }
    this.#wake();
  }

  /** Events of a type (parsed data). */
  of(type: string): any[] {
    return this.events.filter((e) => e.event === type).map((e) => JSON.parse(e.data ?? 'null'));
  }

  /** Waits until `pred` holds over the received events; fails after `ms`. */
  async until<T>(pred: (r: SseReader) => T | undefined | false, ms = 5_000, what = 'SSE condition'): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred(this);
      if (v !== undefined && v !== false) return v;
      if (this.ended) throw new Error(`stream ended before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got events: ${this.events.map((e) => e.event ?? 'comment').join(',')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for the first event of `type` satisfying `match`, returns its parsed data. */
  next(type: string, match: (d: any) => boolean = () => true, ms = 5_000): Promise<any> {
    return this.until(() => this.of(type).find(match), ms, `a "${type}" event`);
  }

  waitEnd(ms = 5_000): Promise<true> {
    return this.until((r) => r.ended || undefined, ms, 'the end of the stream');
  }

  close(): void {
    this.#req?.destroy();
  }
}

/** Waits until `fn` returns a truthy value (polling). */
export async function eventually<T>(fn: () => T | Promise<T>, ms = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Is a pid alive? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** YAML for a string (JSON strings are valid YAML). */
export const q = (s: string): string => JSON.stringify(s);
