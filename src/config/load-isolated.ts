/**
 * How the gateway reads its config file: in a worker thread (load-worker.ts) that parses and
 * validates it and hands back the plain snapshot. The YAML parser and the schema's validator are
 * only needed while a file is read, but a module, once imported, stays in the heap for the life of
 * the process: in the gateway's own thread they cost ~3.5 MB of RSS at start (docs/decisions.md,
 * "Speed"). The price is time: each read imports them afresh in its worker (~250 ms for
 * config.example.yml; start-up 40-90 ms slower, a reload ~250 ms instead of ~25 ms).
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { reassertYoungGenerationHold } from '../young-generation.js';
import { ConfigError, type ConfigProblem } from './problems.js';
import { deepFreeze } from './runtime.js';
import type { ReadOptions } from './load.js';
import type { Config } from './schema.js';

const FROM_SOURCE = import.meta.url.endsWith('.ts');
/** The worker's module: its TypeScript source when this runs from source (tests under tsx). */
const WORKER_URL = new URL(FROM_SOURCE ? './load-worker.ts' : './load-worker.js', import.meta.url).href;
/**
 * The worker starts from this text, which imports the module. Run from source, it first registers
 * tsx in the worker: tsx's hooks, though the parent runs with --import tsx, are not active there.
 */
const WORKER_ENTRY = FROM_SOURCE
  ? `import('tsx/esm/api').then((tsx) => tsx.register()).then(() => import(${JSON.stringify(WORKER_URL)}));`
  : `import(${JSON.stringify(WORKER_URL)});`;

/**
 * The reader's heap: enough for the largest file it accepts (1 MiB) many times over, and a bound
 * on what a hostile file can make it allocate. A reader that runs out is ended by node, and the
 * read fails with a problem of the file; the gateway goes on with the config it has.
 */
export const READER_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 16 };
/**
 * The reader's time: a read that has not answered by then is ended and fails as a problem of the
 * file, so no file (however it was made to be slow to parse or validate) holds a start or a reload
 * for longer. The largest ordinary file (1 MiB of routes) reads in about a second.
 */
export const READER_TIME_LIMIT_MS = 30_000;

/** How `loadConfig` reads: what the read judges (ReadOptions), and the reader's bounds. */
export interface LoadOptions extends ReadOptions {
  /** The reader's heap. Default READER_LIMITS. */
  limits?: ResourceLimits;
  /** The reader's time (ms). Default READER_TIME_LIMIT_MS. */
  timeLimitMs?: number;
}

type Answer = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] } | { ok: false; error: string };

/**
 * Reads, validates and freezes a config file. Throws ConfigError with every problem; a reader that
 * could not run (no memory for a thread, say) is reported the same way, as a problem of the file.
 */
export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Promise<Config> {
  const { limits = READER_LIMITS, timeLimitMs = READER_TIME_LIMIT_MS, ...opts } = options;
  return new Promise<Config>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const cannotRead = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new ConfigError([{ file, line: 0, col: 0, key: '', message: `cannot read config: ${why}` }]));
    };
    let worker: Worker;
    try {
      worker = new Worker(WORKER_ENTRY, { eval: true, workerData: { file, env: { ...env }, opts }, resourceLimits: limits });
    } catch (err) {
      cannotRead(`the config reader did not start (${(err as Error).message})`);
      return;
    }
    // A wall-clock watchdog on another thread's work: real time, not the gateway's clock.
    timer = setTimeout(() => {
      cannotRead(`reading it took more than ${timeLimitMs / 1000} s (a file this large or this complex cannot be read)`);
      void worker.terminate();
    }, timeLimitMs);
    // Starting a worker undoes the start-up hold on the young generation (src/young-generation.ts).
    worker.once('online', reassertYoungGenerationHold);
    worker.once('message', (answer: Answer) => {
      if (settled) return;
      if (answer.ok) {
        settled = true;
        clearTimeout(timer);
        resolve(deepFreeze(answer.config));
      } else if ('problems' in answer) {
        settled = true;
        clearTimeout(timer);
        reject(new ConfigError(answer.problems));
      } else cannotRead(answer.error);
    });
    worker.once('error', (err) => {
      if ((err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY') {
        cannotRead(`reading it took more than the reader's ${limits.maxOldGenerationSizeMb ?? 'default'} MB of memory (a file this large or this nested cannot be read)`);
      } else cannotRead(`the config reader failed (${err.message})`);
    });
    worker.once('exit', (code) => cannotRead(`the config reader exited with code ${code} before answering`));
  });
}
