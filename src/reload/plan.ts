/**
 * What a reload may change live and what needs a restart, decided from the two snapshots alone
 * (pure: no I/O, nothing started). Settings that need a restart keep their running value in the
 * snapshot put in force, and are reported, so every part sees one coherent config.
 */
import type { Config } from '../config/index.js';

/**
 * Settings read once when the gateway starts: the listener (port, host, workers, its limits and
 * timeouts), the admin guard, the logger, the cluster store, the dashboard, analytics and the
 * health checker's schedule. A dotted path names a key inside a section; a bare name, the section.
 */
export const RESTART_REQUIRED: readonly string[] = [
  'server.port',
  'server.host',
  'server.workers',
  'server.max_header_size',
  'server.header_timeout',
  'server.request_timeout',
  'server.idle_timeout',
  'server.max_connections',
  'server.max_headers',
  'server.memory_trim_interval',
  'ratelimit.idle_ttl',
  'ratelimit.max_buckets',
  'admin',
  'logging',
  'cluster',
  'dashboard',
  'analytics',
  'healthcheck',
  'data_dir',
];

/** Sections whose changes the result lists under their own names (routes and processes have their own lists). */
const OWN_LISTS = new Set(['routes', 'processes']);

export interface ReloadPlan {
  /** The snapshot to put in force: `next`, with every restart-required setting at its running value. Frozen. */
  effective: Config;
  /** Restart-required settings whose value in the file differs from the running one. */
  restartRequired: string[];
  /** Live sections (and `server.<key>`s) that changed, e.g. `auth`, `ratelimit`, `circuitbreaker`. */
  sections: string[];
  processes: { added: string[]; removed: string[]; changed: string[]; started: string[]; stopped: string[] };
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export function planReload(current: Config, next: Config): ReloadPlan {
  const effective = structuredClone(next) as Record<string, unknown>;
  const restartRequired: string[] = [];
  for (const path of RESTART_REQUIRED) {
    const [section, key] = path.split('.') as [string, string | undefined];
    const cur = (current as Record<string, unknown>)[section];
    const nxt = (next as Record<string, unknown>)[section];
    if (key === undefined) {
      if (same(cur, nxt)) continue;
      restartRequired.push(path);
      effective[section] = structuredClone(cur);
      continue;
    }
    const curV = isObject(cur) ? cur[key] : undefined;
    const nxtV = isObject(nxt) ? nxt[key] : undefined;
    if (same(curV, nxtV)) continue;
    restartRequired.push(path);
    const target = effective[section];
    if (isObject(target)) {
      if (curV === undefined) delete target[key];
      else target[key] = structuredClone(curV);
    }
  }

  const sections: string[] = [];
  const keys = new Set([...Object.keys(current), ...Object.keys(effective)]);
  for (const section of keys) {
    if (OWN_LISTS.has(section)) continue;
    const cur = (current as Record<string, unknown>)[section];
    const eff = effective[section];
    if (same(cur, eff)) continue;
    if (section === 'server' && isObject(cur) && isObject(eff)) {
      for (const k of new Set([...Object.keys(cur), ...Object.keys(eff)])) if (!same(cur[k], eff[k])) sections.push(`server.${k}`);
    } else {
      sections.push(section);
    }
  }

  const before = new Map(current.processes.map((p) => [p.id, p]));
  const after = new Map(next.processes.map((p) => [p.id, p]));
  const added = [...after.keys()].filter((id) => !before.has(id));
  const removed = [...before.keys()].filter((id) => !after.has(id));
  const changed = [...after.keys()].filter((id) => before.has(id) && !same(before.get(id), after.get(id)));
  const started = [...added, ...changed].filter((id) => after.get(id)!.auto_start);
  const stopped = [...removed, ...changed];

  return {
    effective: deepFreeze(effective) as Config,
    restartRequired,
    sections,
    processes: { added, removed, changed, started, stopped },
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
