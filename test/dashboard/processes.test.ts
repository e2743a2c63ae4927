import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { alive, call, eventually, freePort, post, q, SseReader, startGateway } from './helpers.js';

const NODE = process.execPath;

/** A tiny HTTP backend on $PORT that says goodbye on SIGTERM. */
const SERVER = `
const http = require('http');
http.createServer((req, res) => res.end('child ' + process.env.PORT)).listen(+process.env.PORT, () => console.log('listening on ' + process.env.PORT));
process.on('SIGTERM', () => { console.log('bye'); process.exit(0); });
`;
/** Prints numbered lines on stdout and one on stderr, then idles. */
const CHATTY = `
for (let i = 1; i <= 5; i++) console.log('line ' + i);
console.error('warning on stderr');
setInterval(() => {}, 1000);
`;

async function setup(t: TestContext) {
  const port = await freePort();
  const h = await startGateway(
    t,
    `routes:
  - path: /svc
    backend: http://localhost:${port}
healthcheck: { interval: 1h, timeout: 1s }
processes:
  - id: web
    command: ${q(NODE)}
    args: ["-e", ${q(SERVER)}]
    port: ${port}
    route: /svc
    stop_timeout: 3s
  - id: chatty
    command: ${q(NODE)}
    args: ["-e", ${q(CHATTY)}]
`,
  );
  const sse = await SseReader.open(h.url);
  t.after(() => sse.close());
  await sse.next('connected');
  return { ...h, port, sse };
}

describe('managed processes through the dashboard', () => {
  it('starts and stops the real OS process, with process and service events', async (t) => {
    const { url, sse, port } = await setup(t);
    const started = await post(url, '/dashboard/api/processes/web/start');
    assert.equal(started.status, 200, started.body);
    assert.equal(started.json.status, 'running');
    const pid: number = started.json.pid;
    assert.ok(Number.isInteger(pid) && alive(pid), 'the child runs');
    await sse.next('process', (p) => p.id === 'web' && p.status === 'running' && p.pid === pid);

    // Its backend turns healthy: a service event, then the process shows healthy.
    await sse.next('service', (s) => s.url === `http://localhost:${port}` && s.healthy === true, 10_000);
    await sse.next('process', (p) => p.id === 'web' && p.healthy === true);
    const list = (await call(url, 'GET', '/dashboard/api/processes')).json.processes;
    assert.equal(list.find((p: { id: string }) => p.id === 'web').healthy, true);
    assert.equal((await call(url, 'GET', '/svc/hello')).body, `child ${port}`);

    const stopped = await post(url, '/dashboard/api/processes/web/stop');
    assert.equal(stopped.status, 200, stopped.body);
    assert.equal(stopped.json.status, 'stopped');
    assert.equal(stopped.json.healthy, false);
    assert.equal(alive(pid), false, 'the child is gone once stop answered');
    await sse.next('process', (p) => p.id === 'web' && p.status === 'stopped');
    await sse.next('process_log', (l) => l.id === 'web' && l.line === 'bye');
  });

  it('reports a kill -9 from outside as crashed', async (t) => {
    const { url, sse } = await setup(t);
    const pid: number = (await post(url, '/dashboard/api/processes/web/start')).json.pid;
    await sse.next('process_log', (l) => l.id === 'web' && /^listening/.test(l.line));
    process.kill(pid, 'SIGKILL');
    const ev = await sse.next('process', (p) => p.id === 'web' && p.status === 'crashed');
    assert.equal(ev.exit_signal, 'SIGKILL');
    assert.equal(ev.healthy, false);
    assert.equal((await call(url, 'GET', '/dashboard/api/processes/web')).json.status, 'crashed');
  });

  it('refuses to start a running process (409) and restarts it with a new pid', async (t) => {
    const { url } = await setup(t);
    const first: number = (await post(url, '/dashboard/api/processes/web/start')).json.pid;
    const again = await post(url, '/dashboard/api/processes/web/start');
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'conflict');
    const restarted = await post(url, '/dashboard/api/processes/web/restart');
    assert.equal(restarted.status, 200, restarted.body);
    assert.equal(restarted.json.status, 'running');
    assert.notEqual(restarted.json.pid, first);
    assert.equal(alive(first), false);
  });

  it('tails process output live over process_log and keeps it for the logs endpoint', async (t) => {
    const { url, sse } = await setup(t);
    assert.equal((await post(url, '/dashboard/api/processes/chatty/start')).status, 200);
    await sse.next('process_log', (l) => l.id === 'chatty' && l.line === 'warning on stderr' && l.stream === 'stderr');
    const out = sse.of('process_log').filter((l) => l.id === 'chatty' && l.stream === 'stdout');
    assert.deepEqual(
      out.map((l) => l.line),
      ['line 1', 'line 2', 'line 3', 'line 4', 'line 5'],
    );
    const tail = await eventually(async () => {
      const r = await call(url, 'GET', '/dashboard/api/processes/chatty/logs?lines=3');
      return r.json.lines.length === 3 ? r.json.lines : undefined;
    });
    assert.equal(tail.length, 3);
    assert.equal(tail[2], 'warning on stderr');
    assert.equal(tail[0], 'line 4');
    assert.deepEqual((await call(url, 'GET', '/dashboard/api/processes/chatty/logs')).json.lines.slice(0, 2), ['line 1', 'line 2']);
  });

  it('announces a process added through the API in a process event, then runs it on start', async (t) => {
    const { url, sse } = await setup(t);
    const port = await freePort();
    const body = { id: 'extra', command: NODE, args: ['-e', SERVER], port };
    assert.equal((await post(url, '/dashboard/api/processes', body)).status, 201);
    const added = await sse.next('process', (p) => p.id === 'extra');
    assert.equal(added.status, 'stopped');
    assert.equal(added.healthy, false);
    assert.equal(added.port, port);
    const started = await post(url, '/dashboard/api/processes/extra/start');
    assert.equal(started.status, 200);
    await sse.next('process_log', (l) => l.id === 'extra' && l.line === `listening on ${port}`);
    assert.ok(alive(started.json.pid));
  });
});
