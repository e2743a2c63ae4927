/**
 * The WebSocket (Upgrade) tunnel: after the pipeline chose a backend, the handshake is replayed
 * to it with rewritten headers and the two sockets are piped together until either side closes.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/index.js';
import { normalizeIp, upstreamPath } from '../pipeline/index.js';
import { upstreamHeaders } from './headers.js';

export interface TunnelOptions {
  stripCredentials: boolean;
  fail: (ctx: RequestContext, err: GatewayError) => void;
  done: (ctx: RequestContext) => void;
  onConnectFailure: (backend: import('../balancer/index.js').Backend) => void;
}

export function tunnel(opts: TunnelOptions) {
  return function tunnelStage(ctx: RequestContext): void {
    const backend = ctx.backend!;
    const req = ctx.req;
    const client = req.socket;
    const headers = upstreamHeaders(req.rawHeaders, {
      peerIp: normalizeIp(client.remoteAddress ?? ''),
      requestId: ctx.id,
      proto: (client as { encrypted?: boolean }).encrypted ? 'https' : 'http',
      stripCredentials: opts.stripCredentials && ctx.route !== null && !ctx.route.isPublic,
      upgrade: true,
    });
    const path = backend.basePath + upstreamPath(ctx.route!, req.url!);
    const origin = backend.origin;
    const port = Number(origin.port) || (origin.protocol === 'https:' ? 443 : 80);
    const upstream: Socket =
      origin.protocol === 'https:'
        ? tlsConnect({ host: origin.hostname, port, servername: origin.hostname })
        : netConnect({ host: origin.hostname, port });
    let connected = false;
    const timer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), backend.connectTimeoutMs);

    upstream.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (connected) {
        client.destroy();
        return;
      }
      opts.onConnectFailure(backend);
      backend.breaker?.failure();
      ctx.decision = err.code === 'UND_ERR_CONNECT_TIMEOUT' ? 'upstream_timeout' : 'upstream_error';
      opts.fail(ctx, new GatewayError(ctx.decision === 'upstream_timeout' ? 'upstream_timeout' : 'upstream_error', 'Upstream connection failed', { cause: err }));
    });

    upstream.once(origin.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      connected = true;
      let head = `${req.method} ${path} HTTP/1.1\r\n`;
      for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
      upstream.write(head + '\r\n');
      if (ctx.upgradeHead !== null && ctx.upgradeHead.length > 0) upstream.write(ctx.upgradeHead);
      ctx.res.detachSocket(client);
      let answered = false;
      upstream.once('data', (first: Buffer) => {
        answered = true;
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(first.subarray(0, 16).toString('latin1'));
        ctx.res.statusCode = m ? Number(m[1]) : 502;
        if (ctx.res.statusCode >= 500) backend.breaker?.failure();
        else backend.breaker?.success();
        ctx.bytesOut += first.length;
        client.write(first);
        upstream.pipe(client);
        client.pipe(upstream);
        opts.done(ctx);
      });
      client.once('close', () => {
        if (!answered) {
          answered = true;
          backend.breaker?.release();
          ctx.decision = 'client_aborted';
          opts.done(ctx);
        }
        upstream.destroy();
      });
      upstream.once('close', () => {
        if (!answered) {
          // The backend hung up before answering the handshake.
          answered = true;
          backend.breaker?.failure();
          ctx.decision = 'upstream_error';
          ctx.res.statusCode = 502;
          client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
          opts.done(ctx);
          return;
        }
        client.destroy();
      });
      client.on('error', () => upstream.destroy());
    });
  };
}
