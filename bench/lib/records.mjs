/**
 * The per-request writers measured in-process (bench/access-log-line.mjs for CPU time,
 * bench/line-instructions.mjs for instructions), and the records they are fed: 1,024 completion
 * records shaped as the gateway publishes them (credentials already redacted), reused in turn.
 */
const DIST = new URL('../../dist/', import.meta.url);

export const POOL = 1024;

const LIMIT_POLICY = '"default";q=1000000000;w=1';
// Sequential strings, as the gateway keeps them (src/ratelimit/static.ts, limitField).
const LIMIT_FIELDS = Array.from({ length: 8 }, (_, k) => Buffer.from(`"default";r=${999_999_999 - k};t=1`).toString());

export async function sampleRecords() {
  // Ids as the gateway makes them: from the request-id stage, with the bytes the writers copy.
  const { requestId } = await import(new URL('pipeline/request-id.js', DIST).href);
  const stage = requestId();
  const base = Date.now();
  const records = [];
  for (let i = 0; i < POOL; i++) {
    const ctx = { req: { headers: {} }, id: '', idBytes: null, idWord: 0 };
    stage(ctx, () => {});
    const { id, idBytes, idWord } = ctx;
    records.push({
      id, idBytes, idWord, time: base + i, method: 'GET', path: '/api/v1/users', query: i % 3 ? '' : 'page=2', route: '/api', backend: 'http://127.0.0.1:9001', status: 200,
      latencyMs: 1.2345 + (i % 97) / 7, bytesIn: 0, bytesOut: 57, clientIp: '127.0.0.1', consumer: i % 2 ? 'api-key-1' : undefined, decision: undefined,
      detail: undefined, verdicts: [], errorCode: undefined,
      requestHeaders: { host: '127.0.0.1:8080', 'user-agent': 'autocannon', 'x-api-key': '[redacted]', accept: '*/*' },
      // The headers the client got, as the completion record keeps them (a flat list).
      // RateLimit as a busy bucket gives it: r steps among a few values between clock ticks.
      responseHeaders: ['content-type', 'application/json', 'content-length', '57', 'Date', 'Sat, 28 Nov 2026 08:22:08 GMT', 'x-request-id', id, 'RateLimit-Policy', LIMIT_POLICY, 'RateLimit', LIMIT_FIELDS[i & 7]],
    });
  }
  return records;
}

/** The built writers: `access(record)` (an access line into a batched stream whose output goes nowhere) and `requestLog(record)` (the dashboard's ring). */
export async function perRecordWriters() {
  const { accessLog, BatchedStream, createLogger } = await import(new URL('logging/index.js', DIST).href);
  const { RequestLogStore } = await import(new URL('dashboard/request-log.js', DIST).href);
  const stream = new BatchedStream({ write() {}, writableLength: 0 }, { fd: null });
  const access = accessLog(createLogger({ level: 'info', pretty: false }, stream));
  const ring = new RequestLogStore(1000, 500);
  return { access, requestLog: (r) => ring.push(r) };
}
