/**
 * SIGHUP through bin/microgate re-reads the config file (it used to kill the process), and
 * `--watch` reloads when the file changes. Needs `npx tsc -p tsconfig.build.json` first.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { describe, it, type TestContext } from 'node:test';
import { request } from 'undici';
import { assertBuilt, freePort, MICROGATE, Running, startTestBackend, tempDir, waitUntil } from '../cli/helpers.js';

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

  it('--watch reloads when the file changes', async (t) => {
    const { base, rewrite } = await startWithOldRoute(t, ['--watch']);
    await rewrite('/new');
    await waitUntil(async () => (await status(`${base}/new/x`)) === 200, 10_000, 'the new route serves after the file changed');
    assert.equal(await status(`${base}/old/x`), 404);
  });
});
