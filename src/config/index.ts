/**
 * Config: parse YAML keeping positions, substitute `${ENV}`, validate strictly (unknown keys are
 * errors), apply defaults and deep-freeze. Every problem is reported at once as
 * `file:line:col key: message`. Must not start anything or touch the network.
 */
export { loadConfig, parseConfig, ConfigError, formatProblem, type ConfigProblem } from './load.js';
export { summarize, notYetBuilt } from './summary.js';
export { normalizePrefix, isAdminPath, DEFAULT_START_TIMEOUT_MS } from './schema.js';
export type * from './schema.js';
export { parseDuration, parseSize, formatUptime } from './units.js';
