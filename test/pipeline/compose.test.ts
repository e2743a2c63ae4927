import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayError } from '../../src/errors.js';
import { compose, RequestContext, RouteTable, type CompiledRoute, type Next } from '../../src/pipeline/index.js';

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

test('a stage calling next() twice in a row is refused with "called next() twice"', () => {
  const errors: unknown[] = [];
  let tail = 0;
  const run = compose(
    [
      function twice(c, next: Next) {
        next(c);
        next(c);
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
  assert.ok(errors[0] instanceof GatewayError);
  assert.equal((errors[0] as GatewayError).code, 'internal_error');
  assert.match((errors[0] as Error).message, /^stage twice called next\(\) twice$/);
});

test("A's second next() after B answered is refused: the stage after B never runs", () => {
  const errors: unknown[] = [];
  const seen: string[] = [];
  const run = compose(
    [
      function a(c, next: Next) {
        seen.push('a');
        next(c);
        next(c);
      },
      function b() {
        seen.push('b');
      },
      function c() {
        seen.push('c');
      },
    ],
    (_c, err) => errors.push(err),
  );
  run(ctx());
  assert.deepEqual(seen, ['a', 'b']);
  assert.equal(errors.length, 1);
  assert.match((errors[0] as Error).message, /^stage a called next\(\) twice$/);
});

test('the last stage calling next() is refused with "called next() after the last stage"', () => {
  const errors: unknown[] = [];
  const run = compose(
    [
      function only(c, next: Next) {
        next(c);
      },
    ],
    (_c, err) => errors.push(err),
  );
  run(ctx());
  assert.equal(errors.length, 1);
  assert.match((errors[0] as Error).message, /^stage only called next\(\) after the last stage$/);
});

test('ctx.next() (the older form) still refuses a second call from the same stage, and a later stage continuing afterwards is honoured', async () => {
  const errors: unknown[] = [];
  const seen: string[] = [];
  const run = compose(
    [
      function a(c) {
        seen.push('a');
        c.next();
        c.next();
      },
      function b(c) {
        seen.push('b');
        setImmediate(() => c.next());
      },
      function c() {
        seen.push('c');
      },
    ],
    (_c, err) => errors.push(err),
  );
  run(ctx());
  assert.deepEqual(seen, ['a', 'b']);
  assert.equal(errors.length, 1);
  assert.match((errors[0] as Error).message, /^stage a called next\(\) twice$/);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seen, ['a', 'b', 'c']);
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
