import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compose, RequestContext, StageRegistry, type Next, type Phase } from '../../src/pipeline/index.js';

function ctx(): RequestContext {
  return new RequestContext({ headers: {} } as never, {} as never, 0, 0);
}

function mark(seen: string[], name: string) {
  const stage = (c: RequestContext, next: Next): void => {
    seen.push(name);
    next(c);
  };
  Object.defineProperty(stage, 'name', { value: name });
  return stage;
}

test('stages run in phase order whatever order they were registered in, and in registration order within a phase', () => {
  const seen: string[] = [];
  const registry = new StageRegistry();
  registry.add('limit', mark(seen, 'limit-1'));
  registry.add('route', mark(seen, 'route'));
  registry.add('limit', mark(seen, 'limit-2'));
  registry.add('auth', mark(seen, 'auth'));
  registry.add('forward', function end() {
    seen.push('forward');
  });
  registry.add('balance', mark(seen, 'balance'));
  compose(registry.stages('request'), () => assert.fail('no error expected'))(ctx());
  assert.deepEqual(seen, ['route', 'auth', 'limit-1', 'limit-2', 'balance', 'forward']);
});

test('one registry builds both pipelines: a stage for one kind only runs for that kind', () => {
  const registry = new StageRegistry();
  const seen: string[] = [];
  registry.add('route', mark(seen, 'route'));
  registry.add('forward', {
    request: function proxy() {
      seen.push('proxy');
    },
    upgrade: function tunnel() {
      seen.push('tunnel');
    },
  });
  compose(registry.stages('request'), () => {})(ctx());
  compose(registry.stages('upgrade'), () => {})(ctx());
  assert.deepEqual(seen, ['route', 'proxy', 'route', 'tunnel']);
  assert.deepEqual(registry.describe('upgrade'), { route: ['route'], auth: [], limit: [], balance: [], forward: ['tunnel'] });
});

test('an unknown phase, and a stage registered once the pipeline is built, are refused with errors that say so', () => {
  const registry = new StageRegistry();
  assert.throws(() => registry.add('authz' as Phase, () => {}), /unknown pipeline phase "authz" \(phases: route, auth, limit, balance, forward\)/);
  registry.seal();
  assert.throws(() => registry.add('auth', () => {}), /pipeline is already built/);
});
