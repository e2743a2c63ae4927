import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayError } from '../../src/errors.js';
import { compose, RequestContext, RouteTable, type CompiledRoute } from '../../src/pipeline/index.js';

function ctx(): RequestContext {
  return new RequestContext({ headers: {} } as never, {} as never, 0, 0);
}

test('stages run in order and a stage that does not call next stops the chain', () => {
  const seen: string[] = [];
  const run = compose(
    [
      function a(c) {
        seen.push('a');
        c.next();
      },
      function b() {
        seen.push('b');
      },
      function c() {
        seen.push('c');
      },
    ],
    () => assert.fail('no error expected'),
  );
  run(ctx());
  assert.deepEqual(seen, ['a', 'b']);
});

test('a thrown error and a rejected promise both reach the one error handler', async () => {
  const errors: string[] = [];
  const run = compose(
    [
      function sync() {
        throw new GatewayError('rate_limited');
      },
    ],
    (_c, err) => errors.push((err as GatewayError).code),
  );
  run(ctx());
  const runAsync = compose(
    [
      async function later() {
        await Promise.resolve();
        throw new GatewayError('invalid_token');
      },
    ],
    (_c, err) => errors.push((err as GatewayError).code),
  );
  runAsync(ctx());
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(errors, ['rate_limited', 'invalid_token']);
});

test('a stage calling next() twice is an error, not a second run of the rest', () => {
  const errors: unknown[] = [];
  let tail = 0;
  const run = compose(
    [
      function twice(c) {
        c.next();
        c.next();
      },
      function end() {
        tail++;
      },
    ],
    (_c, err) => errors.push(err),
  );
  run(ctx());
  assert.equal(tail, 1);
  assert.equal(errors.length, 1);
});

test('route matching is longest prefix on a path-segment boundary', () => {
  const route = (prefix: string) => ({ prefix }) as CompiledRoute;
  const table = new RouteTable([route('/api'), route('/api/v1'), route('/')]);
  assert.equal(table.match('/api/v1/x')?.prefix, '/api/v1');
  assert.equal(table.match('/api/v1')?.prefix, '/api/v1');
  assert.equal(table.match('/api/v10')?.prefix, '/api');
  assert.equal(table.match('/apix')?.prefix, '/');
  assert.equal(new RouteTable([route('/api')]).match('/apix'), null);
});
