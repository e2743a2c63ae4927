/** Snapshots in data_dir: round trip, restart keeps baselines, missing/truncated/corrupt start fresh with one warning, unwritable dir fails start-up naming it. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { SNAPSHOT_FILE } from '../../src/analytics/index.js';
import { feed, harness, type Harness } from './helpers.js';

const MINUTE = 60_000;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-analytics-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A persisting instance in `dir` whose clock starts at `at` (default T0). */
function persisting(dir: string, at?: number): Harness {
  const h = harness({ dataDir: dir, persist: true, routes: ['/api', '/other'] });
  if (at !== undefined) h.clock.set(at);
  return h;
}

async function learned(dir: string): Promise<Harness> {
  const h = persisting(dir);
  await h.analytics.start();
  await feed(h, 90, () => 60, { latency: () => 12 });
  await feed(h, 1, () => 600);
  await h.analytics.analyze();
  return h;
}

describe('snapshots', () => {
  it('round-trips: a restarted instance answers with its learned baselines and anomalies at once', async (t) => {
    const dir = await tempDir(t);
    const a = await learned(dir);
    const before = a.analytics.routeBaseline('/api')!;
    const anomalies = a.analytics.anomalies();
    assert.equal(anomalies.length, 1);
    await a.analytics.close();
    assert.deepEqual(await readdir(dir), [SNAPSHOT_FILE], 'no temp file is left behind');

    const b = persisting(dir, a.clock.now() + 5_000);
    await b.analytics.start();
    t.after(() => b.analytics.close());
    const after = b.analytics.routeBaseline('/api')!;
    assert.equal(after.learning, false);
    assert.equal(after.rateMean, before.rateMean);
    assert.equal(after.p99Ms, before.p99Ms);
    assert.equal(after.sampleSize, before.sampleSize);
    assert.deepEqual(b.analytics.anomalies(), anomalies);
    assert.deepEqual(
      b.lines.filter((l) => l.level === 'warn'),
      [],
    );
  });

  it('does not read the time the gateway was down as silence', async (t) => {
    const dir = await tempDir(t);
    const a = persisting(dir);
    await a.analytics.start();
    await feed(a, 60, () => 60);
    await a.analytics.close();
    // Down for two hours, then back with the same traffic.
    const b = persisting(dir, a.clock.now() + 2 * 60 * MINUTE);
    await b.analytics.start();
    t.after(() => b.analytics.close());
    await feed(b, 30, () => 60);
    await b.analytics.analyze();
    assert.deepEqual(b.analytics.anomalies(), [], 'no silence anomaly for the downtime, none for coming back');
    assert.equal(b.analytics.routeBaseline('/api')!.rateMean, 60);
  });

  for (const [name, damage] of [
    ['missing', async (file: string) => rm(file)],
    ['truncated', async (file: string) => writeFile(file, (await readFile(file)).subarray(0, 200))],
    ['corrupt (one flipped byte)', async (file: string) => {
      const buf = await readFile(file);
      buf[Math.floor(buf.length / 2)]! ^= 0xff;
      await writeFile(file, buf);
    }],
    ['not a snapshot at all', async (file: string) => writeFile(file, '{"hello":"world"}')],
    ['empty', async (file: string) => writeFile(file, '')],
  ] as const) {
    it(`starts fresh with one warning when the snapshot is ${name}`, async (t) => {
      const dir = await tempDir(t);
      const a = await learned(dir);
      await a.analytics.close();
      await damage(join(dir, SNAPSHOT_FILE));
      const b = persisting(dir, a.clock.now() + 1_000);
      await b.analytics.start();
      t.after(() => b.analytics.close());
      const warnings = b.lines.filter((l) => l.level === 'warn');
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(warnings[0]!.msg, /starting fresh/);
      assert.equal((warnings[0]!.obj as { path: string }).path, join(dir, SNAPSHOT_FILE));
      const base = b.analytics.routeBaseline('/api')!;
      assert.equal(base.learning, true);
      assert.equal(base.requests, 0, 'nothing half-loaded');
      assert.deepEqual(b.analytics.anomalies(), []);
    });
  }

  it('refuses a snapshot taken with another bucket width, and starts fresh', async (t) => {
    const dir = await tempDir(t);
    const a = await learned(dir);
    await a.analytics.close();
    const b = harness({ dataDir: dir, persist: true, yaml: 'bucket_interval: 30s' });
    await b.analytics.start();
    t.after(() => b.analytics.close());
    const warnings = b.lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(String((warnings[0]!.obj as { err: string }).err), /bucket_interval/);
  });

  it('starts fresh at once, with one warning, when the snapshot is a pipe (never waits for a writer)', async (t) => {
    const dir = await tempDir(t);
    execFileSync('mkfifo', [join(dir, SNAPSHOT_FILE)]);
    const h = persisting(dir);
    // A blocking read of the pipe would never settle: the test's own timeout would end it.
    await h.analytics.start();
    t.after(() => h.analytics.close());
    const warnings = h.lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(String((warnings[0]!.obj as { err: string }).err), /not a regular file/);
  });

  it('refuses a snapshot larger than 1 GiB by its size, before reading it', async (t) => {
    const dir = await tempDir(t);
    // Sparse: no disk is used, but a read would fill a gigabyte of memory with zeros.
    await writeFile(join(dir, SNAPSHOT_FILE), '');
    await truncate(join(dir, SNAPSHOT_FILE), 1024 * 1024 * 1024 + 1);
    const h = persisting(dir);
    await h.analytics.start();
    t.after(() => h.analytics.close());
    const warnings = h.lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(String((warnings[0]!.obj as { err: string }).err), /larger than 1073741824 bytes \(1073741825\)/);
  });

  it('fails start-up with an error naming data_dir when it cannot be written', async (t) => {
    const dir = await tempDir(t);
    // A data_dir below a regular file cannot be created, whoever runs the test (root included).
    await writeFile(join(dir, 'plain-file'), 'x');
    const dataDir = join(dir, 'plain-file', 'data');
    const h = harness({ dataDir, persist: true });
    await assert.rejects(h.analytics.start(), (err: Error) => {
      assert.match(err.message, /data_dir/);
      assert.ok(err.message.includes(dataDir), err.message);
      return true;
    });
    await h.analytics.close();
  });

  it('fails start-up (does not hang) when data_dir is in a file system that refuses new directories, such as /proc', { skip: process.platform !== 'linux' }, async () => {
    // Node 20's recursive mkdir loops forever here (ENOENT from /proc reads as "parent missing").
    const dataDir = '/proc/microgate-no-such-dir/data';
    const h = harness({ dataDir, persist: true });
    const verdict = await Promise.race([
      h.analytics.start().then(
        () => 'started',
        (err: Error) => err.message,
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('hung'), 5_000).unref()),
    ]);
    assert.notEqual(verdict, 'hung');
    assert.ok(verdict.includes(dataDir) && /data_dir/.test(verdict), verdict);
    await h.analytics.close();
  });

  it('writes a snapshot on demand (the timer does it every minute), atomically replacing the last one', async (t) => {
    const dir = await tempDir(t);
    const h = persisting(dir);
    await h.analytics.start();
    t.after(() => h.analytics.close());
    await feed(h, 5, () => 10);
    await h.analytics.snapshot();
    const first = await readFile(join(dir, SNAPSHOT_FILE));
    await feed(h, 5, () => 10);
    await h.analytics.snapshot();
    const second = await readFile(join(dir, SNAPSHOT_FILE));
    assert.notDeepEqual(first, second);
    assert.equal(first.subarray(0, 4).toString('latin1'), 'MGAS');
    assert.deepEqual(await readdir(dir), [SNAPSHOT_FILE]);
  });
});
