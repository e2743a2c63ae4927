/** Test helpers: a real gateway on port 0, real backends on port 0, and a small HTTP client. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { request as undiciRequest, Agent } from 'undici';
import { parseConfig } from '../../src/config/load.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
import { createLogger } from '../../src/logging/index.js';

export const silentLogger = createLogger({ level: 'silent', pretty: false });

/** Starts a gateway from YAML text on 127.0.0.1:0 and closes it after the test. */
export async function startGateway(t: TestContext | { after: (fn: () => unknown) => void }, yaml: string, opts: GatewayOptions = {}): Promise<Gateway> {
  const config = parseConfig(yaml, 'test.yml', { ...process.env });
  const gw = createGateway(config, { logger: silentLogger, defaultMetrics: false, ...opts });
  t.after(() => gw.close());
  await gw.start({ port: 0, host: '127.0.0.1' });
  return gw;
}

export interface TestBackend {
  server: Server;
  port: number;
  url: string;
  requests: IncomingMessage[];
}

/** A node:http backend on port 0; the default handler answers 200 JSON with its port and path. */
export async function startBackend(
  t: TestContext | { after: (fn: () => unknown) => void },
  handler?: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestBackend> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    if (handler) return handler(req, res);
    req.resume();
    const body = JSON.stringify({ port: (server.address() as AddressInfo).port, path: req.url });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { server, port, url: `http://127.0.0.1:${port}`, requests };
}

/** A port nobody listens on (bound then released). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const agent = new Agent({ keepAliveTimeout: 1000, connections: 64 });

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => any;
}

/** One request with a full read of the body. */
export async function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer | NodeJS.ReadableStream | null; signal?: AbortSignal } = {},
): Promise<Reply> {
  const res = await undiciRequest(url, {
    method: (opts.method ?? 'GET') as 'GET',
    headers: opts.headers,
    body: (opts.body ?? null) as string | null,
    dispatcher: agent,
    signal: opts.signal,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

export function wait(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns truthy or the time runs out. */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs = 5000, stepMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs}ms`);
    await wait(stepMs);
  }
}

/** Sends raw bytes on a fresh TCP connection and returns everything the server sent until it closed (or timeoutMs). */
export async function rawRequest(port: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, timeoutMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(data);
  });
}
