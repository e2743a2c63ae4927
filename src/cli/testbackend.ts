/**
 * `microgate-testbackend`: a small backend for demos, tests and benchmarks. Answers any method and
 * path with 200 {"message":"Hello from backend","path":…,"port":N}. Behaviour can be changed at
 * start (flags) or at run time through the control endpoint, without a restart:
 *
 *   GET  /__control                 current settings
 *   POST /__control  {"latency_ms":200,"jitter_ms":50,"error_rate":0.5,"status":503}   change them
 *   POST /__control/reset           back to the start-up settings
 *
 * Test helpers (all under /__): /__echo (method, path, headers, body size and sha256),
 * /__stream?chunks=N&interval_ms=M (chunked), /__sse?events=N&interval_ms=M, /__hang (never
 * answers), /__crash (sends headers and a little body, then drops the connection). An Upgrade
 * request is answered 101 and then echoes bytes (enough to prove a tunnel is transparent).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';

interface Settings {
  latency_ms: number;
  jitter_ms: number;
  error_rate: number;
  status: number;
}

const USAGE = `Usage: microgate-testbackend --port N [--host 127.0.0.1] [--latency-ms N] [--jitter-ms N] [--error-rate 0..1] [--status CODE] [--quiet]`;

function fail(message: string): never {
  process.stderr.write(`microgate-testbackend: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function num(name: string, value: string | undefined, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) fail(`--${name} must be a number from ${min} to ${max} (got "${value}")`);
  return n;
}

// Go-style single-dash flags (`-port 9001`, as in the original's config) are accepted too.
const argv = process.argv.slice(2).map((a) => (/^-[a-z][a-z-]+$/.test(a) ? `-${a}` : a));
let values;
try {
  ({ values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'latency-ms': { type: 'string' },
      'jitter-ms': { type: 'string' },
      'error-rate': { type: 'string' },
      status: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}
const port = num('port', values.port ?? process.env.PORT, 9001, 0, 65535);
const initial: Settings = {
  latency_ms: num('latency-ms', values['latency-ms'], 0, 0, 600_000),
  jitter_ms: num('jitter-ms', values['jitter-ms'], 0, 0, 600_000),
  error_rate: num('error-rate', values['error-rate'], 0, 0, 1),
  status: num('status', values.status, 200, 100, 599),
};
let settings: Settings = { ...initial };
const quiet = values.quiet;
let boundPort = port;

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: IncomingMessage, limit = 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (path === '/__control/reset' && req.method === 'POST') {
    settings = { ...initial };
    json(res, 200, settings);
    return;
  }
  if (req.method === 'GET') {
    json(res, 200, settings);
    return;
  }
  if (req.method !== 'POST' && req.method !== 'PUT') {
    json(res, 405, { error: 'use GET or POST' });
    return;
  }
  let patch: Partial<Record<keyof Settings, unknown>>;
  try {
    patch = JSON.parse((await readBody(req)).toString('utf8')) as typeof patch;
  } catch {
    json(res, 400, { error: 'body must be JSON' });
    return;
  }
  const next = { ...settings };
  const limits: Record<keyof Settings, [number, number]> = { latency_ms: [0, 600_000], jitter_ms: [0, 600_000], error_rate: [0, 1], status: [100, 599] };
  for (const [key, value] of Object.entries(patch ?? {})) {
    if (!(key in limits)) {
      json(res, 400, { error: `unknown setting ${key}` });
      return;
    }
    const [min, max] = limits[key as keyof Settings];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      json(res, 400, { error: `${key} must be a number from ${min} to ${max}` });
      return;
    }
    next[key as keyof Settings] = value;
  }
  settings = next;
  json(res, 200, settings);
}

async function echo(req: IncomingMessage, res: ServerResponse, path: string, query: string): Promise<void> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of req) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  json(res, 200, { method: req.method, path, query, url: req.url, headers: req.headers, raw_headers: req.rawHeaders, body_bytes: size, body_sha256: hash.digest('hex'), port: boundPort });
}

function stream(res: ServerResponse, params: URLSearchParams, sse: boolean): void {
  const n = Math.min(Number(params.get(sse ? 'events' : 'chunks') ?? 5), 10_000);
  const interval = Math.min(Number(params.get('interval_ms') ?? 100), 60_000);
  res.writeHead(200, sse ? { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } : { 'content-type': 'text/plain' });
  res.flushHeaders();
  let i = 0;
  const tick = () => {
    if (res.destroyed) return;
    res.write(sse ? `id: ${i}\nevent: tick\ndata: {"n":${i}}\n\n` : `chunk ${i}\n`);
    i++;
    if (i >= n) res.end();
    else setTimeout(tick, interval);
  };
  tick();
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  if (!quiet) process.stdout.write(`[backend:${boundPort}] ${req.method} ${path}\n`);
  if (path.startsWith('/__')) {
    const params = new URLSearchParams(query);
    switch (path) {
      case '/__control':
      case '/__control/reset':
        void control(req, res, path);
        return;
      case '/__echo':
        void echo(req, res, path, query).catch(() => res.destroy());
        return;
      case '/__stream':
        stream(res, params, false);
        return;
      case '/__sse':
        stream(res, params, true);
        return;
      case '/__hang':
        req.resume();
        return;
      case '/__crash':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      default:
        break;
    }
  }
  const s = settings;
  const respond = () => {
    // The request body is drained so a keep-alive connection stays usable.
    req.resume();
    if (s.error_rate > 0 && Math.random() < s.error_rate) {
      json(res, 500, { error: 'injected failure', path, port: boundPort });
      return;
    }
    json(res, s.status, { message: 'Hello from backend', path, port: boundPort });
  };
  const delay = s.latency_ms + (s.jitter_ms > 0 ? Math.random() * s.jitter_ms : 0);
  if (delay > 0) setTimeout(respond, delay);
  else respond();
}

const server = createServer({ keepAliveTimeout: 65_000 }, handle);
server.on('upgrade', (req, socket, head) => {
  const key = req.headers['sec-websocket-key'];
  const accept = typeof key === 'string' ? createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64') : '';
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade ?? 'websocket'}\r\nConnection: Upgrade\r\n${accept ? `Sec-WebSocket-Accept: ${accept}\r\n` : ''}X-Backend-Port: ${boundPort}\r\n\r\n`);
  if (head.length > 0) socket.write(head);
  socket.pipe(socket);
  socket.on('error', () => socket.destroy());
});
server.on('clientError', (_err, socket) => socket.destroy());
server.listen(port, values.host, () => {
  const addr = server.address();
  boundPort = typeof addr === 'object' && addr ? addr.port : port;
  process.stdout.write(`test backend listening on http://${values.host}:${boundPort}\n`);
});
server.on('error', (err) => {
  process.stderr.write(`microgate-testbackend: ${err.message}\n`);
  process.exit(1);
});
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
