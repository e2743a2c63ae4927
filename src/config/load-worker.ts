/**
 * The worker thread that reads a config file for load-isolated.ts: it loads the YAML parser and
 * the schema's validator, reads and validates the file, posts the result and ends; its heap (the
 * validator's code and schema objects, ~4 MB of the gateway's heap) goes with it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadConfigInProcess, type ReadOptions } from './load.js';
import { ConfigError } from './problems.js';

const { file, env, opts } = workerData as { file: string; env: NodeJS.ProcessEnv; opts: ReadOptions };
try {
  parentPort!.postMessage({ ok: true, config: await loadConfigInProcess(file, env, opts) });
} catch (err) {
  if (err instanceof ConfigError) parentPort!.postMessage({ ok: false, problems: err.problems });
  else parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) });
}
