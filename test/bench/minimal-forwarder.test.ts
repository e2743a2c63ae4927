/**
 * bench/minimal-forwarder.mjs, the floor every ratio is taken against: each variant must be a
 * correct forwarder (status, body, end-to-end headers both ways, hop-by-hop headers dropped), or
 * the floor would be cheap for doing less.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../helpers/ports.js';

const SCRIPT = new URL('../../bench/minimal-forwarder.mjs', import.meta.url).pathname;

let backend: Server;
let backendUrl = '';
/** What the backend saw of the last request. */
let seen: { headers: IncomingHttpHeaders; body: string } | null = null;

before(async () => {
  backend = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen = { headers: req.headers, body: Buffer.concat(chunks).toString() };
      res.writeHead(201, [
        'Content-Type', 'text/plain',
        'X-Multi', 'a',
        'X-Multi', 'b',
        'Keep-Alive', 'timeout=77, max=9',
        'Content-Length', '5',
      ]);
      res.end('hello');
    });
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendUrl = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
});
after(() => backend.close());

async function startForwarder(variant: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [SCRIPT, '--port', String(port), '--backend', backendUrl, '--variant', variant], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`forwarder exited (${code})`)));
  });
  return { child, port };
}

function send(port: number): Promise<{ status: number; raw: string[]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', method: 'POST', path: '/p?q=1', headers: { 'content-type': 'text/plain', 'x-client': 'c1', te: 'trailers', 'content-length': '4' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, raw: res.rawHeaders, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end('ping');
  });
}

describe('bench: the floor forwarder', () => {
  for (const variant of ['raw', 'dispatch', 'stream', 'stream-object']) {
    it(`forwards a request and its answer end to end, without hop-by-hop headers (--variant ${variant})`, async () => {
      const { child, port } = await startForwarder(variant);
      try {
        seen = null;
        const res = await send(port);
        assert.equal(res.status, 201);
        assert.equal(res.body, 'hello');
        const names = res.raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
        // The forwarder's own server sends a Keep-Alive of its own; the backend's must not come through.
        assert.ok(!res.raw.includes('timeout=77, max=9'), `the backend's Keep-Alive relayed: ${res.raw.join(', ')}`);
        assert.deepEqual(res.raw.filter((_, i) => i % 2 === 1 && /^x-multi$/i.test(res.raw[i - 1]!)), ['a', 'b']);
        assert.ok(names.includes('content-type'));
        assert.equal(seen!.body, 'ping');
        assert.equal(seen!.headers['x-client'], 'c1');
        assert.equal(seen!.headers.te, undefined);
      } finally {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    });
  }
});
