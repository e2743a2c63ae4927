#!/usr/bin/env node
/**
 * The floor for any Node gateway: node:http in, one undici Pool out (keep-alive, pipelining 1),
 * method/path/headers/body forwarded, the answer streamed back. Request and response headers are
 * copied into fresh flat [name, value, ...] lists minus hop-by-hop ones (never `delete` on undici's
 * header object: that turns it into a slow dictionary), and nothing else is done.
 *
 * Usage: node bench/minimal-forwarder.mjs --port N --backend URL [--variant raw|dispatch|stream|stream-object]
 *
 * Variants (the bench's `forwarder` row is the cheapest one measured, see bench/README.md):
 * - raw            Pool.dispatch with a handler class of undici's raw-header API (onConnect/onHeaders/
 *                  onData/onComplete/onError): the backend's header Buffers go straight to a fresh
 *                  list of strings, without undici's header object (default: the cheapest in the
 *                  2026-11-29 runs, ~2% fewer instructions a request than dispatch)
 * - dispatch       Pool.dispatch with a handler class (undici 7 onResponseStart/Data/End), one
 *                  handler object per request and no per-request closures (the floor of 2026-11-28)
 * - stream         Pool.stream; response headers copied into a flat array for writeHead
 * - stream-object  Pool.stream; response headers copied into a fresh object
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, backend: { type: 'string' }, variant: { type: 'string', default: 'raw' } },
});
if (!values.port || !values.backend || !['stream', 'stream-object', 'dispatch', 'raw'].includes(values.variant)) {
  process.stderr.write('usage: minimal-forwarder.mjs --port N --backend http://host:port [--variant raw|dispatch|stream|stream-object]\n');
  process.exit(2);
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/** The hop-by-hop names as clients spell them (lower case and Capitalized-Words): most need no lower-casing. */
const HOP_SPELLED = new Set([...HOP].flatMap((h) => [h, h.replace(/(^|-)([a-z])/g, (_m, d, c) => d + c.toUpperCase())]));
/** Per name length, a bit per first letter of the hop-by-hop names: most headers pass after two loads and a shift. */
const HOP_FIRST = new Uint32Array(32);
for (const h of HOP) HOP_FIRST[h.length] |= 1 << (h.charCodeAt(0) - 97);
function isHop(name) {
  const len = name.length;
  if (len >= 32 || ((HOP_FIRST[len] >>> ((name.charCodeAt(0) | 0x20) - 97)) & 1) === 0) return false;
  return HOP_SPELLED.has(name) || HOP.has(name.toLowerCase());
}
const pool = new Pool(values.backend, { connections: 256, pipelining: 1 });

/** The client's raw headers minus hop-by-hop ones, as a fresh flat list. */
function requestHeaders(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (isHop(name)) continue;
    out.push(name, raw[i + 1]);
  }
  return out;
}

/** undici's (already lower-cased) response header object minus hop-by-hop ones, as a fresh flat list. */
function responseList(headers) {
  const out = [];
  for (const name in headers) {
    if (HOP.has(name)) continue;
    const v = headers[name];
    if (typeof v === 'string') out.push(name, v);
    else for (let i = 0; i < v.length; i++) out.push(name, v[i]);
  }
  return out;
}

function responseObject(headers) {
  const out = {};
  for (const name in headers) if (!HOP.has(name)) out[name] = headers[name];
  return out;
}

function hasBody(req) {
  const len = req.headers['content-length'];
  return len !== undefined ? len !== '0' : req.headers['transfer-encoding'] !== undefined;
}

function onStreamHeadersList({ statusCode, headers, opaque }) {
  opaque.writeHead(statusCode, responseList(headers));
  return opaque;
}
function onStreamHeadersObject({ statusCode, headers, opaque }) {
  opaque.writeHead(statusCode, responseObject(headers));
  return opaque;
}
function streamHandler(onHeaders) {
  return function forward(req, res) {
    pool.stream({ path: req.url, method: req.method, headers: requestHeaders(req.rawHeaders), body: hasBody(req) ? req : null, opaque: res }, onHeaders, (err) => {
      if (!err) return;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
      else res.destroy(err);
    });
  };
}

/** One object per request: the undici 7 handler API, no closures. */
class Forward {
  constructor(res) {
    this.res = res;
    this.controller = null;
  }
  onRequestStart(controller) {
    this.controller = controller;
  }
  onResponseStart(_controller, statusCode, headers) {
    if (statusCode < 200) return;
    this.res.writeHead(statusCode, responseList(headers));
  }
  onResponseData(controller, chunk) {
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }
  onResponseEnd() {
    this.res.end();
  }
  onResponseError(_controller, err) {
    if (!this.res.headersSent) this.res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
    else this.res.destroy(err);
  }
}

/** undici's raw response header list (Buffers, names as the backend spelled them) minus hop-by-hop ones, as a fresh flat list of strings. */
function rawResponseList(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].latin1Slice(0, raw[i].length);
    if (isHop(name)) continue;
    out.push(name, raw[i + 1].latin1Slice(0, raw[i + 1].length));
  }
  return out;
}

/**
 * One object per request: undici's handler API of raw header lists (onConnect/onHeaders/onData/
 * onComplete/onError). undici hands such a handler the backend's header Buffers as they are, where
 * for an undici 7 handler (onRequestStart, …) it first builds a header object (parseHeaders).
 */
class ForwardRaw {
  constructor(res) {
    this.res = res;
    this.resume = null;
  }
  onConnect() {}
  onHeaders(statusCode, rawHeaders, resume) {
    if (statusCode < 200) return true;
    this.resume = resume;
    this.res.writeHead(statusCode, rawResponseList(rawHeaders));
    return true;
  }
  onData(chunk) {
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.resume);
    return false;
  }
  onComplete() {
    this.res.end();
  }
  onError(err) {
    if (!this.res.headersSent) this.res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
    else this.res.destroy(err);
  }
}

function dispatchRawHandler(req, res) {
  pool.dispatch({ path: req.url, method: req.method, headers: requestHeaders(req.rawHeaders), body: hasBody(req) ? req : null }, new ForwardRaw(res));
}

function dispatchHandler(req, res) {
  pool.dispatch({ path: req.url, method: req.method, headers: requestHeaders(req.rawHeaders), body: hasBody(req) ? req : null }, new Forward(res));
}

const handler = values.variant === 'dispatch' ? dispatchHandler : values.variant === 'raw' ? dispatchRawHandler : streamHandler(values.variant === 'stream-object' ? onStreamHeadersObject : onStreamHeadersList);
const server = createServer(handler);
server.listen(Number(values.port), values.host, () => process.stdout.write(`minimal forwarder (${values.variant}) on http://${values.host}:${values.port}\n`));

const stop = () => {
  server.close();
  server.closeAllConnections();
  pool.destroy().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// No orphans: leave when the benchmark that started us is gone.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 1000).unref();
