/**
 * compose(): runs stages in order. A stage is a named function that either answers (throws a
 * GatewayError, or writes the response itself, as the proxy does) or continues once, with the
 * `next` it is given (`next(ctx)`) or the older `ctx.next()`. Every thrown error and rejected
 * promise reaches the single `onError` handler.
 *
 * Each stage gets its own `next`, made once here (no closure per request), so the pipeline knows
 * who asks to continue: it tracks the index of the last stage it dispatched and refuses a request
 * to dispatch at or below it (a stage calling next() twice, even after a later stage answered).
 * `ctx.next()` has no caller identity of its own: while a stage's body runs synchronously the
 * pipeline knows it is that stage; afterwards it is taken to be the last stage dispatched.
 */
import { GatewayError } from '../errors.js';
import type { RequestContext } from './context.js';

/** Continues with the stage after the one it was handed to. */
export type Next = (ctx: RequestContext) => void;

/** A stage that continues with `ctx.next()` (the older form; still supported). */
export type Stage = (ctx: RequestContext) => void | Promise<void>;

/**
 * A stage that continues with the `next` it is given: the pipeline knows exactly which stage asks.
 * compose() takes this type; a `Stage` (one parameter) is assignable to it.
 */
export type StageWithNext = (ctx: RequestContext, next: Next) => void | Promise<void>;

export function compose(stages: readonly StageWithNext[], onError: (ctx: RequestContext, err: unknown) => void): (ctx: RequestContext) => void {
  const count = stages.length;
  const names = stages.map((s, i) => s.name || `#${i}`);

  function invoke(ctx: RequestContext, i: number): void {
    const outer = ctx.running;
    ctx.running = i;
    let result: void | Promise<void>;
    try {
      result = stages[i]!(ctx, nexts[i]!);
    } catch (err) {
      ctx.running = outer;
      onError(ctx, err);
      return;
    }
    ctx.running = outer;
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      (result as Promise<void>).then(undefined, (err: unknown) => onError(ctx, err));
    }
  }

  /** Stage `caller` asks to continue. */
  function dispatch(ctx: RequestContext, caller: number): void {
    const i = caller + 1;
    if (i <= ctx.stageIndex) {
      onError(ctx, new GatewayError('internal_error', `stage ${names[caller]} called next() twice`));
      return;
    }
    if (i >= count) {
      onError(ctx, new GatewayError('internal_error', `stage ${names[caller]} called next() after the last stage`));
      return;
    }
    ctx.stageIndex = i;
    invoke(ctx, i);
  }

  const nexts: Next[] = stages.map((_s, caller) => (ctx: RequestContext) => dispatch(ctx, caller));

  function contextNext(ctx: RequestContext): void {
    dispatch(ctx, ctx.running >= 0 ? ctx.running : ctx.stageIndex);
  }

  return function start(ctx: RequestContext): void {
    ctx.runNext = contextNext;
    ctx.running = -1;
    if (count === 0) return;
    ctx.stageIndex = 0;
    invoke(ctx, 0);
  };
}
