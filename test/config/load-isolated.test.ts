/**
 * loadConfig reads a file in a worker thread: the gateway's own heap never holds the YAML parser
 * or the validator (zod), yet it gets the same frozen snapshot and the same problems.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { constants, readdirSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { READER_LIMITS } from '../../src/config/load-isolated.js';
import { parseConfig } from '../../src/config/load.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function isDeepFrozen(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return true;
  return Object.isFrozen(value) && Object.values(value).every(isDeepFrozen);
}

describe('loadConfig reads the file in a worker thread', () => {
  for (const name of ['config.yml', 'config.example.yml', 'examples/adaptive.yml', 'examples/learning.yml']) {
    it(`gives the snapshot parseConfig gives for ${name}, deeply frozen`, async () => {
      const file = join(ROOT, name);
      const env = { MICROGATE_JWT_SECRET: 'from-the-environment-0123456789' };
      const viaWorker = await loadConfig(file, env);
      assert.deepEqual(viaWorker, parseConfig(await readFile(file, 'utf8'), file, env));
      assert.ok(isDeepFrozen(viaWorker), 'every object of the snapshot is frozen');
    });
  }

  it('reports every problem as a ConfigError naming the file, line and key', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-isolated-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'bad.yml');
    await writeFile(file, 'server:\n  port: "eighty"\nroutes:\n  - path: /a\n    backnd: http://127.0.0.1:1\n');
    await assert.rejects(loadConfig(file, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.problems.map((p) => [p.file, p.line, p.key]),
        [
          [file, 2, 'server.port'],
          [file, 4, 'routes[0].backends'],
          [file, 5, 'routes[0].backnd'],
        ],
      );
      return true;
    });
  });

  // A fresh Node process with a resolve hook registered in its main thread (not through --import,
  // which worker threads would run too): it prints "loaded:<name>" when its own thread imports
  // `zod` or `yaml`. The gateway reads its file, serves a request and reloads the file.
  function gatewayRun(readWith: 'loadConfig' | 'parseConfig'): Promise<string> {
    const script = `
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(
        "export async function resolve(s, c, next) { if (s === 'zod' || s === 'yaml') process.stderr.write('loaded:' + s + '\\\\n'); return next(s, c); }"));
      const { createServer, get } = await import('node:http');
      const { mkdtempSync, rmSync, writeFileSync, readFileSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      const backend = createServer((req, res) => res.end('ok')).listen(0, '127.0.0.1');
      await new Promise((r) => backend.once('listening', r));
      const file = join(mkdtempSync(join(tmpdir(), 'mg-isolated-run-')), 'gw.yml');
      writeFileSync(file, 'routes:\\n  - path: /\\n    backend: http://127.0.0.1:' + backend.address().port + '\\n');
      const config = ${JSON.stringify(readWith)} === 'loadConfig'
        ? await (await import('./src/config/index.ts')).loadConfig(file)
        : (await import('./src/config/load.ts')).parseConfig(readFileSync(file, 'utf8'), file);
      const { createGateway } = await import('./src/gateway.ts');
      const { createLogger } = await import('./src/logging/index.ts');
      const gw = createGateway(config, { defaultMetrics: false, logger: createLogger({ level: 'silent' }), configFile: file });
      await gw.start({ port: 0, host: '127.0.0.1' });
      const status = await new Promise((resolve, reject) => {
        get({ host: '127.0.0.1', port: gw.port, path: '/x' }, (r) => { r.resume(); r.on('end', () => resolve(r.statusCode)); }).on('error', reject);
      });
      const reload = await gw.reloadFromFile();
      process.stderr.write('status:' + status + ' reload:' + reload.result + '\\n');
      await gw.close();
      backend.close();
      rmSync(join(file, '..'), { recursive: true, force: true });
      process.stderr.write('done\\n');
    `;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('exit', () => resolve(err));
    });
  }

  it('the gateway thread never imports the YAML parser or the validator, through start-up, a request and a reload', async () => {
    const out = await gatewayRun('loadConfig');
    assert.match(out, /status:200 reload:\w+\ndone/, out);
    assert.doesNotMatch(out, /loaded:/, out);
  });

  it('the hook sees them when the config is parsed in the gateway thread (the check above can fail)', async () => {
    const out = await gatewayRun('parseConfig');
    assert.match(out, /done/, out);
    assert.match(out, /loaded:yaml/, out);
    assert.match(out, /loaded:zod/, out);
  });
});

describe('the config reader is bounded in memory', () => {
  it('reads the largest file it accepts, ~1 MiB of routes, within its default memory and time', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-isolated-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'many-routes.yml');
    const { text, routes } = manyRoutes();
    await writeFile(file, text);
    assert.equal((await loadConfig(file, {}, { limits: READER_LIMITS })).routes.length, routes);
  });

  it('fails the read with a problem of the file, not the process, when the reader runs out of memory', async () => {
    const file = join(ROOT, 'config.yml');
    await assert.rejects(loadConfig(file, {}, { limits: { maxOldGenerationSizeMb: 2, maxYoungGenerationSizeMb: 1 } }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 1);
      assert.deepEqual([err.problems[0]!.file, err.problems[0]!.line], [file, 0]);
      assert.match(err.problems[0]!.message, /^cannot read config: reading it took more than the reader's 2 MB of memory/);
      return true;
    });
    // The process and the next read are unaffected.
    assert.ok((await loadConfig(file, {})).routes.length > 0);
  });
});

describe('the config reader is bounded in time', () => {
  it('fails a read that outlasts its time limit with a problem of the file, and ends the reader at once', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-isolated-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    // ~1 MiB of routes: a few seconds of parsing and validating, far more than the limit below.
    const file = join(dir, 'many-routes.yml');
    await writeFile(file, manyRoutes().text);
    // A read first, so libuv's thread pool and V8's helpers are started before threads are counted.
    await loadConfig(join(ROOT, 'config.yml'), {});
    const threads = await settledThreadCount();
    await rejectsOnTimeLimit(loadConfig(file, {}, { timeLimitMs: 300 }), 0.3, file);
    // The reader was stopped, not left to finish its seconds of work: its thread is gone.
    assert.equal(await settledThreadCount(), threads);
    // The process and the next read are unaffected.
    assert.ok((await loadConfig(join(ROOT, 'config.yml'), {})).routes.length > 0);
  });

  it('fails a read from a pipe no one writes to within the time limit, leaving no thread waiting on it', async (t) => {
    const fifo = await tempPipe(t);
    await loadConfig(join(ROOT, 'config.yml'), {});
    const threads = await settledThreadCount();
    await rejectsOnTimeLimit(loadConfig(fifo, {}, { timeLimitMs: 300 }), 0.3);
    // A blocking open would hold the reader's thread (and one of libuv's pool threads) until a writer came.
    assert.equal(await settledThreadCount(), threads);
    assert.ok((await loadConfig(join(ROOT, 'config.yml'), {})).routes.length > 0);
  });

  it('never takes an empty pipe for an empty config (a reload of `--config <(…)` once its writer is gone dropped every route)', async (t) => {
    const fifo = await tempPipe(t);
    // A writer that comes and goes without writing: the reader sees only the end of the pipe.
    const writer = writeFile(fifo, '');
    await rejectsOnTimeLimit(loadConfig(fifo, {}, { timeLimitMs: 1_000 }), 1);
    // On a loaded machine the writer's open (on libuv's pool) can run only after the reader gave up;
    // it would then wait for a reader forever (this test hung that way once): be one.
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    await writer;
    await reader.close();
  });

  it('reads the end of an anonymous pipe (`<(true)`, whose writers are gone for good) at once, as an empty file', async () => {
    // A process substitution's pipe has no name: no writer can come later, so its end is final.
    const child = spawn('bash', ['-c', 'exec 3< <(true); sleep 0.2; echo /proc/$$/fd/3; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const path = (await once(child.stdout!, 'data'))[0].toString().trim();
      const started = performance.now();
      const config = await loadConfig(path, {}, { timeLimitMs: 5_000 });
      assert.ok(performance.now() - started < 2_500, 'not waited for as a named pipe would be');
      assert.deepEqual(config.routes, []);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('reads a config from a pipe (`--config <(envsubst < gateway.yml)`), and at most 1 MiB of it', async (t) => {
    const fifo = await tempPipe(t);
    const text = await readFile(join(ROOT, 'config.yml'), 'utf8');
    // The reader waits for a writer that comes later (a pipe with no writer yet reads as empty).
    const late = sleep(1000).then(() => writeFile(fifo, text));
    const [config] = await Promise.all([loadConfig(fifo, {}), late]);
    assert.ok(config.routes.length > 0);

    // A pipe has no size to check first: the reader stops at the bound instead of reading on.
    const endless = `${text}\n${'#'.repeat(1023)}\n`.repeat(1100);
    const writing = writeFile(fifo, endless).catch((err: NodeJS.ErrnoException) => err.code);
    await assert.rejects(loadConfig(fifo, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.problems[0]!.message, /^config file is larger than 1048576 bytes/);
      return true;
    });
    assert.equal(await writing, 'EPIPE');
  });
});

/** Threads of this process (a worker thread is one), once the count held still for 200 ms (a worker that answered takes a moment to exit). */
async function settledThreadCount(): Promise<number> {
  let last = -1;
  for (let same = 0, i = 0; same < 4 && i < 200; i++) {
    const n = readdirSync('/proc/self/task').length;
    same = n === last ? same + 1 : 0;
    last = n;
    await sleep(50);
  }
  return last;
}

/** A valid config of ~1 MiB (the largest accepted): one route after another. */
function manyRoutes(): { text: string; routes: number } {
  let text = 'server:\n  port: 18099\nroutes:\n';
  let n = 0;
  for (; text.length < 1_000_000; n++) text += `  - path: /r${n}\n    backend: http://127.0.0.1:${10_000 + (n % 50_000)}\n`;
  return { text, routes: n };
}

/** A named pipe in a fresh temporary folder, removed after the test. */
async function tempPipe(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-isolated-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const fifo = join(dir, 'config.yml');
  execFileSync('mkfifo', [fifo]);
  return fifo;
}

/** Expects `read` to fail as one problem of the file (at line 0): its reader ran out of its `seconds`. */
async function rejectsOnTimeLimit(read: Promise<unknown>, seconds: number, file?: string): Promise<void> {
  await assert.rejects(read, (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems.length, 1);
    if (file !== undefined) assert.deepEqual([err.problems[0]!.file, err.problems[0]!.line], [file, 0]);
    assert.ok(err.problems[0]!.message.startsWith(`cannot read config: reading it took more than ${seconds} s`), err.problems[0]!.message);
    return true;
  });
}
