/** The auth pipeline stage. */
import type { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/index.js';
import type { AuthResult, Authenticator } from './authenticator.js';

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
}

/**
 * Stage: authenticates every request on a non-public route (and requests that matched no route:
 * they must not learn which paths exist). On success sets `ctx.consumer`; on failure sets
 * `ctx.decision = 'auth_failed'`, runs `onFailure`, and throws the 401. An API key is decided
 * without a promise or a per-request closure.
 */
export function auth(opts: AuthStageOptions) {
  if (typeof opts?.authenticator?.authenticate !== 'function') throw new TypeError('auth: opts.authenticator must be an Authenticator');
  if (typeof opts.stripCredentials !== 'boolean') throw new TypeError('auth: opts.stripCredentials must be a boolean');
  if (opts.onFailure !== undefined && typeof opts.onFailure !== 'function') throw new TypeError('auth: opts.onFailure must be a function');
  const { authenticator, stripCredentials, onFailure } = opts;

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

  return function authStage(ctx: RequestContext): void | Promise<void> {
    if (ctx.route?.isPublic) {
      ctx.next();
      return;
    }
    const result = authenticator.authenticate(ctx.req.headers);
    return isThenable(result) ? settleLater(ctx, result) : settle(ctx, result);
  };
}

function isThenable<T>(value: T | PromiseLike<T> | void): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}
