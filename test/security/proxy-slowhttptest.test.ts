/**
 * Hole 7 with the attacker's own tool: `slowhttptest -B` (Debian package `slowhttptest`) holds
 * hundreds of connections trickling POST bodies while a normal client must still be served. CI
 * installs the tool, so there a missing binary is a failure; elsewhere the test skips and says why.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { send, startBackend, startGateway, until, wait } from '../helpers/gateway.js';

const inCI = Boolean(process.env.CI) && process.env.CI !== 'false' && process.env.CI !== '0';

function findTool(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, 'slowhttptest'), constants.X_OK);
      return join(dir, 'slowhttptest');
    } catch {
      // not here
    }
  }
  return null;
}

test('slowhttptest -B with 300 slow-body connections leaves normal clients served and the backend untouched', async (t) => {
  const tool = findTool();
  if (tool === null) {
    assert.ok(!inCI, 'slowhttptest is not installed (apt-get install slowhttptest)');
    t.skip('slowhttptest not found (apt-get install slowhttptest); this is a failure when CI is set');
    return;
  }
  const be = await startBackend(t, (req, res) => {
    // Reads the whole body before answering, like most application servers.
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const gw = await startGateway(t, `server:\n  upstream_connections: 4\n  upstream_queue_limit: 4\nroutes:\n  - path: /\n    backend: ${be.url}\n`);
  const out = mkdtempSync(join(tmpdir(), 'mg-slowhttptest-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  // 300 connections, 8 KiB declared bodies, a few bytes every 2 s, for 8 s.
  const attack = spawn(tool, ['-B', '-c', '300', '-r', '300', '-i', '2', '-s', '8192', '-x', '10', '-p', '3', '-l', '8', '-t', 'POST', '-u', `${gw.url}/slow`, '-g', '-o', join(out, 'run')], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => attack.once('exit', () => resolve()));
  t.after(() => {
    attack.kill('SIGKILL');
    return exited;
  });
  // Wait until the attack is under way: its connections held at the gateway, or the backend's pool full.
  const backend = gw.backends.get(be.url)!;
  const held = () => (gw.server as unknown as { _connections: number })._connections;
  await until(() => held() >= 250 || backend.inFlight >= 8, 6000, 50);
  for (let i = 0; i < 10; i++) {
    const started = Date.now();
    const r = await send(`${gw.url}/normal/${i}`, { method: 'POST', body: 'hello' });
    assert.equal(r.status, 200, `normal request ${i}: ${r.text}`);
    assert.ok(Date.now() - started < 1000, 'served promptly');
    await wait(100);
  }
  // (slowhttptest's own first probe is a plain GET, which is served.)
  assert.ok(!be.requests.some((r) => r.url === '/slow' && r.method === 'POST'), 'a slow body reached the backend before it was complete');
});
