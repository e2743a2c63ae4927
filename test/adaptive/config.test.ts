import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, type ConfigProblem } from '../../src/config/index.js';
import { parseConfig } from '../../src/config/load.js';
import { resolveAdaptiveConfig } from '../../src/adaptive/index.js';

function problems(text: string): ConfigProblem[] {
  try {
    parseConfig(text, 'gw.yml', {});
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a config error');
}

describe('adaptive config', () => {
  it('defaults: burst 10s, breaker window 10s and 20 requests, breaker adaptive = analytics.enabled', () => {
    const off = resolveAdaptiveConfig(parseConfig('', 'gw.yml', {}));
    assert.deepEqual(off.breaker, { adaptive: false, windowMs: 10_000, minRequests: 20 });
    assert.equal(off.routeLimit, null);
    const cfg = parseConfig('analytics:\n  enabled: true\nadaptive_rate_limit:\n  enabled: true\n', 'gw.yml', {});
    assert.equal(cfg.adaptive_rate_limit.burst, 10_000);
    const on = resolveAdaptiveConfig(cfg);
    assert.deepEqual(on.breaker, { adaptive: true, windowMs: 10_000, minRequests: 20 });
    assert.deepEqual(on.routeLimit, { multiplier: 3, minLimit: 10, maxLimit: 10_000, learningPeriodMs: 3_600_000, burstMs: 10_000, shadow: false });
    assert.deepEqual(on.weighted, { enabled: false, rebalanceIntervalMs: 300_000 });
  });

  it('reads burst, circuitbreaker.adaptive, window and min_requests', () => {
    const cfg = parseConfig(
      'analytics:\n  enabled: true\nadaptive_rate_limit:\n  enabled: true\n  burst: "30s"\n  shadow: true\ncircuitbreaker:\n  adaptive: false\n  window: "30s"\n  min_requests: 50\n',
      'gw.yml',
      {},
    );
    const a = resolveAdaptiveConfig(cfg);
    assert.equal(a.routeLimit?.burstMs, 30_000);
    assert.equal(a.routeLimit?.shadow, true);
    assert.deepEqual(a.breaker, { adaptive: false, windowMs: 30_000, minRequests: 50 });
  });

  for (const [text, key, line] of [
    ['adaptive_rate_limit:\n  enabled: true\n', 'adaptive_rate_limit.enabled', 2],
    ['analytics:\n  enabled: false\nweighted_lb:\n  enabled: true\n', 'weighted_lb.enabled', 4],
    ['circuitbreaker:\n  adaptive: true\n', 'circuitbreaker.adaptive', 2],
  ] as const) {
    it(`refuses ${key} without analytics.enabled, naming both keys at the line of the first`, () => {
      const ps = problems(text);
      assert.equal(ps.length, 1);
      const p = ps[0]!;
      assert.equal(p.key, key);
      assert.match(p.message, /analytics\.enabled/);
      assert.match(p.message, new RegExp(key.replace('.', '\\.')));
      assert.equal(p.file, 'gw.yml');
      assert.equal(p.line, line);
      assert.ok(p.col > 1);
    });
  }

  it('refuses a non-positive multiplier or burst and min_limit above max_limit', () => {
    const ps = problems('analytics:\n  enabled: true\nadaptive_rate_limit:\n  enabled: true\n  multiplier: 0\n  burst: "0s"\n  min_limit: 500\n  max_limit: 100\n');
    const byKey = new Map(ps.map((p) => [p.key, p]));
    assert.match(byKey.get('adaptive_rate_limit.multiplier')!.message, /greater than zero/);
    assert.equal(byKey.get('adaptive_rate_limit.multiplier')!.line, 5);
    assert.match(byKey.get('adaptive_rate_limit.burst')!.message, /greater than zero/);
    assert.equal(byKey.get('adaptive_rate_limit.burst')!.line, 6);
    assert.match(byKey.get('adaptive_rate_limit.min_limit')!.message, /must not exceed max_limit/);
    assert.equal(problems('adaptive_rate_limit:\n  multiplier: -2\n')[0]!.key, 'adaptive_rate_limit.multiplier');
  });

  it('refuses a breaker window under 1s and min_requests below 1', () => {
    const ps = problems('circuitbreaker:\n  window: "500ms"\n  min_requests: 0\n');
    assert.deepEqual(ps.map((p) => p.key).sort(), ['circuitbreaker.min_requests', 'circuitbreaker.window']);
  });
});
