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

/** `Content-Type: application/json`, with or without parameters such as charset. */
export function isJson(req: IncomingMessage): boolean {
  const ct = req.headers['content-type'];
  if (typeof ct !== 'string') return false;
  const semi = ct.indexOf(';');
  return (semi === -1 ? ct : ct.slice(0, semi)).trim().toLowerCase() === 'application/json';
}

/**
 * A browser request from another site: an `Origin` that is not this host (or the opaque "null"
 * origin), or `Sec-Fetch-Site` saying cross-site or same-site. Stops CSRF against a gateway that
 * trusts loopback. Non-browser clients send neither header and pass.
 */
export function isCrossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    const u = new URL(origin);
    return u.host === '' || u.host.toLowerCase() !== (req.headers.host ?? '').toLowerCase();
  } catch {
    return true; // "null" and anything unparsable
  }
}

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
 * Origin). A loopback peer without an Authorization header must therefore use a loopback name.
 */
export function isRebound(req: IncomingMessage): boolean {
  // A bearer token or a session cookie is the proof, not the network: a rebound page has neither
  // (the browser never sends our cookie to another host name).
  if (req.headers.authorization !== undefined || admittedBy(req) === 'cookie') return false;
  if (!isLoopback(normalizeIp(req.socket.remoteAddress ?? ''))) return false;
  const host = hostnameOf(req.headers.host ?? '');
  return !(host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host));
}

export class BodyTooLarge extends Error {}

/** Reads the whole body, rejecting with BodyTooLarge beyond `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onAborted = (): void => {
      cleanup();
      reject(new Error('request aborted'));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}
