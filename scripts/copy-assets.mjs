#!/usr/bin/env node
// Build step after tsc: copies non-TS assets from src/ to dist/ (the Redis Lua scripts), and
// writes tmp/testbackend, so the original project's config (`command: ./tmp/testbackend`) runs unchanged.
import { chmodSync, copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.lua')) {
      const out = join(root, 'dist', relative(join(root, 'src'), p));
      mkdirSync(dirname(out), { recursive: true });
      copyFileSync(p, out);
    }
  }
}
walk(join(root, 'src'));

mkdirSync(join(root, 'tmp'), { recursive: true });
const shim = join(root, 'tmp', 'testbackend');
writeFileSync(shim, `#!/bin/sh\n# Compatibility name for the original project's test backend binary.\nexec "$(dirname "$0")/../bin/microgate-testbackend" "$@"\n`);
chmodSync(shim, 0o755);
