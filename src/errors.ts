/**
 * The one catalogue of gateway error codes. Every error a client can see is a `GatewayError`
 * with a stable `code`; code branches on `code`, never on message text.
 */

/** Stable error codes with their HTTP status and default message. */
export const ERROR_CODES = {
  bad_request: { status: 400, message: 'Bad Request' },
  header_too_large: { status: 431, message: 'Request Header Fields Too Large' },
  // proxy hardening (issue 7)
  request_timeout: { status: 408, message: 'Request Timeout' },
  http_version_not_supported: { status: 505, message: 'HTTP Version Not Supported' },
  body_too_large: { status: 413, message: 'Payload Too Large' },
  not_found: { status: 404, message: 'Not Found' },
  method_not_allowed: { status: 405, message: 'Method Not Allowed' },
  unsupported_media_type: { status: 415, message: 'Unsupported Media Type' },
  conflict: { status: 409, message: 'Conflict' },
  forbidden: { status: 403, message: 'Forbidden' },
  missing_credentials: { status: 401, message: 'Unauthorized' },
  invalid_api_key: { status: 401, message: 'Invalid API Key' },
  invalid_authorization_header: { status: 401, message: 'Invalid Authorization Header' },
  invalid_token: { status: 401, message: 'Invalid Token' },
  token_expired: { status: 401, message: 'Token Expired' },
  admin_unauthorized: { status: 401, message: 'Admin token required' },
  rate_limited: { status: 429, message: 'Too Many Requests' },
  adaptive_limited: { status: 429, message: 'Too Many Requests' },
  // Adaptive layer (src/adaptive): the learned route-wide limit refused this client (message explains the numbers).
  adaptive_rate_limited: { status: 429, message: 'Too Many Requests: over the learned route limit' },
  // access control (issue 7): the address spent its budget of failed credential attempts
  auth_throttled: { status: 429, message: 'Too many failed credential attempts' },
  no_healthy_backend: { status: 503, message: 'No healthy backends available' },
  breaker_open: { status: 503, message: 'Service Unavailable' },
  store_unavailable: { status: 503, message: 'Rate limit store unavailable' },
  too_many_streams: { status: 503, message: 'Too many open event streams' },
  dashboard_not_built: { status: 503, message: 'Dashboard not built: run npm run build' },
  process_start_failed: { status: 500, message: 'Process failed to start' },
  shutting_down: { status: 503, message: 'Gateway is shutting down' },
  upstream_error: { status: 502, message: 'Bad Gateway' },
  upstream_saturated: { status: 503, message: 'Backend is saturated: too many requests waiting for it' },
  upstream_timeout: { status: 504, message: 'Gateway Timeout' },
  internal_error: { status: 500, message: 'Internal Server Error' },
  // --- reload (issue 9) ---
  config_invalid: { status: 422, message: 'The config file has problems; nothing changed' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error that becomes one JSON error response: `{"error":{"code","message","request_id"}}`. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, such as `Retry-After` or `WWW-Authenticate`. */
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message ?? ERROR_CODES[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.headers = options?.headers;
  }
}

/** Serializes the JSON error body for a code; the request ID is echoed so clients can quote it. */
export function errorBody(code: string, message: string, requestId: string | undefined): string {
  return JSON.stringify({ error: { code, message, request_id: requestId ?? null } });
}

/** Normalizes anything thrown into a GatewayError (unknown errors become `internal_error`). */
export function toGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError('internal_error', undefined, { cause: err });
}
