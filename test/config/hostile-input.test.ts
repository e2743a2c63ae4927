/**
 * Hostile config documents give a ConfigError: never another exception, a crash or a hang.
 * Quick cases run in-process; the heavy ones run in a child process with a deadline, so a hang
 * fails the test instead of stalling the suite.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../src/config/index.js';
import { parseConfig } from '../../src/config/load.js';

const CHILD = fileURLToPath(new URL('./fixtures/parse-in-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function expectConfigError(text: string): ConfigError {
  try {
    parseConfig(text, 'hostile.yml', {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${(err as Error)?.name}: ${(err as Error)?.message}`);
    for (const p of err.problems) assert.ok(p.line >= 1, `problem without a line: ${err.message}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

interface ChildOutcome {
  outcome: 'ok' | 'config_error' | 'other_error' | 'hung' | 'crashed';
  ms?: number;
  count?: number;
  first?: string[];
  name?: string;
  message?: string;
  detail?: string;
}

/** Parses `text` in a child process; a child still busy after `deadlineMs` is killed and reported as hung. */
async function parseInChild(t: TestContext, text: string, deadlineMs: number): Promise<ChildOutcome> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-hostile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'hostile.yml');
  await writeFile(file, text);
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, deadlineMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('close', (c, s) => r([c, s])));
  clearTimeout(timer);
  if (hung) return { outcome: 'hung', detail: `still parsing after ${deadlineMs}ms` };
  const line = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0 || line === '') return { outcome: 'crashed', detail: `exit ${code} ${signal ?? ''}: ${stderr.slice(-500)}` };
  return JSON.parse(line) as ChildOutcome;
}

/** A "billion laughs" document: nine levels of nine aliases each. */
const ALIAS_BOMB = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
  .concat(
    'bcdefghi'.split('').map((c, i) => {
      const prev = 'abcdefghi'[i]!;
      return `${c}: &${c} [${Array(9).fill(`*${prev}`).join(',')}]`;
    }),
  )
  .join('\n');

describe('alias abuse', () => {
  it('a YAML bomb of nested aliases is a ConfigError, not an exception from the YAML library', () => {
    const err = expectConfigError(ALIAS_BOMB);
    assert.match(err.message, /alias/i);
  });

  it('a bomb hidden inside a known section is a ConfigError', () => {
    const text = `x: &x [1,1,1,1,1,1,1,1,1,1]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x,*x]\nz: &z [*y,*y,*y,*y,*y,*y,*y,*y,*y,*y]\nserver:\n  trusted_proxies: [*z,*z,*z,*z,*z,*z,*z,*z,*z,*z]\n`;
    expectConfigError(text);
  });

  it('an alias to an anchor that does not exist is a ConfigError with its line', () => {
    const err = expectConfigError(`server:\n  port: *nowhere\n`);
    assert.equal(err.problems[0]!.line, 2);
  });

  it('a few ordinary aliases still work', () => {
    const cfg = parseConfig(`routes:\n  - path: "/a"\n    backend: &b "http://127.0.0.1:9001"\n  - path: "/b"\n    backend: *b\n`, 'ok.yml', {});
    assert.equal(cfg.routes[1]!.backend, 'http://127.0.0.1:9001');
  });
});

describe('a top level that is not a mapping', () => {
  for (const [label, text] of [
    ['a list', '- server\n- routes\n'],
    ['a string', 'just some text\n'],
    ['a number', '42\n'],
    ['a boolean', 'true\n'],
  ] as const) {
    it(`${label} is a ConfigError at line 1 that says an object was expected`, () => {
      const err = expectConfigError(text);
      assert.equal(err.problems.length, 1);
      assert.equal(err.problems[0]!.line, 1);
      assert.match(err.message, /expected object/);
    });
  }

  it('a section that is a scalar instead of a mapping is a ConfigError naming it', () => {
    const err = expectConfigError(`server: 8080\nroutes: "/api"\n`);
    assert.deepEqual(
      err.problems.map((p) => p.key),
      ['server', 'routes'],
    );
  });

  it('a null document (comments only, or "~") is an empty config', () => {
    assert.deepEqual(parseConfig('# nothing here\n', 'c.yml', {}).routes, []);
    assert.deepEqual(parseConfig('~\n', 'c.yml', {}).routes, []);
  });
});

describe('odd YAML', () => {
  it('deeply nested flow collections are a ConfigError, not a stack overflow crash', () => {
    expectConfigError(`server: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`);
  });

  it('deeply nested block mappings are a ConfigError', () => {
    expectConfigError(Array.from({ length: 3_000 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1\n');
  });

  it('__proto__ and constructor keys are unknown keys and pollute nothing', () => {
    const err = expectConfigError(`__proto__:\n  polluted: true\nserver:\n  constructor: 1\n`);
    assert.deepEqual(
      err.problems.map((p) => p.key),
      ['__proto__', 'server.constructor'],
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('a binary tag where a number belongs is a type error', () => {
    assert.equal(expectConfigError(`server:\n  port: !!binary aGVsbG8=\n`).problems[0]!.key, 'server.port');
  });
});

describe('huge documents', () => {
  test('a document of 30,000 unknown keys (~300 KB) is a ConfigError within 5 s, not a multi-minute hang', { timeout: 60_000 }, async (t) => {
    const text = Array.from({ length: 30_000 }, (_, i) => `unknown_key_${i}: 1`).join('\n') + '\n';
    const r = await parseInChild(t, text, 8_000);
    assert.equal(r.outcome, 'config_error', JSON.stringify(r));
    assert.ok(r.ms! < 5_000, `took ${r.ms}ms`);
  });

  test('a mapping with 30,000 unknown keys inside a section is a ConfigError within 5 s', { timeout: 60_000 }, async (t) => {
    const text = 'server:\n' + Array.from({ length: 30_000 }, (_, i) => `  k${i}: 1`).join('\n') + '\n';
    const r = await parseInChild(t, text, 8_000);
    assert.equal(r.outcome, 'config_error', JSON.stringify(r));
    assert.ok(r.ms! < 5_000, `took ${r.ms}ms`);
  });

  test('a 0.9 MB document of 20,000 invalid routes is a ConfigError without a crash', { timeout: 60_000 }, async (t) => {
    const text = 'routes:\n' + Array.from({ length: 20_000 }, (_, i) => `  - path: "r${i}"\n    backend: "ftp://x"\n`).join('');
    const r = await parseInChild(t, text, 30_000);
    assert.equal(r.outcome, 'config_error', JSON.stringify(r));
    assert.match(r.first![0]!, /^hostile\.yml:2:\d+ routes\[0\]\.path: /);
  });

  test('a 10 MB scalar under an unknown key is a ConfigError within 2 s', { timeout: 60_000 }, async (t) => {
    const r = await parseInChild(t, `junk: "${'x'.repeat(10 * 1024 * 1024)}"\n`, 30_000);
    assert.equal(r.outcome, 'config_error', JSON.stringify(r));
    assert.ok(r.ms! < 2_000, `took ${r.ms}ms`);
  });

  test('a 6 MB document of 600,000 unknown keys is a ConfigError within 5 s (refused by size, or parsed fast)', { timeout: 60_000 }, async (t) => {
    // A real config is a few KB: whatever the size cap, the worst document under it must not
    // keep `microgate check` or a starting gateway busy for long.
    const text = Array.from({ length: 600_000 }, (_, i) => `k${i}: 1`).join('\n') + '\n';
    const r = await parseInChild(t, text, 8_000);
    assert.equal(r.outcome, 'config_error', JSON.stringify(r));
    assert.ok(r.ms! < 5_000, `took ${r.ms}ms`);
  });
});
