/** A short human summary of what a config will do, printed by `microgate check`. */
import type { Config } from './schema.js';

function backendUrls(route: Config['routes'][number]): string[] {
  const list = route.backends && route.backends.length > 0 ? route.backends : route.backend ? [route.backend] : [];
  return list.map((b) => (typeof b === 'string' ? b : b.url));
}

export function summarize(cfg: Config): string {
  const lines: string[] = [];
  lines.push(`listen ${cfg.server.host}:${cfg.server.port} (body limit ${cfg.server.body_limit} bytes, upstream timeout ${cfg.server.upstream_timeout}ms)`);
  for (const r of cfg.routes) {
    const flags = [cfg.weighted_lb.enabled ? 'weighted' : r.strategy, r.strip_prefix ? 'strip_prefix' : '', r.public ? 'public' : '', r.timeout ? `timeout ${r.timeout}ms` : '']
      .filter(Boolean)
      .join(', ');
    lines.push(`route ${r.path} -> ${backendUrls(r).join(', ')} (${flags})`);
  }
  if (cfg.auth) {
    const jwt = cfg.auth.jwt_secret ? 'HMAC secret' : cfg.auth.jwt_public_key ? 'public key' : cfg.auth.jwks_url ? `JWKS ${cfg.auth.jwks_url}` : 'off';
    lines.push(`auth: ${cfg.auth.api_keys.length} API key(s), JWT ${jwt}`);
  } else lines.push('auth: off (no auth section; every route is public)');
  if (cfg.ratelimit?.enabled) lines.push(`rate limit: ${cfg.ratelimit.max_tokens} tokens, +${cfg.ratelimit.refill_rate}/s per client (${cfg.ratelimit.scope})`);
  else lines.push('rate limit: off');
  lines.push(`circuit breaker: per backend, opens after ${cfg.circuitbreaker.threshold} consecutive failures, half-open after ${cfg.circuitbreaker.timeout}ms`);
  lines.push(...adaptiveSummary(cfg));
  lines.push(`health checks: every ${cfg.healthcheck.interval}ms on ${cfg.healthcheck.path}`);
  lines.push(`cluster store: ${cfg.cluster.redis_url ? cfg.cluster.redis_url.replace(/\/\/[^@]*@/, '//***@') : 'memory (single instance)'}`);
  lines.push(`dashboard: ${cfg.dashboard.enabled ? `on at /dashboard/ (log ${cfg.dashboard.log_capacity})` : 'off'}`);
  for (const p of cfg.processes) lines.push(`process ${p.id}: ${p.command} ${p.args.join(' ')}${p.auto_start ? ' (auto start)' : ''}`);
  for (const w of [...notYetBuilt(cfg), ...adaptiveNotes(cfg)]) lines.push(`note: ${w}`);
  return lines.join('\n');
}

/** Keys that are valid but not built yet: said out loud, never silently ignored. None left (the adaptive layer is built). */
export function notYetBuilt(_cfg: Config): string[] {
  return [];
}

// --- adaptive layer (issue 11) ---
const seconds = (ms: number) => `${ms / 1000}s`;

/** What the adaptive layer will do, for `microgate check`. */
function adaptiveSummary(cfg: Config): string[] {
  const out: string[] = [];
  const a = cfg.analytics;
  out.push(a.enabled ? `analytics: on (buckets of ${seconds(a.bucket_interval)}, analysis every ${seconds(a.analyzer_interval)}, window ${seconds(a.window)})` : 'analytics: off');
  const arl = cfg.adaptive_rate_limit;
  if (arl.enabled) {
    out.push(
      `adaptive limit: per route, clamp(learned rate × ${arl.multiplier}, ${arl.min_limit}, ${arl.max_limit}) requests/min for all clients together once a route has ${seconds(arl.learning_period)} of data, ` +
        `burst ${seconds(arl.burst)} of it, fair shedding${arl.shadow ? ', SHADOW mode (counted, nothing refused)' : ''}${cfg.cluster.redis_url ? ', shared through Redis' : ''}`,
    );
  } else out.push('adaptive limit: off');
  const weighted = cfg.routes.filter((r) => cfg.weighted_lb.enabled || r.strategy === 'weighted');
  if (cfg.weighted_lb.enabled || weighted.length > 0) out.push(`weighted balancing: ${cfg.weighted_lb.enabled ? 'every route' : weighted.map((r) => r.path).join(', ')}, weight = (1 − error rate) / latency², baselines every ${seconds(cfg.weighted_lb.rebalance_interval)}`);
  const cb = cfg.circuitbreaker;
  if (cb.adaptive ?? a.enabled) {
    out.push(`circuit breaker (learned): once a backend has a baseline, opens when over ${seconds(cb.window ?? 10_000)} (≥ ${cb.min_requests ?? 20} requests) its error rate exceeds clamp(5 × its baseline, 5%, 50%); with fewer requests, on a run of failures unlikely at its baseline`);
  }
  return out;
}

/** Allowed but worth saying: settings that do nothing for some route. */
export function adaptiveNotes(cfg: Config): string[] {
  const out: string[] = [];
  for (const r of cfg.routes) {
    if (!(cfg.weighted_lb.enabled || r.strategy === 'weighted')) continue;
    if (backendUrls(r).length <= 1 && !cfg.processes.some((p) => p.route === r.path)) out.push(`route ${r.path} has one backend: weighted balancing is allowed there, but a no-op`);
  }
  return out;
}
// --- end adaptive layer ---
