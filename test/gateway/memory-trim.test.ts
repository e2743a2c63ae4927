/**
 * Memory glibc holds free is handed back to the system (src/memory-trim.ts): the native
 * malloc_trim addon is built by `npm ci` and works, the trims follow their schedule in simulated
 * time, and every gateway process loads the addon unless `server.memory_trim_interval` is 0.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../src/clock.js';
import { FIRST_TRIM_MS, loadNativeTrim, MemoryTrimmer, onGlibc } from '../../src/memory-trim.js';
import { load, onlyProblem, ONE_ROUTE } from '../config/helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A trimmer on a manual clock that records when it trimmed (ms after start). */
function scheduled(intervalMs: number) {
  const clock = new ManualClock(0);
  const at: number[] = [];
  const trimmer = new MemoryTrimmer({ intervalMs, clock, trim: () => (at.push(clock.now()), true), rss: () => 0 });
  return { clock, at, trimmer };
}

describe('memory trim schedule', () => {
  it('trims 1 s after start, then doubles the delay up to the interval and keeps to it', () => {
    const { clock, at, trimmer } = scheduled(10_000);
    trimmer.start();
    clock.advance(60_000);
    assert.equal(FIRST_TRIM_MS, 1000);
    assert.deepEqual(at, [1000, 3000, 7000, 15_000, 25_000, 35_000, 45_000, 55_000]);
    assert.equal(trimmer.trims, 8);
  });

  it('never trims with an interval of 0, and a stopped trimmer trims no more', () => {
    const off = scheduled(0);
    off.trimmer.start();
    off.clock.advance(60_000);
    assert.deepEqual(off.at, []);
    assert.equal(off.trimmer.running, false);

    const { clock, at, trimmer } = scheduled(10_000);
    trimmer.start();
    clock.advance(3500);
    trimmer.stop();
    clock.advance(60_000);
    assert.deepEqual(at, [1000, 3000]);
  });

  it('an asynchronous trim schedules the next one only once it settled; a failed one is reported and the schedule goes on', async () => {
    const clock = new ManualClock(0);
    const at: number[] = [];
    const settle: (() => void)[] = [];
    const errors: unknown[] = [];
    let calls = 0;
    const trimmer = new MemoryTrimmer({
      intervalMs: 10_000,
      clock,
      rss: () => 0,
      onError: (err) => errors.push(err),
      trim: () => {
        at.push(clock.now());
        return ++calls === 2 ? Promise.reject(new Error('no trim')) : new Promise<boolean>((resolve) => settle.push(() => resolve(true)));
      },
    });
    trimmer.start();
    clock.advance(1000);
    assert.deepEqual(at, [1000]);
    clock.advance(5000); // still running: nothing more is due
    assert.deepEqual(at, [1000]);
    settle.shift()!();
    await new Promise((r) => setImmediate(r));
    clock.advance(2000);
    assert.deepEqual(at, [1000, 8000]); // 2 s after it settled at 6000
    await new Promise((r) => setImmediate(r));
    assert.equal(errors.length, 1);
    clock.advance(4000);
    assert.deepEqual(at, [1000, 8000, 12_000]);
    trimmer.stop();
    settle.shift()!();
    await new Promise((r) => setImmediate(r));
    clock.advance(60_000);
    assert.deepEqual(at, [1000, 8000, 12_000]); // stopped while the trim ran: nothing after it
  });

  it('counts what each trim gave back from the resident set, never a negative amount', () => {
    const rss = [100, 60, 60, 70];
    const seen: number[] = [];
    const trimmer = new MemoryTrimmer({ intervalMs: 1000, trim: () => true, rss: () => rss.shift()!, onTrim: (b) => seen.push(b) });
    assert.equal(trimmer.trimNow(), 40);
    assert.equal(trimmer.trimNow(), 0); // grew meanwhile (60 → 70): nothing was given back
    assert.deepEqual(seen, [40, 0]);
    assert.equal(trimmer.releasedBytes, 40);
  });
});

describe('the native malloc_trim addon', () => {
  const why = onGlibc() ? undefined : 'malloc_trim exists only in glibc';

  it('is built by npm ci and callable on glibc Linux, on the calling thread and on libuv\'s pool', { skip: why }, async () => {
    const { trim, trimAsync, why: missing } = loadNativeTrim();
    assert.ok(trim && trimAsync, `native/build/Release/malloc_trim.node did not load: ${missing}`);
    assert.equal(typeof trim(), 'boolean');
    const pending = trimAsync();
    assert.ok(pending instanceof Promise);
    assert.equal(typeof (await pending), 'boolean');
  });

  it('a missing addon is reported with the reason, not thrown', () => {
    const { trim, why: missing } = loadNativeTrim(join(ROOT, 'native/build/Release/no-such-addon.node'));
    assert.equal(trim, null);
    assert.match(missing!, /no-such-addon/);
  });

  for (const mode of ['trim', 'trimAsync'] as const) {
    it(`hands memory freed inside glibc's heap back to the system (${mode})`, { skip: why }, () => {
      // Small backing stores come from malloc's heap; keeping every 16th pins the heap's pages while
      // the rest are freed, so glibc cannot give them back from the top: only a trim can.
      const script = `
        const { loadNativeTrim } = await import(${JSON.stringify(join(ROOT, 'src/memory-trim.ts'))});
        const trim = loadNativeTrim().${mode};
        let bufs = [];
        for (let i = 0; i < 40_000; i++) bufs.push(Buffer.allocUnsafeSlow(2000).fill(1));
        const keep = bufs.filter((_, i) => i % 16 === 0);
        bufs = null;
        for (let i = 0; i < 4; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
        const before = process.memoryUsage.rss();
        const released = await trim();
        const after = process.memoryUsage.rss();
        console.log(JSON.stringify({ released, freedMb: (before - after) / 1048576, kept: keep.length }));
      `;
      const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '' },
      });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { released: boolean; freedMb: number };
      assert.equal(out.released, true);
      assert.ok(out.freedMb > 30, `the resident set shrank by only ${out.freedMb.toFixed(1)} MB`);
    });
  }
});

describe('server.memory_trim_interval', () => {
  it('is a duration, 30 s by default, 0 to turn trimming off, and refused between 0 and 1 s with the key and its line', () => {
    assert.equal(load(ONE_ROUTE).server.memory_trim_interval, 30_000);
    assert.equal(load(`${ONE_ROUTE}server:\n  memory_trim_interval: 0\n`).server.memory_trim_interval, 0);
    assert.equal(load(`${ONE_ROUTE}server:\n  memory_trim_interval: 1m\n`).server.memory_trim_interval, 60_000);
    const p = onlyProblem(`${ONE_ROUTE}server:\n  memory_trim_interval: 500ms\n`);
    assert.equal(p.key, 'server.memory_trim_interval');
    assert.equal(p.line, 5);
    assert.match(p.message, /0 \(off\) or at least 1s/);
  });

  it('every gateway process loads the addon by default, and none does with an interval of 0', { skip: onGlibc() ? undefined : 'malloc_trim exists only in glibc' }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'microgate-trim-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const mapsOf = async (interval: string): Promise<string> => {
      const file = join(dir, `trim-${interval}.yml`);
      await writeFile(file, `server:\n  host: "127.0.0.1"\n  port: 0\n  memory_trim_interval: ${interval}\nroutes: []\nlogging:\n  level: "silent"\n`);
      const child = spawn(process.execPath, [join(ROOT, 'bin/microgate'), '--config', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        await new Promise<void>((resolve, reject) => {
          let out = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('MicroGate listening')) resolve();
          });
          child.once('exit', (code) => reject(new Error(`gateway exited ${code} before listening: ${out}`)));
        });
        return await readFile(`/proc/${child.pid}/maps`, 'utf8');
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    };
    assert.match(await mapsOf('10s'), /malloc_trim\.node/);
    assert.doesNotMatch(await mapsOf('0'), /malloc_trim\.node/);
  });
});
