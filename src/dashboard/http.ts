/**
 * Small HTTP helpers of the dashboard: error responses, method and content-type checks, the
 * cross-site and DNS-rebinding guards, and a bounded body reader.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../errors.js';
import { isLoopback, normalizeIp } from '../pipeline/index.js';
import { admittedBy, sendError } from '../server/index.js';

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

export { isJsonRequest as isJson, isCrossSiteRequest as isCrossSite, readBody, BodyTooLarge } from '../server/index.js';

function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) {
    const end = hostHeader.indexOf(']');
    return end === -1 ? hostHeader : hostHeader.slice(1, end);
  }
  const colon = hostHeader.indexOf(':');
  return (colon === -1 ? hostHeader : hostHeader.slice(0, colon)).toLowerCase();
}

/**
 * DNS rebinding: a web page whose name was re-pointed at 127.0.0.1 reaches a loopback-trusting
 * gateway from the victim's browser, with a `Host` naming the attacker's domain (and a matching
 * Origin). A loopback peer not admitted by a verified token or session must use a loopback name.
 */
export function isRebound(req: IncomingMessage): boolean {
  // A verified bearer token or session cookie is the proof, not the network: a rebound page has
  // neither (the browser never sends our cookie to another host name). The mere presence of an
  // Authorization header proves nothing: the page can add any value it likes.
  const via = admittedBy(req);
  if (via === 'token' || via === 'cookie') return false;
  if (!isLoopback(normalizeIp(req.socket.remoteAddress ?? ''))) return false;
  const host = hostnameOf(req.headers.host ?? '');
  return !(host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host));
}
