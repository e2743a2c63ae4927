/**
 * Hot reload: what a reload reports, what it may change live (`planReload`), and its counter.
 * The orchestration (building a new generation beside the old one and swapping it between
 * requests) is the gateway's; see docs/decisions.md "Reload".
 */
import { Counter, type Registry } from 'prom-client';
import type { ConfigProblem } from '../config/index.js';

export { planReload, RESTART_REQUIRED, type ReloadPlan } from './plan.js';

/** A reload that took effect. Lists are of route prefixes, backend URLs, process ids and setting names. */
export interface ReloadSuccess {
  result: 'success';
  /** The file read, or null when a snapshot was passed in. */
  file: string | null;
  /** Counts reloads that took effect (0 = the config the gateway started with). */
  generation: number;
  /** False when the file changed nothing that runs. */
  changed: boolean;
  routes: { added: string[]; removed: string[]; changed: string[] };
  backends: { added: string[]; removed: string[]; changed: string[] };
  /** Live sections that changed: `auth`, `ratelimit`, `circuitbreaker`, `adaptive_rate_limit`, `server.body_limit`, … */
  sections: string[];
  processes: { added: string[]; removed: string[]; changed: string[]; started: string[]; stopped: string[] };
  /** Settings that differ in the file but keep their running value until a restart. */
  restart_required: string[];
}

/** A problem as the API and the `config` event show it: the parts, and the `file:line:col key: message` line. */
export interface ReloadProblem extends ConfigProblem {
  text: string;
}

/** A reload that changed nothing. */
export interface ReloadFailure {
  result: 'error';
  file: string | null;
  /** `invalid`: the file has problems; `failed`: it is valid but the new parts could not be built or started; `busy`: shutting down. */
  reason: 'invalid' | 'failed' | 'busy';
  problems: ReloadProblem[];
}

export type ReloadOutcome = ReloadSuccess | ReloadFailure;

/** What the dashboard (and any module) may ask of the gateway: re-read the config file. */
export interface Reloader {
  /** Re-reads the config file; never rejects. Reloads run one at a time. */
  reload(): Promise<ReloadOutcome>;
}

/** `gateway_config_reloads_total{result="success"|"failure"}` on a metrics registry (both series start at 0). */
export function reloadCounter(registry: Registry): Counter<'result'> {
  const counter = new Counter({
    name: 'gateway_config_reloads_total',
    help: 'Config reloads (SIGHUP, --watch, POST /dashboard/api/reload) by result',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  counter.inc({ result: 'success' }, 0);
  counter.inc({ result: 'failure' }, 0);
  return counter;
}
