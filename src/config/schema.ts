/**
 * The config schema: every key MicroGate reads, with its type, default and limits. Objects are
 * strict, so an unknown (mistyped) key is an error. Durations are milliseconds after parsing.
 * The reference (Go) config loads unchanged; see docs/configuration.md for every key.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { isAdminPath, normalizePrefix } from './runtime.js';
import { parseRedisUrl } from '../store/redis-url.js';
import { parseDuration, parseSize } from './units.js';

/** A duration: "30s", "1m30s", "250ms", or a bare number meaning seconds. Result in ms. */
function duration(opts: { min?: number; allowZero?: boolean; requireUnit?: boolean } = {}) {
  return z.union([z.number(), z.string()]).transform((value, ctx) => {
    if (opts.requireUnit && (typeof value === 'number' || /^\s*[\d.]+\s*$/.test(value))) {
      ctx.addIssue({ code: 'custom', message: `write a unit (e.g. "${String(value)}ms" or "${String(value)}s"): a bare number here is ambiguous` });
      return z.NEVER;
    }
    const ms = typeof value === 'number' ? value * 1000 : parseDuration(value);
    if (ms === undefined || !Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a duration (use e.g. "500ms", "30s", "5m", "1h")` });
      return z.NEVER;
    }
    if (ms < 0 || (ms === 0 && !opts.allowZero)) {
      ctx.addIssue({ code: 'custom', message: `must be greater than zero (got ${String(value)})` });
      return z.NEVER;
    }
    if (opts.min !== undefined && ms < opts.min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${opts.min}ms (got ${String(value)})` });
      return z.NEVER;
    }
    return ms;
  });
}

/** A byte size: "10MB", "512KiB", or a number of bytes. */
const size = z.union([z.number().int().positive(), z.string()]).transform((value, ctx) => {
  const bytes = typeof value === 'number' ? value : parseSize(value);
  if (bytes === undefined || bytes <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${String(value)}" is not a size (use e.g. "10MB" or a byte count)` });
    return z.NEVER;
  }
  return bytes;
});

const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && u.username === '' && u.password === '';
  } catch {
    return false;
  }
}, 'must be an http:// or https:// URL with a host and no credentials');

const port = z.number().int().min(0).max(65535);

/** An IP address or CIDR (v4 or v6). */
const ipOrCidr = z.string().refine((s) => {
  const [addr, bits, ...rest] = s.split('/');
  if (rest.length > 0 || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  if (!/^\d+$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}, 'must be an IP address or CIDR, like 10.0.0.0/8');

const backendObject = z.strictObject({
  url: httpUrl,
  health_path: z.string().startsWith('/').optional(),
});
const backendEntry = z.union([httpUrl, backendObject]);

const routeRateLimit = z.strictObject({
  max_tokens: z.number().min(1, 'must be at least 1: each request costs one token, so a smaller bucket would deny every request'),
  refill_rate: z.number().positive('must be greater than zero'),
});

// --- proxy hardening (issue 7): upgrade tokens a route may tunnel ---
/** An RFC 9110 token, compared case-insensitively (kept lower-cased). */
const upgradeToken = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\/[!#$%&'*+.^_`|~0-9A-Za-z-]+)?$/, 'must be an upgrade token such as "websocket"')
  .transform((s) => s.toLowerCase())
  .refine((s) => s !== 'h2c' && !s.startsWith('h2c/'), 'h2c cannot be tunnelled: after the switch every request on the connection would reach the backend past auth, limits and logging');
const upgradeTokens = z.array(upgradeToken);
// --- end proxy hardening ---

const routeSchema = z
  .strictObject({
    path: z
      .string()
      .startsWith('/', 'must start with "/"')
      .refine((p) => !/[?#\s]/.test(p), 'must not contain "?", "#" or spaces')
      .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'must not contain "." or ".." segments'),
    backend: backendEntry.optional(),
    backends: z.array(backendEntry).optional(),
    strategy: z.enum(['round-robin', 'random', 'weighted']).default('round-robin'),
    strip_prefix: z.boolean().default(false),
    timeout: duration().optional(),
    connect_timeout: duration().optional(),
    health_path: z.string().startsWith('/').optional(),
    public: z.boolean().default(false),
    /** When every backend is unhealthy, send to them anyway instead of answering 503 (logged as decision `panic`). */
    panic: z.boolean().default(false),
    ratelimit: z.union([routeRateLimit, z.literal(false)]).optional(),
    /** Upgrade tokens (RFC 9110 §7.8) tunnelled to the backend after it answers 101; any other token is stripped. */
    upgrades: upgradeTokens.default(['websocket']),
  })
  .superRefine((route, ctx) => {
    if (!route.backend && (!route.backends || route.backends.length === 0)) {
      ctx.addIssue({ code: 'custom', message: 'a route needs "backend" or a non-empty "backends" list', path: ['backends'] });
    }
    if (route.backend && route.backends && route.backends.length > 0) {
      ctx.addIssue({ code: 'custom', message: 'give either "backend" or "backends", not both', path: ['backend'] });
    }
  });

const apiKeyEntry = z.union([
  z.string().min(8, 'an API key must be at least 8 characters'),
  z.strictObject({ id: z.string().min(1).max(64), key: z.string().min(8, 'an API key must be at least 8 characters') }),
]);

const HMAC_ALGS = ['HS256', 'HS384', 'HS512'] as const;
const ASYM_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const authSchema = z
  .strictObject({
    api_keys: z.array(apiKeyEntry).default([]),
    jwt_secret: z.string().optional(),
    jwt_algorithms: z.array(z.enum([...HMAC_ALGS, ...ASYM_ALGS])).min(1).optional(),
    jwt_public_key: z.string().optional(),
    jwks_url: httpUrl.optional(),
    jwks_cache_ttl: duration().default(600_000),
    issuer: z.union([z.string(), z.array(z.string())]).optional(),
    audience: z.union([z.string(), z.array(z.string())]).optional(),
    required_claims: z.array(z.string().min(1)).default([]),
    clock_tolerance: duration({ allowZero: true }).default(30_000),
    max_token_bytes: z.number().int().min(256).max(65536).default(8192),
    strip_credentials: z.boolean().default(false),
    // --- access control (issue 7): per-address budget of failed credential attempts ---
    failure_budget: z
      .strictObject({
        enabled: z.boolean().default(true),
        max_failures: z.number().int().min(1, 'must be at least 1 failed attempt').default(10),
        refill_rate: z.number().positive('must be greater than zero: with no refill an address is locked out for good').default(0.1),
      })
      .default({ enabled: true, max_failures: 10, refill_rate: 0.1 }),
  })
  .superRefine((auth, ctx) => {
    if (auth.jwt_secret !== undefined && Buffer.byteLength(auth.jwt_secret) < 16) {
      ctx.addIssue({
        code: 'custom',
        path: ['jwt_secret'],
        message: 'an HMAC secret must be at least 16 bytes (an empty or short secret can be brute-forced)',
      });
    }
    if (auth.jwt_public_key !== undefined && auth.jwks_url !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['jwks_url'], message: 'give either jwt_public_key or jwks_url, not both' });
    }
    if (auth.jwks_url !== undefined) {
      const u = new URL(auth.jwks_url);
      const local = u.hostname === 'localhost' || u.hostname === '127.0.0.1' || u.hostname === '[::1]';
      if (u.protocol !== 'https:' && !local) {
        ctx.addIssue({ code: 'custom', path: ['jwks_url'], message: 'must be https:// (over plain http anyone on the path could inject signing keys)' });
      }
    }
    if (auth.api_keys.length === 0 && auth.jwt_secret === undefined && auth.jwt_public_key === undefined && auth.jwks_url === undefined) {
      ctx.addIssue({ code: 'custom', message: 'an auth section needs api_keys, jwt_secret, jwt_public_key or jwks_url (remove the section to leave routes open)' });
    }
    const ids = auth.api_keys.filter((k) => typeof k !== 'string').map((k) => (k as { id: string }).id);
    if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', path: ['api_keys'], message: 'duplicate API key id' });
    const keys = auth.api_keys.map((k) => (typeof k === 'string' ? k : k.key));
    if (new Set(keys).size !== keys.length) ctx.addIssue({ code: 'custom', path: ['api_keys'], message: 'duplicate API key' });
  });

const rateLimitSchema = z.strictObject({
  enabled: z.boolean().default(true),
  max_tokens: z.number().min(1, 'must be at least 1: each request costs one token, so a smaller (or zero-capacity) bucket would deny every request'),
  refill_rate: z.number().positive('must be greater than zero: with no refill a client is locked out for good'),
  scope: z.enum(['global', 'route']).default('global'),
  idle_ttl: duration().default(600_000),
  max_buckets: z.number().int().positive().default(250_000), // issue 7: at most ~48 MB of buckets (docs/configuration.md)
});

const breakerSchema = z.strictObject({
  threshold: z.number().int().positive('must be at least 1 consecutive failure').default(5),
  timeout: duration().default(30_000),
  half_open_requests: z.number().int().positive().default(1),
  // --- adaptive breaker (issue 11, src/adaptive/breaker-tuning.ts) ---
  // Optional on purpose: their defaults (adaptive = analytics.enabled, window 10s, min_requests 20) are
  // resolved after parse by resolveAdaptiveConfig() in src/adaptive/config.ts.
  /** Trip on the windowed error rate against the backend's learned threshold. Default: analytics.enabled. */
  adaptive: z.boolean().optional(),
  /** Window of the error rate (default 10s). */
  window: duration({ min: 1_000 }).optional(),
  /** Requests the window must hold before the error rate can trip the breaker (default 20). */
  min_requests: z.number().int().positive('must be at least 1').optional(),
  // --- end adaptive breaker ---
});

const healthSchema = z.strictObject({
  interval: duration({ min: 100 }).default(10_000),
  timeout: duration().default(2_000),
  path: z.string().startsWith('/').default('/'),
  healthy_threshold: z.number().int().positive().default(2),
  unhealthy_threshold: z.number().int().positive().default(2),
});

const dashboardSchema = z.strictObject({
  enabled: z.boolean().default(true),
  log_capacity: z.number().int().min(1).max(1_000_000).default(1000),
  sse_buffer: z.number().int().min(1).max(100_000).default(256),
  sse_history: z.number().int().min(0).max(100_000).default(500),
  heartbeat: duration().default(15_000),
});

// --- analytics (learning from traffic): src/analytics ---
/** Analytics durations below this are refused: buckets and analyses finer than a second are noise. */
const ANALYTICS_MIN_MS = 1_000;
/** Most buckets one series may keep (retention / bucket_interval): one week of one-minute buckets. Same as src/analytics MAX_SLOTS. */
const ANALYTICS_MAX_SLOTS = 10_080;
const analyticsDuration = (fallback: number) => duration({ min: ANALYTICS_MIN_MS }).default(fallback);
const analyticsSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    bucket_interval: analyticsDuration(60_000),
    retention: analyticsDuration(48 * 3_600_000),
    analyzer_interval: analyticsDuration(300_000),
    /** Baselines are computed over this much history (new key). */
    window: analyticsDuration(3_600_000),
    /** |z| above this is an anomaly (new key). */
    z_threshold: z.number().positive('must be greater than zero').max(100).default(3),
  })
  .superRefine((a, ctx) => {
    if (a.window < 3 * a.bucket_interval) {
      ctx.addIssue({ code: 'custom', path: ['window'], message: `must cover at least 3 buckets of bucket_interval (${a.bucket_interval / 1000}s), got ${a.window / 1000}s` });
    }
    if (a.window > a.retention) {
      ctx.addIssue({ code: 'custom', path: ['window'], message: `must not be longer than retention (${a.retention / 1000}s): buckets older than the retention are gone` });
    }
    if (a.retention / a.bucket_interval > ANALYTICS_MAX_SLOTS) {
      ctx.addIssue({
        code: 'custom',
        path: ['retention'],
        message: `keeps ${Math.ceil(a.retention / a.bucket_interval)} buckets of ${a.bucket_interval / 1000}s per series; at most ${ANALYTICS_MAX_SLOTS} (memory is allocated up front): shorten retention or widen bucket_interval`,
      });
    }
  });
// --- end analytics ---

const ADAPTIVE_MIN_DEFAULT = 10;
const ADAPTIVE_MAX_DEFAULT = 10_000;
const adaptiveSchema = z.strictObject({
  enabled: z.boolean().default(false),
  multiplier: z.number().positive('must be greater than zero (the limit is the learned rate times this)').default(3),
  min_limit: z.number().positive().default(ADAPTIVE_MIN_DEFAULT),
  max_limit: z.number().positive().default(ADAPTIVE_MAX_DEFAULT),
  learning_period: duration().default(3_600_000),
  shadow: z.boolean().default(false),
  // --- adaptive limit burst (issue 11): the route bucket holds this much of the limit (10s of 1200/min = 200 requests) ---
  burst: duration().default(10_000),
});

const weightedSchema = z.strictObject({
  enabled: z.boolean().default(false),
  rebalance_interval: duration().default(300_000),
});

const processSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of letters, digits, ".", "_" or "-"'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  port: port.optional(),
  route: z.string().startsWith('/').optional(),
  auto_start: z.boolean().default(false),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).default({}),
  restart: z.enum(['never', 'on-failure']).default('never'),
  stop_timeout: duration().default(5_000),
  // --- operations (issue 9) ---
  /** How long start-up waits for an auto-started process's first good probe before listening anyway (default 15s). */
  start_timeout: duration().optional(),
  /** Pass the gateway's whole environment to the child (default: only PATH, HOME, LANG, LC_*, TZ, NODE_ENV, PORT). */
  inherit_env: z.boolean().optional(),
});

const adminSchema = z.strictObject({
  token: z.string().min(16, 'the admin token must be at least 16 characters').optional(),
  allow_loopback: z.boolean().default(true),
  allowed_commands: z.array(z.string().min(1)).default([]),
  public_metrics: z.boolean().default(true),
  public_health: z.boolean().default(true),
});

const clusterSchema = z.strictObject({
  // Read by the rules the Redis client reads it by (src/store/redis-url.ts).
  redis_url: z
    .string()
    .superRefine((url, ctx) => {
      if (!/^rediss?:\/\//.test(url)) {
        ctx.addIssue({ code: 'custom', message: 'must be a redis:// or rediss:// URL' });
        return;
      }
      try {
        parseRedisUrl(url);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^redis: /, '') });
      }
    })
    .optional(),
  key_prefix: z.string().default('microgate:'),
  timeout: duration({ requireUnit: true }).default(50),
  fail_closed: z.boolean().default(false),
});

/** What server.workers accepts (issue 10). */
const WORKERS_RULE = 'must be a whole number from 1 to 256, or "auto"';

const serverSchema = z.strictObject({
  port: port.default(8080),
  host: z
    .string()
    .refine((h) => isIP(h) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(h), 'must be an IP address or a host name, like 0.0.0.0, 127.0.0.1 or ::')
    .default('0.0.0.0'),
  trusted_proxies: z.array(ipOrCidr).default([]),
  body_limit: size.default(50 * 1024 * 1024),
  max_header_size: z.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
  header_timeout: duration().default(10_000),
  request_timeout: duration().default(300_000),
  idle_timeout: duration().default(65_000),
  upstream_timeout: duration().default(30_000),
  upstream_body_timeout: duration().default(300_000),
  connect_timeout: duration().default(5_000),
  upstream_connections: z.number().int().positive().default(256),
  /** Requests that may wait for a connection to one backend beyond upstream_connections; more → 503. */
  upstream_queue_limit: z.number().int().min(0).default(1024),
  shutdown_timeout: duration().default(10_000),
  /** On shutdown, keep serving this long with /health/ready answering 503 before the listener closes (issue 9). */
  drain_delay: duration({ allowZero: true }).default(0),
  // --- proxy hardening (issue 7) ---
  /** Client connections held at once (tunnels included); beyond it a new connection is closed at once. */
  max_connections: z.number().int().positive().default(10_000),
  /** Request header fields allowed (each repeated one counts); more → 431. */
  max_headers: z.number().int().min(16).max(2000).default(100),
  /** Request bodies up to this size (Content-Length, or chunked until this much) are read whole before a backend connection is taken. */
  request_buffer: z.union([z.literal(0), size]).default(64 * 1024),
  /** Longest silence while a request body is being received; then 408 request_timeout. */
  body_timeout: duration().default(30_000),
  /** A WebSocket (upgraded) tunnel with no bytes either way for this long is closed. */
  tunnel_idle_timeout: duration().default(600_000),
  // --- end proxy hardening ---
  // --- workers (issue 10, every core) ---
  /** Worker processes behind the one port (node:cluster); `auto` = the cores available. 1 = a single process (no cluster code). */
  workers: z
    .union([z.literal('auto'), z.number().int(WORKERS_RULE).min(1, WORKERS_RULE).max(256, WORKERS_RULE)], { error: WORKERS_RULE })
    .default(1),
  // --- end workers ---
  /** How often memory glibc holds free is handed back (src/memory-trim.ts); 0 = never. */
  memory_trim_interval: duration({ allowZero: true })
    .refine((ms) => ms === 0 || ms >= 1000, 'must be 0 (off) or at least 1s')
    .default(30_000),
});

const loggingSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  access_log: z.boolean().default(true),
  pretty: z.boolean().optional(),
  /**
   * Longest time a log line waits in the gateway before it is written to stdout (lines are
   * batched: one write per interval, or sooner when 256 access lines or 64 KiB are pending).
   */
  flush_interval: duration()
    .refine((ms) => ms >= 1 && ms <= 60_000, 'must be between 1ms and 60s')
    .default(25),
});

/** The whole file. Sections left out get their defaults. */
export const configSchema = z
  .strictObject({
    server: serverSchema.default(serverSchema.parse({})),
    routes: z.array(routeSchema).default([]),
    ratelimit: rateLimitSchema.optional(),
    auth: authSchema.optional(),
    circuitbreaker: breakerSchema.default(breakerSchema.parse({})),
    healthcheck: healthSchema.default(healthSchema.parse({})),
    dashboard: dashboardSchema.default(dashboardSchema.parse({})),
    analytics: analyticsSchema.default(analyticsSchema.parse({})),
    adaptive_rate_limit: adaptiveSchema.default(adaptiveSchema.parse({})),
    weighted_lb: weightedSchema.default(weightedSchema.parse({})),
    processes: z.array(processSchema).default([]),
    admin: adminSchema.default(adminSchema.parse({})),
    cluster: clusterSchema.default(clusterSchema.parse({})),
    logging: loggingSchema.default(loggingSchema.parse({})),
    data_dir: z.string().default('./data'),
  });

/** `related`: a second place in the file the message names; `{related}` in the message becomes its file:line:col. */
type Issue = { path: (string | number)[]; message: string; related?: (string | number)[] };

/**
 * Checks across entries (duplicate paths and ids, references between sections). They run on the
 * raw input, defensively, so they are reported together with type errors elsewhere in the file.
 */
export function crossCheck(raw: unknown): Issue[] {
  const issues: Issue[] = [];
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return issues;
  const cfg = raw as Record<string, unknown>;
  const routes = Array.isArray(cfg.routes) ? cfg.routes : [];
  const seen = new Map<string, number>();
  routes.forEach((r: unknown, i) => {
    if (!r || typeof r !== 'object') return;
    const route = r as Record<string, unknown>;
    if (typeof route.path === 'string') {
      const norm = normalizePrefix(route.path);
      const prev = seen.get(norm);
      if (prev !== undefined) issues.push({ path: ['routes', i, 'path'], message: `duplicate route path (same as routes[${prev}])` });
      else seen.set(norm, i);
      if (isAdminPath(norm)) issues.push({ path: ['routes', i, 'path'], message: `"${route.path}" is answered by the gateway itself and cannot be proxied` });
    }
    if (route.ratelimit && typeof route.ratelimit === 'object' && cfg.ratelimit === undefined) {
      issues.push({ path: ['routes', i, 'ratelimit'], message: 'a per-route limit needs the top-level ratelimit section (it sets scope and eviction)' });
    }
  });
  const processes = Array.isArray(cfg.processes) ? cfg.processes : [];
  const ids = new Map<string, number>();
  processes.forEach((p: unknown, i) => {
    if (!p || typeof p !== 'object') return;
    const proc = p as Record<string, unknown>;
    if (typeof proc.id === 'string') {
      const prev = ids.get(proc.id);
      if (prev !== undefined) issues.push({ path: ['processes', i, 'id'], message: `duplicate process id (same as processes[${prev}])` });
      else ids.set(proc.id, i);
    }
    if (typeof proc.route === 'string' && !seen.has(normalizePrefix(proc.route))) {
      issues.push({ path: ['processes', i, 'route'], message: `no route with path "${proc.route}"` });
    }
  });
  issues.push(...sharedBackendConflicts(cfg, routes));
  const arl = cfg.adaptive_rate_limit as Record<string, unknown> | undefined;
  if (arl && typeof arl === 'object') {
    const min = typeof arl.min_limit === 'number' ? arl.min_limit : ADAPTIVE_MIN_DEFAULT;
    const max = typeof arl.max_limit === 'number' ? arl.max_limit : ADAPTIVE_MAX_DEFAULT;
    if (min > max) issues.push({ path: ['adaptive_rate_limit', typeof arl.min_limit === 'number' ? 'min_limit' : 'max_limit'], message: `min_limit (${min}) must not exceed max_limit (${max})` });
  }
  issues.push(...adaptiveNeedsAnalytics(cfg));
  return issues;
}

// --- operations (issue 9): one backend URL, one health check and one connect timeout ---

type Place = { value: string | number; path: (string | number)[]; route: number };

/**
 * Routes naming the same backend URL share one Backend (one pool, one breaker, one health state),
 * so they must agree on its health_path and connect_timeout: a disagreement is an error that names
 * both places, instead of the first route silently winning.
 */
function sharedBackendConflicts(cfg: Record<string, unknown>, routes: unknown[]): Issue[] {
  const issues: Issue[] = [];
  const server = cfg.server && typeof cfg.server === 'object' ? (cfg.server as Record<string, unknown>) : {};
  const hc = cfg.healthcheck && typeof cfg.healthcheck === 'object' ? (cfg.healthcheck as Record<string, unknown>) : {};
  const defaultHealth = typeof hc.path === 'string' ? hc.path : '/';
  const defaultConnect = durationMs(server.connect_timeout) ?? 5_000;
  const health = new Map<string, Place>();
  const connect = new Map<string, Place>();
  routes.forEach((r: unknown, i) => {
    if (!r || typeof r !== 'object') return;
    const route = r as Record<string, unknown>;
    const entries: [unknown, (string | number)[]][] = Array.isArray(route.backends)
      ? route.backends.map((b, j) => [b, ['routes', i, 'backends', j]])
      : route.backend !== undefined
        ? [[route.backend, ['routes', i, 'backend']]]
        : [];
    const routeConnect = durationMs(route.connect_timeout);
    for (const [entry, at] of entries) {
      const obj = entry && typeof entry === 'object' ? (entry as Record<string, unknown>) : null;
      const url = typeof entry === 'string' ? entry : typeof obj?.url === 'string' ? obj.url : undefined;
      if (url === undefined) continue;
      const hp: Place =
        typeof obj?.health_path === 'string'
          ? { value: obj.health_path, path: [...at, 'health_path'], route: i }
          : typeof route.health_path === 'string'
            ? { value: route.health_path, path: ['routes', i, 'health_path'], route: i }
            : { value: defaultHealth, path: at, route: i };
      const ct: Place = routeConnect !== undefined ? { value: routeConnect, path: ['routes', i, 'connect_timeout'], route: i } : { value: defaultConnect, path: at, route: i };
      for (const [seen, place, key, show] of [
        [health, hp, 'health_path', (v: string | number) => JSON.stringify(v)],
        [connect, ct, 'connect_timeout', (v: string | number) => `${v}ms`],
      ] as const) {
        const first = seen.get(url);
        if (first === undefined) {
          seen.set(url, place);
        } else if (first.value !== place.value) {
          issues.push({
            path: place.path,
            related: first.path,
            message:
              `backend ${url} is also named by routes[${first.route}] at {related} with ${key} ${show(first.value)}, here ${show(place.value)}: ` +
              `routes naming one backend URL share its ${key === 'health_path' ? 'health check' : 'connection pool'}, so give them the same ${key}`,
          });
        }
      }
    }
  });
  return issues;
}

function durationMs(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : undefined;
  if (typeof v === 'string') return parseDuration(v);
  return undefined;
}

// --- adaptive layer cross-checks (issue 11) ---
/** The acting half of the adaptive layer acts on what analytics learned: switching it on without analytics is an error. */
function adaptiveNeedsAnalytics(cfg: Record<string, unknown>): Issue[] {
  const section = (v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  if (section(cfg.analytics)?.enabled === true) return [];
  const out: Issue[] = [];
  const need = (path: string[], what: string) =>
    out.push({ path, message: `${path.join('.')}: true needs analytics.enabled: true (${what}); enable analytics or switch this off` });
  if (section(cfg.adaptive_rate_limit)?.enabled === true) need(['adaptive_rate_limit', 'enabled'], 'the limit is learned from its traffic baselines');
  if (section(cfg.weighted_lb)?.enabled === true) need(['weighted_lb', 'enabled'], 'weights start from its backend baselines');
  if (section(cfg.circuitbreaker)?.adaptive === true) need(['circuitbreaker', 'adaptive'], 'thresholds come from its backend error baselines');
  return out;
}
// --- end adaptive layer cross-checks ---

export type Config = z.output<typeof configSchema>;
export type ServerConfig = Config['server'];
export type RouteConfig = Config['routes'][number];
export type AuthConfig = NonNullable<Config['auth']>;
export type RateLimitConfig = NonNullable<Config['ratelimit']>;
export type BreakerConfig = Config['circuitbreaker'];
export type HealthConfig = Config['healthcheck'];
export type DashboardConfig = Config['dashboard'];
export type ProcessConfig = Config['processes'][number];
export type AdminConfig = Config['admin'];
export type ClusterConfig = Config['cluster'];
export type LoggingConfig = Config['logging'];
export type AnalyticsConfig = Config['analytics'];
