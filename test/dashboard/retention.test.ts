import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { call, startBackend, startGateway } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('dashboard memory', () => {
  it('keeps its request log and SSE history without keeping the requests and responses themselves alive', async (t) => {
    const backend = await startBackend(t);
    const { url, dashboard } = await startGateway(t, `routes:\n  - path: /api\n    backend: ${backend.url}\nhealthcheck: { interval: 1h }\n`);
    const port = Number(new URL(url).port);
    const held: WeakRef<IncomingMessage | ServerResponse>[] = [];
    const onStart = (msg: unknown): void => {
      const { request, response } = msg as { request: IncomingMessage; response: ServerResponse };
      if (request.socket.localPort === port) held.push(new WeakRef(request), new WeakRef(response));
    };
    subscribe('http.server.request.start', onStart);
    t.after(() => unsubscribe('http.server.request.start', onStart));

    const n = 20;
    for (let i = 0; i < n; i++) assert.equal((await call(url, 'GET', `/api/${i}`, { headers: { 'x-api-key': 'not-a-key' } })).status, 200);
    unsubscribe('http.server.request.start', onStart);
    assert.equal(held.length, 2 * n);

    const logs = (await call(url, 'GET', `/dashboard/api/logs?limit=${n}`)).json as { logs: { path: string }[] };
    assert.equal(logs.logs.length, n, 'the log still holds every request');
    assert.ok(dashboard.sse().lastEventId >= n, 'and the SSE history its events');

    // Connections are closed after each answer (no keep-alive); give them a few turns to go.
    for (let i = 0; i < 10 && held.some((r) => r.deref() !== undefined); i++) {
      await tick();
      gc();
    }
    const alive = held.filter((r) => r.deref() !== undefined).length;
    assert.equal(alive, 0, `${alive} of ${held.length} request/response objects are still reachable`);
  });
});
