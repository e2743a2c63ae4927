import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { deadPort, send, startBackend, startGateway, until } from '../helpers/gateway.js';
import { rawBackend, rawClient } from '../security/proxy-helpers.js';

test('a hung backend gives 504 within the configured timeout', async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n    timeout: "300ms"\n`);
  const started = Date.now();
  const r = await send(`${gw.url}/hang`);
  const took = Date.now() - started;
  assert.equal(r.status, 504);
  assert.equal(r.json().error.code, 'upstream_timeout');
  assert.ok(took >= 250 && took < 2000, `answered after ${took} ms`);
});

test('the server-wide upstream_timeout applies when a route sets none', async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
  });
  const gw = await startGateway(t, `server:\n  upstream_timeout: "200ms"\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const r = await send(`${gw.url}/hang`);
  assert.equal(r.status, 504);
});

test('a dead backend gives a 502 JSON error with the request id', async (t) => {
  const port = await deadPort();
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: http://127.0.0.1:${port}\n`);
  // Once health checks know it is dead the answer is 503; before any verdict it is tried: 502.
  const backend = gw.backends.get(`http://127.0.0.1:${port}`)!;
  await until(() => backend.healthy === false);
  const known = await send(`${gw.url}/x`);
  assert.equal(known.status, 503);
  assert.equal(known.json().error.code, 'no_healthy_backend');
  backend.healthy = null;
  const r = await send(`${gw.url}/x`, { method: 'POST', body: 'data' });
  assert.equal(r.status, 502);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.json().error.code, 'upstream_error');
  assert.equal(r.json().error.request_id, r.headers['x-request-id']);
});

test('one dead backend of two never costs a client a failed GET', async (t) => {
  const live = await startBackend(t);
  const port = await deadPort();
  const gw = await startGateway(t, `healthcheck:\n  interval: 60\nroutes:\n  - path: /\n    backends: ["http://127.0.0.1:${port}", "${live.url}"]\n`);
  // Before any health verdict the dead one is still in rotation: the retry must cover it.
  gw.backends.get(`http://127.0.0.1:${port}`)!.healthy = null;
  for (let i = 0; i < 20; i++) {
    const r = await send(`${gw.url}/item/${i}`);
    assert.equal(r.status, 200, `request ${i}`);
    assert.equal(r.json().port, live.port);
  }
});

test('a backend that drops the connection mid-response cuts the client response short', async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.writeHead(200, { 'content-length': '1000' });
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const records: (string | undefined)[] = [];
  gw.bus.subscribe((r) => records.push(r.decision));
  await assert.rejects(send(`${gw.url}/crash`));
  // The gateway keeps serving afterwards.
  const health = await send(`${gw.url}/health`);
  assert.ok(health.status === 200 || health.status === 503);
  assert.deepEqual(records, ['upstream_error']);
});

test('a backend whose response body goes silent for upstream_body_timeout is cut off, as upstream_timeout', async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.writeHead(200, { 'content-length': '1000' });
    if (req.url === '/after-headers') res.flushHeaders();
    else res.write('partial');
    // …and nothing more.
  });
  const gw = await startGateway(t, `server:\n  upstream_body_timeout: "300ms"\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const records: [string | undefined, string | undefined][] = [];
  gw.bus.subscribe((r) => records.push([r.decision, r.errorCode]));
  for (const path of ['/mid-body', '/after-headers']) {
    const started = Date.now();
    await assert.rejects(send(`${gw.url}${path}`), `${path}: the response is cut short`);
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 2_000, `${path}: cut after ${took} ms`);
  }
  await until(() => records.length === 2);
  assert.deepEqual(records, [
    ['upstream_timeout', 'upstream_timeout'],
    ['upstream_timeout', 'upstream_timeout'],
  ]);
});

test('a slow body is relayed whole as long as no pause reaches upstream_body_timeout', async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const timer = setInterval(() => {
      res.write(`chunk ${n}\n`);
      if (++n === 8) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
  });
  const gw = await startGateway(t, `server:\n  upstream_body_timeout: "300ms"\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const records: (string | undefined)[] = [];
  gw.bus.subscribe((r) => records.push(r.decision));
  const r = await send(`${gw.url}/slow`);
  assert.equal(r.status, 200);
  assert.equal(r.text, Array.from({ length: 8 }, (_, i) => `chunk ${i}\n`).join(''));
  await until(() => records.length === 1);
  assert.deepEqual(records, [undefined]);
});

test('a backend answering garbage gives 502', async (t) => {
  const gw = await gatewayToLiar(t, (s) => s.end('NOT HTTP AT ALL\r\n\r\n'));
  const r = await send(`${gw.url}/x`);
  assert.equal(r.status, 502);
  assert.equal(r.json().error.code, 'upstream_error');
});

test('a hung backend with every connection busy and its queue full gets 503 upstream_saturated at once', async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    // never answers
  });
  const gw = await startGateway(t, `server:\n  upstream_connections: 2\n  upstream_queue_limit: 1\nroutes:\n  - path: /\n    backend: ${be.url}\n    timeout: 5s\n`);
  const backend = gw.backends.get(be.url)!;
  const acs = [new AbortController(), new AbortController(), new AbortController()];
  const held = acs.map((ac, i) => send(`${gw.url}/hold/${i}`, { signal: ac.signal }).catch(() => 'aborted'));
  await until(() => backend.inFlight === 3);
  const started = Date.now();
  const r = await send(`${gw.url}/one-too-many`);
  assert.equal(r.status, 503);
  assert.equal(r.json().error.code, 'upstream_saturated');
  assert.ok(Date.now() - started < 1000);
  assert.equal(backend.breaker!.state, 'closed', 'saturation is not a backend failure');
  acs.forEach((ac) => ac.abort());
  await Promise.all(held);
  await until(() => backend.inFlight === 0, 3000);
});

test('in-flight accounting returns to zero after successes, errors, retries and aborts', async (t) => {
  const live = await startBackend(t);
  const port = await deadPort();
  const gw = await startGateway(t, `routes:\n  - path: /\n    backends: ["http://127.0.0.1:${port}", "${live.url}"]\n`);
  for (const b of gw.backends.values()) b.healthy = null;
  for (let i = 0; i < 20; i++) assert.equal((await send(`${gw.url}/x/${i}`)).status, 200);
  await send(`${gw.url}/big`, { method: 'POST', body: 'x' });
  for (const b of gw.backends.values()) await until(() => b.inFlight === 0, 3000);
});

test('a backend sending a header Node refuses to relay gives 502, not a crash', async (t) => {
  const gw = await gatewayToLiar(t, (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Bad: a\u0001b\r\nX-Bad-Name\u00ff: 1\r\n\r\nok'));
  const r = await send(`${gw.url}/x`);
  assert.equal(r.status, 502);
  assert.equal((await send(`${gw.url}/health`)).headers['content-type'], 'application/json', 'still serving');
});

/**
 * A gateway routing `/` (with `route`'s extra keys) to a backend that is no HTTP server: `answer`
 * gets each request's socket once its head is in, and writes what it likes (health probes are
 * answered 200, so the liar stays in rotation).
 */
async function gatewayToLiar(t: TestContext, answer: (s: Socket) => void, route = ''): Promise<{ url: string; port: number }> {
  const be = await rawBackend(t, (s) => answer(s));
  return startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n${route}`);
}

/** Writes `pieces` on `s`, one every `ms` (round and round), until the socket closes. */
function trickle(s: Socket, pieces: string[], ms: number): void {
  let at = 0;
  const every = setInterval(() => s.write(pieces[at++ % pieces.length]!), ms);
  s.on('close', () => clearInterval(every));
}

test('a backend answering with a header block past 16 KiB gives 502 upstream_error with the request id, and the gateway goes on serving', async (t) => {
  const gw = await gatewayToLiar(t, (s) => s.end(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Huge: ${'h'.repeat(64 * 1024)}\r\n\r\nok`));
  const r = await send(`${gw.url}/x`);
  assert.equal(r.status, 502);
  const body = r.json();
  assert.equal(body.error.code, 'upstream_error');
  assert.equal(body.error.request_id, r.headers['x-request-id']);
  assert.match(body.error.message, /HEADERS_OVERFLOW/, 'the message names the cause');
  assert.equal(r.text.includes('hhhh'), false, 'nothing of the oversized header is relayed');
  assert.equal((await send(`${gw.url}/health`)).headers['content-type'], 'application/json', 'still serving');
});

test('bytes a backend sends past its declared body are never served as the answer to another request', async (t) => {
  // Every answer smuggles a second, forged response after its two declared bytes.
  const gw = await gatewayToLiar(t, (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Forged: 1\r\n\r\nEVIL'));
  for (let i = 0; i < 5; i++) {
    const r = await send(`${gw.url}/x${i}`);
    assert.equal(r.text.includes('EVIL'), false, `request ${i} got the forged body`);
    assert.equal(r.headers['x-forged'], undefined, `request ${i} got the forged header`);
    if (r.status === 200) assert.equal(r.text, 'ok');
  }
});

test('a backend’s interim 1xx answers are not relayed: the client gets the final answer alone', async (t) => {
  const gw = await gatewayToLiar(t, (s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  const r = await send(`${gw.url}/x`);
  assert.equal(r.status, 200);
  assert.equal(r.text, 'ok');
  assert.equal(r.headers.link, undefined, 'the 103’s header stays with the 103');
});

for (const [what, pieces] of [
  // undici restarts its headers timer at each interim answer.
  ['sends interim 1xx answers without end, never a final one,', ['HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n']],
  ['trickles its header block a byte at a time', [...`HTTP/1.1 200 OK\r\nX-Slow: ${'s'.repeat(1000)}\r\n`]],
] as const) {
  test(`a backend that ${what} times out with 504 at the route timeout`, async (t) => {
    const gw = await gatewayToLiar(t, (s) => trickle(s, [...pieces], 20), '    timeout: 500ms\n');
    const started = Date.now();
    const r = await send(`${gw.url}/x`);
    assert.equal(r.status, 504);
    assert.equal(r.json().error.code, 'upstream_timeout');
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });
}

test('a backend whose chunked body turns malformed after its headers went out cuts the client response, never ends it cleanly', async (t) => {
  const gw = await gatewayToLiar(t, (s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ-not-a-size\r\n'));
  const { socket, text, closed } = rawClient(t, gw.port);
  socket.write('GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(closed, 3000);
  assert.match(text(), /^HTTP\/1\.1 200 /);
  assert.match(text(), /hello/);
  assert.doesNotMatch(text(), /\r\n0\r\n\r\n$/, 'no terminating chunk: the client can tell the body is incomplete');
  assert.equal(text().includes('ZZZ'), false, 'the malformed bytes are not relayed');
});

test('a backend answering with a malformed or ambiguous head gives 502, never a relayed guess', async (t) => {
  const answers = [
    // Two lengths: which one frames the body is a guess a smuggler would love.
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok',
    'HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok',
    'HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok',
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  ];
  // A gateway each: a run of failures would open the backend's breaker (503) before the last ones.
  for (const answer of answers) {
    const gw = await gatewayToLiar(t, (s) => s.end(answer));
    const r = await send(`${gw.url}/x`);
    assert.equal(r.status, 502, JSON.stringify(answer));
    assert.equal(r.json().error.code, 'upstream_error', JSON.stringify(answer));
    assert.equal((await send(`${gw.url}/health`)).headers['content-type'], 'application/json', 'still serving');
  }
});
