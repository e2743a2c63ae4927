/**
 * Logging: the pino logger and the access log, which subscribes to the completion event and
 * writes one JSON line per request. Credentials are never logged: the record holds none.
 */
import pino, { type Logger } from 'pino';
import type { LoggingConfig } from '../config/index.js';
import type { CompletionRecord } from '../events/index.js';

export type { Logger } from 'pino';

export function createLogger(config: Pick<LoggingConfig, 'level' | 'pretty'>, destination?: pino.DestinationStream): Logger {
  const pretty = config.pretty ?? (process.stdout.isTTY === true && destination === undefined);
  if (pretty) {
    return pino({
      level: config.level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino(
    { level: config.level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } },
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }),
  );
}

/**
 * Access-log subscriber: the reference's fields (timestamp, request_id, method, path, status,
 * duration_ms, client_ip) plus route, backend, bytes, consumer and the gateway's decision.
 */
export function accessLog(logger: Logger): (rec: CompletionRecord) => void {
  return function logRequest(rec: CompletionRecord): void {
    logger.info(
      {
        type: 'access',
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
