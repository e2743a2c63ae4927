#!/usr/bin/env node
/**
 * The floor for any Node gateway: node:http in, one undici Pool out (keep-alive, pipelining 1),
 * method/path/headers/body forwarded, the answer streamed back. Hop-by-hop headers are dropped
 * both ways and nothing else is done. Usage: node bench/minimal-forwarder.mjs --port N --backend URL
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, backend: { type: 'string' } } });
if (!values.port || !values.backend) {
  process.stderr.write('usage: minimal-forwarder.mjs --port N --backend http://host:port\n');
  process.exit(2);
}

const HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const HOP_SET = new Set(HOP);
const pool = new Pool(values.backend, { connections: 256, pipelining: 1 });

function onUpstreamHeaders({ statusCode, headers, opaque }) {
  for (const h of HOP) delete headers[h];
  opaque.writeHead(statusCode, headers);
  return opaque;
}

const server = createServer((req, res) => {
  const raw = req.rawHeaders;
  const headers = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP_SET.has(raw[i].toLowerCase())) headers.push(raw[i], raw[i + 1]);
  const len = req.headers['content-length'];
  const hasBody = len !== undefined ? len !== '0' : req.headers['transfer-encoding'] !== undefined;
  pool.stream({ path: req.url, method: req.method, headers, body: hasBody ? req : null, opaque: res }, onUpstreamHeaders, (err) => {
    if (!err) return;
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
    else res.destroy(err);
  });
});
server.listen(Number(values.port), values.host, () => process.stdout.write(`minimal forwarder on http://${values.host}:${values.port}\n`));

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
