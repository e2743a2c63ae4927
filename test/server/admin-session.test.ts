import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { call, post, SseReader, startGateway, type Reply } from '../dashboard/helpers.js';

const TOKEN = 'a-very-long-admin-token-for-session-tests';
const SESSION = '/dashboard/api/session';

/** A gateway whose admin surface trusts no address: only the token, or a session made with it. */
async function remoteOnly(t: TestContext, extra = '', clock = new ManualClock()) {
  const h = await startGateway(t, `routes: []\nadmin:\n  token: ${TOKEN}\n  allow_loopback: false\n${extra}`, { clock });
  return { ...h, clock };
}

function assertError(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.body);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.equal(r.json.error.code, code);
}

/** `name=value` of the Set-Cookie header, and its attributes (lower-cased names). */
function parseSetCookie(r: Reply): { name: string; value: string; attrs: Map<string, string> } {
  const raw = r.headers['set-cookie'];
  assert.ok(raw && raw.length === 1, `one Set-Cookie, got ${JSON.stringify(raw)}`);
  const [pair, ...rest] = raw[0]!.split(';').map((s) => s.trim());
  const eq = pair!.indexOf('=');
  const attrs = new Map<string, string>();
  for (const a of rest) {
    const i = a.indexOf('=');
    attrs.set((i === -1 ? a : a.slice(0, i)).toLowerCase(), i === -1 ? '' : a.slice(i + 1));
  }
  return { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), attrs };
}

async function login(url: string, token = TOKEN, headers: Record<string, string> = {}): Promise<Reply> {
  return post(url, SESSION, { token }, headers);
}

/** Logs in and returns the `Cookie` header value that grants the session. */
async function session(url: string): Promise<string> {
  const r = await login(url);
  assert.equal(r.status, 204, r.body);
  const c = parseSetCookie(r);
  return `${c.name}=${c.value}`;
}

describe('admin session: logging in', () => {
  it('answers 204 with an HttpOnly, SameSite=Strict, 12-hour session cookie that is not the token', async (t) => {
    const { url } = await remoteOnly(t);
    const r = await login(url);
    assert.equal(r.status, 204, r.body);
    assert.equal(r.body, '');
    assert.equal(r.headers['cache-control'], 'no-store');
    const c = parseSetCookie(r);
    assert.equal(c.name, 'microgate_admin');
    assert.ok(c.value.length > 40);
    assert.ok(!c.value.includes(TOKEN) && !decodeURIComponent(c.value).includes(TOKEN), 'the cookie never carries the token');
    assert.equal(c.attrs.get('httponly'), '');
    assert.equal(c.attrs.get('samesite'), 'Strict');
    assert.equal(c.attrs.get('max-age'), '43200');
    assert.equal(c.attrs.get('path'), '/dashboard', 'scoped to the dashboard, so proxied requests never carry it upstream');
    assert.equal(c.attrs.has('secure'), false, 'plain HTTP: a Secure cookie would be dropped');
    // Two logins are two sessions.
    assert.notEqual(await session(url), await session(url));
  });

  it('marks the cookie Secure when the browser came over HTTPS through a proxy', async (t) => {
    const { url } = await remoteOnly(t);
    assert.equal(parseSetCookie(await login(url, TOKEN, { 'x-forwarded-proto': 'https' })).attrs.has('secure'), true);
    const host = new URL(url).host;
    assert.equal(parseSetCookie(await login(url, TOKEN, { origin: `https://${host}`, host })).attrs.has('secure'), true);
  });

  it('answers a wrong token with 401 admin_unauthorized and no cookie', async (t) => {
    const { url, logs } = await remoteOnly(t);
    const r = await login(url, 'not-the-admin-token-at-all');
    assertError(r, 401, 'admin_unauthorized');
    assert.equal(r.headers['set-cookie'], undefined);
    assert.ok(logs.some((l) => l.includes('admin login refused') && l.includes('wrong_token')));
    assert.ok(!logs.some((l) => l.includes('not-the-admin-token-at-all')), 'a guess is never logged');
  });

  it('refuses a body without a token string (400), not JSON (415), cross-site (403) or over 4 KiB (413)', async (t) => {
    const { url } = await remoteOnly(t);
    assertError(await post(url, SESSION, { password: TOKEN }), 400, 'bad_request');
    assertError(await post(url, SESSION, { token: 42 }), 400, 'bad_request');
    assertError(await call(url, 'POST', SESSION, { raw: 'not json', headers: { 'content-type': 'application/json' } }), 400, 'bad_request');
    assertError(await call(url, 'POST', SESSION, { raw: `token=${TOKEN}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    assertError(await login(url, TOKEN, { origin: 'http://evil.example' }), 403, 'forbidden');
    assertError(await login(url, TOKEN, { 'sec-fetch-site': 'cross-site' }), 403, 'forbidden');
    assertError(await post(url, SESSION, { token: TOKEN, pad: 'x'.repeat(4096) }), 413, 'body_too_large');
    const r = await call(url, 'PUT', SESSION, { body: { token: TOKEN } });
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.allow, 'GET, HEAD, POST, DELETE');
  });

  it('throttles login attempts per client: the 11th in a burst is 429 with Retry-After, even with the right token', async (t) => {
    const { url, clock } = await remoteOnly(t, 'server:\n  trusted_proxies: ["127.0.0.1"]\n');
    const guesser = { 'x-forwarded-for': '203.0.113.7' };
    for (let i = 0; i < 10; i++) assertError(await login(url, `wrong-guess-number-${i}`, guesser), 401, 'admin_unauthorized');
    const limited = await login(url, TOKEN, guesser);
    assertError(limited, 429, 'rate_limited');
    assert.equal(limited.headers['retry-after'], '10');
    assert.equal(limited.headers['set-cookie'], undefined, 'a throttled attempt is not checked, so it cannot reveal the token');
    // The same /64 shares a bucket; another client does not.
    assert.equal((await login(url, TOKEN, { 'x-forwarded-for': '198.51.100.1' })).status, 204);
    // One attempt comes back every 10 s.
    clock.advance(10_000);
    assert.equal((await login(url, TOKEN, guesser)).status, 204);
    assertError(await login(url, TOKEN, guesser), 429, 'rate_limited');
  });

  it('counts an IPv6 client by its /64', async (t) => {
    const { url } = await remoteOnly(t, 'server:\n  trusted_proxies: ["127.0.0.1"]\n');
    for (let i = 0; i < 10; i++) await login(url, 'wrong-guess-wrong-guess', { 'x-forwarded-for': `2001:db8:1:2::${i + 1}` });
    assertError(await login(url, TOKEN, { 'x-forwarded-for': '2001:db8:1:2:ffff::9' }), 429, 'rate_limited');
    assert.equal((await login(url, TOKEN, { 'x-forwarded-for': '2001:db8:1:3::1' })).status, 204);
  });

  it('answers 403 "remote admin access is disabled" when no admin.token is configured', async (t) => {
    const { url } = await startGateway(t, 'routes: []\n');
    const r = await login(url, 'whatever-token-they-try');
    assertError(r, 403, 'forbidden');
    assert.match(r.json.error.message, /remote admin access is disabled/i);
    assert.equal(r.headers['set-cookie'], undefined);
    const closed = await startGateway(t, 'routes: []\nadmin:\n  allow_loopback: false\n');
    assert.match((await login(closed.url, 'whatever-token-they-try')).json.error.message, /admin access is disabled/i);
  });
});

describe('admin session: using it', () => {
  it('grants the dashboard API and the event stream with allow_loopback: false', async (t) => {
    const { url } = await remoteOnly(t);
    assertError(await call(url, 'GET', '/dashboard/api/processes'), 401, 'admin_unauthorized');
    const cookie = await session(url);
    const r = await call(url, 'GET', '/dashboard/api/processes', { headers: { cookie } });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, { processes: [] });
    // Among other cookies, in any order.
    assert.equal((await call(url, 'GET', '/dashboard/api/metrics', { headers: { cookie: `theme=dark; ${cookie}; lang=en` } })).status, 200);

    const denied = await SseReader.open(url);
    t.after(() => denied.close());
    assert.equal(denied.status, 401);
    const stream = await SseReader.open(url, { cookie });
    t.after(() => stream.close());
    assert.equal(stream.status, 200);
    assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
    await stream.next('connected');
  });

  it('lets mutating calls through only as JSON from the same origin, as before', async (t) => {
    const { url } = await remoteOnly(t);
    const cookie = await session(url);
    const body = { id: 'x', command: '/bin/true', port: 40999 };
    assertError(await call(url, 'POST', '/dashboard/api/processes', { raw: JSON.stringify(body), headers: { cookie, 'content-type': 'text/plain' } }), 415, 'unsupported_media_type');
    assertError(await post(url, '/dashboard/api/processes', body, { cookie, origin: 'http://evil.example' }), 403, 'forbidden');
    // Past those checks, the allow-list decides (the command is not listed).
    assertError(await post(url, '/dashboard/api/processes', body, { cookie }), 403, 'forbidden');
  });

  it('refuses an expired session', async (t) => {
    const { url, clock } = await remoteOnly(t);
    const cookie = await session(url);
    clock.advance(43_199_000);
    assert.equal((await call(url, 'GET', '/dashboard/api/routes', { headers: { cookie } })).status, 200);
    clock.advance(1_000);
    assertError(await call(url, 'GET', '/dashboard/api/routes', { headers: { cookie } }), 401, 'admin_unauthorized');
  });

  it('refuses forged and altered cookies', async (t) => {
    const { url } = await remoteOnly(t);
    const cookie = await session(url);
    const [name, value] = cookie.split('=') as [string, string];
    const [expiry, nonce, mac] = value.split('.') as [string, string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
    // The same 32 bytes spelled differently: the last character's lowest bit is padding.
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const respelled = mac.slice(0, -1) + B64[B64.indexOf(mac.at(-1)!) ^ 1];
    assert.deepEqual(Buffer.from(respelled, 'base64url'), Buffer.from(mac, 'base64url'));
    const forged = [
      `${Number(expiry) + 86_400}.${nonce}.${mac}`, // a later expiry
      `0${expiry}.${nonce}.${mac}`,
      `${expiry}.${flip(nonce, 3)}.${mac}`,
      `${expiry}.${nonce}.${flip(mac, 0)}`,
      `${expiry}.${nonce}.${respelled}`,
      `${expiry}.${nonce}.${Buffer.alloc(32).toString('base64url')}`,
      TOKEN,
      '',
      `${expiry}.${nonce}`,
    ];
    for (const v of forged) {
      assertError(await call(url, 'GET', '/dashboard/api/routes', { headers: { cookie: `${name}=${v}` } }), 401, 'admin_unauthorized');
    }
    // A session of another gateway (another key) is worthless here.
    const other = await remoteOnly(t);
    assertError(await call(other.url, 'GET', '/dashboard/api/routes', { headers: { cookie } }), 401, 'admin_unauthorized');
    // A bad cookie next to a good one does not spoil it.
    assert.equal((await call(url, 'GET', '/dashboard/api/routes', { headers: { cookie: `${name}=${forged[0]}; ${cookie}` } })).status, 200);
  });

  it('logging out clears the cookie and revokes the session on the server', async (t) => {
    const { url, logs } = await remoteOnly(t);
    const cookie = await session(url);
    const keep = await session(url);
    assertError(await call(url, 'DELETE', SESSION, { headers: { cookie } }), 415, 'unsupported_media_type');
    const out = await call(url, 'DELETE', SESSION, { headers: { cookie, 'content-type': 'application/json' } });
    assert.equal(out.status, 204, out.body);
    const c = parseSetCookie(out);
    assert.equal(c.name, 'microgate_admin');
    assert.equal(c.value, '');
    assert.equal(c.attrs.get('max-age'), '0');
    assert.equal(c.attrs.get('path'), '/dashboard');
    // A copy of the old cookie is dead too; other sessions live on.
    assertError(await call(url, 'GET', '/dashboard/api/routes', { headers: { cookie } }), 401, 'admin_unauthorized');
    assert.equal((await call(url, 'GET', '/dashboard/api/routes', { headers: { cookie: keep } })).status, 200);
    assert.ok(logs.some((l) => l.includes('"outcome":"logout"')));
  });
});

describe('admin session: what stays open and what stays guarded', () => {
  it('reports how the caller is admitted: cookie, token, loopback or not at all', async (t) => {
    const { url } = await remoteOnly(t);
    assert.deepEqual((await call(url, 'GET', SESSION)).json, { authenticated: false, via: null, login_enabled: true });
    const cookie = await session(url);
    assert.deepEqual((await call(url, 'GET', SESSION, { headers: { cookie } })).json, { authenticated: true, via: 'cookie', login_enabled: true });
    const bearer = await call(url, 'GET', SESSION, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.deepEqual(bearer.json, { authenticated: true, via: 'token', login_enabled: true });
    assert.equal(bearer.headers['cache-control'], 'no-store');

    const local = await startGateway(t, 'routes: []\n');
    assert.deepEqual((await call(local.url, 'GET', SESSION)).json, { authenticated: true, via: 'loopback', login_enabled: false });
    // A loopback peer under a foreign name (DNS rebinding) is not admitted by the API, so not reported as such.
    const port = new URL(local.url).port;
    assert.deepEqual((await call(local.url, 'GET', SESSION, { headers: { host: `rebind.evil.example:${port}` } })).json, {
      authenticated: false,
      via: null,
      login_enabled: false,
    });
  });

  it('serves the UI without credentials so the login form can load, and guards everything else', async (t) => {
    const dist = await mkdtemp(join(tmpdir(), 'microgate-login-ui-'));
    t.after(() => rm(dist, { recursive: true, force: true }));
    await writeFile(join(dist, 'index.html'), '<!doctype html><title>login test</title>');
    const { url } = await startGateway(t, `routes: []\ndashboard: { enabled: false }\nadmin:\n  token: ${TOKEN}\n  allow_loopback: false\n  public_metrics: false\n`, {
      dashboard: { distDir: dist },
    });
    const page = await call(url, 'GET', '/dashboard/');
    assert.equal(page.status, 200);
    assert.match(page.body, /login test/);
    assert.equal((await call(url, 'GET', '/dashboard/some/client/route')).status, 200);
    assert.equal((await call(url, 'GET', '/dashboard')).status, 301);
    for (const p of ['/dashboard/api', '/dashboard/api/', '/dashboard/api/processes', '/dashboard/api/stream', '/dashboard/api/session/x', '/metrics']) {
      const r = await call(url, 'GET', p);
      assert.equal(r.status, 401, p);
      assert.equal(r.json.error.code, 'admin_unauthorized', p);
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="microgate-admin"');
    }
    assert.equal((await call(url, 'GET', SESSION)).status, 200, 'the session endpoint itself is open');
  });

  it(
    'works behind a reverse proxy on the same host (loopback peer, public host name)',
    async (t) => {
      const { url } = await remoteOnly(t, 'server:\n  trusted_proxies: ["127.0.0.1"]\n');
      const cookie = await session(url);
      const headers = { cookie, host: 'gateway.example.com', 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' };
      assert.equal((await call(url, 'GET', '/dashboard/api/routes', { headers })).status, 200);
    },
  );

  it('keeps Bearer and loopback access exactly as they were', async (t) => {
    const { url } = await remoteOnly(t);
    assert.equal((await call(url, 'GET', '/dashboard/api/routes', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    assertError(await call(url, 'GET', '/dashboard/api/routes', { headers: { authorization: 'Bearer wrong-token-wrong-token' } }), 401, 'admin_unauthorized');
    const local = await startGateway(t, `routes: []\nadmin:\n  token: ${TOKEN}\n`);
    assert.equal((await call(local.url, 'GET', '/dashboard/api/routes')).status, 200);
    assert.equal((await call(local.url, 'GET', '/dashboard/api/routes', { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 200);
  });
});

describe('admin token guessing', () => {
  it('wrong bearer tokens on the admin API are throttled per client IP, then answered 429', async (t) => {
    const token = 'a-very-long-admin-token-for-tests';
    const { url } = await startGateway(t, `routes: []\nadmin:\n  token: ${token}\n  allow_loopback: false\n`);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      statuses.push((await call(url, 'GET', '/dashboard/api/processes', { headers: { authorization: `Bearer wrong-guess-${i}-xxxxxxxxxxxx` } })).status);
    }
    assert.deepEqual(statuses.slice(0, 10), Array(10).fill(401));
    assert.deepEqual(statuses.slice(10), [429, 429]);
    // No credentials at all is a plain 401 and costs nothing.
    assert.equal((await call(url, 'GET', '/dashboard/api/processes')).status, 401);
  });
});
