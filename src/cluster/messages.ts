/**
 * What the primary and its workers say to each other over the cluster IPC channel. Every message is
 * a batch or a rare event: nothing here is sent once per request on the steady path.
 */
import type { CompletionRecord } from '../events/index.js';

/** One lease request: up to `want` tokens of `key`'s bucket (`want` 0 = a peek). */
export interface LeaseAsk {
  /** Correlates the answer (per worker). */
  id: number;
  key: string;
  capacity: number;
  refillPerSec: number;
  /** Tokens the worker would like to hold (the primary may grant fewer). */
  want: number;
  /** The smallest grant that serves the request that asked (its cost; 0 for a peek). */
  cost: number;
  /** The worker's previous lease of this key, settled with this ask (spent or not). */
  settle?: LeaseSettle;
}

/** A lease handed back: `granted` tokens were leased, `unspent` of them go back into the bucket. */
export interface LeaseSettle {
  key: string;
  granted: number;
  unspent: number;
}

/** The primary's answer to one ask. */
export interface LeaseGrant {
  id: number;
  /** Tokens now held by the worker (0 = refused, or a peek). */
  granted: number;
  /** For a peek: whether one token is there. */
  allowed: boolean;
  /** Whole tokens left in the primary's bucket after the grant. */
  remaining: number;
  retryAfterMs: number;
  resetMs: number;
}

/** One ask of the adaptive route bucket (route-ledger.ts): up to `want` tokens of `key`'s bucket. */
export interface RouteAsk {
  id: number;
  key: string;
  ratePerSec: number;
  capacity: number;
  want: number;
  /** How far into debt the grant may take the bucket (≤ 0; fair clients borrow, see route-limit.ts). */
  floor: number;
  /** The worker's previous lease of this key, settled with this ask (`unspent` < 0: admitted on credit). */
  settle?: LeaseSettle;
}

/** The primary's answer to one route ask. */
export interface RouteGrant {
  id: number;
  /** Tokens now held by the worker (0 = none there). */
  granted: number;
  /** Tokens left in the primary's bucket after the grant (negative while in debt). */
  tokens: number;
  /** Workers sharing the bucket (a worker admits on credit at most its share of what is there). */
  holders: number;
  /** When one token will be there again (0 when there is one now). */
  retryAfterMs: number;
}

/** What the adaptive layer reads, as the primary's analytics last computed it (cluster/baselines.ts). */
export interface BaselinesMessage {
  t: 'baselines';
  routes: [route: string, avgRatePerMin: number, dataMs: number][];
  backends: [url: string, latencyMs: number, errorRate: number, sampleSize: number][];
}

export type WorkerToPrimary =
  /** `dropped`: records left out since the last batch because the primary did not keep up. */
  | { t: 'records'; records: CompletionRecord[]; dropped?: number }
  | { t: 'lease'; asks: LeaseAsk[] }
  | { t: 'settle'; items: LeaseSettle[] }
  | { t: 'route-lease'; asks: RouteAsk[] }
  | { t: 'route-settle'; items: LeaseSettle[] }
  | { t: 'connect-failure'; url: string }
  /** Failed cluster-store (Redis) operations of the last second, by operation: the primary counts them. */
  | { t: 'store-errors'; counts: [op: string, n: number][] }
  /** An operator notice published in a worker (rare): the primary's dashboard streams it. */
  | { t: 'notice'; event: string; data: unknown }
  /** The worker listens for messages now (anything sent before would be lost): send it the health states. */
  | { t: 'hello' };

export type PrimaryToWorker =
  | { t: 'leased'; grants: LeaseGrant[] }
  | { t: 'health'; states: [url: string, healthy: boolean | null][] }
  /** Backends joined to routes at run time in the primary (a process added from the dashboard). */
  | { t: 'attach'; items: [route: string, url: string][] }
  | { t: 'reload' }
  | { t: 'route-leased'; grants: RouteGrant[] }
  | BaselinesMessage;

/** Environment variables the primary hands its workers. */
export const ENV_ADMIN_PORT = 'MICROGATE_CLUSTER_ADMIN_PORT';
export const ENV_RELAY_SECRET = 'MICROGATE_CLUSTER_RELAY_SECRET';
export const ENV_PORT = 'MICROGATE_CLUSTER_PORT';
