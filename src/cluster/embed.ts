/**
 * What the cluster needs of the gateway, structurally: the CLI hands in its `createGateway` (src/cluster
 * embeds the gateway like the CLI does, and, like every part but the CLI, does not import gateway.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Backend } from '../balancer/index.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/index.js';
import type { CompletionRecord } from '../events/index.js';
import type { HealthChecker } from '../health/index.js';
import type { AdminHandler, ModuleSpec } from '../host.js';
import type { Logger } from '../logging/index.js';
import type { Metrics } from '../metrics/index.js';
import type { ProcessManager } from '../procman/index.js';

/** The `cluster` option of createGateway. */
export type ClusterRole = { role: 'worker'; relayAdmin: AdminHandler } | { role: 'primary'; admit(req: IncomingMessage, res: ServerResponse): boolean };

export interface EmbeddedGatewayOptions {
  logger: Logger;
  /** The file `reloadFromFile()` re-reads. */
  configFile?: string;
  baseDir?: string;
  echoProcessOutput?: boolean;
  modules?: readonly ModuleSpec[];
  cluster?: ClusterRole;
}

/** The members of a Gateway the cluster uses. */
export interface EmbeddedGateway {
  readonly clock: Clock;
  readonly bus: { publish(record: CompletionRecord): void };
  readonly notices: { publish(event: string, data: unknown): void };
  readonly backends: ReadonlyMap<string, Backend>;
  readonly health: HealthChecker;
  readonly metrics: Metrics;
  readonly processes: ProcessManager;
  readonly port: number;
  readonly draining: boolean;
  start(opts?: { port?: number; host?: string }): Promise<void>;
  /** Re-reads the config file and puts it in force (never rejects; the outcome is logged). */
  reloadFromFile(): Promise<{ result: string }>;
  close(): Promise<void>;
  onClose(closer: () => Promise<void> | void): void;
}

export type GatewayFactory = (config: Config, opts: EmbeddedGatewayOptions) => EmbeddedGateway;
