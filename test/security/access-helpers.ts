/** A raw-socket client for the access-control attack tests: bytes out exactly as written, one response back. */
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Status line, headers and body as received (latin1). */
  text: string;
  headers: Map<string, string>;
  body: string;
}

/**
 * Writes `data` on a new connection (from `localAddress` when given, e.g. 127.0.0.2 to be another
 * client) and resolves with the first response once its Content-Length body has arrived, or
 * whatever came when the server closed or `timeoutMs` passed.
 */
export function rawExchange(port: number, data: string, opts: { localAddress?: string; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: opts.localAddress });
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parse(buf.toString('latin1')));
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 3_000);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const text = buf.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
      if (length !== null && buf.length >= end + 4 + Number(length[1])) finish();
    });
    socket.on('error', (err) => {
      if (buf.length > 0) finish();
      else if (!settled) {
        settled = true;
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('close', finish);
    socket.write(data);
  });
}

function parse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  const lines = head.split('\r\n');
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0), text, headers, body: end === -1 ? '' : text.slice(end + 4) };
}
