#!/usr/bin/env node
/**
 * Peer for the benchmark: fastify 5 + @fastify/http-proxy (reply-from over undici), no other
 * plugins, logging off. Usage: node bench/fastify-proxy.mjs --port N --backend URL
 */
import { parseArgs } from 'node:util';
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, backend: { type: 'string' } } });
if (!values.port || !values.backend) {
  process.stderr.write('usage: fastify-proxy.mjs --port N --backend http://host:port\n');
  process.exit(2);
}

const app = Fastify({ logger: false });
// Same upstream pool shape as the other targets: keep-alive, pipelining 1.
app.register(proxy, { upstream: values.backend, undici: { connections: 256, pipelining: 1 } });
await app.listen({ port: Number(values.port), host: values.host });
process.stdout.write(`fastify proxy on http://${values.host}:${values.port}\n`);

const stop = () => {
  app.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(0), 1000).unref();
