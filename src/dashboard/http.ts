/**
 * Small HTTP helpers of the dashboard: error responses, method and content-type checks, the
 * cross-site and DNS-rebinding guards, and a bounded body reader.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../errors.js';
import { sendError } from '../server/index.js';

/**
 * Error codes the dashboard uses beyond the catalogue in src/errors.ts (to be moved there).
 * Clients branch on these codes, never on message text.
 */
export type DashboardErrorCode = ErrorCode;

/** The request ID the gateway assigned (it sets the header before calling admin handlers). */
export function requestIdOf(res: ServerResponse): string {
  const id = res.getHeader('x-request-id');
  return typeof id === 'string' ? id : '';
}

export function fail(res: ServerResponse, status: number, code: DashboardErrorCode, message: string, headers?: Record<string, string>): void {
  sendError(res, status, code, message, requestIdOf(res), headers);
}

export function methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
  fail(res, 405, 'method_not_allowed', `${req.method ?? ''} is not allowed here (allowed: ${allow})`, { allow });
}

export { isJsonRequest as isJson, isCrossSiteRequest as isCrossSite, isRebound, readBody, BodyTooLarge } from '../server/index.js';

