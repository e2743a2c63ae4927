/**
 * Logging: the pino logger and the access log, which subscribes to the completion event and
 * writes one JSON line per request. Credentials are never logged: the record holds none.
 */
import pino, { type Logger } from 'pino';
import type { LoggingConfig } from '../config/index.js';
import type { CompletionRecord } from '../events/index.js';
import { FieldCache, IsoTimes, JsonBytes, JsonKey, NumField } from '../events/json-bytes.js';
import { BatchedStream, type LineWriter } from './batched-stream.js';

export type { Logger } from 'pino';
export { BatchedStream, type LineSink, type LineWriter } from './batched-stream.js';

export function createLogger(config: Pick<LoggingConfig, 'level' | 'pretty'> & { flush_interval?: number }, destination?: pino.DestinationStream): Logger {
  const pretty = config.pretty ?? (process.stdout.isTTY === true && destination === undefined);
  if (pretty) {
    return pino({
      level: config.level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  const out = destination ?? new BatchedStream(process.stdout, { flushMs: config.flush_interval });
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
 * destination, but it is written as bytes, field by field, into the destination's buffer
 * (src/events/json-bytes.ts): pino's generic serializer cost 8-12 µs per request under load,
 * a template string per line ~1.5 µs and 1.5 KB of garbage; this ~1 µs and no garbage for ASCII
 * lines. See docs/decisions.md.
 */
export function accessLog(logger: Logger): (rec: CompletionRecord) => void {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  if (!(stream instanceof BatchedStream)) return accessLogViaPino(logger);
  return function logRequest(rec: CompletionRecord): void {
    stream.defer(rec, ACCESS_LINE);
  };
}

/** The access line of a record, as bytes (and, for a line longer than the buffer, as a string). */
const ACCESS_LINE: LineWriter<CompletionRecord> = {
  maxBytes: accessLineBytes,
  write: writeAccessLine,
  text(rec, nowMs) {
    const w = new JsonBytes(Buffer.allocUnsafe(accessLineBytes(rec)));
    writeAccessLine(w, rec, nowMs);
    return w.buf.toString('utf8', 0, w.pos);
  },
};

/** The most bytes writeAccessLine can write for `rec`: fixed text plus 6 bytes per character of the strings. */
function accessLineBytes(rec: CompletionRecord): number {
  const chars = rec.id.length + rec.method.length + rec.path.length + rec.clientIp.length + (rec.route?.length ?? 0) + rec.backend.length + (rec.consumer?.length ?? 0) + (rec.decision?.length ?? 0) + (rec.errorCode?.length ?? 0);
  return 512 + chars * 6;
}

/**
 * The access line's constant text, and the fields whose values come from a small set, prepared
 * once (src/events/json-bytes.ts): the key before each ISO time with the time's second, small
 * numbers with their key, strings from a small set with their key (and the key after them), and the
 * line's end for a request without decision or error (most of them) as one piece with the field before it.
 */
const K = {
  /** `time` (the line's, now) and `timestamp` (the request's start), each with the text before it. */
  time: new IsoTimes('{"level":"info","time":"'),
  timestamp: new IsoTimes('","type":"access","timestamp":"'),
  requestId: new JsonKey('","request_id":'),
  /** The method with the next key (the path's value follows). */
  methodPath: new FieldCache(',"method":', 256, ',"path":'),
  /** The status with the next key: one copy for both. */
  status: new NumField(',"status":', ',"duration_ms":'),
  clientIp: new FieldCache(',"client_ip":', 1024),
  route: new FieldCache(',"route":'),
  backend: new FieldCache(',"backend":'),
  bytesIn: new NumField(',"bytes_in":', ',"bytes_out":'),
  bytesOut: new NumField(''),
  /** bytes_out with the end of a line without consumer, decision or error (most lines). */
  bytesOutPlainEnd: new NumField('', ',"consumer":null,"decision":null,"error_code":null,"msg":"request"}\n'),
  consumer: new FieldCache(',"consumer":', 1024),
  /** The consumer with the end of a line without decision or error (an authenticated request's usual line). */
  consumerPlainEnd: new FieldCache(',"consumer":', 1024, ',"decision":null,"error_code":null,"msg":"request"}\n'),
  decision: new FieldCache(',"decision":'),
  errorCode: new FieldCache(',"error_code":'),
  end: new JsonKey(',"msg":"request"}\n'),
};

/** One access-log line in pino's shape (the keys and order of the lines pino writes for accessLogViaPino). */
function writeAccessLine(w: JsonBytes, rec: CompletionRecord, nowMs: number): void {
  w.iso(nowMs, K.time);
  w.iso(rec.time, K.timestamp);
  w.key(K.requestId);
  if (rec.idBytes != null) w.hexId(rec.idBytes, rec.idWord!);
  else w.plain(rec.id);
  w.cachedField(K.methodPath, rec.method);
  w.str(rec.path);
  w.numCached(K.status, rec.status);
  w.ms3(rec.latencyMs);
  w.cachedField(K.clientIp, rec.clientIp);
  w.cachedField(K.route, rec.route);
  w.cachedField(K.backend, rec.backend === '' ? null : rec.backend);
  w.numCached(K.bytesIn, rec.bytesIn);
  if (rec.consumer === undefined && rec.decision === undefined && rec.errorCode === undefined) {
    w.numCached(K.bytesOutPlainEnd, rec.bytesOut);
    return;
  }
  w.numCached(K.bytesOut, rec.bytesOut);
  if (rec.decision === undefined && rec.errorCode === undefined) {
    w.cachedField(K.consumerPlainEnd, rec.consumer);
    return;
  }
  w.cachedField(K.consumer, rec.consumer);
  w.cachedField(K.decision, rec.decision);
  w.cachedField(K.errorCode, rec.errorCode);
  w.key(K.end);
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
