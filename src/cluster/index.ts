/**
 * Every core: `server.workers: N | auto` runs N worker processes (node:cluster) behind one port,
 * each a full pipeline, and a primary that owns what must exist once (managed processes, health
 * checks, the admin surface's aggregated views, the rate-limit buckets workers lease tokens from).
 * Loaded only when workers > 1: a single process runs none of this.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { runPrimary, type ClusterPrimary } from './primary.js';
import { runWorker, type WorkerOptions } from './worker.js';

export { LeaseLedger, type LeaseLedgerOptions } from './lease-ledger.js';
export { LeaseStore, MAX_LEASE, type LeaseStoreOptions } from './ipc-store.js';
export { RecordBatcher } from './record-batcher.js';
export { RouteLedger, type RouteLedgerOptions } from './route-ledger.js';
export { RouteLeaseStore, MAX_ROUTE_LEASE, type RouteLeaseStoreOptions } from './route-lease-store.js';
export { BaselineFeed, collectBaselines } from './baselines.js';
export { runPrimary, type ClusterPrimary, type PrimaryOptions } from './primary.js';
export { runWorker, type WorkerOptions } from './worker.js';
export { workerModules, PRIMARY_ONLY } from './worker-modules.js';
export type { ClusterRole, EmbeddedGateway, EmbeddedGatewayOptions, GatewayFactory } from './embed.js';
export type { BaselinesMessage, LeaseAsk, LeaseGrant, LeaseSettle, PrimaryToWorker, RouteAsk, RouteGrant, WorkerToPrimary } from './messages.js';

/** Worker processes for `server.workers` (`auto` = the cores this process may use). */
export function resolveWorkers(value: number | 'auto'): number {
  return value === 'auto' ? Math.max(1, availableParallelism()) : value;
}

/** What a worker gets (src/cluster does not import gateway.ts: the CLI passes its createGateway), and the primary's callback. */
export interface ClusterRun extends WorkerOptions {
  /** The primary is up: print the public URL. */
  onListening?: (port: number) => void;
}

/**
 * Runs this process as the primary or as a worker. Resolves null when `workers` comes to 1 (the
 * caller runs the single-process gateway), the primary's handle, or 'worker'.
 */
export async function runCluster(run: ClusterRun): Promise<ClusterPrimary | 'worker' | null> {
  if (cluster.isWorker) {
    await runWorker(run);
    return 'worker';
  }
  const workers = resolveWorkers(run.config.server.workers);
  if (workers <= 1) return null;
  return runPrimary({ ...run, workers });
}
