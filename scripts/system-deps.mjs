// The Debian packages the test suite needs: redis-server (cluster store), chromium (dashboard
// browser tests), prometheus (promtool checks /metrics) and slowhttptest (the slow-body attack test). Installed with apt-get when missing
// and we are root, so `npm test` runs on a fresh machine; set MICROGATE_NO_APT=1 to skip.
import { execFileSync, spawnSync } from 'node:child_process';

const NEEDS = [
  { bin: 'redis-server', pkg: 'redis-server' },
  { bin: 'chromium', pkg: 'chromium' },
  { bin: 'promtool', pkg: 'prometheus' },
  { bin: 'slowhttptest', pkg: 'slowhttptest' },
];

function has(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

export function ensureSystemDeps() {
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
