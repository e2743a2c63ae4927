/** Shared helpers for the config tests (not a test file itself). */
import assert from 'node:assert/strict';
import { ConfigError, type Config, type ConfigProblem } from '../../src/config/index.js';
import { parseConfig } from '../../src/config/load.js';

export const FILE = 'gw.yml';

/** Parses `text` (env empty unless given) and returns the config; fails the test on a ConfigError. */
export function load(text: string, env: NodeJS.ProcessEnv = {}): Config {
  return parseConfig(text, FILE, env);
}

/** Parses `text`, expects a ConfigError and returns its problems and formatted message. */
export function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): { problems: ConfigProblem[]; message: string } {
  try {
    parseConfig(text, FILE, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    return { problems: err.problems, message: err.message };
  }
  assert.fail(`expected a ConfigError for:\n${text}`);
}

/** The single problem a config text produces. */
export function onlyProblem(text: string, env: NodeJS.ProcessEnv = {}): ConfigProblem {
  const { problems, message } = problemsOf(text, env);
  assert.equal(problems.length, 1, `expected exactly one problem, got:\n${message}`);
  return problems[0]!;
}

/** A minimal valid route section to embed in test documents. */
export const ONE_ROUTE = `routes:
  - path: "/api"
    backend: "http://127.0.0.1:9001"
`;
