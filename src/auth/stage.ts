/** The auth pipeline stage. */
import type { IncomingHttpHeaders } from 'node:http';
import type { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/index.js';
import type { TakeResult } from '../store/index.js';
import type { AuthResult, Authenticator } from './authenticator.js';
import type { FailureBudget } from './failure-budget.js';

export interface AuthStageOptions {
  authenticator: Authenticator;
  /** Remove `X-API-Key` and `Authorization` from the request headers once they have been checked. */
  stripCredentials: boolean;
  /**
   * Called after a failed authentication, before the error is thrown (the rate limiter charges the
   * client IP here). It may throw, or reject, with another error (e.g. a 429), which then replaces
   * the auth error.
   */
  onFailure?: (ctx: RequestContext, err: GatewayError) => void | Promise<void>;
  /**
   * The per-address budget of failed credential attempts: looked at before any credential is
   * verified (a spent budget refuses right and wrong credentials alike with 429), charged by a failure.
   */
  budget?: FailureBudget;
}

/**
 * Stage: authenticates every request on a non-public route (and requests that matched no route:
 * they must not learn which paths exist). On success sets `ctx.consumer`; on failure sets
 * `ctx.decision = 'auth_failed'`, charges the failure budget, runs `onFailure`, and throws the 401.
 * With the memory store an API key is decided without a promise or a per-request closure.
 */
export function auth(opts: AuthStageOptions) {
  if (typeof opts?.authenticator?.authenticate !== 'function') throw new TypeError('auth: opts.authenticator must be an Authenticator');
  if (typeof opts.stripCredentials !== 'boolean') throw new TypeError('auth: opts.stripCredentials must be a boolean');
  if (opts.onFailure !== undefined && typeof opts.onFailure !== 'function') throw new TypeError('auth: opts.onFailure must be a function');
  if (opts.budget !== undefined && typeof opts.budget?.peek !== 'function') throw new TypeError('auth: opts.budget must be a FailureBudget');
  const { authenticator, stripCredentials, onFailure, budget } = opts;

  function settle(ctx: RequestContext, result: AuthResult): void | Promise<void> {
    if (result.ok) {
      ctx.consumer = result.consumer;
      if (stripCredentials) {
        // The proxy also drops them from rawHeaders when it builds the upstream request.
        delete ctx.req.headers['x-api-key'];
        delete ctx.req.headers.authorization;
      }
      ctx.next();
      return;
    }
    const err = result.error;
    ctx.decision = 'auth_failed';
    if (budget !== undefined && budget.charges(err)) {
      const charged = budget.charge(ctx.clientIp);
      if (isThenable(charged)) return Promise.resolve(charged).then(() => afterCharge(ctx, err));
    }
    return afterCharge(ctx, err);
  }

  function afterCharge(ctx: RequestContext, err: GatewayError): void | Promise<void> {
    if (onFailure === undefined) throw err;
    const pending = onFailure(ctx, err);
    if (!isThenable(pending)) throw err;
    return Promise.resolve(pending).then(() => {
      throw err;
    });
  }

  async function settleLater(ctx: RequestContext, pending: PromiseLike<AuthResult>): Promise<void> {
    return settle(ctx, await pending);
  }

  function verify(ctx: RequestContext): void | Promise<void> {
    const result = authenticator.authenticate(ctx.req.headers);
    return isThenable(result) ? settleLater(ctx, result) : settle(ctx, result);
  }

  /** After the budget was looked at: refuse a spent address before its credential is verified. */
  function afterPeek(ctx: RequestContext, r: TakeResult): void | Promise<void> {
    if (!r.allowed) {
      ctx.decision = 'rate_limited';
      ctx.detail = budget!.detail(r);
      throw budget!.refusal(r);
    }
    return verify(ctx);
  }

  async function afterPeekLater(ctx: RequestContext, pending: Promise<TakeResult>): Promise<void> {
    return afterPeek(ctx, await pending);
  }

  return function authStage(ctx: RequestContext): void | Promise<void> {
    if (ctx.route?.isPublic) {
      ctx.next();
      return;
    }
    if (budget !== undefined && presentsCredential(ctx.req.headers)) {
      const r = budget.peek(ctx.clientIp);
      return isThenable(r) ? afterPeekLater(ctx, r) : afterPeek(ctx, r);
    }
    return verify(ctx);
  };
}

/** A credential attempt: a non-empty `X-API-Key` or `Authorization` (what the authenticator would look at). */
function presentsCredential(headers: IncomingHttpHeaders): boolean {
  const key = headers['x-api-key'];
  const authorization = headers.authorization;
  return (key !== undefined && key !== '') || (authorization !== undefined && authorization !== '');
}

function isThenable<T>(value: T | PromiseLike<T> | void): value is PromiseLike<T> & Promise<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}
