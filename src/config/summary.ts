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
    const flags = [r.strategy, r.strip_prefix ? 'strip_prefix' : '', r.public ? 'public' : '', r.timeout ? `timeout ${r.timeout}ms` : '']
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
  lines.push(`health checks: every ${cfg.healthcheck.interval}ms on ${cfg.healthcheck.path}`);
  lines.push(`cluster store: ${cfg.cluster.redis_url ? cfg.cluster.redis_url.replace(/\/\/[^@]*@/, '//***@') : 'memory (single instance)'}`);
  lines.push(`dashboard: ${cfg.dashboard.enabled ? `on at /dashboard/ (log ${cfg.dashboard.log_capacity})` : 'off'}`);
  for (const p of cfg.processes) lines.push(`process ${p.id}: ${p.command} ${p.args.join(' ')}${p.auto_start ? ' (auto start)' : ''}`);
  for (const w of notYetBuilt(cfg)) lines.push(`note: ${w}`);
  return lines.join('\n');
}

/** Keys that are valid but belong to the adaptive layer, which is not built yet: said out loud, never silently ignored. */
export function notYetBuilt(cfg: Config): string[] {
  const out: string[] = [];
  if (cfg.adaptive_rate_limit.enabled) out.push('adaptive_rate_limit.* is accepted, but not built yet: the static ratelimit applies');
  if (cfg.weighted_lb.enabled) out.push('weighted_lb.* is accepted, but not built yet: routes use their strategy');
  return out;
}
