/** A completion record for unit tests: a plain 200 GET on /api, overridable field by field. */
import { NO_VERDICTS, type CompletionRecord } from '../../src/events/index.js';

let seq = 0;

export function completionRecord(overrides: Partial<CompletionRecord> = {}): CompletionRecord {
  seq++;
  return {
    id: `req-${seq}`,
    time: 1_700_000_000_000,
    method: 'GET',
    path: '/api/users',
    query: '',
    route: '/api',
    backend: 'http://127.0.0.1:9001',
    status: 200,
    latencyMs: 12,
    bytesIn: 0,
    bytesOut: 42,
    clientIp: '127.0.0.1',
    consumer: undefined,
    decision: undefined,
    detail: undefined,
    verdicts: NO_VERDICTS,
    errorCode: undefined,
    requestHeaders: {},
    responseHeaders: undefined,
    ...overrides,
  };
}
