/** Raw-socket tools for the proxy attack tests: a backend that sees every byte, and a raw client. */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

type After = { after: (fn: () => unknown) => void };

export interface RawBackend {
  url: string;
  port: number;
  /** Every connection's bytes as received (latin1), health probes left out. */
  connections: string[];
  /** All bytes received by the backend outside health probes, joined. */
  seen: () => string;
}

const HEALTH_OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok';

/**
 * A TCP backend that records every byte it gets. Health probes are answered 200; anything else
 * goes to `onHead(socket, head, index)` once its header block is complete (head in latin1).
 */
export async function rawBackend(t: After, onHead: (socket: Socket, head: string, index: number) => void): Promise<RawBackend> {
  const connections: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('latin1');
    let buf = '';
    let index = -1;
    let answered = false;
    socket.on('data', (d: string) => {
      buf += d;
      if (index >= 0) connections[index] = buf;
      if (answered || !buf.includes('\r\n\r\n')) return;
      answered = true;
      if (/\r\nx-health-check:/i.test(buf)) {
        socket.end(HEALTH_OK);
        return;
      }
      index = connections.push(buf) - 1;
      onHead(socket, buf, index);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, connections, seen: () => connections.join('') };
}

/** A raw TCP client of the gateway: `text()` is everything it received so far; `closed()` once the gateway hung up. */
export function rawClient(t: After, port: number) {
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let buf = '';
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (buf += c));
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  return { socket, text: () => buf, closed: () => closed };
}
