/**
 * node-redis is loaded only by a gateway that uses Redis: without `cluster.redis_url` a gateway
 * never resolves the `redis` package (it costs ~15 MB of RSS at start), with it the package loads.
 * Each case runs in a fresh Node process with a resolve hook that reports every `redis` import.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Registers a resolve hook that prints "redis-loaded" when anything imports the `redis` package. */
const HOOK = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(
  "export async function resolve(s, c, next) { if (s === 'redis') process.stderr.write('redis-loaded\\\\n'); return next(s, c); }"));`;

function gatewayRun(configYaml: string): Promise<string> {
  const script = `
    import { parseConfig } from './src/config/index.ts';
    import { createGateway } from './src/gateway.ts';
    const config = parseConfig(${JSON.stringify(configYaml)}, 'lazy.yml');
    const gw = createGateway(config, { defaultMetrics: false, logger: (await import('./test/helpers/gateway.ts')).silentLogger });
    await gw.start({ port: 0, host: '127.0.0.1' });
    await gw.close();
    process.stderr.write('done\\n');
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(HOOK)}`, '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(err));
  });
}

describe('node-redis is loaded on first use', () => {
  it('is never loaded by a gateway without cluster.redis_url', async () => {
    const out = await gatewayRun('routes: []\nratelimit:\n  max_tokens: 5\n  refill_rate: 1\n');
    assert.match(out, /done/, out);
    assert.doesNotMatch(out, /redis-loaded/, out);
  });

  it('is loaded when cluster.redis_url is set', { skip: redisSkipReason() }, async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const out = await gatewayRun(`routes: []\nratelimit:\n  max_tokens: 5\n  refill_rate: 1\ncluster:\n  redis_url: ${server.url}\n`);
    assert.match(out, /done/, out);
    assert.match(out, /redis-loaded/, out);
  });
});
