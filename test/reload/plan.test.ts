/** planReload: what a reload may change live, what needs a restart, and the snapshot put in force. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { planReload, RESTART_REQUIRED } from '../../src/reload/index.js';

const cfg = (yaml: string) => parseConfig(yaml, 'p.yml', {});

describe('planReload', () => {
  it('keeps restart-required settings at their running value and lists them', () => {
    const cur = cfg(`server:\n  port: 8080\n  host: 127.0.0.1\nlogging:\n  level: info\n`);
    const next = cfg(`server:\n  port: 9090\n  host: 0.0.0.0\n  body_limit: 1000\nlogging:\n  level: debug\n`);
    const plan = planReload(cur, next);
    assert.deepEqual(plan.restartRequired, ['server.port', 'server.host', 'logging']);
    assert.deepEqual(plan.sections, ['server.body_limit']);
    assert.equal(plan.effective.server.port, 8080);
    assert.equal(plan.effective.server.host, '127.0.0.1');
    assert.equal(plan.effective.server.body_limit, 1000);
    assert.equal(plan.effective.logging.level, 'info');
    assert.ok(Object.isFrozen(plan.effective) && Object.isFrozen(plan.effective.server));
  });

  it('an identical file plans no change', () => {
    const text = `routes:\n  - path: /a\n    backend: http://127.0.0.1:9\nauth:\n  api_keys: [abcdefgh12]\n`;
    const plan = planReload(cfg(text), cfg(text));
    assert.deepEqual(plan.restartRequired, []);
    assert.deepEqual(plan.sections, []);
    assert.deepEqual(plan.processes, { added: [], removed: [], changed: [], started: [], stopped: [] });
  });

  it('lists live sections and the processes to start and stop', () => {
    const p = (id: string, extra = '') => `  - id: ${id}\n    command: node\n    auto_start: true\n${extra}`;
    const cur = cfg(`auth:\n  api_keys: [abcdefgh12]\nprocesses:\n${p('keep')}${p('gone')}${p('edit')}`);
    const next = cfg(`auth:\n  api_keys: [abcdefgh34]\nratelimit:\n  max_tokens: 5\n  refill_rate: 1\nprocesses:\n${p('keep')}${p('edit', '    args: [x]\n')}${p('new')}`);
    const plan = planReload(cur, next);
    assert.deepEqual(plan.sections.sort(), ['auth', 'ratelimit']);
    assert.deepEqual(plan.processes, { added: ['new'], removed: ['gone'], changed: ['edit'], started: ['new', 'edit'], stopped: ['gone', 'edit'] });
  });

  it('names the listener, store, admin, logging, cluster and once-built parts as needing a restart', () => {
    for (const k of ['server.port', 'server.host', 'server.workers', 'admin', 'logging', 'cluster', 'ratelimit.max_buckets']) assert.ok(RESTART_REQUIRED.includes(k), k);
  });
});
