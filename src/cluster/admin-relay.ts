/**
 * The admin surface of a cluster is the primary's: a worker hands every admin request (guard
 * included: sessions, the login throttle and the loopback rule live once, in the primary) to the
 * primary's private admin listener on 127.0.0.1, with the client's address and a per-run secret in
 * two headers. The primary's listener accepts nothing else: no secret, or a proxy path → refused.
 */
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AdminHandler } from '../host.js';
import { isAdminPath } from '../config/index.js';
import { pickRequestId } from '../pipeline/index.js';
import { sendError } from '../server/index.js';

export const RELAY_SECRET_HEADER = 'x-microgate-relay';
export const RELAY_PEER_HEADER = 'x-microgate-peer';

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer'];

export interface AdminRelay {
  handler: AdminHandler;
  /** Ends relayed streams (SSE) so the worker can drain. */
  drain(): void;
}

/** The worker's admin handler: relays the request to the primary at 127.0.0.1:`port`. */
export function adminRelay(opts: { port: number; secret: string; draining: () => boolean }): AdminRelay {
  const open = new Set<IncomingMessage | ReturnType<typeof request>>();
  function relay(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (opts.draining() && path === '/health/ready') {
      // This worker is leaving: its balancer must hear it from the worker itself.
      const body = '{"status":"draining"}';
      res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store', 'retry-after': '1', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const headers: Record<string, string | string[] | undefined> = { ...req.headers };
    for (const h of HOP_BY_HOP) delete headers[h];
    headers[RELAY_SECRET_HEADER] = opts.secret;
    headers[RELAY_PEER_HEADER] = req.socket.remoteAddress ?? '';
    headers.connection = 'close';
    const up = request({ host: '127.0.0.1', port: opts.port, method: req.method, path: req.url, headers, agent: false }, (ur) => {
      const out: Record<string, string | string[] | undefined> = { ...ur.headers };
      for (const h of HOP_BY_HOP) delete out[h];
      res.writeHead(ur.statusCode ?? 502, out);
      open.add(ur);
      ur.once('close', () => open.delete(ur));
      ur.pipe(res);
    });
    open.add(up);
    up.once('close', () => open.delete(up));
    up.on('error', () => {
      if (!res.headersSent) sendError(res, 502, 'upstream_error', 'The cluster primary did not answer this admin request', pickRequestId(req.headers['x-request-id']));
      else res.destroy();
    });
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }
  return {
    handler: relay,
    drain() {
      for (const s of open) s.destroy();
      open.clear();
    },
  };
}

/**
 * The primary's gate on its private listener: a relayed admin request (right secret) goes on with
 * the client's address in place of the relay's; anything else is refused here.
 */
export function relayAdmission(secret: string): (req: IncomingMessage, res: ServerResponse) => boolean {
  const expected = Buffer.from(secret);
  return function admitRelayed(req: IncomingMessage, res: ServerResponse): boolean {
    const got = req.headers[RELAY_SECRET_HEADER];
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (typeof got !== 'string' || !sameSecret(Buffer.from(got), expected) || !(path.length > 1 && isAdminPath(path))) {
      sendError(res, 403, 'forbidden', 'This is the cluster primary: it serves relayed admin requests only', pickRequestId(undefined));
      return false;
    }
    const peer = req.headers[RELAY_PEER_HEADER];
    delete req.headers[RELAY_SECRET_HEADER];
    delete req.headers[RELAY_PEER_HEADER];
    // One connection per relayed request: the socket's peer is the client's.
    Object.defineProperty(req.socket, 'remoteAddress', { value: typeof peer === 'string' ? peer : '', configurable: true });
    return true;
  };
}

function sameSecret(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
