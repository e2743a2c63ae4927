import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { call, post, q, SseReader, startBackend, startGateway } from './helpers.js';

async function setup(t: TestContext, extra = '') {
  const backend = await startBackend(t, { delayMs: 30 });
  const h = await startGateway(t, `routes:\n  - path: /api\n    backend: ${backend.url}\nhealthcheck: { interval: 1h }\n${extra}`);
  return { ...h, backend };
}

async function open(t: TestContext, url: string, headers: Record<string, string> = {}): Promise<SseReader> {
  const sse = await SseReader.open(url, headers);
  t.after(() => sse.close());
  await sse.next('connected');
  return sse;
}

/**
 * An SSE client in a child process: prints "connected" once the stream opened, then one JSON line,
 * { lines, ended }: the number of process_log events before the one whose line is "done" (ended
 * false), or before the stream ended (ended true).
 */
const READER = `
const req = require('node:http').request(process.argv[1] + '/dashboard/api/stream', { headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
  let buf = '', lines = 0, connected = false;
  const finish = (ended) => { process.stdout.write(JSON.stringify({ lines, ended }) + '\\n', () => process.exit(0)); };
  res.setEncoding('utf8');
  res.on('data', (chunk) => {
    buf += chunk;
    let from = 0, end;
    while ((end = buf.indexOf('\\n\\n', from)) !== -1) {
      const block = buf.slice(from, end);
      from = end + 2;
      if (!connected && block.includes('event: connected')) { connected = true; process.stdout.write('connected\\n'); }
      if (!block.includes('event: process_log')) continue;
      if (block.includes('"line":"done"')) return finish(false);
      lines++;
    }
    buf = buf.slice(from);
  });
  res.on('close', () => finish(true));
});
req.on('error', (err) => { process.stdout.write(JSON.stringify({ error: err.message }) + '\\n'); process.exit(1); });
req.end();
`;

function readerProcess(t: TestContext, url: string): { line: (pattern: RegExp, timeoutMs: number) => Promise<string> } {
  const child = spawn(process.execPath, ['-e', READER, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill());
  const lines: string[] = [];
  let partial = '';
  let wake: (() => void) | null = null;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    wake?.();
  });
  child.on('exit', () => wake?.());
  return {
    async line(pattern, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find((l) => pattern.test(l));
        if (found !== undefined) return found;
        if (child.exitCode !== null) throw new Error(`the reading client exited (${child.exitCode}) without a line like ${pattern}: ${lines.join(' | ')}`);
        if (Date.now() > deadline) throw new Error(`no line like ${pattern} from the reading client in ${timeoutMs} ms: ${lines.join(' | ')}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 100);
        });
      }
    },
  };
}

const requestIds = (sse: SseReader): string[] => sse.events.filter((e) => e.event === 'request').map((e) => e.id!);

describe('dashboard SSE stream', () => {
  it('opens with event-stream headers, a retry line and a numbered connected event', async (t) => {
    const { url } = await setup(t);
    const sse = await open(t, url, { origin: 'http://elsewhere.example' });
    assert.equal(sse.status, 200);
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    assert.equal(sse.headers['cache-control'], 'no-cache');
    assert.equal(sse.headers['x-accel-buffering'], 'no');
    assert.equal(sse.headers['access-control-allow-origin'], undefined);
    assert.ok(sse.raw.startsWith('retry: 3000\n'), JSON.stringify(sse.raw.slice(0, 40)));
    const connected = sse.events.find((e) => e.event === 'connected')!;
    assert.equal(connected.data, '{}');
    assert.match(connected.id ?? '', /^\d+$/);
  });

  it('sends each proxied request with real ms latency and its backend, every event numbered in order', async (t) => {
    const { url, backend } = await setup(t);
    const sse = await open(t, url);
    for (let i = 0; i < 3; i++) await call(url, 'GET', `/api/item/${i}`, { headers: { 'x-request-id': `sse-${i}` } });
    await sse.until((r) => r.of('request').length >= 3 || undefined);
    const reqs = sse.of('request');
    assert.deepEqual(
      reqs.map((r) => r.id),
      ['sse-0', 'sse-1', 'sse-2'],
    );
    for (const r of reqs) {
      assert.ok(r.latency_ms >= 25 && r.latency_ms < 5_000, `latency ${r.latency_ms} ms`);
      assert.equal(r.backend, backend.url);
      assert.equal(r.route, '/api');
      assert.equal(r.status, 200);
    }
    const numbered = sse.events.filter((e) => e.event !== undefined);
    for (const e of numbered) assert.match(e.id ?? '', /^\d+$/, `${e.event} has an id`);
    const ids = numbered.map((e) => Number(e.id));
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, 'ids increase');
  });

  it('sends a heartbeat comment every dashboard.heartbeat', async (t) => {
    const { url } = await setup(t, 'dashboard: { heartbeat: 50ms }\n');
    const sse = await open(t, url);
    await sse.until((r) => r.events.filter((e) => e.comments.includes('ping')).length >= 2 || undefined, 2_000, 'two pings');
  });

  it('replays what a reconnecting client missed after its Last-Event-ID, then continues without duplicates', async (t) => {
    const { url } = await setup(t);
    const a = await open(t, url);
    for (let i = 0; i < 4; i++) await call(url, 'GET', `/api/${i}`, { headers: { 'x-request-id': `r${i}` } });
    await a.until((r) => r.of('request').length >= 4 || undefined);
    const ids = requestIds(a);
    const b = await open(t, url, { 'last-event-id': ids[1]! });
    const hello = b.of('connected')[0];
    assert.deepEqual(hello, { resumed: true, replayed: 2, complete: true });
    assert.equal(b.events.find((e) => e.event === 'connected')!.id, ids[1]);
    await b.until((r) => r.of('request').length >= 2 || undefined);
    assert.deepEqual(requestIds(b), ids.slice(2));
    assert.deepEqual(
      b.of('request').map((r) => r.id),
      ['r2', 'r3'],
    );
    await call(url, 'GET', '/api/later', { headers: { 'x-request-id': 'r4' } });
    await b.until((r) => r.of('request').length >= 3 || undefined);
    await a.until((r) => r.of('request').length >= 5 || undefined);
    assert.deepEqual(
      b.of('request').map((r) => r.id),
      ['r2', 'r3', 'r4'],
    );
  });

  it('says the replay is incomplete when the missed events fell out of the history or the id is from another run', async (t) => {
    const { url } = await setup(t, 'dashboard: { sse_history: 3 }\n');
    const a = await open(t, url);
    for (let i = 0; i < 6; i++) await call(url, 'GET', `/api/${i}`);
    await a.until((r) => r.of('request').length >= 6 || undefined);
    const ids = requestIds(a);
    const late = await open(t, url, { 'last-event-id': ids[0]! });
    assert.deepEqual(late.of('connected')[0], { resumed: true, replayed: 3, complete: false });
    const stranger = await open(t, url, { 'last-event-id': '42' });
    assert.deepEqual(stranger.of('connected')[0], { resumed: true, replayed: 0, complete: false });
    const current = await open(t, url, { 'last-event-id': ids[5]! });
    assert.deepEqual(current.of('connected')[0], { resumed: true, replayed: 0, complete: true });
  });

  it('drops and counts events for a client that stops reading, without slowing the gateway or other clients', async (t) => {
    const LINES = 4000;
    const script = `const s = 'x'.repeat(8000); for (let i = 0; i < ${LINES}; i++) console.log(s); console.log('done');`;
    // sse_buffer 1000 (8 MB of these lines): the stalled client still loses events (the flood is 32 MB;
    // loopback socket buffers hold at most ~10 MB). The reading client runs in a process of its own, so
    // its pace does not depend on this test process's event loop, which the gateway's broadcast keeps busy.
    const { url, dashboard, logs, gw } = await setup(
      t,
      `dashboard: { sse_buffer: 1000, heartbeat: 50ms }\nprocesses:\n  - id: flood\n    command: ${q(process.execPath)}\n    args: ["-e", ${q(script)}]\n`,
    );
    // A client that sends its request and never reads a byte.
    const { port } = new URL(url);
    const slow = connect(Number(port), '127.0.0.1');
    t.after(() => slow.destroy());
    await new Promise<void>((r) => slow.once('connect', () => r()));
    slow.pause();
    slow.write(`GET /dashboard/api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    const fast = readerProcess(t, url);
    await fast.line(/^connected$/, 10_000);
    const slowSeen = await (async () => {
      for (let i = 0; i < 100 && dashboard.sse().clients < 2; i++) await new Promise((r) => setTimeout(r, 10));
      return dashboard.sse().clients;
    })();
    assert.equal(slowSeen, 2);

    assert.equal((await post(url, '/dashboard/api/processes/flood/start')).status, 200);
    // The gateway keeps answering while the flood is broadcast.
    const t0 = Date.now();
    assert.equal((await call(url, 'GET', '/dashboard/api/routes')).status, 200);
    assert.ok(Date.now() - t0 < 1_000, `admin call took ${Date.now() - t0} ms during the flood`);

    // The reading client gets everything, in order, and its stream stays open.
    const result = JSON.parse(await fast.line(/^\{/, 30_000)) as { lines: number; ended: boolean };
    assert.deepEqual(result, { lines: LINES, ended: false }, 'the reading client lost nothing');

    const dropped = dashboard.sse().droppedEvents;
    t.diagnostic(`dropped ${dropped} of ${LINES + 1} events for the stalled client`);
    assert.ok(dropped > 0, 'events for the stalled client were dropped');
    assert.ok(dropped < LINES, `at most the flood is dropped (${dropped})`);
    assert.ok(logs.some((l) => l.includes('dropping events') && l.includes('"level":"warn"')), 'a warning is logged');

    // The stalled stream does not hold up shutdown either.
    const t0close = Date.now();
    await gw.close();
    assert.ok(Date.now() - t0close < 2_000, `close took ${Date.now() - t0close} ms`);
    assert.equal(dashboard.sse().clients, 0);
  });

  it('ends every stream at once when the gateway closes, stalled ones included', async (t) => {
    const { url, gw, dashboard } = await setup(t, 'server: { shutdown_timeout: 10s }\n');
    const a = await open(t, url);
    const b = await open(t, url);
    const { port } = new URL(url);
    const stalled = connect(Number(port), '127.0.0.1');
    t.after(() => stalled.destroy());
    stalled.pause();
    stalled.write(`GET /dashboard/api/stream HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    const closedStalled = new Promise<void>((r) => stalled.once('close', () => r()));
    for (let i = 0; i < 100 && dashboard.sse().clients < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(dashboard.sse().clients, 3);

    const t0 = Date.now();
    await gw.close();
    const took = Date.now() - t0;
    assert.ok(took < 2_000, `close took ${took} ms`);
    await a.waitEnd(1_000);
    await b.waitEnd(1_000);
    stalled.resume(); // it reads again only to see that the server hung up
    await closedStalled;
    assert.equal(dashboard.sse().clients, 0);
  });

  it('refuses new streams once the dashboard is closed', async (t) => {
    const { url, dashboard } = await setup(t);
    dashboard.close();
    const r = await call(url, 'GET', '/dashboard/api/stream');
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'shutting_down');
  });
});
