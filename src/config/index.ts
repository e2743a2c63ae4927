/**
 * Config: parse YAML keeping positions, substitute `${ENV}`, validate strictly (unknown keys are
 * errors), apply defaults and deep-freeze. Every problem is reported at once as
 * `file:line:col key: message`. Must not start anything or touch the network.
 *
 * Nothing here imports the YAML parser or the validator: `loadConfig` reads a file in a worker
 * thread (load-isolated.ts). `parseConfig` (config text in this thread) is in load.ts, for tests
 * and tools that parse text themselves.
 */
export { loadConfig, READER_LIMITS, READER_TIME_LIMIT_MS, type LoadOptions } from './load-isolated.js';
export { ConfigError, formatProblem, type ConfigProblem } from './problems.js';
export { summarize, notYetBuilt } from './summary.js';
export { normalizePrefix, isAdminPath, DEFAULT_START_TIMEOUT_MS } from './runtime.js';
export type * from './schema.js';
export { parseDuration, parseSize, formatUptime } from './units.js';
