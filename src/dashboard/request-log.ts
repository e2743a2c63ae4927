/**
 * The request log: a fixed-size ring of completion records, newest overwriting oldest. Storing
 * is O(1) and allocation-free for requests without credentials; the JSON view (`RequestLog`) is
 * built only when an entry is served or broadcast.
 */
import type { CompletionRecord, Verdict } from '../events/index.js';
import { redactHeaders, SECRET_HEADERS } from '../events/index.js';

/** One request as the dashboard API and SSE `request` event show it. */
export interface RequestLog {
  id: string;
  /** Request start, ISO 8601. */
  timestamp: string;
  method: string;
  path: string;
  /** Query string without "?" ("" when none). */
  query: string;
  status: number;
  /** Real milliseconds (float, rounded to the microsecond). The reference sent nanoseconds here (B4). */
  latency_ms: number;
  client_ip: string;
  bytes_in: number;
  bytes_out: number;
  /** The backend URL the gateway chose ("" when the gateway answered itself). */
  backend: string;
  /** The matched route prefix ("" when none matched). */
  route: string;
  consumer?: string;
  decision?: string;
  /** The numbers behind `decision` (limit, retry_after_s, …). */
  detail?: Record<string, number | string>;
  /** Policies' opinions (e.g. an adaptive limit in shadow mode that would have refused). */
  verdicts?: readonly Verdict[];
  /** The gateway error code, when the gateway wrote an error response. */
  error?: string;
  /** Header values, with credentials replaced by "[redacted]". */
  request_headers: Record<string, string>;
  response_headers: Record<string, string>;
}

/** Builds the JSON view of a record. Credentials are redacted (again: redaction is idempotent). */
export function toRequestLog(r: CompletionRecord): RequestLog {
  return {
    id: r.id,
    timestamp: new Date(r.time).toISOString(),
    method: r.method,
    path: r.path,
    query: r.query,
    status: r.status,
    latency_ms: Math.round(r.latencyMs * 1000) / 1000,
    client_ip: r.clientIp,
    bytes_in: r.bytesIn,
    bytes_out: r.bytesOut,
    backend: r.backend,
    route: r.route ?? '',
    // undefined fields are left out of the JSON.
    consumer: r.consumer,
    decision: r.decision,
    detail: r.detail,
    verdicts: r.verdicts.length > 0 ? r.verdicts : undefined,
    error: r.errorCode,
    request_headers: redactHeaders(r.requestHeaders),
    response_headers: redactHeaders(r.responseHeaders),
  };
}

function holdsSecret(headers: object | undefined): boolean {
  if (headers === undefined) return false;
  for (const name of SECRET_HEADERS) {
    const v = (headers as Record<string, unknown>)[name];
    // The gateway redacts in place before publishing; this is the guard for any other publisher.
    if (v !== undefined && v !== '[redacted]') return true;
  }
  return false;
}

/**
 * Returns the record itself when it carries no credential, otherwise a copy with its header
 * values redacted, so no secret is ever retained by the log or the SSE history. Node lower-cases
 * both request and response header names, so a few property reads decide.
 */
export function withoutSecrets(r: CompletionRecord): CompletionRecord {
  const reqSecret = holdsSecret(r.requestHeaders);
  const resSecret = holdsSecret(r.responseHeaders);
  if (!reqSecret && !resSecret) return r;
  return {
    ...r,
    requestHeaders: reqSecret ? maskSecrets(r.requestHeaders) : r.requestHeaders,
    responseHeaders: resSecret ? maskSecrets(r.responseHeaders!) : r.responseHeaders,
  };
}

/** A shallow copy with secret values replaced (names are already lower-case). */
function maskSecrets<T extends object>(headers: T): T {
  const out = { ...headers } as Record<string, unknown>;
  for (const name of SECRET_HEADERS) if (out[name] !== undefined) out[name] = '[redacted]';
  return out as T;
}

/** Filters of `GET /logs`. */
export interface LogQuery {
  limit: number;
  /** Exact status, or a class: 5 matches 500-599. */
  status?: { exact: number } | { cls: number };
  /** Case-sensitive substring of the path. */
  path?: string;
}

export class RequestLogStore {
  readonly capacity: number;
  readonly #ring: (CompletionRecord | undefined)[];
  /** Index the next record goes to. */
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`log capacity must be a positive integer (got ${capacity})`);
    this.capacity = capacity;
    this.#ring = new Array<CompletionRecord | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Stores a record (already stripped of secrets), evicting the oldest when full. O(1). */
  push(record: CompletionRecord): void {
    this.#ring[this.#next] = record;
    this.#next = this.#next + 1 === this.capacity ? 0 : this.#next + 1;
    if (this.#size < this.capacity) this.#size++;
  }

  /** Matching records, newest first, at most `q.limit`. */
  search(q: LogQuery): CompletionRecord[] {
    const out: CompletionRecord[] = [];
    const st = q.status;
    for (let i = 0; i < this.#size && out.length < q.limit; i++) {
      const r = this.#at(i);
      if (st !== undefined && ('exact' in st ? r.status !== st.exact : Math.floor(r.status / 100) !== st.cls)) continue;
      if (q.path !== undefined && !r.path.includes(q.path)) continue;
      out.push(r);
    }
    return out;
  }

  /** The newest record with this request ID (IDs repeat when clients reuse X-Request-Id). */
  find(id: string): CompletionRecord | undefined {
    for (let i = 0; i < this.#size; i++) {
      const r = this.#at(i);
      if (r.id === id) return r;
    }
    return undefined;
  }

  /** The i-th newest record (0 = newest); i < size. */
  #at(i: number): CompletionRecord {
    let idx = this.#next - 1 - i;
    if (idx < 0) idx += this.capacity;
    return this.#ring[idx]!;
  }
}
