/**
 * The held tick entry (src/tick-shape.ts): bin/microgate keeps one `process.nextTick` entry alive so
 * the map every entry is built with cannot be freed and rebuilt, which leaves node's tick literal
 * on V8's slow path for the rest of the process (docs/decisions.md, Speed, "Ninth session").
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('the held tick entry', () => {
  it('is a real nextTick entry, and entries made after major collections share its map', () => {
    const script = `
      import { executionAsyncResource } from 'node:async_hooks';
      import { holdTickShape, heldTickEntry } from './dist/tick-shape.js';
      await holdTickShape();
      await holdTickShape(); // once only
      const held = heldTickEntry();
      const entry = () => new Promise((r) => process.nextTick(() => r(executionAsyncResource())));
      // Traffic's worth of ticks, all let go, then two major collections with none queued.
      for (let i = 0; i < 2_000; i++) await entry();
      await new Promise((r) => setTimeout(r, 10));
      globalThis.gc({ type: 'major' });
      globalThis.gc({ type: 'major' });
      await new Promise((r) => setTimeout(r, 10));
      const fresh = await entry();
      const symbols = Object.getOwnPropertySymbols(held).map(String);
      console.log(JSON.stringify({ keys: Object.keys(held), symbols, sameMap: %HaveSameMap(held, fresh), stillHeld: heldTickEntry() === held }));
    `;
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--expose-gc', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.deepEqual(out.keys, ['callback', 'args']);
    assert.deepEqual(out.symbols, ['Symbol(async_id_symbol)', 'Symbol(trigger_async_id_symbol)']);
    assert.equal(out.sameMap, true);
    assert.equal(out.stillHeld, true);
  });

  it('is held by bin/microgate before the gateway is loaded', () => {
    const bin = readFileSync(new URL('../../bin/microgate', import.meta.url), 'utf8');
    const hold = bin.indexOf('holdTickShape()');
    const cli = bin.indexOf("import('../dist/cli/microgate.js')");
    assert.ok(hold > 0 && cli > hold, bin);
  });
});
