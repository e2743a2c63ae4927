/**
 * What the benchmark measures: the targets, how each is started, what its MicroGate config is,
 * and the start-up checks that say whether the policies a row claims to include are really on.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { httpGet, redisCommandsProcessed } from './net.mjs';

export const API_KEY = 'bench-key-0123456789';

/**
 * Row order of the report. MicroGate rows are declared by what they switch on (see microgateConfig):
 * `auth` (null | 'apikey' | 'jwt'; the API-key/JWT rows also get a rate limit that never runs dry),
 * `dashboard`, `sse` (a dashboard event stream is held open by the bench during the runs), `analytics`, `redis`, `workers`, `extra` (more YAML lines, indented as top-level keys).
 * `nodeArgs`: node's own arguments for the target process (a gateway or a script). `optional: true` rows run only when BENCH_TARGETS names them. `pin: false` rows are not pinned to
 * the target core (their CPU is the whole process tree's). `args`: extra command-line arguments of a script.
 */
export const TARGETS = [
  { id: 'direct', label: 'direct (backend)', kind: 'direct' },
  // The floor (`floor: true`): ratios are taken against the cheapest of these that ran (bench/README.md,
  // "The floor"). `forwarder` is the variant that was cheapest in the 2026-11-29 runs (raw header lists).
  { id: 'forwarder', label: 'floor: node:http + undici Pool.dispatch (raw header lists), fresh header lists', kind: 'script', script: 'bench/minimal-forwarder.mjs', args: ['--variant', 'raw'], floor: true },
  { id: 'fwd-dispatch', label: 'forwarder variant: Pool.dispatch, undici 7 handler API (header object)', kind: 'script', script: 'bench/minimal-forwarder.mjs', args: ['--variant', 'dispatch'], floor: true, optional: true },
  { id: 'fwd-stream', label: 'forwarder variant: Pool.stream, fresh header lists', kind: 'script', script: 'bench/minimal-forwarder.mjs', args: ['--variant', 'stream'], floor: true, optional: true },
  { id: 'fwd-object', label: 'forwarder variant: Pool.stream, fresh header object', kind: 'script', script: 'bench/minimal-forwarder.mjs', args: ['--variant', 'stream-object'], floor: true, optional: true },
  { id: 'fastify', label: 'fastify + @fastify/http-proxy', kind: 'script', script: 'bench/fastify-proxy.mjs' },
  // Defaults: access log (level info, stdout → /dev/null) and metrics on; dashboard off (mg-dash measures it).
  { id: 'mg-proxy', label: 'MicroGate proxy only (defaults: access log, metrics)', kind: 'microgate', auth: null },
  // What the default access log costs end to end (optional row).
  { id: 'mg-nolog', label: 'MicroGate proxy only, access log off', kind: 'microgate', auth: null, accessLog: false, optional: true },
  // The full chain with a smaller young generation (an operator's choice: node's own flag), optional.
  { id: 'mg-semi8', label: 'MicroGate full chain, node --max-semi-space-size=8', kind: 'microgate', auth: 'apikey', nodeArgs: ['--max-semi-space-size=8'], optional: true },
  { id: 'mg-liftoff', label: 'MicroGate proxy only, node --liftoff-only', kind: 'microgate', auth: null, nodeArgs: ['--liftoff-only'], optional: true },
  { id: 'mg-analytics', label: 'MicroGate proxy only + analytics', kind: 'microgate', auth: null, analytics: true },
  // "Full chain" as the policies issue defines it: key auth + rate limit + breaker + metrics + access log.
  { id: 'mg-full', label: 'MicroGate full chain (API key)', kind: 'microgate', auth: 'apikey' },
  { id: 'mg-dash', label: 'MicroGate full chain + dashboard', kind: 'microgate', auth: 'apikey', dashboard: true },
  // The dashboard as an operator uses it: one browser stream open (/dashboard/api/stream), so every
  // request is also sent as a `request` event.
  { id: 'mg-sse', label: 'MicroGate full chain + dashboard, one dashboard stream open', kind: 'microgate', auth: 'apikey', dashboard: true, sse: true },
  { id: 'mg-jwt', label: 'MicroGate full chain (JWT HS256)', kind: 'microgate', auth: 'jwt' },
  { id: 'mg-redis', label: 'MicroGate full chain + Redis store', kind: 'microgate', auth: 'apikey', redis: true },
  // The whole adaptive layer on top of the full chain: analytics + learned route limit + weighted + learned breaker.
  { id: 'mg-adaptive', label: 'MicroGate full chain + analytics + adaptive', kind: 'microgate', auth: 'apikey', adaptive: true },
  // Issue 10 item 3 (owned by the workers helper): `server.workers: 2` vs the one-process mg-proxy row,
  // both cores shared with the load generator.
  { id: 'mg-workers', label: 'MicroGate proxy only, server.workers: 2 (not pinned)', kind: 'microgate', auth: null, workers: 2, pin: false },
];

/** A fresh HS256 secret and a token signed with it (valid for an hour), made at start-up with jose. */
export async function makeJwt() {
  const secret = `bench-jwt-secret-${randomBytes(16).toString('hex')}`;
  const token = await new SignJWT({ scope: 'bench' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('bench-client')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
  return { secret, token };
}

const q = (s) => JSON.stringify(String(s)); // a YAML double-quoted scalar

/**
 * The MicroGate config for a target. Every row: one route `/`, logging level info with the access
 * log on (the default; stdout goes to /dev/null), metrics on, health checks effectively off.
 */
export function microgateConfig(target, { port, backendUrl, jwtSecret, redisUrl, dataDir, logFlushInterval }) {
  const lines = [
    `# generated by bench/run.mjs for the "${target.id}" row`,
    'server:',
    '  host: "127.0.0.1"',
    `  port: ${port}`,
  ];
  if (target.workers) lines.push(`  workers: ${target.workers}`);
  lines.push('routes:', '  - path: "/"', `    backend: ${q(backendUrl)}`, 'healthcheck:', '  interval: 3600');
  if (target.auth) {
    lines.push('auth:', '  api_keys:', `    - ${q(API_KEY)}`);
    if (target.auth === 'jwt') lines.push(`  jwt_secret: ${q(jwtSecret)}`);
    // A bucket that never runs dry: the row measures the limiter's cost, not its refusals.
    lines.push('ratelimit:', '  max_tokens: 1000000000', '  refill_rate: 1000000000');
  }
  // The access log is written at level info, so the level must let it through (stdout → /dev/null).
  lines.push('logging:', `  access_log: ${target.accessLog === false ? 'false' : 'true'}`, '  level: "info"');
  // bench/instructions.mjs: time runs ~100× slower under valgrind, so the flush timer is stretched to match.
  if (logFlushInterval !== undefined) lines.push(`  flush_interval: ${q(logFlushInterval)}`);
  lines.push('dashboard:', `  enabled: ${target.dashboard ? 'true' : 'false'}`);
  if (target.analytics || target.adaptive) lines.push(`data_dir: ${q(dataDir)}`);
  if (target.analytics) lines.push('analytics:', '  enabled: true');
  if (target.adaptive) {
    // Learned within a second or two (one-second buckets), so the measured run decides every request
    // against a learned limit; min = max = 1e9/min: the limit never refuses, the row measures its cost.
    lines.push(
      'analytics:',
      '  enabled: true',
      '  bucket_interval: 1s',
      '  analyzer_interval: 1s',
      '  window: 10s',
      '  retention: 10m',
      'adaptive_rate_limit:',
      '  enabled: true',
      '  min_limit: 1000000000',
      '  max_limit: 1000000000',
      '  learning_period: 1s',
      'weighted_lb:',
      '  enabled: true',
      'circuitbreaker:',
      '  adaptive: true',
    );
  }
  if (target.redis) lines.push('cluster:', `  redis_url: ${q(redisUrl)}`);
  if (target.extra) lines.push(...target.extra);
  return lines.join('\n') + '\n';
}

/** Request headers the load generator sends to a target. */
export function requestHeaders(target, jwt) {
  if (target.kind !== 'microgate' || !target.auth) return {};
  if (target.auth === 'jwt') return { authorization: `Bearer ${jwt.token}` };
  return { 'x-api-key': API_KEY };
}

const HELLO = 'Hello from backend';

/**
 * Start-up checks of a running target. Returns { fatal, notes }: fatal when the target does not
 * proxy at all (its numbers would mean nothing); notes for every policy the row should include
 * but that is not visibly on (the row is kept and marked).
 */
export async function checkTarget(target, url, headers, { redisPort } = {}) {
  const notes = [];
  const ok = await httpGet(`${url}/`, headers);
  if (ok.status !== 200 || !ok.body.includes(HELLO)) {
    return { fatal: `GET / answered ${ok.status} ${ok.body.slice(0, 160).replace(/\s+/g, ' ')}`, notes };
  }
  if (target.kind !== 'microgate') return { fatal: null, notes };

  if (!ok.headers['x-request-id']) notes.push('no X-Request-Id on responses');
  const metrics = await httpGet(`${url}/metrics`).catch((e) => ({ status: 0, body: e.message }));
  if (metrics.status !== 200) {
    // Metrics are always on (not a policy of the full chain), so the proxy-only row gets a plain note.
    notes.push(`${target.auth ? 'MISSING metrics: ' : 'metrics not wired yet: '}GET /metrics → ${metrics.status}`);
  }

  if (target.auth) {
    const anon = await httpGet(`${url}/`);
    if (anon.status !== 401) notes.push(`MISSING auth: request without credentials → ${anon.status}, expected 401`);
    if (target.auth === 'jwt') {
      const forged = await httpGet(`${url}/`, { authorization: `${headers.authorization.slice(0, -4)}AAAA` });
      if (forged.status !== 401) notes.push(`MISSING jwt: token with a bad signature → ${forged.status}, expected 401`);
    }
    const rl = Object.keys(ok.headers).some((h) => h === 'ratelimit' || h === 'ratelimit-policy' || h.startsWith('x-ratelimit'));
    if (!rl) notes.push('MISSING ratelimit: no RateLimit/RateLimit-Policy header on responses');
    if (metrics.status === 200 && !/circuit|breaker/i.test(metrics.body)) notes.push('MISSING breaker: no circuit-breaker series in /metrics');
    if (target.dashboard) {
      const dash = await httpGet(`${url}/dashboard/api/metrics`).catch((e) => ({ status: 0, body: e.message }));
      if (dash.status !== 200) notes.push(`MISSING dashboard: GET /dashboard/api/metrics → ${dash.status}`);
    }
  }

  if (target.adaptive) {
    // Wait (up to 8 s) until the route's limit is learned: the row must measure the enforcing path.
    const t0 = Date.now();
    let limit = null;
    while (Date.now() - t0 < 8000 && limit === null) {
      for (let i = 0; i < 20; i++) await httpGet(`${url}/`, headers);
      const r = await httpGet(`${url}/analytics/routes`).catch(() => null);
      limit = r?.status === 200 ? (JSON.parse(r.body).routes?.[0]?.current_rate_limit ?? null) : null;
      if (limit === null) await new Promise((res) => setTimeout(res, 200));
    }
    if (limit === null) notes.push('MISSING adaptive: no learned route limit in /analytics/routes after 8 s');
  }

  if (target.redis) {
    // The gateway may answer before its Redis connection is up (requests then use the local
    // fallback): give the store a few seconds, and say how long it took.
    const t0 = Date.now();
    let used = NaN;
    let health = null;
    while (Date.now() - t0 < 5000) {
      const before = await redisCommandsProcessed(redisPort);
      for (let i = 0; i < 5; i++) await httpGet(`${url}/`, headers);
      used = (await redisCommandsProcessed(redisPort)) - before - 1; // minus the first INFO
      health = await httpGet(`${url}/health`).catch(() => null);
      if (used >= 5 && health?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const waited = Date.now() - t0;
    if (!(used >= 5)) notes.push(`MISSING redis: ${Number.isFinite(used) ? used : '?'} Redis commands for 5 requests after ${waited} ms (store not used?)`);
    else if (waited > 300) notes.push(`Redis store on the request path only ~${waited} ms after the gateway answered (local fallback until then)`);
    if (health && health.status !== 200) notes.push(`/health ${health.status}: ${health.body.slice(0, 120)}`);
  }
  return { fatal: null, notes };
}
