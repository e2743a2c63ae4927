import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import type { CompletionRecord } from '../../src/events/index.js';
import { send, startBackend, startGateway } from '../helpers/gateway.js';

const KEY = 'key-abc123-test';
const SECRET = 'a-test-secret-of-32-bytes-0123456';

function echo(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) {
  req.resume();
  const body = JSON.stringify({ headers: req.headers });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

test('a request without credentials gets 401 JSON with WWW-Authenticate and its request id', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `auth:\n  api_keys: ["${KEY}"]\nroutes:\n  - path: /api\n    backend: ${be.url}\n`);
  const r = await send(`${gw.url}/api/x`);
  assert.equal(r.status, 401);
  assert.match(String(r.headers['www-authenticate']), /^Bearer realm=/);
  assert.equal(r.json().error.code, 'missing_credentials');
  assert.equal(r.json().error.request_id, r.headers['x-request-id']);
  const bad = await send(`${gw.url}/api/x`, { headers: { 'x-api-key': 'wrong-key-value' } });
  assert.equal(bad.json().error.code, 'invalid_api_key');
  assert.ok(!bad.text.includes('wrong-key-value'), 'the presented key is never echoed');
});

test('a valid API key passes and the completion record names the consumer, never the key', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `auth:\n  api_keys: [{id: mobile, key: "${KEY}"}]\nroutes:\n  - path: /api\n    backend: ${be.url}\n`);
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  const r = await send(`${gw.url}/api/x`, { headers: { 'x-api-key': KEY } });
  assert.equal(r.status, 200);
  assert.equal(records[0]!.consumer, 'mobile');
  // Every field, request and response headers included, is checked: the key appears nowhere.
  assert.ok(records[0]!.requestHeaders !== undefined && Object.keys(records[0]!.requestHeaders).length > 0, 'the record carries the request headers');
  assert.equal(records[0]!.requestHeaders['x-api-key'], '[redacted]');
  assert.ok(!JSON.stringify(records[0]).includes(KEY), 'the key leaked into the completion record');
});

test('credentials are redacted from the record whatever the case of their names, and a response header the proxy drops is not in it', async (t) => {
  const be = await startBackend(t, (req, res) => {
    req.resume();
    // Connection names set-cookie: the client never sees it, and the record keeps the headers the client got.
    res.writeHead(200, [['Set-Cookie', 'session=backend-secret'], ['Connection', 'set-cookie'], ['Content-Length', '2']].flat());
    res.end('ok');
  });
  const gw = await startGateway(t, `routes:\n  - path: /api\n    backend: ${be.url}\n`);
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  const r = await send(`${gw.url}/api/x`, { headers: { AUTHORIZATION: 'Bearer client-secret', 'X-Api-Key': 'client-key', Cookie: 'c=client-cookie' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['set-cookie'], undefined, 'a header named in Connection is not relayed');
  const rec = records[0]!;
  assert.equal(rec.requestHeaders.authorization, '[redacted]');
  assert.equal(rec.requestHeaders['x-api-key'], '[redacted]');
  assert.equal(rec.requestHeaders.cookie, '[redacted]');
  assert.ok(rec.responseHeaders !== undefined && !rec.responseHeaders.some((n, i) => i % 2 === 0 && /^(set-cookie|connection)$/i.test(n)), JSON.stringify(rec.responseHeaders));
  for (const secret of ['client-secret', 'client-key', 'client-cookie', 'backend-secret']) assert.ok(!JSON.stringify(rec).includes(secret), `${secret} leaked into the record`);

  // A request without credentials is not touched (its response still carries the backend's cookie).
  const plain = await send(`${gw.url}/api/y`, { headers: { accept: 'text/plain', 'user-agent': 'probe' } });
  assert.equal(plain.status, 200);
  assert.equal(records[1]!.requestHeaders.accept, 'text/plain');
  assert.equal(records[1]!.requestHeaders['user-agent'], 'probe');
  assert.ok(!JSON.stringify(records[1]!.requestHeaders).includes('[redacted]'));
  assert.ok(!JSON.stringify(records[1]!.responseHeaders).includes('backend-secret'));
});

test('a response header the client gets is in the record, a credential among them redacted', async (t) => {
  const be = await startBackend(t, (req, res) => {
    req.resume();
    res.writeHead(200, ['Set-Cookie', 'session=backend-secret', 'Set-Cookie', 'other=backend-secret', 'X-Served-By', 'be-1', 'Content-Length', '2']);
    res.end('ok');
  });
  const gw = await startGateway(t, `routes:\n  - path: /api\n    backend: ${be.url}\n`);
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  const r = await send(`${gw.url}/api/x`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.headers['set-cookie'], ['session=backend-secret', 'other=backend-secret']);
  const list = records[0]!.responseHeaders!;
  const pairs = (name: string) => list.flatMap((n, i) => (i % 2 === 0 && n.toLowerCase() === name ? [list[i + 1]] : []));
  assert.deepEqual(pairs('set-cookie'), ['[redacted]', '[redacted]']);
  assert.deepEqual(pairs('x-served-by'), ['be-1']);
  assert.deepEqual(pairs('x-request-id'), [r.headers['x-request-id']]);
  assert.ok(!JSON.stringify(records[0]).includes('backend-secret'));
});

test('a valid HS256 JWT passes and its sub becomes the consumer', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `auth:\n  jwt_secret: "${SECRET}"\nroutes:\n  - path: /api\n    backend: ${be.url}\n`);
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('user-7').setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));
  const r = await send(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200);
  assert.equal(records[0]!.consumer, 'user-7');
  const expired = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u').setExpirationTime(Math.floor(Date.now() / 1000) - 3600).sign(new TextEncoder().encode(SECRET));
  const e = await send(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${expired}` } });
  assert.equal(e.status, 401);
  assert.equal(e.json().error.code, 'token_expired');
});

test('a public route is served without credentials', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `auth:\n  api_keys: ["${KEY}"]\nroutes:\n  - path: /open\n    backend: ${be.url}\n    public: true\n  - path: /api\n    backend: ${be.url}\n`);
  assert.equal((await send(`${gw.url}/open/x`)).status, 200);
  assert.equal((await send(`${gw.url}/api/x`)).status, 401);
});

test('strip_credentials keeps the API key and Authorization header from the backend', async (t) => {
  const be = await startBackend(t, echo);
  const gw = await startGateway(t, `auth:\n  api_keys: ["${KEY}"]\n  strip_credentials: true\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const seen = (await send(`${gw.url}/x`, { headers: { 'x-api-key': KEY, authorization: 'Bearer whatever' } })).json().headers;
  assert.equal(seen['x-api-key'], undefined);
  assert.equal(seen.authorization, undefined);
});

test('the rate limit answers 429 with an integer Retry-After and RateLimit headers on every response', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `ratelimit:\n  max_tokens: 3\n  refill_rate: 0.5\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const statuses = [];
  for (let i = 0; i < 3; i++) {
    const r = await send(`${gw.url}/x`);
    statuses.push(r.status);
    assert.match(String(r.headers['ratelimit-policy']), /q=3;w=/);
    assert.match(String(r.headers.ratelimit), /r=\d+;t=\d+/);
  }
  const limited = await send(`${gw.url}/x`);
  assert.deepEqual(statuses, [200, 200, 200]);
  assert.equal(limited.status, 429);
  assert.equal(limited.json().error.code, 'rate_limited');
  assert.match(String(limited.headers['retry-after']), /^[1-9]\d*$/);
  assert.match(String(limited.headers['ratelimit-policy']), /q=3/);
});

test('limits are per consumer when authenticated, so two keys from one IP do not share a bucket', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `auth:\n  api_keys: ["${KEY}", "second-key-0123"]\nratelimit:\n  max_tokens: 2\n  refill_rate: 0.01\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  for (let i = 0; i < 2; i++) assert.equal((await send(`${gw.url}/x`, { headers: { 'x-api-key': KEY } })).status, 200);
  assert.equal((await send(`${gw.url}/x`, { headers: { 'x-api-key': KEY } })).status, 429);
  assert.equal((await send(`${gw.url}/x`, { headers: { 'x-api-key': 'second-key-0123' } })).status, 200);
});

test('failed auth attempts cost tokens from the client IP bucket, so guessing keys is rate limited', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `auth:\n  api_keys: ["${KEY}"]\nratelimit:\n  max_tokens: 3\n  refill_rate: 0.01\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await send(`${gw.url}/x`, { headers: { 'x-api-key': `guess-${i}-xxxxxx` } })).status);
  assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
});

test("a backend's breaker opens after threshold failures; its route answers 503 breaker_open and /health shows it", async (t) => {
  const be = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.writeHead(500).end('boom');
  });
  const gw = await startGateway(t, `circuitbreaker:\n  threshold: 3\n  timeout: 60\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  for (let i = 0; i < 3; i++) assert.equal((await send(`${gw.url}/x`)).status, 500);
  const open = await send(`${gw.url}/x`);
  assert.equal(open.status, 503);
  assert.equal(open.json().error.code, 'breaker_open');
  const health = (await send(`${gw.url}/health`)).json();
  assert.equal(health.backends[be.url].circuit, 'open');
});

test("an open breaker's backend is skipped while the other backend serves", async (t) => {
  const bad = await startBackend(t, (req, res) => {
    if (req.headers['x-health-check']) return void res.end('ok');
    res.writeHead(502).end();
  });
  const good = await startBackend(t);
  const gw = await startGateway(t, `circuitbreaker:\n  threshold: 2\n  timeout: 60\nroutes:\n  - path: /\n    backends: ["${bad.url}", "${good.url}"]\n`);
  const statuses = [];
  for (let i = 0; i < 12; i++) statuses.push((await send(`${gw.url}/x`)).status);
  assert.deepEqual(statuses.slice(0, 4), [502, 200, 502, 200]);
  assert.deepEqual(statuses.slice(4), Array(8).fill(200));
});

test("the gateway's own 401 and 429 never count as backend failures", async (t) => {
  const be = await startBackend(t);
  // The attacker and the real client are told apart by X-Forwarded-For from a trusted proxy.
  const gw = await startGateway(
    t,
    `server:\n  trusted_proxies: ["127.0.0.1"]\nauth:\n  api_keys: ["${KEY}"]\nratelimit:\n  max_tokens: 4\n  refill_rate: 0.01\ncircuitbreaker:\n  threshold: 2\nroutes:\n  - path: /\n    backend: ${be.url}\n`,
  );
  const attacker = { 'x-forwarded-for': '198.51.100.66' };
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await send(`${gw.url}/x`, { headers: attacker })).status);
  // Each failed attempt costs a token: four 401s empty the bucket, then 429s.
  assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429, 429, 429, 429, 429]);
  assert.equal(be.requests.filter((r) => !r.headers['x-health-check']).length, 0, 'none of them reached the backend');
  assert.equal(gw.backends.get(be.url)!.breaker!.state, 'closed', 'ten gateway-made errors, threshold 2: still closed');
  assert.equal((await send(`${gw.url}/x`, { headers: { 'x-api-key': KEY, 'x-forwarded-for': '198.51.100.7' } })).status, 200);
});

test('/metrics labels requests by route prefix, never by raw path', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /api\n    backend: ${be.url}\n`);
  for (let i = 0; i < 5; i++) await send(`${gw.url}/api/item/${i}`);
  await send(`${gw.url}/random/${Math.random()}`);
  const m = await send(`${gw.url}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.text, /gateway_http_requests_total\{method="GET",route="\/api",status="200"\} 5/);
  assert.match(m.text, /route="unmatched"/);
  assert.ok(!m.text.includes('/api/item/'));
  assert.match(m.text, /gateway_circuit_state\{backend="http:\/\/127\.0\.0\.1:\d+"\} 0/);
  assert.match(m.text, /gateway_backend_up\{/);
});

test('an unmatched path needs credentials before it answers 404, so routes cannot be probed', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `auth:\n  api_keys: ["${KEY}"]\nroutes:\n  - path: /api\n    backend: ${be.url}\n`);
  assert.equal((await send(`${gw.url}/secret-admin`)).status, 401);
  const known = await send(`${gw.url}/secret-admin`, { headers: { 'x-api-key': KEY } });
  assert.equal(known.status, 404);
  assert.equal(known.json().error.code, 'not_found');
});

test('behind a trusted proxy the client IP comes from X-Forwarded-For and the proxy stays in the chain', async (t) => {
  const be = await startBackend(t, echo);
  const gw = await startGateway(t, `server:\n  trusted_proxies: ["127.0.0.0/8"]\nratelimit:\n  max_tokens: 1\n  refill_rate: 0.01\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  const a = await send(`${gw.url}/x`, { headers: { 'x-forwarded-for': '198.51.100.7' } });
  assert.equal(a.json().headers['x-forwarded-for'], '198.51.100.7, 127.0.0.1');
  assert.equal(records[0]!.clientIp, '198.51.100.7');
  // Each forwarded client has its own bucket; a spoofed hop before an untrusted one is ignored.
  assert.equal((await send(`${gw.url}/x`, { headers: { 'x-forwarded-for': '198.51.100.8' } })).status, 200);
  assert.equal((await send(`${gw.url}/x`, { headers: { 'x-forwarded-for': '198.51.100.7' } })).status, 429);
  assert.equal((await send(`${gw.url}/x`, { headers: { 'x-forwarded-for': '10.9.9.9, 198.51.100.7' } })).status, 429);
});

test('a process with a route in config serves that route on its port', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /api\n    backend: http://127.0.0.1:1\nprocesses:\n  - id: p\n    command: /bin/true\n    port: ${be.port}\n    route: /api\n`);
  assert.ok(gw.routes.find('/api')!.backends.some((b) => b.url === `http://localhost:${be.port}`));
});

test('a route in panic mode still tries its unhealthy backends, and says so in the record', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /strict\n    backend: ${be.url}\n  - path: /panic\n    backend: ${be.url}\n    panic: true\n`);
  gw.backends.get(be.url)!.healthy = false;
  const records: CompletionRecord[] = [];
  gw.bus.subscribe((r) => records.push(r));
  assert.equal((await send(`${gw.url}/strict/x`)).status, 503);
  assert.equal((await send(`${gw.url}/panic/x`)).status, 200);
  assert.equal(records[1]!.decision, 'panic');
});
