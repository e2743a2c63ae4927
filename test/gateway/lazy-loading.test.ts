/**
 * Code a gateway may not need is loaded only when its config uses it: the gateway's Redis client
 * (src/store/resp-client.ts) only with `cluster.redis_url`, and node-redis never (it is a test tool
 * here: loading it cost ~17 MB of RSS); jose only with JWT auth and then only the entry points the
 * gateway uses, not its index (JWE, key generation: ~2 MB of RSS); undici's index (fetch,
 * WebSocket, mock agents: ~9 MB) never — the gateway loads undici's Pool alone.
 * Each case runs a gateway in a fresh Node process with a resolve hook that reports every import of
 * those modules, and proxies one request so the request path is covered too.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RedisServer, redisSkipReason } from '../helpers/redis-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Prints "loaded:<name>" when anything imports `@redis/client`, `redis`, `jose` (or a `jose/` subpath), `undici` (the index) by name, or the Redis client module. */
const HOOK = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(
  "const watched = new Set(['@redis/client', 'redis', 'jose', 'undici']);" +
  "export async function resolve(s, c, next) { if (watched.has(s) || s.startsWith('jose/')) process.stderr.write('loaded:' + s + '\\\\n'); else if (s.endsWith('/resp-client.js') || s.endsWith('/resp-client.ts')) process.stderr.write('loaded:resp-client\\\\n'); return next(s, c); }"));`;

const JWT_SECRET = 'lazy-loading-secret-0123456789';

/** Runs a gateway with `configYaml` (BACKEND is replaced by a backend's URL), proxies one request, prints what loaded. */
function gatewayRun(configYaml: string): Promise<string> {
  const script = `
    import { createServer } from 'node:http';
    import { parseConfig } from './src/config/load.ts';
    import { createGateway } from './src/gateway.ts';
    import { createLogger } from './src/logging/index.ts';
    const backend = createServer((req, res) => res.end('ok')).listen(0, '127.0.0.1');
    await new Promise((r) => backend.once('listening', r));
    const yaml = ${JSON.stringify(configYaml)}.replace('BACKEND', 'http://127.0.0.1:' + backend.address().port);
    const config = parseConfig(yaml, 'lazy.yml');
    const gw = createGateway(config, { defaultMetrics: false, logger: createLogger({ level: 'silent' }) });
    await gw.start({ port: 0, host: '127.0.0.1' });
    const port = gw.port;
    const res = await new Promise((resolve, reject) => {
      const headers = { 'x-api-key': 'lazy-loading-key-1' };
      import('node:http').then(({ get }) => get({ host: '127.0.0.1', port, path: '/x', headers }, (r) => { r.resume(); r.on('end', () => resolve(r.statusCode)); }).on('error', reject));
    });
    process.stderr.write('status:' + res + '\\n');
    // A require() of undici's index (which the resolve hook does not see) leaves it in the CJS cache.
    const { createRequire } = await import('node:module');
    if (Object.keys(createRequire(import.meta.url).cache).some((k) => k.endsWith('/node_modules/undici/index.js'))) process.stderr.write('loaded:undici (require)\\n');
    await gw.close();
    backend.close();
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

const ROUTE = 'routes:\n  - path: "/"\n    backend: "BACKEND"\n';
const API_KEYS = 'auth:\n  api_keys:\n    - "lazy-loading-key-1"\n';

describe('optional packages are loaded on first use', () => {
  it('a gateway with API keys and a rate limit loads neither node-redis, jose nor undici\'s index', async () => {
    const out = await gatewayRun(`${ROUTE}${API_KEYS}ratelimit:\n  max_tokens: 5\n  refill_rate: 1\n`);
    assert.match(out, /status:200\ndone/, out);
    assert.doesNotMatch(out, /loaded:/, out);
  });

  it('jose\'s verify, key-set and error entry points, and not its index, are loaded when JWT auth is configured', async () => {
    const out = await gatewayRun(`${ROUTE}${API_KEYS}  jwt_secret: "${JWT_SECRET}"\n`);
    assert.match(out, /status:200\ndone/, out);
    for (const sub of ['jwt/verify', 'jws/compact/verify', 'jwks/remote', 'errors']) assert.match(out, new RegExp(`loaded:jose/${sub}\n`), out);
    assert.doesNotMatch(out, /loaded:jose\n/, out);
    assert.doesNotMatch(out, /loaded:(@redis\/client|redis|undici)/, out);
  });

  it('the Redis client is loaded when cluster.redis_url is set, and node-redis is not', { skip: redisSkipReason() }, async (t) => {
    const server = await RedisServer.start();
    t.after(() => server.stop());
    const out = await gatewayRun(`${ROUTE}${API_KEYS}ratelimit:\n  max_tokens: 5\n  refill_rate: 1\ncluster:\n  redis_url: ${server.url}\n`);
    assert.match(out, /status:200\ndone/, out);
    assert.match(out, /loaded:resp-client\n/, out);
    assert.doesNotMatch(out, /loaded:(@redis\/client|redis)\n/, out);
  });
});
