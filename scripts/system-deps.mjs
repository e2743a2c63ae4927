// The Debian packages the test suite needs: redis-server (cluster store), chromium (dashboard
// browser tests), prometheus (promtool checks /metrics) and slowhttptest (the slow-body attack test),
// and a C toolchain for the malloc_trim addon (native/; `npm ci` builds it when one is there).
// Installed with apt-get when missing and we are root, so `npm test` runs on a fresh machine; set
// MICROGATE_NO_APT=1 to skip. An addon `npm ci` could not build is built here once the toolchain is in.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const NEEDS = [
  { bin: 'redis-server', pkg: 'redis-server' },
  { bin: 'chromium', pkg: 'chromium' },
  { bin: 'promtool', pkg: 'prometheus' },
  { bin: 'slowhttptest', pkg: 'slowhttptest' },
  { bin: 'g++', pkg: 'g++' },
  { bin: 'make', pkg: 'make' },
  { bin: 'python3', pkg: 'python3' },
];

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADDON = `${ROOT}native/build/Release/malloc_trim.node`;

function has(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

export function ensureSystemDeps() {
  installMissing();
  if (!existsSync(ADDON) && has('g++') && has('make')) {
    console.log('tests: building the malloc_trim addon (npm ci could not)');
    execFileSync(process.execPath, [`${ROOT}scripts/build-native.mjs`], { stdio: 'inherit' });
  }
}

function installMissing() {
  const missing = NEEDS.filter((n) => !has(n.bin));
  if (missing.length === 0) return;
  const names = missing.map((m) => m.pkg);
  if (process.env.MICROGATE_NO_APT === '1' || process.getuid?.() !== 0 || !has('apt-get')) {
    console.warn(`tests: missing ${names.join(', ')}; install them (Debian: apt-get install ${names.join(' ')}) or the tests that need them fail in CI`);
    return;
  }
  console.log(`tests: installing ${names.join(', ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], { stdio: ['ignore', 'ignore', 'inherit'], env });
}
