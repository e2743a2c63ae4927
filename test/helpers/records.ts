/** Completion records for unit tests: a plain 200 GET on /api, overridable field by field. */
import { NO_VERDICTS, type CompletionRecord } from '../../src/events/index.js';
import { requestId } from '../../src/pipeline/request-id.js';
import type { RequestContext } from '../../src/pipeline/context.js';

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

/** The id fields of a record whose id the gateway made (the request-id stage's work, as the pipeline runs it). */
export function generatedId(): Pick<CompletionRecord, 'id' | 'idBytes' | 'idWord'> {
  const ctx = { req: { headers: {} }, id: '', idBytes: null, idWord: 0 } as unknown as RequestContext;
  requestId()(ctx, () => {});
  return { id: ctx.id, idBytes: ctx.idBytes, idWord: ctx.idWord };
}
