/**
 * The gateway's Redis client (src/store/resp-client.ts): RESP2 replies of every type, however the
 * bytes are split, pipelined in order; AUTH and SELECT from the URL; TLS for rediss://; no offline
 * queue; a bound on commands awaiting replies; a lying server's connection closed; reconnection.
 * Real redis-server where a server is needed, a scripted socket where the server must misbehave.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock } from '../../src/clock.js';
import { parseRedisUrl } from '../../src/store/redis-url.js';
import { RespClient, RespError, RespOfflineError, type RespClientOptions } from '../../src/store/resp-client.js';
import { until } from '../helpers/gateway.js';
import { freePort, RedisServer, redisSkipReason } from '../helpers/redis-server.js';

const skip = redisSkipReason();

function client(t: TestContext, url: string, over: Partial<RespClientOptions> = {}): RespClient & { errors: string[] } {
  const c = new RespClient({ url, connectTimeoutMs: 2000, reconnectDelay: () => 20, ...over });
  const errors: string[] = [];
  c.on('error', (err: Error) => errors.push(err.message));
  t.after(() => c.destroy());
  return Object.assign(c, { errors });
}

/** A server that answers the n-th command it receives with `replies[n]` (raw bytes), written in pieces of `chunk` bytes. */
async function scripted(t: TestContext, replies: (string | Buffer)[], chunk = Infinity): Promise<{ url: string; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((sock) => {
    sockets.push(sock);
    let n = 0;
    let buf = '';
    sock.on('data', async (d) => {
      buf += d.toString('latin1');
      // Count complete commands (arrays of bulk strings) received so far.
      for (;;) {
        const m = /^\*(\d+)\r\n/.exec(buf);
        if (!m) return;
        let pos = m[0].length;
        let ok = true;
        for (let i = 0; i < Number(m[1]); i++) {
          const h = /^\$(\d+)\r\n/.exec(buf.slice(pos));
          if (!h || buf.length < pos + h[0].length + Number(h[1]) + 2) {
            ok = false;
            break;
          }
          pos += h[0].length + Number(h[1]) + 2;
        }
        if (!ok) return;
        buf = buf.slice(pos);
        const reply = Buffer.from(replies[n++] ?? '');
        for (let i = 0; i < reply.length; i += chunk) {
          sock.write(reply.subarray(i, Math.min(reply.length, i + chunk)));
          if (chunk !== Infinity) await sleep(1);
        }
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { url: `redis://127.0.0.1:${(server.address() as { port: number }).port}`, sockets };
}

describe('RESP replies', () => {
  const REPLIES = ['+OK\r\n', ':-42\r\n', '$4\r\nhé!\r\n', '$-1\r\n', '*-1\r\n', '*3\r\n:1\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n-ERR inner\r\n', '-NOSCRIPT No matching script\r\n'];

  async function roundTrip(t: TestContext, chunk: number): Promise<void> {
    const { url } = await scripted(t, REPLIES, chunk);
    const c = client(t, url);
    await c.connect();
    // Pipelined: all seven sent before any reply; each promise gets its own reply, in order.
    const calls = REPLIES.map((_, i) => c.sendCommand(['ECHO', String(i)]));
    const settled = await Promise.allSettled(calls);
    const values = settled.map((s) => (s.status === 'fulfilled' ? s.value : s.reason));
    assert.equal(values[0], 'OK');
    assert.equal(values[1], -42);
    assert.equal(values[2], 'hé!');
    assert.equal(values[3], null);
    assert.equal(values[4], null);
    const arr = values[5] as unknown[];
    assert.equal(arr[0], 1);
    assert.deepEqual(arr[1], ['a', '']);
    assert.ok(arr[2] instanceof RespError && arr[2].message === 'ERR inner');
    assert.ok(values[6] instanceof RespError);
    assert.equal((values[6] as Error).message, 'NOSCRIPT No matching script');
    assert.equal(c.pendingCount, 0);
  }

  it('parses every reply type, pipelined, from one write', (t) => roundTrip(t, Infinity));
  it('parses the same replies delivered a byte at a time', (t) => roundTrip(t, 1));

  it('closes the connection on a reply nobody asked for, failing what was pending, and reports it', async (t) => {
    const { url, sockets } = await scripted(t, ['+OK\r\n']);
    const c = client(t, url, { reconnectDelay: () => 60_000 });
    await c.connect();
    assert.equal(await c.sendCommand(['PING']), 'OK');
    sockets[0]!.write('+UNASKED\r\n');
    await sleep(50);
    assert.equal(c.isReady, false);
    assert.ok(c.errors.some((e) => /protocol error \(a reply nobody asked for\)/.test(e)), c.errors.join('; '));
  });

  it('closes the connection on a reply larger than its bound, even one whose line never ends', async (t) => {
    const { url } = await scripted(t, ['+' + 'x'.repeat(3000)]);
    const c = client(t, url, { reconnectDelay: () => 60_000, maxReplyBytes: 1024 });
    await c.connect();
    await assert.rejects(c.sendCommand(['GET', 'k']), /closed before the reply/);
    assert.ok(c.errors.some((e) => /protocol error \(a reply over 1024 bytes\)/.test(e)), c.errors.join('; '));
  });

  it('is never ready when AUTH is refused, even if the SELECT after it succeeds in the same reply chunk', async (t) => {
    // Both replies in one write (the server answers AUTH with both and SELECT with nothing): one chunk.
    const { url } = await scripted(t, ['-WRONGPASS invalid username-password pair\r\n+OK\r\n', '']);
    const c = client(t, url.replace('redis://', 'redis://:pw@') + '/2', { reconnectDelay: () => 60_000 });
    let ready = false;
    c.on('ready', () => (ready = true));
    void c.connect();
    await sleep(100);
    assert.equal(ready, false);
    assert.equal(c.isReady, false);
    assert.ok(c.errors.some((e) => /AUTH failed: WRONGPASS/.test(e)), c.errors.join('; '));
  });

  for (const [what, bytes] of [
    ['an unknown reply type', '?what\r\n'],
    ['a malformed integer', ':12a\r\n'],
    ['a bulk string over 64 MiB', '$67108865\r\n'],
    ['a CR without LF', '+OK\rX\r\n'],
    ['a bulk string not ended by CR LF', '$2\r\nabXY'],
  ] as const) {
    it(`closes the connection on ${what} and fails the command`, async (t) => {
      const { url } = await scripted(t, [bytes]);
      const c = client(t, url, { reconnectDelay: () => 60_000 });
      await c.connect();
      await assert.rejects(c.sendCommand(['GET', 'k']), /closed before the reply/);
      assert.ok(c.errors.some((e) => /protocol error/.test(e)), c.errors.join('; '));
    });
  }
});

describe('RespClient reconnection', () => {
  it('waits the backoff its strategy gives before each attempt, on its clock (simulated time)', async (t) => {
    // A server that accepts and drops every connection before the client's AUTH is answered: each
    // attempt fails before the connection is ready (a connection that got ready would start the
    // backoff over).
    let attempts = 0;
    const server = createServer((socket) => {
      attempts++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const clock = new ManualClock(0);
    const delays: number[] = [];
    const c = client(t, `redis://:secret@127.0.0.1:${(server.address() as AddressInfo).port}`, {
      clock,
      reconnectDelay: (retries) => {
        delays.push(retries);
        return 1_000 * 2 ** retries;
      },
    });
    void c.connect().catch(() => {});
    // Each attempt: the server sees it, the client sees the close and schedules the next on the clock.
    for (const [n, wait] of [[1, 1_000], [2, 2_000], [3, 4_000]] as const) {
      await until(() => attempts === n && clock.nextTimerIn() === wait, 5_000, 5);
      clock.advance(wait - 1);
      await sleep(30); // real time passes: nothing happens until the clock says so
      assert.equal(attempts, n);
      clock.advance(1);
    }
    await until(() => attempts === 4, 5_000, 5);
    assert.deepEqual(delays.slice(0, 3), [0, 1, 2]);
    c.destroy();
    assert.equal(clock.nextTimerIn(), null, 'destroy() cancels the scheduled attempt');
  });
});

describe('RespClient against a real redis-server', { skip }, () => {
  it('sends commands and reads replies, EVAL and a missing EVALSHA included', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const c = client(t, server.url);
    await c.connect();
    assert.equal(await c.sendCommand(['SET', 'k', 'välue']), 'OK');
    assert.equal(await c.sendCommand(['GET', 'k']), 'välue');
    assert.equal(await c.sendCommand(['GET', 'missing']), null);
    assert.equal(await c.sendCommand(['HSET', 'h', 'a', '1', 'b', '2']), 2);
    assert.deepEqual(((await c.sendCommand(['HGETALL', 'h'])) as string[]).sort(), ['1', '2', 'a', 'b']);
    assert.deepEqual(await c.sendCommand(['EVAL', 'return {1, KEYS[1], ARGV[1]}', '1', 'key', 'arg']), [1, 'key', 'arg']);
    await assert.rejects(c.sendCommand(['EVALSHA', 'f'.repeat(40), '0']), (err: Error) => err instanceof RespError && err.message.startsWith('NOSCRIPT'));
    const many = await Promise.all(Array.from({ length: 2000 }, (_, i) => c.sendCommand(['INCR', 'n']).then((v) => [i, v] as const)));
    for (const [i, v] of many) assert.equal(v, i + 1); // replies in the order the commands were sent
  });

  it('authenticates and selects the database the URL names; a wrong password is reported, never ready', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const admin = client(t, server.url);
    await admin.connect();
    await admin.sendCommand(['ACL', 'SETUSER', 'gw', 'on', '>s3cret pass', '~*', '+@all']);
    const c = client(t, `redis://gw:${encodeURIComponent('s3cret pass')}@127.0.0.1:${server.port}/3`);
    await c.connect();
    assert.equal(await c.sendCommand(['ACL', 'WHOAMI']), 'gw');
    assert.match((await c.sendCommand(['CLIENT', 'INFO'])) as string, / db=3 /);

    const wrong = client(t, `redis://gw:nope@127.0.0.1:${server.port}`, { reconnectDelay: () => 60_000 });
    void wrong.connect();
    await sleep(200);
    assert.equal(wrong.isReady, false);
    assert.ok(wrong.errors.some((e) => /AUTH failed: WRONGPASS/.test(e)), wrong.errors.join('; '));
    assert.ok(!wrong.errors.some((e) => e.includes('nope')), 'the password must not appear in errors');
  });

  it('refuses commands while offline instead of queueing them, and bounds commands awaiting a reply', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const c = client(t, server.url, { queueMax: 3 });
    await assert.rejects(c.sendCommand(['PING']), RespOfflineError);
    await c.connect();
    server.pause();
    t.after(() => server.resume());
    const waiting = [c.sendCommand(['PING']), c.sendCommand(['PING']), c.sendCommand(['PING'])];
    await assert.rejects(c.sendCommand(['PING']), /3 commands already await a reply/);
    server.resume();
    assert.deepEqual(await Promise.all(waiting), ['PONG', 'PONG', 'PONG']);
  });

  it('reconnects after the server is killed and restarted, failing what was in flight', async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const c = client(t, server.url);
    let readies = 0;
    c.on('ready', () => readies++);
    await c.connect();
    server.pause();
    const inFlight = assert.rejects(c.sendCommand(['PING']), /closed before the reply/);
    await server.kill();
    await inFlight;
    assert.equal(c.isReady, false);
    assert.equal(c.isOpen, true);
    await server.restart();
    const deadline = Date.now() + 5000;
    while (!c.isReady && Date.now() < deadline) await sleep(20);
    assert.equal(await c.sendCommand(['PING']).catch((err: Error) => `${err.message} (errors: ${c.errors.join('; ')})`), 'PONG');
    assert.equal(readies, 2);
    assert.ok(c.errors.some((e) => /closed unexpectedly/.test(e)), c.errors.join('; '));
  });

  it('waits in connect() for a server that is not up yet, and connects once it is', async (t) => {
    const port = await freePort();
    const c = client(t, `redis://127.0.0.1:${port}`);
    let connected = false;
    void c.connect().then(() => (connected = true));
    await sleep(150);
    assert.equal(connected, false);
    assert.ok(c.errors.some((e) => /ECONNREFUSED/.test(e)), c.errors.join('; '));
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    t.after(() => child.kill('SIGKILL'));
    const deadline = Date.now() + 5000;
    while (!connected && Date.now() < deadline) await sleep(20);
    assert.equal(connected, true);
  });

  it('destroy() fails pending commands, rejects a waiting connect() and stops reconnecting', async (t) => {
    const port = await freePort();
    const c = client(t, `redis://127.0.0.1:${port}`);
    const waiting = c.connect();
    c.destroy();
    await assert.rejects(waiting, /destroyed/);
    assert.equal(c.isOpen, false);
    await assert.rejects(c.connect(), /destroyed/);
  });

  it('speaks TLS to a rediss:// server, checking its certificate', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'microgate-redis-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const ssl = (args: string[]) => assert.equal(spawnSync('openssl', args, { cwd: dir, stdio: 'ignore' }).status, 0, `openssl ${args.join(' ')}`);
    ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=microgate test CA']);
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1']);
    const port = await freePort();
    const child = spawn(
      'redis-server',
      ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', join(dir, 'server.crt'), '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', join(dir, 'ca.crt'), '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    t.after(() => child.kill('SIGKILL'));
    const ca = readFileSync(join(dir, 'ca.crt'));
    const c = client(t, `rediss://localhost:${port}`, { tls: { ca } });
    await Promise.race([c.connect(), sleep(5000).then(() => assert.fail(`no TLS connection: ${c.errors.join('; ')}`))]);
    assert.equal(await c.sendCommand(['PING']), 'PONG');

    // Without the CA the server's certificate is refused: never ready.
    const untrusted = client(t, `rediss://localhost:${port}`, { reconnectDelay: () => 60_000 });
    void untrusted.connect();
    await sleep(300);
    assert.equal(untrusted.isReady, false);
    assert.ok(untrusted.errors.some((e) => /self[- ]signed|unable to (get|verify)/i.test(e)), untrusted.errors.join('; '));
  });
});

describe('redis URLs', () => {
  it('reads host, port, TLS, user, password and database, and refuses what it cannot use', () => {
    assert.deepEqual(parseRedisUrl('redis://127.0.0.1'), { host: '127.0.0.1', port: 6379, tls: false, username: '', password: '', db: 0 });
    assert.deepEqual(parseRedisUrl('rediss://u:p%40ss@cache.internal:6380/2'), { host: 'cache.internal', port: 6380, tls: true, username: 'u', password: 'p@ss', db: 2 });
    assert.deepEqual(parseRedisUrl('redis://:only-pass@[::1]:7000'), { host: '::1', port: 7000, tls: false, username: '', password: 'only-pass', db: 0 });
    assert.throws(() => parseRedisUrl('http://x'), /unsupported scheme/);
    assert.throws(() => parseRedisUrl('redis://x/notadb'), /database number/);
    assert.throws(() => parseRedisUrl('not a url'), /not a URL/);
  });
});
