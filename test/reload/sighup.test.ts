/**
 * SIGHUP through bin/microgate re-reads the config file (it used to kill the process), and
 * `--watch` reloads when the file changes. Needs `npx tsc -p tsconfig.build.json` first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { assertBuilt, cleanEnv, freePort, MICROGATE, ROOT, Running, startTestBackend, tempDir, waitUntil } from '../cli/helpers.js';

async function status(url: string): Promise<number> {
  const res = await request(url);
  await res.body.dump();
  return res.statusCode;
}

function configText(port: number, backend: string, prefix: string): string {
  return `server:\n  port: ${port}\n  host: 127.0.0.1\nroutes:\n  - path: ${prefix}\n    backend: ${backend}\ndashboard:\n  enabled: false\nanalytics:\n  enabled: false\nlogging:\n  level: info\n  access_log: false\n`;
}

interface Started {
  gw: Running;
  base: string;
  /** Rewrites the config file with the one route at `prefix`, plus `extra` YAML. */
  rewrite: (prefix: string, extra?: string) => Promise<void>;
}

/** bin/microgate on a free port with one route `/old` to a test backend, listening. */
async function startWithOldRoute(t: TestContext, args: string[] = []): Promise<Started> {
  assertBuilt();
  const backend = await startTestBackend(t);
  const { write } = await tempDir(t);
  const port = await freePort();
  const file = await write('gw.yml', configText(port, backend.url, '/old'));
  const gw = new Running(t, MICROGATE, ['--config', file, ...args]);
  await gw.waitForStdout(/MicroGate listening/, 15_000);
  const rewrite = (prefix: string, extra = '') => writeFile(file, configText(port, backend.url, prefix) + extra);
  return { gw, base: `http://127.0.0.1:${port}`, rewrite };
}

describe('reload from the command line', () => {
  it('SIGHUP re-reads the config file and keeps the process serving', async (t) => {
    const { gw, base, rewrite } = await startWithOldRoute(t);
    assert.equal(await status(`${base}/old/x`), 200);

    await rewrite('/new');
    gw.child.kill('SIGHUP');
    await waitUntil(async () => (await status(`${base}/new/x`)) === 200, 10_000, 'the new route serves after SIGHUP');
    assert.equal(await status(`${base}/old/x`), 404);
    assert.equal(gw.child.exitCode, null, 'still running');
    await waitUntil(() => /config reloaded/.test(gw.stdout + gw.stderr), 5_000, 'the reload is logged');

    gw.child.kill('SIGTERM');
    assert.equal((await gw.waitForExit()).code, 0);
  });

  it('SIGHUP with an invalid file changes nothing and logs each problem with file:line:col', async (t) => {
    const { gw, base, rewrite } = await startWithOldRoute(t);

    await rewrite('/new', 'ratelimit:\n  max_tokens: 0\n  refill_rate: 1\n');
    gw.child.kill('SIGHUP');
    await waitUntil(() => /config reload failed/.test(gw.stdout + gw.stderr), 10_000, 'the failure is logged');
    assert.match(gw.stdout + gw.stderr, /gw\.yml:\d+:\d+ ratelimit\.max_tokens: /);
    assert.equal(await status(`${base}/old/x`), 200);
    assert.equal(await status(`${base}/new/x`), 404);
    assert.equal(gw.child.exitCode, null);
  });

  it('SIGHUP of a gateway started with `--config <(…)` fails at once and keeps every route (the pipe has nothing more to give)', async (t) => {
    assertBuilt();
    const backend = await startTestBackend(t);
    const { write } = await tempDir(t);
    const port = await freePort();
    const file = await write('gw.yml', configText(port, backend.url, '/old'));
    // bash hands the gateway the read end of a process substitution's pipe as /dev/fd/63.
    const child = spawn('bash', ['-c', 'exec "$0" "$1" --config <(cat "$2")', process.execPath, MICROGATE, file], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = once(child, 'exit');
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    });
    await waitUntil(() => /MicroGate listening/.test(out), 15_000, 'the gateway listens');
    const base = `http://127.0.0.1:${port}`;
    assert.equal(await status(`${base}/old/x`), 200);

    const sent = performance.now();
    child.kill('SIGHUP');
    await waitUntil(() => /config reload failed/.test(out), 10_000, 'the failure is logged');
    assert.ok(performance.now() - sent < 5_000, 'not held until the reader\'s time limit');
    assert.match(out, /the file has no settings/);
    assert.equal(await status(`${base}/old/x`), 200, 'the route is still served');
    child.kill('SIGTERM');
    assert.equal((await exited)[0], 0);
  });

  it('--watch reloads when the file changes', async (t) => {
    const { base, rewrite } = await startWithOldRoute(t, ['--watch']);
    await rewrite('/new');
    await waitUntil(async () => (await status(`${base}/new/x`)) === 200, 10_000, 'the new route serves after the file changed');
    assert.equal(await status(`${base}/old/x`), 404);
  });
});
