#!/usr/bin/env node
/**
 * Builds the one native addon, native/malloc-trim.c (glibc's malloc_trim for src/memory-trim.ts),
 * with node-gyp. `npm ci` runs it (the package's `install` script). The addon is optional: when it
 * cannot be built (no compiler, no Node headers), this prints why and exits 0, and the gateway runs
 * without handing freed memory back (docs/configuration.md, "Memory"). The tests insist on it on
 * glibc Linux, so CI fails there instead of silently going without.
 *
 * node-gyp is npm's own (npm names it in npm_config_node_gyp); Node's headers are the ones installed
 * beside this node (<prefix>/include/node), or npm's `nodedir`: nothing is downloaded.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = join(ROOT, 'native');

function nodeGyp() {
  const js = process.env.npm_config_node_gyp;
  if (js && existsSync(js)) return [process.execPath, [js]];
  // Outside npm: npm's bundled node-gyp, next to this node.
  const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(bundled)) return [process.execPath, [bundled]];
  return ['node-gyp', []];
}

const args = ['rebuild', '--directory', DIR];
if (!process.env.npm_config_nodedir) {
  const prefix = join(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
}
const [cmd, pre] = nodeGyp();
const r = spawnSync(cmd, [...pre, ...args], { cwd: ROOT, encoding: 'utf8' });
if (r.status === 0) {
  process.stdout.write('microgate: built native/build/Release/malloc_trim.node\n');
} else {
  const why = r.error ? r.error.message : (r.stderr || r.stdout || '').trim().split('\n').slice(-6).join('\n');
  process.stderr.write(
    `microgate: warning: the native malloc_trim addon was not built, so the gateway will not hand memory glibc freed back to the system (docs/configuration.md, "Memory").\n${why}\n`,
  );
}
