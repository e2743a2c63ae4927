/**
 * The CLI's cluster entry (src/cli/microgate.ts calls it when server.workers is not 1): signals,
 * exit codes and the "listening" line for the primary; a worker just runs.
 */
import { AuthConfigError } from '../auth/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging/index.js';
import cluster from 'node:cluster';
import { resolveWorkers, runCluster, type ClusterPrimary, type GatewayFactory } from './index.js';

/** Resolves null when workers comes to 1 (run the single process), -1 to keep running, else an exit code. */
export async function runClusterCli(opts: {
  config: Config;
  logger: Logger;
  port?: number;
  baseDir: string;
  file: string;
  createGateway: GatewayFactory;
  /** --watch: calls `reload` when the file changed (the primary reloads, then every worker). */
  watchFile?: (reload: () => void) => void;
}): Promise<number | null> {
  const { config, logger, file } = opts;
  let primary: ClusterPrimary | null = null;
  let signals = 0;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: forcing exit');
      primary?.killNow();
      logger.flush?.();
      process.exit(130);
    }
    stopping = true;
    if (primary === null) return; // still starting: the start-up below stops
    logger.info({ signal }, 'shutting down: draining every worker');
    primary.shutdown().then(
      () => {
        logger.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        primary?.killNow();
        process.exit(1);
      },
    );
  };
  if (cluster.isPrimary && resolveWorkers(config.server.workers) > 1) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  let result;
  try {
    result = await runCluster({
      ...opts,
      configFile: file,
      onListening: (port) => {
        const host = config.server.host === '0.0.0.0' ? 'localhost' : config.server.host;
        process.stdout.write(`MicroGate listening on http://${host}:${port} (${resolveWorkers(config.server.workers)} workers)\n`);
      },
    });
  } catch (err) {
    if (err instanceof AuthConfigError) {
      process.stderr.write(`${file}: ${err.message}\nmicrogate: ${file} has 1 problem(s); not starting\n`);
      return 1;
    }
    logger.fatal({ err: (err as Error).message }, 'could not start');
    logger.flush?.();
    return 1;
  }
  if (result === null) return null;
  if (result === 'worker') return -1;
  primary = result;
  const p = primary;
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception in the cluster primary; stopping everything');
    p.killNow();
    logger.flush?.();
    process.exit(1);
  });
  // Reload: SIGHUP (and --watch) re-read the file in the primary; when it takes effect every worker
  // reads it too. The gateways log the outcome.
  const reload = (why: string): void => {
    logger.info({ why }, 'config reload requested');
    void p.reload();
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  opts.watchFile?.(() => reload('file changed'));
  if (stopping) {
    signals = 0;
    onSignal('SIGTERM');
  }
  return -1;
}
