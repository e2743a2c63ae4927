/**
 * ProcessManager with real child processes (`node -e <script>`): start, stop with SIGTERM then
 * SIGKILL, crash reporting, output capture, the on-failure restart policy and stopAll.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import type { ProcessConfig } from '../../src/config/index.js';
import { BACKOFF_MAX_MS, ProcessError, ProcessManager, type OutputLine, type ProcessInfo, type ProcessManagerOptions } from '../../src/procman/index.js';
import { childPids, descendantPids, stateOf } from '../ops/helpers.js';
import { until } from '../helpers/gateway.js';

/** A process config running `node -e script`. */
function nodeProc(id: string, script: string, over: Partial<ProcessConfig> = {}): ProcessConfig {
  return {
    id,
    command: process.execPath,
    args: ['-e', script],
    auto_start: false,
    env: {},
    restart: 'never',
    stop_timeout: 3_000,
    ...over,
  } as ProcessConfig;
}

/** Runs forever, prints "ready" once it can take signals. */
const IDLE = `setInterval(() => {}, 1000); console.log('ready');`;
/** Traps SIGTERM, says so, and exits 0 a little later. */
const TRAPS_TERM = `process.on('SIGTERM', () => { console.log('got SIGTERM'); setTimeout(() => process.exit(0), 100); }); setInterval(() => {}, 1000); console.log('ready');`;
/** Ignores SIGTERM entirely. */
const IGNORES_TERM = `process.on('SIGTERM', () => { console.log('ignoring SIGTERM'); }); setInterval(() => {}, 1000); console.log('ready');`;

interface Harness {
  pm: ProcessManager;
  /** Registers a process; waitFor then ignores the events from before (such as the "added" one). */
  add(config: ProcessConfig): ProcessInfo;
  events: ProcessInfo[];
  output: OutputLine[];
  /** Resolves with the first process event since the last add() (past or future) matching the predicate. */
  waitFor(pred: (e: ProcessInfo) => boolean, timeoutMs?: number): Promise<ProcessInfo>;
  /** Resolves when the process printed a line equal to `line`. */
  waitForLine(id: string, line: string, timeoutMs?: number): Promise<void>;
}

function harness(t: TestContext, opts: ProcessManagerOptions = {}): Harness {
  const pm = new ProcessManager(opts);
  const events: ProcessInfo[] = [];
  const output: OutputLine[] = [];
  pm.on('process', (e) => events.push(e));
  pm.on('output', (o) => output.push(o));
  t.after(() => pm.stopAll());
  let baseline = 0;
  const add = (config: ProcessConfig) => {
    const info = pm.add(config);
    baseline = events.length;
    return info;
  };
  const waitFor = (pred: (e: ProcessInfo) => boolean, timeoutMs = 5_000) =>
    new Promise<ProcessInfo>((resolve, reject) => {
      const found = events.slice(baseline).find(pred);
      if (found) return resolve(found);
      const timer = setTimeout(() => {
        pm.off('process', on);
        reject(new Error(`no matching process event within ${timeoutMs}ms; events: ${JSON.stringify(events.map((e) => [e.id, e.status]))}`));
      }, timeoutMs);
      const on = (e: ProcessInfo) => {
        if (!pred(e)) return;
        clearTimeout(timer);
        pm.off('process', on);
        resolve(e);
      };
      pm.on('process', on);
    });
  const waitForLine = (id: string, line: string, timeoutMs = 5_000) =>
    new Promise<void>((resolve, reject) => {
      if (output.some((o) => o.id === id && o.line === line)) return resolve();
      const timer = setTimeout(() => {
        pm.off('output', on);
        reject(new Error(`${id} did not print ${JSON.stringify(line)} within ${timeoutMs}ms`));
      }, timeoutMs);
      const on = (o: OutputLine) => {
        if (o.id !== id || o.line !== line) return;
        clearTimeout(timer);
        pm.off('output', on);
        resolve();
      };
      pm.on('output', on);
    });
  return { pm, add, events, output, waitFor, waitForLine };
}

/** Is a process with this pid still there? (ESRCH means gone.) */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
}

function assertGone(pid: number): void {
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is still alive`);
}

/** Pids of the node processes below this test process whose command line holds `marker` (a shell whose -c text names it too is left out). */
function nodeServersWith(marker: string): number[] {
  return descendantPids().filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return argv.includes(marker) && argv.split('\0')[0] === process.execPath;
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Pids of this test process's children whose command line contains `marker` (read from /proc). */
function myChildrenWith(marker: string): number[] {
  return childPids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
    } catch {
      return false; // gone meanwhile
    }
  });
}

describe('starting', () => {
  test('start resolves with status running and a pid, and emits a running event with that pid', async (t) => {
    const h = harness(t);
    h.add(nodeProc('p1', IDLE, { port: 9123, route: '/api' }));
    const info = await h.pm.start('p1');
    assert.equal(info.status, 'running');
    assert.equal(typeof info.pid, 'number');
    assert.ok(alive(info.pid!));
    assert.match(info.started_at!, /^\d{4}-\d\d-\d\dT/);
    const ev = await h.waitFor((e) => e.status === 'running');
    assert.equal(ev.pid, info.pid);
    assert.equal(ev.id, 'p1');
    assert.equal(ev.port, 9123);
    assert.equal(ev.route, '/api');
  });

  test('add registers the process as stopped and emits an event for it', (t) => {
    const h = harness(t);
    const info = h.pm.add(nodeProc('p1', IDLE));
    assert.equal(info.status, 'stopped');
    assert.equal(info.pid, undefined);
    assert.equal(h.events.length, 1);
    assert.equal(h.events[0]!.status, 'stopped');
    assert.deepEqual(
      h.pm.list().map((p) => p.id),
      ['p1'],
    );
    assert.equal(h.pm.has('p1'), true);
  });

  test('two concurrent starts spawn one child: the second is a conflict, and stopAll leaves no orphan', async (t) => {
    const h = harness(t);
    const marker = `marker-${process.pid}-${Date.now()}`;
    h.add(nodeProc('once', `${IDLE} // ${marker}`));
    t.after(() => {
      for (const pid of myChildrenWith(marker)) process.kill(pid, 'SIGKILL');
    });
    const results = await Promise.allSettled([h.pm.start('once'), h.pm.start('once')]);
    const spawned = myChildrenWith(marker);
    assert.equal(spawned.length, 1, `one start must not spawn ${spawned.length} children`);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected'],
    );
    assert.equal((results[1] as PromiseRejectedResult).reason.code, 'conflict');
    await h.pm.stopAll();
    assert.deepEqual(myChildrenWith(marker), [], 'a child outlived stopAll');
  });

  test('a duplicate id is a conflict', (t) => {
    const h = harness(t);
    h.add(nodeProc('p1', IDLE));
    assert.throws(() => h.add(nodeProc('p1', IDLE)), (err: unknown) => err instanceof ProcessError && err.code === 'conflict');
  });

  test('starting a running process is a conflict and stopping a stopped one too', async (t) => {
    const h = harness(t);
    h.add(nodeProc('p1', IDLE));
    await h.pm.start('p1');
    await assert.rejects(h.pm.start('p1'), { code: 'conflict' });
    await h.pm.stop('p1');
    await assert.rejects(h.pm.stop('p1'), { code: 'conflict' });
  });

  test('an unknown id is not_found for start, stop and restart', async (t) => {
    const h = harness(t);
    await assert.rejects(h.pm.start('nope'), { code: 'not_found' });
    await assert.rejects(h.pm.stop('nope'), { code: 'not_found' });
    await assert.rejects(h.pm.restart('nope'), { code: 'not_found' });
    assert.equal(h.pm.get('nope'), undefined);
    assert.equal(h.pm.logs('nope', 10), undefined);
  });

  test('a missing command: start rejects, the status is crashed and an event fires', async (t) => {
    const h = harness(t);
    h.add({ ...nodeProc('ghost', ''), command: 'microgate-no-such-command-xyz', args: [] });
    await assert.rejects(h.pm.start('ghost'), (err: unknown) => {
      assert.ok(err instanceof ProcessError);
      assert.equal(err.code, 'start_failed');
      assert.match(err.message, /ENOENT/);
      return true;
    });
    const info = h.pm.get('ghost')!;
    assert.equal(info.status, 'crashed');
    assert.match(info.last_error!, /ENOENT/);
    assert.equal(info.pid, undefined);
    const ev = await h.waitFor((e) => e.id === 'ghost' && e.status === 'crashed', 100);
    assert.match(ev.last_error!, /ENOENT/);
    assert.match(h.pm.logs('ghost', 10)!.join('\n'), /failed to start/);
  });

  test('a missing relative command is resolved against baseDir and fails to start cleanly', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-procman-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const pm = new ProcessManager({ baseDir: dir });
    t.after(() => pm.stopAll());
    pm.add({ ...nodeProc('rel', ''), command: './bin/nothing-here', args: [] });
    await assert.rejects(pm.start('rel'), (err: unknown) => err instanceof ProcessError && err.message.includes(join(dir, 'bin/nothing-here')));
    assert.equal(pm.get('rel')!.status, 'crashed');
  });

  test('passes PORT from the config, the configured env and the cwd to the child', async (t) => {
    const dir = await realpath(await mkdtemp(join(tmpdir(), 'mg-procman-')));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const h = harness(t);
    h.add(
      nodeProc('env', `console.log(JSON.stringify({ port: process.env.PORT, greeting: process.env.GREETING, cwd: process.cwd() }))`, {
        port: 9456,
        env: { GREETING: 'hello' },
        cwd: dir,
      }),
    );
    await h.pm.start('env');
    await h.waitFor((e) => e.id === 'env' && e.status === 'stopped' && e.exit_code === 0);
    const line = h.pm.logs('env', 10)!.find((l) => l.startsWith('{'))!;
    assert.deepEqual(JSON.parse(line), { port: '9456', greeting: 'hello', cwd: dir });
  });

  test('never runs a shell: shell metacharacters in args reach the child literally', async (t) => {
    const h = harness(t);
    const evil = '$(echo pwned); echo also-pwned | cat > /dev/null && `id`';
    h.add({ ...nodeProc('lit', ''), args: ['-e', 'console.log(process.argv[1])', evil] });
    await h.pm.start('lit');
    await h.waitFor((e) => e.id === 'lit' && e.status === 'stopped');
    assert.equal(h.pm.logs('lit', 10)![0], evil);
  });
});

describe('stopping', () => {
  test('stop sends SIGTERM and waits for the child to exit; a child that traps it and exits is stopped', async (t) => {
    const h = harness(t);
    h.add(nodeProc('trap', TRAPS_TERM));
    const { pid } = await h.pm.start('trap');
    await h.waitForLine('trap', 'ready');
    const info = await h.pm.stop('trap');
    // Resolved only after the exit: the handler's output is already captured and the pid is gone.
    assert.equal(info.status, 'stopped');
    assert.equal(info.exit_code, 0);
    assert.equal(info.exit_signal, null);
    assert.equal(info.pid, undefined);
    assert.ok(h.pm.logs('trap', 10)!.includes('got SIGTERM'));
    assertGone(pid!);
    const last = h.events.at(-1)!;
    assert.equal(last.status, 'stopped');
  });

  test('a child ignoring SIGTERM is SIGKILLed after stop_timeout and still reported stopped', async (t) => {
    const h = harness(t);
    h.add(nodeProc('stubborn', IGNORES_TERM, { stop_timeout: 400 }));
    const { pid } = await h.pm.start('stubborn');
    await h.waitForLine('stubborn', 'ready');
    const started = performance.now();
    const info = await h.pm.stop('stubborn');
    const took = performance.now() - started;
    assert.ok(took >= 380, `SIGKILL came too early (${took}ms)`);
    assert.ok(took < 3_000, `stop took ${took}ms`);
    assert.equal(info.status, 'stopped');
    assert.equal(info.exit_signal, 'SIGKILL');
    assert.equal(info.last_error, undefined);
    const logs = h.pm.logs('stubborn', 10)!;
    assert.ok(logs.includes('ignoring SIGTERM'), 'SIGTERM was sent first');
    assert.ok(logs.some((l) => /did not exit within 400ms of SIGTERM: SIGKILL/.test(l)));
    assertGone(pid!);
  });

  test('a child that exits non-zero because it was asked to stop is stopped, not crashed', async (t) => {
    const h = harness(t);
    h.add(nodeProc('grumpy', `process.on('SIGTERM', () => process.exit(143)); setInterval(() => {}, 1000); console.log('ready');`));
    await h.pm.start('grumpy');
    await h.waitForLine('grumpy', 'ready');
    const info = await h.pm.stop('grumpy');
    assert.equal(info.status, 'stopped');
    assert.equal(info.exit_code, 143);
    assert.equal(h.events.filter((e) => e.status === 'crashed').length, 0);
  });

  test('restart stops the running child and starts a new one', async (t) => {
    const h = harness(t);
    h.add(nodeProc('r', IDLE));
    const first = await h.pm.start('r');
    const second = await h.pm.restart('r');
    assert.equal(second.status, 'running');
    assert.notEqual(second.pid, first.pid);
    assertGone(first.pid!);
    assert.ok(alive(second.pid!));
  });

  test('stopAll stops every child and waits for all of them: no orphans', async (t) => {
    const h = harness(t);
    h.add(nodeProc('a', IDLE));
    h.add(nodeProc('b', TRAPS_TERM));
    h.add(nodeProc('c', IGNORES_TERM, { stop_timeout: 300 }));
    h.add(nodeProc('never-started', IDLE));
    const pids: number[] = [];
    for (const id of ['a', 'b', 'c']) {
      pids.push((await h.pm.start(id)).pid!);
      await h.waitForLine(id, 'ready');
    }
    await h.pm.stopAll();
    for (const pid of pids) assertGone(pid);
    assert.deepEqual(
      h.pm.list().map((p) => [p.id, p.status]),
      [
        ['a', 'stopped'],
        ['b', 'stopped'],
        ['c', 'stopped'],
        ['never-started', 'stopped'],
      ],
    );
  });

  test('after stopAll nothing can be started', async (t) => {
    const h = harness(t);
    h.add(nodeProc('a', IDLE));
    await h.pm.stopAll();
    await assert.rejects(h.pm.start('a'), { code: 'unavailable' });
  });

  test('stop reaches what the process started: a wrapper shell\'s server child is stopped too, and one that ignores SIGTERM is SIGKILLed', async (t) => {
    const h = harness(t);
    const marker = `mg-grandchild-${process.pid}-${Date.now()}`;
    // A shell that starts two servers without exec and waits: the one that traps SIGTERM exits,
    // the one that ignores it would hold its port for ever.
    const server = (script: string) => `${JSON.stringify(process.execPath)} -e ${JSON.stringify(script)} ${marker} &`;
    h.add({ ...nodeProc('wrapped', IDLE), command: '/bin/sh', args: ['-c', `${server(TRAPS_TERM)} ${server(IGNORES_TERM)} wait`], stop_timeout: 1_000 });
    await h.pm.start('wrapped');
    const pids = (await until(() => {
      const found = nodeServersWith(marker);
      return found.length === 2 ? found : null;
    }))!;
    t.after(() => {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    });
    const started = performance.now();
    await h.pm.stop('wrapped');
    // Gone, or exited and waiting for init to reap it (the shell that was its parent is gone).
    for (const pid of pids) assert.ok(stateOf(pid) === null || stateOf(pid) === 'Z', `process ${pid} is still running (${stateOf(pid)})`);
    assert.ok(performance.now() - started < 4_000, `stop took ${performance.now() - started} ms`);
  });

  test('killAllNow SIGKILLs every running child at once', async (t) => {
    const h = harness(t);
    h.add(nodeProc('a', IGNORES_TERM));
    const { pid } = await h.pm.start('a');
    h.pm.killAllNow();
    const ev = await h.waitFor((e) => e.id === 'a' && e.status !== 'running' && e.exit_signal === 'SIGKILL');
    assert.equal(ev.status, 'crashed');
    assertGone(pid!);
  });
});

describe('exits nobody asked for', () => {
  test('an unrequested kill -9 is crashed with exit_signal SIGKILL', async (t) => {
    const h = harness(t);
    h.add(nodeProc('victim', IDLE));
    const { pid } = await h.pm.start('victim');
    process.kill(pid!, 'SIGKILL');
    const ev = await h.waitFor((e) => e.id === 'victim' && e.status === 'crashed');
    assert.equal(ev.exit_signal, 'SIGKILL');
    assert.equal(ev.exit_code, null);
    assert.equal(ev.last_error, 'killed by SIGKILL');
    assert.equal(ev.pid, undefined);
    assert.equal(h.pm.get('victim')!.status, 'crashed');
    assert.match(h.pm.logs('victim', 5)!.join('\n'), /crashed: killed by SIGKILL/);
  });

  test('a process that ends on its own takes what it started with it (no orphaned server to hold its port)', async (t) => {
    const h = harness(t);
    const marker = `mg-orphan-${process.pid}-${Date.now()}`;
    const server = `${JSON.stringify(process.execPath)} -e ${JSON.stringify(IDLE)} ${marker} &`;
    h.add({ ...nodeProc('wrapper', IDLE), command: '/bin/sh', args: ['-c', `${server} sleep 0.3; exit 3`] });
    await h.pm.start('wrapper');
    const [pid] = (await until(() => {
      const found = nodeServersWith(marker);
      return found.length === 1 ? found : null;
    }))!;
    t.after(() => {
      try {
        process.kill(pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
    const ev = await h.waitFor((e) => e.id === 'wrapper' && e.status !== 'running');
    assert.equal(ev.status, 'crashed');
    await until(() => (stateOf(pid!) === null || stateOf(pid!) === 'Z' ? true : null));
  });

  test('an unrequested SIGTERM (from outside the manager) is a crash too', async (t) => {
    const h = harness(t);
    h.add(nodeProc('victim', IDLE));
    const { pid } = await h.pm.start('victim');
    process.kill(pid!, 'SIGTERM');
    const ev = await h.waitFor((e) => e.id === 'victim' && e.status === 'crashed');
    assert.equal(ev.exit_signal, 'SIGTERM');
  });

  test('exit code 3 is crashed with exit_code 3', async (t) => {
    const h = harness(t);
    h.add(nodeProc('three', `process.exit(3)`));
    await h.pm.start('three');
    const ev = await h.waitFor((e) => e.id === 'three' && e.status === 'crashed');
    assert.equal(ev.exit_code, 3);
    assert.equal(ev.exit_signal, null);
    assert.equal(ev.last_error, 'exit status 3');
  });

  test('exit 0 on its own is stopped, with no error', async (t) => {
    const h = harness(t);
    h.add(nodeProc('done', `console.log('bye')`));
    await h.pm.start('done');
    const ev = await h.waitFor((e) => e.id === 'done' && e.status !== 'running');
    assert.equal(ev.status, 'stopped');
    assert.equal(ev.exit_code, 0);
    assert.equal(ev.last_error, undefined);
    assert.equal(h.events.filter((e) => e.status === 'crashed').length, 0);
  });

  test('a grandchild holding the pipes open does not hold up the exit status for long', { timeout: 15_000 }, async (t) => {
    const h = harness(t);
    // The child starts a detached grandchild that inherits stdout/stderr and sleeps, then exits.
    const script = `const { spawn } = require('node:child_process');
      const g = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
      console.log('grandchild ' + g.pid); g.unref(); process.exit(0);`;
    h.add(nodeProc('parent', script));
    const started = performance.now();
    await h.pm.start('parent');
    const ev = await h.waitFor((e) => e.id === 'parent' && e.status !== 'running', 6_000);
    const grand = Number(/grandchild (\d+)/.exec(h.pm.logs('parent', 10)!.join('\n'))?.[1]);
    t.after(() => {
      try {
        process.kill(grand, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
    assert.equal(ev.status, 'stopped');
    assert.ok(performance.now() - started < 5_000);
  });
});

describe('output', () => {
  // The children below let Node flush stdout before they exit (a natural exit, or process.exit in
  // the write callback): a Node child that calls process.exit() right after many writes to a
  // pipe drops its own queued writes before they reach the pipe, which no parent can recover.
  for (const [how, ending] of [
    ['exiting on its own', ''],
    ['calling process.exit once the write is flushed', ', () => process.exit(0)'],
  ] as const) {
    test(`captures stdout lines in order, including a last line without a newline printed right before exit (${how})`, async (t) => {
      const h = harness(t);
      const script = `for (let i = 0; i < 400; i++) process.stdout.write('line ' + i + '\\n'); process.stdout.write('tail without newline'${ending});`;
      h.add(nodeProc('talky', script));
      await h.pm.start('talky');
      await h.waitFor((e) => e.id === 'talky' && e.status === 'stopped');
      const logs = h.pm.logs('talky', 1_000)!;
      const expected = [...Array.from({ length: 400 }, (_, i) => `line ${i}`), 'tail without newline'];
      assert.deepEqual(logs.slice(0, 401), expected);
      assert.match(logs[401]!, /\[microgate\] process talky stopped/);
      // Emitted as output events too, in the same order.
      assert.deepEqual(
        h.output.filter((o) => o.id === 'talky' && o.stream === 'stdout').map((o) => o.line),
        expected,
      );
    });
  }

  test('captures stderr lines and a trailing stderr fragment, marking the stream', async (t) => {
    const h = harness(t);
    h.add(nodeProc('err', `console.error('oops 1'); process.stderr.write('oops 2 no newline', () => process.exit(5))`));
    await h.pm.start('err');
    await h.waitFor((e) => e.id === 'err' && e.status === 'crashed');
    const errLines = h.output.filter((o) => o.id === 'err' && o.stream === 'stderr').map((o) => o.line);
    assert.deepEqual(errLines.slice(0, 2), ['oops 1', 'oops 2 no newline']);
  });

  test('strips a CR before LF', async (t) => {
    const h = harness(t);
    h.add(nodeProc('crlf', `process.stdout.write('windows\\r\\nline two\\r\\n')`));
    await h.pm.start('crlf');
    await h.waitFor((e) => e.id === 'crlf' && e.status === 'stopped');
    assert.deepEqual(h.pm.logs('crlf', 100)!.slice(0, 2), ['windows', 'line two']);
  });

  test('stores no line longer than 8 KiB, whether or not its newline came in the same chunk', async (t) => {
    const h = harness(t);
    // One 20000-char line written at once (newline in the same chunk), then one without a newline yet.
    const script = `process.stdout.write('a'.repeat(20000) + '\\nafter\\n'); process.stdout.write('b'.repeat(20000));`;
    h.add(nodeProc('long', script));
    await h.pm.start('long');
    await h.waitFor((e) => e.id === 'long' && e.status === 'stopped');
    const logs = h.pm.logs('long', 100)!;
    const tooLong = logs.filter((l) => l.length > 8 * 1024).map((l) => `${l[0]}×${l.length}`);
    assert.deepEqual(tooLong, [], 'every stored line is at most 8 KiB');
    assert.ok(logs.includes('after'), 'the line after a long one is intact');
  });

  test('keeps only the last 500 lines', async (t) => {
    const h = harness(t);
    h.add(nodeProc('flood', `for (let i = 0; i < 800; i++) console.log('n' + i)`));
    await h.pm.start('flood');
    await h.waitFor((e) => e.id === 'flood' && e.status === 'stopped');
    const logs = h.pm.logs('flood', 10_000)!;
    assert.equal(logs.length, 500);
    assert.equal(logs.at(-2), 'n799');
    assert.equal(logs[0], 'n301');
    assert.deepEqual(h.pm.logs('flood', 3), ['n798', 'n799', logs.at(-1)]);
  });
});

describe('restart policy on-failure (simulated time: the backoff runs on a ManualClock)', () => {
  /** A harness whose restart timers only fire when the test advances the clock, plus the crash log. */
  function simulated(t: TestContext) {
    const clock = new ManualClock();
    const logs: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const logger = {
      info: (obj: object, msg: string) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      warn: (obj: object, msg: string) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
      error: (obj: object, msg: string) => logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
    };
    return { ...harness(t, { clock, logger }), clock, logs };
  }

  test('restarts after each crash with a doubling backoff capped at 30 s, counting restarts and logging every crash', { timeout: 60_000 }, async (t) => {
    const h = simulated(t);
    h.add(nodeProc('flaky', `process.exit(7)`, { restart: 'on-failure' }));
    await h.pm.start('flaky');
    const expected = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000];
    for (let i = 0; i < expected.length; i++) {
      const crash = await h.waitFor((e) => e.status === 'crashed' && e.restarts === i, 10_000);
      assert.equal(crash.exit_code, 7);
      assert.equal(crash.restart_in_ms, expected[i], `backoff after crash ${i + 1}`);
      assert.deepEqual(h.clock.pendingTimers(), [h.clock.now() + expected[i]!], 'exactly one restart is scheduled, at the backoff');
      const log = h.logs.filter((l) => l.msg.startsWith('managed process crashed'))[i]!;
      assert.equal(log.level, 'warn');
      assert.deepEqual(log.obj, { process: 'flaky', exit_code: 7, exit_signal: null, restarts: i, backoff_ms: expected[i] });
      assert.match(log.msg, new RegExp(`restarting in ${expected[i]! / 1000} s`));
      // One millisecond short of the backoff the restart is still due: the timer fires only at its time.
      h.clock.advance(expected[i]! - 1);
      assert.equal(h.pm.get('flaky')!.status, 'crashed');
      assert.equal(h.clock.nextTimerIn(), 1);
      h.clock.advance(1);
      await h.waitFor((e) => e.status === 'running' && e.restarts === i + 1, 10_000);
    }
    assert.ok(expected.at(-1) === BACKOFF_MAX_MS);
  });

  test('a process that ran for 10 s before crashing starts over at the first backoff', { timeout: 20_000 }, async (t) => {
    const h = simulated(t);
    h.add(nodeProc('svc', IDLE, { restart: 'on-failure' }));
    let { pid } = await h.pm.start('svc');
    for (const [i, backoff] of [
      [0, 1_000],
      [1, 2_000],
    ] as const) {
      process.kill(pid!, 'SIGKILL');
      const crash = await h.waitFor((e) => e.status === 'crashed' && e.restarts === i);
      assert.equal(crash.restart_in_ms, backoff);
      h.clock.advance(backoff);
      pid = (await h.waitFor((e) => e.status === 'running' && e.restarts === i + 1)).pid;
    }
    h.clock.advance(10_000); // it has now run "10 s"
    process.kill(pid!, 'SIGKILL');
    const crash = await h.waitFor((e) => e.status === 'crashed' && e.restarts === 2);
    assert.equal(crash.restart_in_ms, 1_000);
  });

  test('does not restart after a requested stop: no restart is scheduled', { timeout: 10_000 }, async (t) => {
    const h = simulated(t);
    h.add(nodeProc('svc', TRAPS_TERM, { restart: 'on-failure' }));
    await h.pm.start('svc');
    await h.waitForLine('svc', 'ready');
    const info = await h.pm.stop('svc');
    assert.equal(info.status, 'stopped');
    assert.equal(info.restart_in_ms, undefined);
    assert.deepEqual(h.clock.pendingTimers(), []);
    assert.equal(h.logs.length, 0, 'a requested stop is not logged as a crash');
  });

  test('does not restart a process that exited 0 on its own: no restart is scheduled', { timeout: 10_000 }, async (t) => {
    const h = simulated(t);
    h.add(nodeProc('oneshot', `process.exit(0)`, { restart: 'on-failure' }));
    await h.pm.start('oneshot');
    const ev = await h.waitFor((e) => e.id === 'oneshot' && e.status === 'stopped');
    assert.equal(ev.restart_in_ms, undefined);
    assert.deepEqual(h.clock.pendingTimers(), []);
  });

  test('stop cancels a pending restart of a crashed process', { timeout: 10_000 }, async (t) => {
    const h = simulated(t);
    h.add(nodeProc('flaky', `process.exit(1)`, { restart: 'on-failure' }));
    await h.pm.start('flaky');
    await h.waitFor((e) => e.status === 'crashed');
    assert.equal(h.clock.pendingTimers().length, 1);
    await assert.rejects(h.pm.stop('flaky'), { code: 'conflict' }); // not running, but the restart is cancelled
    assert.deepEqual(h.clock.pendingTimers(), []);
    assert.equal(h.pm.get('flaky')!.restart_in_ms, undefined);
    assert.equal(h.pm.get('flaky')!.status, 'crashed');
    assert.equal(h.pm.get('flaky')!.restarts, 0);
  });

  test('stopAll cancels pending restarts', { timeout: 10_000 }, async (t) => {
    const h = simulated(t);
    h.add(nodeProc('flaky', `process.exit(1)`, { restart: 'on-failure' }));
    await h.pm.start('flaky');
    await h.waitFor((e) => e.status === 'crashed');
    await h.pm.stopAll();
    assert.deepEqual(h.clock.pendingTimers(), []);
  });

  test('a process with restart: never stays crashed, and its crash is logged without a backoff', { timeout: 10_000 }, async (t) => {
    const h = simulated(t);
    h.add(nodeProc('fragile', `process.exit(2)`));
    await h.pm.start('fragile');
    const ev = await h.waitFor((e) => e.status === 'crashed');
    assert.equal(ev.restart_in_ms, undefined);
    assert.deepEqual(h.clock.pendingTimers(), []);
    assert.deepEqual(h.logs.map((l) => [l.msg, l.obj.exit_code, l.obj.backoff_ms]), [['managed process crashed', 2, null]]);
  });
});

describe('environment of a child', () => {
  const parentEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: '/home/gw',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    LC_TIME: 'en_GB.UTF-8',
    TZ: 'UTC',
    NODE_ENV: 'production',
    PORT: '1234',
    MICROGATE_ADMIN_TOKEN: 'admin-secret-must-not-leak',
    JWT_SECRET: 'jwt-secret-must-not-leak',
    AWS_SECRET_ACCESS_KEY: 'aws-must-not-leak',
  };

  /** The child's environment as the kernel has it: /proc/<pid>/environ. */
  function environOf(pid: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return out;
  }

  /** Starts `proc` under a manager given `parentEnv`; the child's environment. */
  async function startedEnv(t: TestContext, proc: ProcessConfig): Promise<Record<string, string>> {
    const h = harness(t, { env: parentEnv });
    h.add(proc);
    const { pid } = await h.pm.start(proc.id);
    return environOf(pid!);
  }

  test('gets only PATH, HOME, LANG, LC_*, TZ, NODE_ENV and PORT from the gateway, plus its own env; no secret', async (t) => {
    const env = await startedEnv(t, nodeProc('plain', IDLE, { env: { GREETING: 'hi' } }));
    assert.deepEqual(env, {
      PATH: parentEnv.PATH,
      HOME: '/home/gw',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      LC_TIME: 'en_GB.UTF-8',
      TZ: 'UTC',
      NODE_ENV: 'production',
      PORT: '1234',
      GREETING: 'hi',
    });
  });

  test('its port wins over the gateway PORT, and its own env over the passed variables', async (t) => {
    const env = await startedEnv(t, nodeProc('ported', IDLE, { port: 9555, env: { NODE_ENV: 'development' } }));
    assert.equal(env.PORT, '9555');
    assert.equal(env.NODE_ENV, 'development');
    assert.equal(env.JWT_SECRET, undefined);
  });

  test('inherit_env: true passes the whole environment', async (t) => {
    const env = await startedEnv(t, nodeProc('trusting', IDLE, { inherit_env: true }));
    assert.equal(env.JWT_SECRET, 'jwt-secret-must-not-leak');
    assert.equal(env.AWS_SECRET_ACCESS_KEY, 'aws-must-not-leak');
  });
});
