/**
 * The completion event: one record per finished (or aborted) request, published by the pipeline.
 * Metrics, logs, the request log and the SSE broker subscribe; the proxy calls none of them.
 * Subscribers run synchronously and must be cheap: queue work, never block or throw.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { IdBytes } from './json-bytes.js';

/** What shaped a request's outcome, when the gateway (not the backend) decided it. */
export type Decision =
  | 'rate_limited'
  | 'adaptive_limited'
  | 'auth_failed'
  | 'breaker_open'
  | 'no_healthy_backend'
  | 'upstream_timeout'
  | 'upstream_error'
  | 'upstream_saturated'
  | 'client_aborted'
  | 'body_too_large'
  | 'not_found'
  | 'bad_request'
  | 'request_timeout'
  | 'retried'
  | 'panic';

/**
 * The opinion of one policy about a request. A request may carry several: a static limit that
 * passed and, beside it, an adaptive limit in shadow mode that would have refused, e.g.
 * `[{policy:'ratelimit', verdict:'pass'}, {policy:'adaptive', verdict:'would_refuse', mode:'shadow', detail:{limit:120}}]`.
 * `decision` stays the one outcome that shaped the response; verdicts are every opinion held.
 */
export interface Verdict {
  /** The policy's name, e.g. "ratelimit", "adaptive", "auth", "breaker". */
  policy: string;
  /** `pass` / `refuse` when enforced; `would_refuse` / `would_pass` when only observed. */
  verdict: 'pass' | 'refuse' | 'would_pass' | 'would_refuse';
  /** `enforce` (default) or `shadow` (observed, not acted on). */
  mode?: 'enforce' | 'shadow';
  /** Numbers behind the verdict (limit, remaining, score, …). */
  detail?: Record<string, number | string>;
}

/** Shared by every record without verdicts: nothing allocated per request. Never mutate. */
export const NO_VERDICTS: readonly Verdict[] = Object.freeze([]);

/** One finished request. Never holds a secret: `consumer` is a key id or JWT `sub`. */
export interface CompletionRecord {
  /**
   * The request id: always 1-128 characters of [A-Za-z0-9._:-] (pickRequestId / newRequestId make
   * every one), so log writers copy it into JSON without escaping (JsonBytes.plain).
   */
  id: string;
  /**
   * When the gateway made the id: its bytes (the batch it came from, and the id's first word in it),
   * which log writers copy instead of encoding `id`. Absent or null otherwise, and in a record that
   * crossed from a worker to the primary.
   */
  idBytes?: IdBytes | null;
  idWord?: number;
  /** Request start, epoch ms, from the gateway's injected clock. */
  time: number;
  method: string;
  /** URL path without the query string. */
  path: string;
  /** Query string without "?", or "" when none. */
  query: string;
  /** Configured route prefix, or null when no route matched. */
  route: string | null;
  /** Backend URL the gateway sent the request to ("" when none). */
  backend: string;
  status: number;
  /** Milliseconds from request start to the response end, fractional. */
  latencyMs: number;
  bytesIn: number;
  bytesOut: number;
  clientIp: string;
  consumer: string | undefined;
  decision: Decision | undefined;
  /** Numbers behind the decision (limit, remaining, retry_after_s, …). */
  detail: Record<string, number | string> | undefined;
  /** Every policy's opinion, in the order given (NO_VERDICTS when none). */
  verdicts: readonly Verdict[];
  /** Error code of a gateway error response, if any. */
  errorCode: string | undefined;
  /** The client's request headers as Node parsed them, credential values already replaced by "[redacted]". */
  requestHeaders: IncomingHttpHeaders;
  /**
   * The response headers the gateway sent (the backend's minus hop-by-hop ones, plus the gateway's),
   * credential values already replaced by "[redacted]"; undefined when none were sent.
   */
  responseHeaders: HeaderList | undefined;
}

/**
 * Headers as a flat [name, value, name, value, ...] list, the form `writeHead` takes: names as they
 * were sent (any case; a backend's names as it spelled them), a name repeated for each of its values.
 */
export type HeaderList = string[];

/** An object of headers (`getHeaders()`, `IncomingMessage#headers`) as a HeaderList: a value list becomes one pair per value. */
export function headerListOf(headers: OutgoingHttpHeaders | IncomingHttpHeaders): HeaderList {
  const out: HeaderList = [];
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) out.push(name, String(v[i]));
    else out.push(name, String(v));
  }
  return out;
}

export type CompletionListener = (record: CompletionRecord) => void;

/** A tiny synchronous fan-out; a throwing listener is isolated and reported, never breaks a request. */
export class CompletionBus {
  #listeners: CompletionListener[] = [];
  #onListenerError: (err: unknown) => void;

  constructor(onListenerError: (err: unknown) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  subscribe(listener: CompletionListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  publish(record: CompletionRecord): void {
    const listeners = this.#listeners;
    for (let i = 0; i < listeners.length; i++) {
      try {
        listeners[i]!(record);
      } catch (err) {
        this.#onListenerError(err);
      }
    }
  }
}

/** Header names whose values are secrets and must never be stored or logged. */
export const SECRET_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'x-api-key', 'cookie', 'set-cookie']);
const SECRET_HEADER_LIST: readonly string[] = [...SECRET_HEADERS];

/**
 * Replaces, in place, the value of every secret header a HeaderList names (in any case) with
 * "[redacted]". The publisher calls it on the response's list once the response is done (nothing
 * sends it afterwards), so no subscriber ever sees a credential and nothing is copied per request.
 */
export function redactList(list: HeaderList | undefined): void {
  if (list === undefined) return;
  for (let i = 0; i < list.length; i += 2) if (secretNameOf(list[i]!) !== null) list[i + 1] = '[redacted]';
}

/**
 * Replaces, in place, the values of the secret headers a flat [name, value, ...] list names (names
 * in any case, as a client sent them) with "[redacted]", in the header object parsed from that
 * list (Node builds `req.headers` from `req.rawHeaders`, so the object holds a secret only under a
 * name the list has). A request without credentials costs a pass over its names, ~15 instructions
 * a header, instead of five keyed lookups on a dictionary (~700); one with a credential, a lookup
 * and a store per credential.
 */
export function redactListed(headers: Record<string, unknown>, list: readonly string[]): void {
  for (let i = 0; i < list.length; i += 2) {
    const secret = secretNameOf(list[i]!);
    if (secret !== null && headers[secret] !== undefined) headers[secret] = '[redacted]';
  }
}

/** The lower-case secret header name `name` spells (in any case), or null. */
export function secretNameOf(name: string): string | null {
  const len = name.length;
  if (len >= SECRET_BY_LENGTH.length) return null;
  const secret = SECRET_BY_LENGTH[len];
  // Same length as a secret name: compare first letters before lower-casing ("accept" vs "cookie").
  if (secret === undefined || (name.charCodeAt(0) | 0x20) !== secret.charCodeAt(0)) return null;
  return name === secret || name.toLowerCase() === secret ? secret : null;
}

/** The secret header names by length (no two share one; a test holds that). */
const SECRET_BY_LENGTH: (string | undefined)[] = Array.from({ length: Math.max(...SECRET_HEADER_LIST.map((n) => n.length)) + 1 }, () => undefined);
for (const name of SECRET_HEADER_LIST) SECRET_BY_LENGTH[name.length] = name;

/**
 * A notice: something an operator should see as it happens that is not a request — an anomaly
 * episode, a learned limit moving, a breaker trip, a config reload. The dashboard forwards every
 * notice to its event stream under `event` (the SSE event name); others may log or count them.
 */
export interface Notice {
  /** SSE event name: `anomaly`, `adaptive`, `breaker`, `config`, … */
  event: string;
  /** The JSON payload. */
  data: unknown;
}

export type NoticeListener = (notice: Notice) => void;

/** Fan-out of notices. Rare events (not per request): listeners may allocate, but must not throw. */
export class NoticeBus {
  #listeners: NoticeListener[] = [];
  readonly #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void = () => {}) {
    this.#onError = onError;
  }

  subscribe(listener: NoticeListener): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  publish(event: string, data: unknown): void {
    const notice: Notice = { event, data };
    for (const l of this.#listeners) {
      try {
        l(notice);
      } catch (err) {
        this.#onError(err);
      }
    }
  }
}
