/**
 * Clean start: every `auto_start` process is started (concurrently) and the gateway waits until
 * its backends passed their first health probe, each bounded by `processes[].start_timeout`, so
 * the first request after "listening" finds a healthy backend instead of 503 no_healthy_backend.
 */
import { systemClock, timersOf, type Clock } from '../clock.js';
import { DEFAULT_START_TIMEOUT_MS, type ProcessConfig } from '../config/index.js';
import type { ProcessInfo, ProcessLogger, ProcessManager } from './manager.js';

/** The part of the health checker start-up needs. */
export interface StartupProbe {
  /** Probe these backends quickly until their first success (at most windowMs). */
  watchStartup(urls: string[], windowMs?: number): void;
  /** Subscribe to health flips; returns the unsubscribe function. */
  onChange(listener: (backend: { url: string }, healthy: boolean) => void): () => void;
}

export interface AutoStartOptions {
  manager: ProcessManager;
  processes: readonly ProcessConfig[];
  probe: StartupProbe;
  /** The backends served by a process listening on `port`. */
  backendsOf(port: number): readonly { url: string; healthy: boolean | null }[];
  clock?: Clock;
  logger?: ProcessLogger;
}

/** How each auto-start process came through start-up. */
export interface AutoStartResult {
  /** Started, and every backend passed a probe (or it serves no backend). */
  ready: string[];
  /** Still not healthy when its start_timeout ran out. */
  timedOut: string[];
  /** Could not be spawned, or exited before its first good probe. */
  failed: string[];
}

/** Starts every auto_start process; resolves once each is ready, failed or out of time. Never rejects. */
export async function startAutoProcesses(opts: AutoStartOptions): Promise<AutoStartResult> {
  const result: AutoStartResult = { ready: [], timedOut: [], failed: [] };
  const auto = opts.processes.filter((p) => p.auto_start);
  await Promise.all(
    auto.map(async (p) => {
      const outcome = await startOne(opts, p);
      result[outcome].push(p.id);
    }),
  );
  return result;
}

async function startOne(opts: AutoStartOptions, p: ProcessConfig): Promise<keyof AutoStartResult> {
  const clock = timersOf(opts.clock ?? systemClock);
  const logger = opts.logger;
  const timeoutMs = p.start_timeout ?? DEFAULT_START_TIMEOUT_MS;
  const started = clock.now();
  try {
    await opts.manager.start(p.id);
  } catch (err) {
    logger?.error({ process: p.id, err: (err as Error).message }, 'could not auto-start process');
    return 'failed';
  }
  const backends = p.port === undefined ? [] : opts.backendsOf(p.port);
  const allHealthy = () => backends.every((b) => b.healthy === true);
  let outcome: keyof AutoStartResult;
  if (backends.length === 0 || allHealthy()) {
    outcome = 'ready';
  } else {
    opts.probe.watchStartup(
      backends.map((b) => b.url),
      timeoutMs,
    );
    outcome = await new Promise<keyof AutoStartResult>((resolve) => {
      const finish = (o: keyof AutoStartResult) => {
        clock.clearTimeout(timer);
        offHealth();
        opts.manager.off('process', onProcess);
        resolve(o);
      };
      const timer = clock.setTimeout(() => finish('timedOut'), timeoutMs);
      const offHealth = opts.probe.onChange(() => {
        if (allHealthy()) finish('ready');
      });
      // Gone for good (stopped, or crashed with no restart coming): nothing left to wait for.
      const onProcess = (info: ProcessInfo) => {
        if (info.id === p.id && info.status !== 'running' && info.restart_in_ms === undefined) finish('failed');
      };
      opts.manager.on('process', onProcess);
    });
  }
  const fields = { process: p.id, port: p.port, waited_ms: clock.now() - started };
  if (outcome === 'ready') logger?.info(fields, 'auto-started process');
  else if (outcome === 'timedOut') logger?.warn({ ...fields, start_timeout_ms: timeoutMs }, 'auto-started process has not passed a health probe within start_timeout; going on without it');
  else logger?.error(fields, 'auto-started process exited before its first good health probe');
  return outcome;
}
