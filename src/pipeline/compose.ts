/**
 * compose(): runs stages in order. A stage is a named function that either answers (throws a
 * GatewayError, or writes the response itself, as the proxy does) or calls `ctx.next()` once.
 * Every thrown error and rejected promise reaches the single `onError` handler.
 */
import { GatewayError } from '../errors.js';
import type { RequestContext } from './context.js';

export type Stage = (ctx: RequestContext) => void | Promise<void>;

export function compose(stages: readonly Stage[], onError: (ctx: RequestContext, err: unknown) => void): (ctx: RequestContext) => void {
  if (stages.length > 30) throw new Error('compose: at most 30 stages');
  const count = stages.length;

  function run(ctx: RequestContext): void {
    const i = ctx.stageIndex;
    if (i >= count) throw new Error('compose: next() called after the last stage');
    ctx.stageIndex = i + 1;
    let result: void | Promise<void>;
    try {
      result = stages[i]!(ctx);
    } catch (err) {
      onError(ctx, err);
      return;
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(undefined, (err: unknown) => onError(ctx, err));
    }
  }

  function next(ctx: RequestContext): void {
    // ctx.stageIndex is the index of the stage that should run next; the caller is the one before it.
    const caller = ctx.stageIndex - 1;
    const bit = 1 << caller;
    if ((ctx.nextCalled & bit) !== 0) {
      onError(ctx, new GatewayError('internal_error', `stage ${stages[caller]?.name || caller} called next() twice`));
      return;
    }
    ctx.nextCalled |= bit;
    run(ctx);
  }

  return function start(ctx: RequestContext): void {
    ctx.stageIndex = 0;
    ctx.nextCalled = 0;
    ctx.runNext = next;
    run(ctx);
  };
}
