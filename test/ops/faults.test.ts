/**
 * Faults survived, measured, through real gateways: a backend killed mid-response aborts the
 * client's response (never a clean end); a crash-looping managed process backs off exponentially
 * (simulated time), shows `crashed` with its restart count and logs each crash with its exit code
 * and the next backoff; 100 start/stop cycles leave no process and no file descriptor behind.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { request } from 'undici';
import { ManualClock } from '../../src/clock.js';
import type { ProcessConfig } from '../../src/config/index.js';
import { ProcessManager, type ProcessInfo } from '../../src/procman/index.js';
import { deadPort, send, startGateway, until } from '../helpers/gateway.js';
import { captureLogger, childPids, openFds, TESTBACKEND } from './helpers.js';

describe('a backend that dies mid-response', () => {
  test('killed with SIGKILL while streaming: the client sees an aborted body, never a clean end', { timeout: 30_000 }, async (t) => {
    const port = await deadPort();
    const gw = await startGateway(
      t,
      `routes:\n  - path: /\n    backend: http://127.0.0.1:${port}\nprocesses:\n  - id: be\n    command: ${TESTBACKEND}\n    args: ["--port", "${port}", "--quiet"]\n    port: ${port}\n    auto_start: true\n`,
    );
    const pid = gw.processes.get('be')!.pid!;
    const res = await request(`${gw.url}/__stream?chunks=1000&interval_ms=20`);
    assert.equal(res.statusCode, 200);
    let received = '';
    const outcome = await new Promise<string>((resolve) => {
      res.body.on('data', (c: Buffer) => {
        received += c.toString();
        if (received.includes('chunk 2\n')) process.kill(pid, 'SIGKILL');
      });
      res.body.on('end', () => resolve('clean end'));
      res.body.on('error', (err) => resolve(`aborted: ${(err as Error).message}`));
    });
    assert.match(outcome, /^aborted/, `the client got "${outcome}" after ${JSON.stringify(received.slice(-20))}`);
    assert.ok(!received.includes('chunk 999'));
  });

  test('a close-delimited or sized body cut by the backend is aborted for the client too', { timeout: 30_000 }, async (t) => {
    const port = await deadPort();
    const gw = await startGateway(
      t,
      `routes:\n  - path: /\n    backend: http://127.0.0.1:${port}\nprocesses:\n  - id: be\n    command: ${TESTBACKEND}\n    args: ["--port", "${port}", "--quiet"]\n    port: ${port}\n    auto_start: true\n`,
    );
    // /__crash promises 1000 bytes, sends 7 and drops the connection.
    const res = await request(`${gw.url}/__crash`);
    await assert.rejects(res.body.text(), 'the truncated body must not end cleanly');
  });
});

describe('a crash-looping managed process', () => {
  test('backs off 1 s, 2 s, 4 s (simulated), shows crashed with its restart count, and logs each crash with exit code and backoff', { timeout: 60_000 }, async (t) => {
    const clock = new ManualClock();
    const { logger, lines } = captureLogger('warn');
    const gw = await startGateway(
      t,
      `processes:\n  - id: loop\n    command: ${process.execPath}\n    args: ["-e", "process.exit(5)"]\n    auto_start: true\n    restart: on-failure\n`,
      { clock, logger },
    );
    const events: ProcessInfo[] = [];
    gw.processes.on('process', (e) => events.push(e));
    const waitFor = (pred: (e: ProcessInfo) => boolean) => until(() => events.find(pred) ?? (pred(gw.processes.get('loop')!) ? gw.processes.get('loop') : null), 10_000);
    for (const [i, backoff] of [
      [0, 1_000],
      [1, 2_000],
      [2, 4_000],
    ] as const) {
      await waitFor((e) => e.status === 'crashed' && e.restarts === i);
      const api = (await send(`${gw.url}/dashboard/api/processes`)).json().processes.find((p: ProcessInfo) => p.id === 'loop');
      assert.equal(api.status, 'crashed');
      assert.equal(api.restarts, i);
      assert.equal(api.exit_code, 5);
      assert.equal(api.restart_in_ms, backoff);
      const crashes = lines.filter((l) => l.msg.startsWith('managed process crashed'));
      assert.equal(crashes.length, i + 1, 'one log line per crash');
      assert.equal(crashes[i]!.exit_code, 5);
      assert.equal(crashes[i]!.backoff_ms, backoff);
      assert.equal(crashes[i]!.process, 'loop');
      clock.advance(backoff);
      // (restarts counts up when the restart begins; the status turns running once it spawned)
      await waitFor((e) => e.status === 'running' && e.restarts === i + 1);
    }
  });
});

describe('start/stop cycles', () => {
  test('100 start/stop cycles leave no child process and no file descriptor behind', { timeout: 120_000 }, async (t) => {
    const pm = new ProcessManager();
    t.after(() => pm.stopAll());
    const cfg = { id: 'cycle', command: '/bin/sleep', args: ['1000'], auto_start: false, env: {}, restart: 'never', stop_timeout: 3_000 } as ProcessConfig;
    pm.add(cfg);
    // One warm-up cycle: the first spawn opens descriptors Node keeps for good (signal pipe, etc.).
    await pm.start('cycle');
    await pm.stop('cycle');
    const fdsBefore = openFds();
    const childrenBefore = childPids();
    const pids = new Set<number>();
    const started = performance.now();
    for (let i = 0; i < 100; i++) {
      const { pid } = await pm.start('cycle');
      pids.add(pid!);
      const info = await pm.stop('cycle');
      assert.equal(info.status, 'stopped');
    }
    t.diagnostic(`100 cycles in ${Math.round(performance.now() - started)} ms; fds ${fdsBefore} → ${openFds()}; children ${childrenBefore.length} → ${childPids().length}`);
    assert.equal(pids.size, 100);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} survived`);
    assert.deepEqual(childPids(), childrenBefore, 'no child process left');
    assert.equal(openFds(), fdsBefore, 'no file descriptor left');
  });
});
