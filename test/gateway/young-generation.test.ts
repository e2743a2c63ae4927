/**
 * Start-up memory: while the gateway starts, the young generation is held at its initial size
 * (start-up keeps most of what it allocates, which would otherwise grow it to its maximum before
 * the first request); once the gateway listens it grows under load as V8 would have grown it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs `script` (ESM) in a fresh Node process; returns its stdout as JSON. It imports the built
 * gateway (dist/, as bin/microgate does): a TypeScript loader would grow the young generation
 * itself before the script starts.
 */
function run(script: string, env: NodeJS.ProcessEnv = {}): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

/** Allocates ~40 MB that survives (the pattern of start-up), then reports the young generation's size. */
const SURVIVORS = `
  const newSpaceMb = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576;
  const keep = [];
  const survive = () => { for (let i = 0; i < 400_000; i++) keep.push({ i, s: 'x' + i }); };
`;

describe('the young generation during start-up', () => {
  it('is held at its initial size while the gateway starts and grows again once it listens', () => {
    const out = run(`
      import { getHeapSpaceStatistics } from 'node:v8';
      import { holdYoungGeneration, youngGenerationHeld } from './dist/young-generation.js';
      ${SURVIVORS}
      // As bin/microgate does: hold first, then load the gateway.
      holdYoungGeneration();
      const heldBefore = youngGenerationHeld();
      const { parseConfig } = await import('./dist/config/load.js');
      const { createGateway } = await import('./dist/gateway.js');
      const { createLogger } = await import('./dist/logging/index.js');
      survive();
      const whileStarting = newSpaceMb();
      const gw = createGateway(parseConfig('routes: []\\n', 'y.yml'), { defaultMetrics: false, logger: createLogger({ level: 'silent' }) });
      await gw.start({ port: 0, host: '127.0.0.1' });
      const heldAfter = youngGenerationHeld();
      survive(); survive();
      const underLoad = newSpaceMb();
      await gw.close();
      console.log(JSON.stringify({ heldBefore, whileStarting, heldAfter, underLoad }));
    `);
    assert.equal(out.heldBefore, true);
    assert.ok((out.whileStarting as number) <= 2, `young generation while starting: ${out.whileStarting} MB`);
    assert.equal(out.heldAfter, false);
    assert.ok((out.underLoad as number) > 2, `young generation after start-up: ${out.underLoad} MB`);
  });

  it('without the hold the same start-up grows it (the hold is what keeps it small)', () => {
    const out = run(`
      import { getHeapSpaceStatistics } from 'node:v8';
      ${SURVIVORS}
      survive();
      console.log(JSON.stringify({ grown: newSpaceMb() }));
    `);
    assert.ok((out.grown as number) > 2, `young generation: ${out.grown} MB`);
  });

  it('stays held after the config is read in its worker thread (starting a worker undoes the hold)', () => {
    const out = run(`
      import { getHeapSpaceStatistics } from 'node:v8';
      import { rmSync, writeFileSync } from 'node:fs';
      import { join } from 'node:path';
      import { tmpdir } from 'node:os';
      import { holdYoungGeneration } from './dist/young-generation.js';
      ${SURVIVORS}
      holdYoungGeneration();
      const { loadConfig } = await import('./dist/config/index.js');
      const file = join(tmpdir(), 'microgate-yg-' + process.pid + '.yml');
      writeFileSync(file, 'routes: []\\n');
      await loadConfig(file);
      rmSync(file);
      survive();
      console.log(JSON.stringify({ afterRead: newSpaceMb() }));
    `);
    assert.ok((out.afterRead as number) <= 2, `young generation after the config was read: ${out.afterRead} MB`);
  });

  it("leaves an operator's own semi-space flag alone", () => {
    const out = run(
      `
      import { holdYoungGeneration, youngGenerationHeld } from './dist/young-generation.js';
      holdYoungGeneration();
      console.log(JSON.stringify({ held: youngGenerationHeld() }));
    `,
      { NODE_OPTIONS: '--max-semi-space-size=32' },
    );
    assert.equal(out.held, false);
  });
});
