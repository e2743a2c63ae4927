/**
 * Setup shared by the adaptive layer's running-gateway tests: a gateway that learns from
 * one-second analytics buckets (20 s window, 10 min retention) in a data_dir of its own.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { Gateway, GatewayOptions } from '../../src/gateway.js';
import { startGateway } from '../helpers/gateway.js';
import { LEARNING_ANALYTICS } from '../helpers/learning.js';

/**
 * The YAML of a learning gateway: `routes:` with `routes` (its indented list items), a fresh
 * data_dir removed after the test, one-second analytics, then `extra` (more top-level blocks).
 */
export async function learningConfig(t: TestContext, routes: string, extra = ''): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-adaptive-gw-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return `routes:
${routes}data_dir: ${dir}
${LEARNING_ANALYTICS}${extra}`;
}

/** Starts a gateway on `learningConfig(t, routes, extra)`; the YAML comes back for reload tests. */
export async function startLearningGateway(t: TestContext, routes: string, extra = '', opts: GatewayOptions = {}): Promise<{ gw: Gateway; yaml: string }> {
  const yaml = await learningConfig(t, routes, extra);
  return { gw: await startGateway(t, yaml, opts), yaml };
}
