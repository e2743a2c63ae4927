/**
 * `microgate` command line: run the gateway in the foreground, or `check` a config file.
 *   microgate [--config FILE] [--port N] [--watch]   (also MICROGATE_CONFIG; default ./config.yml)
 *   SIGHUP (or, with --watch, a change to FILE) reloads the config without a restart.
 *   microgate check FILE
 */
import { readFileSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { AuthConfigError } from '../auth/index.js';
import { ConfigError, loadConfig, summarize } from '../config/index.js';
import { createGateway } from '../gateway.js';
import { createLogger, type Logger } from '../logging/index.js';
import { startMemoryTrim } from '../memory-trim.js';

const USAGE = `Usage:
  microgate [--config FILE] [--port N] [--watch]
                                         run the gateway (config also from MICROGATE_CONFIG; default ./config.yml);
                                         SIGHUP reloads the config, --watch also reloads when the file changes
  microgate check FILE                   validate a config file and summarize what it will do
  microgate --version | --help`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        watch: { type: 'boolean', short: 'w' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    process.stderr.write(`microgate: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  if (positionals[0] === 'check') {
    const file = positionals[1] ?? values.config ?? process.env.MICROGATE_CONFIG ?? './config.yml';
    try {
      const cfg = await loadConfig(file);
      // Build (never start) the gateway: key material (PEM keys, algorithm lists) is checked here too.
      const gateway = createGateway(cfg, { logger: createLogger({ level: 'silent', pretty: false }), defaultMetrics: false });
      await gateway.close();
      process.stdout.write(`${file}: OK\n${summarize(cfg)}\n`);
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${err.message}\n${file}: ${err.problems.length} problem(s)\n`);
        return 1;
      }
      if (err instanceof AuthConfigError) {
        process.stderr.write(`${file}: ${err.message}\n${file}: 1 problem(s)\n`);
        return 1;
      }
      throw err;
    }
  }
  if (positionals.length > 0) {
    process.stderr.write(`microgate: unknown command "${positionals[0]}"\n${USAGE}\n`);
    return 2;
  }

  const file = values.config ?? process.env.MICROGATE_CONFIG ?? './config.yml';
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      process.stderr.write(`microgate: --port must be an integer from 0 to 65535 (got "${values.port}")\n`);
      return 2;
    }
  }
  let config;
  try {
    config = await loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\nmicrogate: ${file} has ${err.problems.length} problem(s); not starting\n`);
      return 1;
    }
    throw err;
  }
  const logger = createLogger(config.logging);
  // Every process of the gateway (single, cluster primary, worker) hands freed malloc memory back now and then.
  startMemoryTrim(config.server.memory_trim_interval, logger);
  // --- workers (src/cluster): server.workers > 1 runs a primary and its workers instead; 1 never loads it ---
  if (config.server.workers !== 1) {
    const { runClusterCli } = await import('../cluster/cli.js');
    const watchFile = values.watch ? (reload: () => void) => watchConfig(file, reload, logger) : undefined;
    const code = await runClusterCli({ config, logger, port, baseDir: process.cwd(), file, createGateway, watchFile });
    if (code !== null) return code;
  }
  // --- end workers ---
  let gateway;
  try {
    gateway = createGateway(config, { logger, baseDir: process.cwd(), echoProcessOutput: true, configFile: file });
  } catch (err) {
    if (err instanceof AuthConfigError) {
      process.stderr.write(`${file}: ${err.message}\nmicrogate: ${file} has 1 problem(s); not starting\n`);
      return 1;
    }
    throw err;
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: forcing exit');
      gateway.processes.killAllNow();
      logger.flush();
      process.exit(130);
    }
    logger.info({ signal }, 'shutting down: draining in-flight requests');
    gateway
      .close()
      .then(() => {
        logger.flush();
        process.exit(0);
      })
      .catch((err) => {
        logger.error({ err }, 'shutdown failed');
        gateway.processes.killAllNow();
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Reload (issue 9): SIGHUP and --watch re-read the file; the gateway logs the outcome.
  const reload = (why: string) => {
    if (gateway.draining) return;
    logger.info({ file, trigger: why }, 'reloading config');
    void gateway.reloadFromFile();
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  if (values.watch) watchConfig(file, () => reload('file changed'), logger);
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; stopping');
    gateway.processes.killAllNow();
    process.exit(1);
  });

  try {
    await gateway.start({ port });
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'could not start');
    await gateway.close().catch(() => {});
    return 1;
  }
  if (gateway.draining) return -1; // a signal came during start-up: its shutdown exits
  process.stdout.write(`MicroGate listening on ${gateway.url.replace('127.0.0.1', config.server.host === '0.0.0.0' ? 'localhost' : config.server.host)}\n`);
  return -1; // keep running
}

/**
 * Calls `onChange` once a burst of changes to `file` settled (250 ms). Watches the directory, not
 * the file: editors and config managers replace a file by renaming a new one over it.
 */
function watchConfig(file: string, onChange: () => void, logger: Logger): void {
  const name = basename(file);
  let timer: NodeJS.Timeout | null = null;
  try {
    const watcher = watch(dirname(resolve(file)), (_event, changed) => {
      if (changed !== null && changed !== name) return;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        onChange();
      }, 250);
    });
    watcher.unref();
    watcher.on('error', (err) => logger.warn({ err: err.message, file }, 'config watch failed; SIGHUP still reloads'));
  } catch (err) {
    logger.warn({ err: (err as Error).message, file }, 'cannot watch the config file; SIGHUP still reloads');
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err) => {
    process.stderr.write(`microgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
