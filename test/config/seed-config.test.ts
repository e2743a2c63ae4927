/**
 * The original Go gateway's README config and the repo's own config.yml must load unchanged, with
 * the meanings recorded in reference/seed-reference-behaviour.md §2 (durations become ms).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig, notYetBuilt, summarize } from '../../src/config/index.js';
import { parseConfig } from '../../src/config/load.js';

const SEED = fileURLToPath(new URL('./fixtures/seed-config.yml', import.meta.url));
const REPO_CONFIG = fileURLToPath(new URL('../../config.yml', import.meta.url));

describe('the reference README config (seed-config.yml)', () => {
  const cfg = parseConfig(readFileSync(SEED, 'utf8'), 'seed-config.yml', {});

  it('keeps server.port 8080 and listens on all interfaces like the Go gateway', () => {
    assert.equal(cfg.server.port, 8080);
    assert.equal(cfg.server.host, '0.0.0.0');
  });

  it('keeps both routes, the backends list, the single backend and the strategy', () => {
    assert.equal(cfg.routes.length, 2);
    const [v1, v2] = cfg.routes;
    assert.equal(v1!.path, '/api/v1');
    assert.deepEqual(v1!.backends, ['http://localhost:9001', 'http://localhost:9002', 'http://localhost:9003']);
    assert.equal(v1!.backend, undefined);
    assert.equal(v1!.strategy, 'round-robin');
    assert.equal(v2!.path, '/api/v2');
    assert.equal(v2!.backend, 'http://localhost:9004');
    assert.equal(v2!.backends, undefined);
    assert.equal(v2!.strategy, 'round-robin', 'a route without strategy is round-robin');
  });

  it('reads ratelimit as a 10-token bucket refilled at 1.0 token per second, enabled', () => {
    assert.equal(cfg.ratelimit?.max_tokens, 10);
    assert.equal(cfg.ratelimit?.refill_rate, 1);
    assert.equal(cfg.ratelimit?.enabled, true);
  });

  it('keeps both API keys and the JWT secret', () => {
    assert.deepEqual(cfg.auth?.api_keys, ['key-abc123', 'key-xyz789']);
    assert.equal(cfg.auth?.jwt_secret, 'my-super-secret-key');
  });

  it('reads circuitbreaker threshold 5 and timeout 30 (seconds) as 30000 ms', () => {
    assert.equal(cfg.circuitbreaker.threshold, 5);
    assert.equal(cfg.circuitbreaker.timeout, 30_000);
  });

  it('reads healthcheck interval 10 (seconds) as 10000 ms', () => {
    assert.equal(cfg.healthcheck.interval, 10_000);
  });

  it('keeps the dashboard settings', () => {
    assert.equal(cfg.dashboard.enabled, true);
    assert.equal(cfg.dashboard.log_capacity, 1000);
    assert.equal(cfg.dashboard.sse_buffer, 256);
  });

  it('reads the analytics duration strings "1m", "48h" and "5m" as milliseconds', () => {
    assert.equal(cfg.analytics.enabled, true);
    assert.equal(cfg.analytics.bucket_interval, 60_000);
    assert.equal(cfg.analytics.retention, 48 * 3_600_000);
    assert.equal(cfg.analytics.analyzer_interval, 5 * 60_000);
  });

  it('reads adaptive_rate_limit 3.0 / 10 / 10000 / "1h"', () => {
    assert.equal(cfg.adaptive_rate_limit.enabled, true);
    assert.equal(cfg.adaptive_rate_limit.multiplier, 3);
    assert.equal(cfg.adaptive_rate_limit.min_limit, 10);
    assert.equal(cfg.adaptive_rate_limit.max_limit, 10_000);
    assert.equal(cfg.adaptive_rate_limit.learning_period, 3_600_000);
  });

  it('reads weighted_lb rebalance_interval "5m" as 300000 ms', () => {
    assert.equal(cfg.weighted_lb.enabled, true);
    assert.equal(cfg.weighted_lb.rebalance_interval, 300_000);
  });

  it('keeps the process with its Go-style "-port" args, port and auto_start', () => {
    assert.equal(cfg.processes.length, 1);
    const p = cfg.processes[0]!;
    assert.equal(p.id, 'backend-9001');
    assert.equal(p.command, './tmp/testbackend');
    assert.deepEqual(p.args, ['-port', '9001']);
    assert.equal(p.port, 9001);
    assert.equal(p.auto_start, true);
    assert.equal(p.restart, 'never');
  });

  it('has nothing left to call "not built yet": the adaptive layer is built', () => {
    assert.deepEqual(notYetBuilt(cfg), []);
  });
});

describe("the repo's config.yml", () => {
  it('loads with no environment, using the demo JWT secret default', async () => {
    const cfg = await loadConfig(REPO_CONFIG, {});
    assert.equal(cfg.server.port, 8080);
    assert.deepEqual(
      cfg.routes.map((r) => r.path),
      ['/api/v1', '/api/v2'],
    );
    assert.equal(cfg.auth?.jwt_secret, 'demo-secret-change-me-0123456789');
    assert.equal(cfg.circuitbreaker.timeout, 30_000);
    assert.equal(cfg.healthcheck.interval, 10_000);
  });

  it('takes the JWT secret from MICROGATE_JWT_SECRET when it is set', async () => {
    const cfg = await loadConfig(REPO_CONFIG, { MICROGATE_JWT_SECRET: 'from-the-environment-0123456789' });
    assert.equal(cfg.auth?.jwt_secret, 'from-the-environment-0123456789');
  });

  it('auto-starts four test backends, each attached to an existing route', async () => {
    const cfg = await loadConfig(REPO_CONFIG, {});
    assert.deepEqual(
      cfg.processes.map((p) => [p.id, p.port, p.route, p.auto_start]),
      [
        ['backend-9001', 9001, '/api/v1', true],
        ['backend-9002', 9002, '/api/v1', true],
        ['backend-9003', 9003, '/api/v1', true],
        ['backend-9004', 9004, '/api/v2', true],
      ],
    );
  });

  it('summarizes without printing the JWT secret or the API keys', async () => {
    const text = summarize(await loadConfig(REPO_CONFIG, {}));
    assert.match(text, /listen 0\.0\.0\.0:8080/);
    assert.doesNotMatch(text, /demo-secret-change-me/);
    assert.doesNotMatch(text, /key-abc123|key-xyz789/);
  });
});
