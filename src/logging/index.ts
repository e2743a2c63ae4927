/**
 * Logging: the pino logger and the access log, which subscribes to the completion event and
 * writes one JSON line per request. Credentials are never logged: the record holds none.
 */
import pino, { type Logger } from 'pino';
import type { LoggingConfig } from '../config/index.js';
import type { CompletionRecord } from '../events/index.js';
import { BatchedStream } from './batched-stream.js';

export type { Logger } from 'pino';
export { BatchedStream, type LineSink } from './batched-stream.js';

export function createLogger(config: Pick<LoggingConfig, 'level' | 'pretty'>, destination?: pino.DestinationStream): Logger {
  const pretty = config.pretty ?? (process.stdout.isTTY === true && destination === undefined);
  if (pretty) {
    return pino({
      level: config.level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  const out = destination ?? new BatchedStream();
  const logger = pino(
    { level: config.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    out,
  );
  if (out instanceof BatchedStream) {
    // pino's flush() only knows its own streams: make it write what is pending, synchronously.
    logger.flush = (cb?: (err?: Error) => void) => {
      out.flushSync();
      cb?.();
    };
    if (config.level !== 'silent') flushOnExit(out);
  }
  return logger;
}

const pendingAtExit = new Set<BatchedStream>();
/** Lines still batched when the process exits are written synchronously, not lost. */
function flushOnExit(stream: BatchedStream): void {
  if (pendingAtExit.size === 0) process.once('exit', () => pendingAtExit.forEach((s) => s.flushSync()));
  pendingAtExit.add(stream);
}

/**
 * Access-log subscriber: one JSON line per request with the reference's fields (timestamp,
 * request_id, method, path, status, duration_ms, client_ip) plus route, backend, bytes, consumer
 * and the gateway's decision. The line has the shape of pino's lines and goes to the logger's own
 * destination, but it is written field by field into the destination's buffer: pino's generic
 * serializer, or even one template string per request, cost 8-12 µs per request under load
 * (mostly garbage-collector work); this costs ~1-2 µs. See docs/decisions.md.
 */
export function accessLog(logger: Logger): (rec: CompletionRecord) => void {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  if (!(stream instanceof BatchedStream)) return accessLogViaPino(logger);
  // Records are queued and formatted together when the stream flushes: a tight formatting loop
  // costs a third of formatting each line in the middle of request handling.
  const iso = new IsoCache();
  const J = JSON.stringify;
  // Method, route, backend and client address repeat from request to request: their JSON text is
  // memoised instead of stringified (and allocated) once per line.
  const q = new JsonMemo();
  const format = (rec: CompletionRecord, now: string): string =>
    `{"level":"info","time":"${now}","type":"access","timestamp":"${iso.of(rec.time)}","request_id":"${rec.id}","method":${q.of(rec.method)},"path":${J(rec.path)},"status":${rec.status},"duration_ms":${Math.round(rec.latencyMs * 1000) / 1000},"client_ip":${q.of(rec.clientIp)},"route":${rec.route === null ? 'null' : q.of(rec.route)},"backend":${rec.backend === '' ? 'null' : q.of(rec.backend)},"bytes_in":${rec.bytesIn},"bytes_out":${rec.bytesOut},"consumer":${rec.consumer === undefined ? 'null' : J(rec.consumer)},"decision":${rec.decision === undefined ? 'null' : `"${rec.decision}"`},"error_code":${rec.errorCode === undefined ? 'null' : `"${rec.errorCode}"`},"msg":"request"}\n`;
  return function logRequest(rec: CompletionRecord): void {
    stream.defer(rec, format);
  };
}

/** Same fields through pino, for loggers with another destination (pretty output, tests). */
function accessLogViaPino(logger: Logger): (rec: CompletionRecord) => void {
  const access = logger.child({ type: 'access' });
  return function logRequestViaPino(rec: CompletionRecord): void {
    access.info(
      {
        timestamp: new Date(rec.time).toISOString(),
        request_id: rec.id,
        method: rec.method,
        path: rec.path,
        status: rec.status,
        duration_ms: Math.round(rec.latencyMs * 1000) / 1000,
        client_ip: rec.clientIp,
        route: rec.route,
        backend: rec.backend || null,
        bytes_in: rec.bytesIn,
        bytes_out: rec.bytesOut,
        consumer: rec.consumer ?? null,
        decision: rec.decision ?? null,
        error_code: rec.errorCode ?? null,
      },
      'request',
    );
  };
}

/** JSON string literals of recurring values; bounded (cleared when full), so hostile variety costs memory once. */
class JsonMemo {
  readonly #map = new Map<string, string>();
  of(s: string): string {
    let j = this.#map.get(s);
    if (j === undefined) {
      if (this.#map.size >= 4096) this.#map.clear();
      j = JSON.stringify(s);
      this.#map.set(s, j);
    }
    return j;
  }
}

/** ISO-8601 strings of recent milliseconds: under load many requests share a millisecond. */
class IsoCache {
  #ms = [0, 0];
  #text = ['', ''];
  #next = 0;
  of(ms: number): string {
    if (ms === this.#ms[0]) return this.#text[0]!;
    if (ms === this.#ms[1]) return this.#text[1]!;
    const i = this.#next;
    this.#next = 1 - i;
    this.#ms[i] = ms;
    return (this.#text[i] = new Date(ms).toISOString());
  }
}
