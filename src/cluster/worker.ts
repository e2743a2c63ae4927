/**
 * A cluster worker: the full request pipeline on the shared port, without what exists once (see
 * worker-modules.ts). Admin requests are relayed to the primary; completion records and lease asks
 * go to it in batches. Exits 0 after draining on SIGTERM/SIGINT (the primary's shutdown sends SIGTERM).
 */
import type { Config } from '../config/index.js';
import type { Logger } from '../logging/index.js';
import { MODULES } from '../modules.js';
import { adminRelay } from './admin-relay.js';
import type { EmbeddedGateway, GatewayFactory } from './embed.js';
import { BaselineFeed } from './baselines.js';
import { LeaseStore } from './ipc-store.js';
import { RouteLeaseStore } from './route-lease-store.js';
import { ENV_ADMIN_PORT, ENV_RELAY_SECRET, type PrimaryToWorker, type WorkerToPrimary } from './messages.js';
import { workerModules } from './worker-modules.js';

export interface WorkerOptions {
  config: Config;
  logger: Logger;
  port?: number;
  baseDir?: string;
  /** The config file (a reload re-reads it). */
  configFile?: string;
  /** The CLI's createGateway. */
  createGateway: GatewayFactory;
}

/** Runs this process as a worker. Resolves once it listens (the process then lives until told to stop). */
export async function runWorker(opts: WorkerOptions): Promise<void> {
  const { config, logger } = opts;
  const adminPort = Number(process.env[ENV_ADMIN_PORT]);
  const secret = process.env[ENV_RELAY_SECRET] ?? '';
  if (!Number.isInteger(adminPort) || adminPort <= 0 || secret === '') throw new Error('cluster worker started without the primary\'s admin port and relay secret');

  // Listen first: a message that arrives before the gateway is built waits in the inbox.
  const handlers: ((msg: PrimaryToWorker) => void)[] = [];
  let inbox: PrimaryToWorker[] | null = [];
  const dispatch = (msg: PrimaryToWorker): void => {
    for (const h of handlers) h(msg);
  };
  process.on('message', (msg: PrimaryToWorker) => {
    if (inbox !== null) inbox.push(msg);
    else dispatch(msg);
  });
  const send = (msg: WorkerToPrimary): void => {
    if (process.connected) process.send!(msg);
  };
  const sendTracked = (msg: WorkerToPrimary, sent: () => void): void => {
    if (process.connected) process.send!(msg, undefined, undefined, sent);
    else sent();
  };

  const leaseStore = config.cluster.redis_url === undefined ? new LeaseStore({ send }) : null;
  // The adaptive layer: baselines from the primary's analytics, route buckets leased from the primary.
  const baselines = new BaselineFeed();
  const routeStore = config.cluster.redis_url === undefined ? new RouteLeaseStore({ send }) : null;
  handlers.push((msg) => void baselines.receive(msg));
  if (routeStore !== null) {
    handlers.push((msg) => void routeStore.receive(msg));
    routeStore.start();
  }
  let gateway: EmbeddedGateway | null = null;
  const relay = adminRelay({ port: adminPort, secret, draining: () => gateway?.draining ?? false });
  gateway = opts.createGateway(config, {
    logger,
    configFile: opts.configFile,
    baseDir: opts.baseDir,
    echoProcessOutput: false,
    modules: workerModules(MODULES, { send, sendTracked, onMessage: (h) => handlers.push(h), leaseStore, baselines, routeStore }),
    cluster: { role: 'worker', relayAdmin: relay.handler },
  });
  const gw = gateway;
  gw.onClose(() => relay.drain());
  if (routeStore !== null) gw.onClose(() => routeStore.close());
  if (leaseStore !== null) handlers.push((msg) => void leaseStore.receive(msg));

  let stopping = false;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    gw.close()
      .catch((err: unknown) => logger.error({ err }, 'worker shutdown failed'))
      .finally(() => {
        logger.flush?.();
        // Records and settlements queued on the channel go out before the exit.
        const bye = setTimeout(() => process.exit(code), 1000);
        if (!process.connected) return void process.exit(code);
        process.send!({ t: 'records', records: [] }, () => {
          clearTimeout(bye);
          process.exit(code);
        });
      });
  };
  handlers.push((msg) => {
    if (msg.t === 'reload') {
      // The primary reloaded: read the same file, then ask for the health states of what it now has.
      void gw.reloadFromFile().then(() => send({ t: 'hello' }));
    }
  });
  for (const msg of inbox) dispatch(msg);
  inbox = null;
  send({ t: 'hello' });

  // The primary coordinates reloads; a hang-up of the terminal's process group must not end a worker.
  process.on('SIGHUP', () => {});
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  // The primary is gone: nobody can replace or drain us, so leave too.
  process.on('disconnect', () => stop(0));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception in a worker; stopping it (the primary starts another)');
    logger.flush?.();
    process.exit(1);
  });

  await gw.start({ port: opts.port });
}
