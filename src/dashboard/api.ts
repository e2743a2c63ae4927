/**
 * The dashboard JSON API under /dashboard/api/: processes, routes, request logs, metrics and the
 * SSE stream. Every error is the gateway's JSON error body; lists are [] and never null. POSTs
 * need a JSON content type and a same-site caller; adding a process only accepts commands the
 * config names.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { formatUptime, type ProcessConfig } from '../config/index.js';
import { ProcessError, type ProcessInfo } from '../procman/index.js';
import { sendJson } from '../server/index.js';
import { BodyTooLarge, fail, isCrossSite, isJson, isRebound, methodNotAllowed, readBody } from './http.js';
import type { LiveMetrics, TrafficNumbers } from './live-metrics.js';
import type { LogQuery, RequestLogStore } from './request-log.js';
import type { DashboardHost } from './host.js';
import type { SseBroker } from './sse.js';

export const API_PREFIX = '/dashboard/api';
/** Largest accepted request body. */
export const MAX_BODY = 16 * 1024;
const DEFAULT_LOG_LIMIT = 50;
const DEFAULT_LOG_LINES = 100;
const MAX_LOG_LINES = 500;
const MAX_ARGS = 64;
const MAX_ARG_LENGTH = 1024;
const MAX_COMMAND_LENGTH = 1024;
const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Defaults of a process added at run time (same as the config schema's). */
const ADDED_PROCESS_DEFAULTS = { auto_start: false, env: {}, restart: 'never', stop_timeout: 5_000 } as const;

/** A process as the API shows it: the manager's view plus `healthy`. */
export type ProcessView = ProcessInfo & { healthy: boolean };

/** `GET /dashboard/api/metrics` (keys in the reference's alphabetical order). */
export interface DashboardMetrics extends TrafficNumbers {
  healthy_backends: number;
  total_backends: number;
  uptime: string;
  uptime_seconds: number;
}

export interface ApiDeps {
  host: DashboardHost;
  log: RequestLogStore;
  live: LiveMetrics;
  broker: SseBroker;
  /** Commands a process added through the API may run. */
  allowedCommands: { has(command: string): boolean };
}

/** Running and every backend on its port passed its health check. */
export function processView(host: DashboardHost, info: ProcessInfo): ProcessView {
  let healthy = info.status === 'running';
  if (healthy && info.port > 0) {
    for (const b of host.topology.backendsOfPort(info.port)) {
      if (b.healthy !== true) {
        healthy = false;
        break;
      }
    }
  }
  return { ...info, healthy };
}

export function dashboardMetrics(host: DashboardHost, live: LiveMetrics): DashboardMetrics {
  const t = live.snapshot();
  let healthy = 0;
  let total = 0;
  for (const b of Object.values(host.health.snapshot())) {
    total++;
    if (b.healthy) healthy++;
  }
  const upMs = Math.max(0, host.clock.now() - host.startedAt);
  return {
    avg_latency_ms: t.avg_latency_ms,
    error_rate: t.error_rate,
    healthy_backends: healthy,
    requests_per_minute: t.requests_per_minute,
    sparklines: t.sparklines,
    total_backends: total,
    uptime: formatUptime(upMs),
    uptime_seconds: Math.floor(upMs / 1000),
  };
}

function decodeSegment(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** A non-negative integer query value, or `fallback` when absent or unusable (the reference's leniency). */
function intParam(value: string | null, fallback: number, max: number): number {
  if (value === null || !/^\d{1,9}$/.test(value)) return fallback;
  const n = Number(value);
  return n <= 0 ? fallback : Math.min(n, max);
}

const READ = 'GET, HEAD';

/** Builds the API handler; `path` is the URL path (no query) starting with /dashboard/api. */
export function dashboardApi(deps: ApiDeps) {
  const { host, log, broker } = deps;

  const view = (info: ProcessInfo): ProcessView => processView(host, info);

  function processesList(res: ServerResponse): void {
    sendJson(res, 200, { processes: host.processes.list().map(view) });
  }

  function routes(res: ServerResponse): void {
    sendJson(res, 200, { routes: host.topology.routes.map((r) => r.prefix).sort() });
  }

  function logs(res: ServerResponse, query: URLSearchParams): void {
    const q: LogQuery = { limit: intParam(query.get('limit'), Math.min(DEFAULT_LOG_LIMIT, log.capacity), log.capacity) };
    const status = query.get('status');
    if (status !== null && status !== '') {
      if (/^[1-5]\d\d$/.test(status)) q.status = { exact: Number(status) };
      else if (/^[1-5]xx$/i.test(status)) q.status = { cls: Number(status[0]) };
      else return fail(res, 400, 'bad_request', `status must be a code like 404 or a class like 5xx (got "${status}")`);
    }
    const path = query.get('path');
    if (path !== null && path !== '') q.path = path;
    sendJson(res, 200, { logs: log.search(q) });
  }

  function logById(res: ServerResponse, rawId: string): void {
    const id = decodeSegment(rawId);
    if (id === null || id === '') return fail(res, 400, 'bad_request', 'Log ID required');
    const entry = log.find(id);
    if (entry === undefined) return fail(res, 404, 'not_found', `No request log with ID ${id}`);
    sendJson(res, 200, entry);
  }

  function processLogs(res: ServerResponse, id: string, query: URLSearchParams): void {
    const lines = host.processes.logs(id, intParam(query.get('lines'), DEFAULT_LOG_LINES, MAX_LOG_LINES));
    if (lines === undefined) return fail(res, 404, 'not_found', `process with ID ${id} not found`);
    sendJson(res, 200, { lines });
  }

  /**
   * Checks an add-process body completely before anything changes. Returns the config to
   * register, or the error to answer.
   */
  function validateNewProcess(body: unknown): ProcessConfig | { status: number; code: 'bad_request' | 'forbidden' | 'conflict'; message: string } {
    const bad = (message: string) => ({ status: 400, code: 'bad_request' as const, message });
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad('body must be a JSON object');
    const b = body as Record<string, unknown>;
    const unknown = Object.keys(b).filter((k) => k !== 'id' && k !== 'command' && k !== 'args' && k !== 'port' && k !== 'route');
    if (unknown.length > 0) return bad(`unknown field(s): ${unknown.join(', ')} (allowed: id, command, args, port, route)`);
    const { id, command, args, port, route } = b;
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) return bad('id must be 1-64 characters of letters, digits, ".", "_" or "-"');
    if (typeof command !== 'string' || command === '' || command.length > MAX_COMMAND_LENGTH) return bad('command must be a non-empty string');
    const argv = args ?? [];
    if (!Array.isArray(argv) || argv.length > MAX_ARGS || !argv.every((a) => typeof a === 'string' && a.length <= MAX_ARG_LENGTH && !a.includes('\0'))) {
      return bad(`args must be an array of at most ${MAX_ARGS} strings`);
    }
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return bad('port must be an integer from 1 to 65535');
    let prefix: string | undefined;
    if (route !== undefined && route !== null && route !== '') {
      if (typeof route !== 'string') return bad('route must be a string');
      const r = host.topology.route(route);
      if (r === undefined) return bad(`route "${route}" not found`);
      prefix = r.prefix;
    }
    // Not remote command execution: only what the operator named in the config may run.
    if (!deps.allowedCommands.has(command)) {
      return {
        status: 403,
        code: 'forbidden',
        message: `command "${command}" is not allowed: list it in admin.allowed_commands (or as a processes[].command) in the config`,
      };
    }
    if (host.processes.has(id)) return { status: 409, code: 'conflict', message: `process with ID ${id} already exists` };
    const samePort = host.processes.list().find((p) => p.port === port);
    if (samePort !== undefined) return { status: 409, code: 'conflict', message: `port ${port} is already used by process ${samePort.id}` };
    return { ...ADDED_PROCESS_DEFAULTS, env: {}, id, command, args: argv as string[], port, route: prefix, cwd: undefined };
  }

  async function addProcess(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, res);
    if (body === undefined) return;
    const cfg = validateNewProcess(body);
    if ('status' in cfg) return fail(res, cfg.status, cfg.code, cfg.message);
    // Everything is checked and nothing awaited since: registration cannot half-fail.
    host.processes.add(cfg);
    if (cfg.route !== undefined) {
      try {
        host.topology.addBackend(cfg.route, `http://localhost:${cfg.port}`);
      } catch (err) {
        host.processes.remove(cfg.id);
        throw err;
      }
    }
    const info = host.processes.get(cfg.id)!;
    sendJson(res, 201, view(info), { location: `${API_PREFIX}/processes/${encodeURIComponent(cfg.id)}` });
  }

  async function processAction(req: IncomingMessage, res: ServerResponse, id: string, action: 'start' | 'stop' | 'restart'): Promise<void> {
    // The body is ignored, but read (bounded) so the connection stays usable.
    if ((await readJson(req, res, true)) === undefined) return;
    let info: ProcessInfo;
    try {
      info = await host.processes[action](id);
    } catch (err) {
      if (!(err instanceof ProcessError)) throw err;
      switch (err.code) {
        case 'not_found':
          return fail(res, 404, 'not_found', err.message);
        case 'conflict':
          return fail(res, 409, 'conflict', err.message);
        case 'unavailable':
          return fail(res, 503, 'shutting_down', err.message);
        case 'start_failed':
          return fail(res, 500, 'process_start_failed', err.message);
      }
    }
    sendJson(res, 200, view(info));
  }

  /**
   * POST /dashboard/api/reload: re-reads the config file. 200 with what changed; an invalid file
   * changes nothing and answers 422 with every problem (`file:line:col key: message` in `text`);
   * a valid file whose parts could not be built answers 500, a gateway shutting down 503.
   */
  async function reload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((await readJson(req, res, true)) === undefined) return;
    if (host.reload === undefined) return fail(res, 404, 'not_found', 'this gateway was not started from a config file: nothing to reload');
    const outcome = await host.reload();
    if (outcome.result === 'success') return sendJson(res, 200, outcome);
    const status = outcome.reason === 'invalid' ? 422 : outcome.reason === 'busy' ? 503 : 500;
    const code = outcome.reason === 'invalid' ? 'config_invalid' : outcome.reason === 'busy' ? 'shutting_down' : 'internal_error';
    const message = `config reload failed, nothing changed: ${outcome.problems.length} problem(s)`;
    sendJson(res, status, { error: { code, message, request_id: res.getHeader('x-request-id') ?? null }, ...outcome });
  }

  /**
   * Reads a JSON body. Answers the error itself and resolves undefined on failure. An empty body
   * is allowed when `emptyOk` (action calls carry no data).
   */
  async function readJson(req: IncomingMessage, res: ServerResponse, emptyOk = false): Promise<unknown> {
    let raw: Buffer;
    try {
      raw = await readBody(req, MAX_BODY);
    } catch (err) {
      if (err instanceof BodyTooLarge) fail(res, 413, 'body_too_large', `body larger than ${MAX_BODY} bytes`, { connection: 'close' });
      else res.destroy();
      return undefined;
    }
    if (raw.length === 0) {
      if (emptyOk) return null;
      fail(res, 400, 'bad_request', 'a JSON body is required');
      return undefined;
    }
    try {
      return JSON.parse(raw.toString('utf8')) as unknown;
    } catch (err) {
      if (emptyOk) return null;
      fail(res, 400, 'bad_request', `invalid JSON: ${(err as Error).message}`);
      return undefined;
    }
  }

  /** Guards every mutating call: same-site caller, JSON content type. */
  function mutationRefused(req: IncomingMessage, res: ServerResponse): boolean {
    if (isCrossSite(req)) {
      fail(res, 403, 'forbidden', 'cross-site requests to the dashboard API are refused');
      return true;
    }
    if (!isJson(req)) {
      fail(res, 415, 'unsupported_media_type', 'Content-Type must be application/json');
      return true;
    }
    return false;
  }

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (isRebound(req)) {
      return fail(res, 403, 'forbidden', 'the dashboard API answers loopback callers only under a loopback host name (use http://localhost or an admin token)');
    }
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    const rest = path.length > API_PREFIX.length + 1 ? path.slice(API_PREFIX.length + 1) : '';
    const seg = rest.split('/');
    const q = (req.url ?? '').indexOf('?');
    const query = new URLSearchParams(q === -1 ? '' : (req.url ?? '').slice(q + 1));

    switch (seg[0]) {
      case 'stream':
        if (seg.length !== 1) break;
        if (method !== 'GET') return methodNotAllowed(req, res, 'GET');
        broker.connect(req, res, (status, code, message) => fail(res, status, code, message));
        return;
      case 'processes': {
        if (seg.length === 1) {
          if (read) return processesList(res);
          if (method !== 'POST') return methodNotAllowed(req, res, `${READ}, POST`);
          if (mutationRefused(req, res)) return;
          return addProcess(req, res);
        }
        const id = decodeSegment(seg[1]!);
        if (id === null || id === '') return fail(res, 400, 'bad_request', 'process ID required');
        if (seg.length === 2) {
          if (!read) return methodNotAllowed(req, res, READ);
          const info = host.processes.get(id);
          if (info === undefined) return fail(res, 404, 'not_found', `process with ID ${id} not found`);
          return sendJson(res, 200, view(info));
        }
        if (seg.length !== 3) break;
        const action = seg[2];
        if (action === 'logs') {
          if (!read) return methodNotAllowed(req, res, READ);
          return processLogs(res, id, query);
        }
        if (action === 'start' || action === 'stop' || action === 'restart') {
          if (method !== 'POST') return methodNotAllowed(req, res, 'POST');
          if (mutationRefused(req, res)) return;
          return processAction(req, res, id, action);
        }
        break;
      }
      case 'routes':
        if (seg.length !== 1) break;
        if (!read) return methodNotAllowed(req, res, READ);
        return routes(res);
      case 'logs':
        if (seg.length > 2) break;
        if (!read) return methodNotAllowed(req, res, READ);
        return seg.length === 1 ? logs(res, query) : logById(res, seg[1]!);
      case 'reload':
        if (seg.length !== 1) break;
        if (method !== 'POST') return methodNotAllowed(req, res, 'POST');
        if (mutationRefused(req, res)) return;
        return reload(req, res);
      case 'metrics':
        if (seg.length !== 1) break;
        if (!read) return methodNotAllowed(req, res, READ);
        return sendJson(res, 200, dashboardMetrics(host, deps.live));
    }
    fail(res, 404, 'not_found', `Nothing at ${path}`);
  }

  return function dashboardApiHandler(req: IncomingMessage, res: ServerResponse, path: string): void {
    route(req, res, path).catch((err: unknown) => {
      host.logger.error({ err, path }, 'dashboard API failed');
      fail(res, 500, 'internal_error', 'Internal Server Error');
    });
  };
}
