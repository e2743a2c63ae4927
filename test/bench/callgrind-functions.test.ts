/**
 * bench/callgrind-functions.mjs: reads callgrind's compressed names, keeps callees' costs out of
 * self counts, names JIT code from the process's perf map, and subtracts a baseline.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const SCRIPT = new URL('../../bench/callgrind-functions.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(os.tmpdir(), 'microgate-cg-test-'));
// A process id no real process has here: its map goes where node would write it.
const pid = 4_000_000 + (process.pid % 100_000);
const map = `/tmp/perf-${pid}.map`;
after(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(map, { force: true });
});

// main (10 self) calls writeLine (JIT at 0x1010, 300 self) which calls a builtin (50 self).
const DUMP = [
  '# callgrind format',
  'events: Ir',
  'fn=(1) main',
  '0 10',
  'cfn=(2) 0x0000000000001010',
  'calls=1 0',
  '0 350',
  'fn=(2)',
  '0 200',
  '+1 100',
  'cfn=(3) Builtins_StringAdd',
  'calls=2 0',
  '0 50',
  'fn=(3)',
  '0 50',
  '',
].join('\n');

function run(...args: string[]): string {
  return execFileSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });
}

describe('bench: instructions by function from a callgrind dump', () => {
  writeFileSync(map, '1000 40 JS:*writeLine file:///x.js:1:1\n2000 10 JS:*other file:///x.js:9:1\n');
  const dump = join(dir, `mg-proxy.r1.${pid}.out.1`);
  writeFileSync(dump, DUMP);

  it('counts self instructions per request, callees left out, with JIT code named from the perf map', () => {
    const out = run(dump, '--requests', '10');
    assert.match(out, /^\s+36\s+total instructions per request$/m);
    assert.match(out, /^\s+30\s+JS JS:\*writeLine file:\/\/\/x\.js:1:1$/m);
    assert.match(out, /^\s+5\s+Builtins_StringAdd$/m);
    assert.match(out, /^\s+1\s+main$/m);
  });

  it('adds callees with --inclusive', () => {
    const out = run(dump, '--requests', '10', '--inclusive');
    assert.match(out, /^\s+36\s+main$/m);
    assert.match(out, /^\s+35\s+JS JS:\*writeLine/m);
  });

  it('lists what a function calls with --callees, per callee', () => {
    const out = run(dump, '--requests', '10', '--callees', 'writeLine');
    assert.match(out, /^\s+0\.2\s+5\s+JS JS:\*writeLine file:\/\/\/x\.js:1:1 → Builtins_StringAdd$/m);
    assert.doesNotMatch(out, /main →/);
  });

  it('lists who calls a function with --callers', () => {
    const out = run(dump, '--requests', '10', '--callers', 'writeLine');
    assert.match(out, /^\s+0\.1\s+35\s+main → JS JS:\*writeLine/m);
  });

  it('prints the difference from a baseline dump', () => {
    const base = join(dir, `forwarder.r1.${pid}.out.1`);
    writeFileSync(base, ['# callgrind format', 'events: Ir', 'fn=(1) main', '0 60', ''].join('\n'));
    const out = run(dump, base, '--requests', '10');
    assert.match(out, /^\s+30\s+total difference per request \(\s+36 against\s+6\)$/m);
    assert.match(out, /^\s+30\s+30\s+0\s+JS JS:\*writeLine/m);
    assert.match(out, /^\s+-5\s+1\s+6\s+main$/m);
  });
});
