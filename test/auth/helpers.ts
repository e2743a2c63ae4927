/** Shared helpers for the auth tests (not a test file itself). */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { AuthConfig } from '../../src/config/index.js';
import type { AuthResult } from '../../src/auth/index.js';
import type { ErrorCode } from '../../src/errors.js';

/** A 28-byte HMAC secret (the config requires at least 16). */
export const SECRET = 'test-secret-0123456789abcdef';

/** An `auth:` section with the schema's defaults, overridden by `over`. */
export function authConfig(over: Partial<AuthConfig> = {}): AuthConfig {
  return {
    api_keys: [],
    jwks_cache_ttl: 600_000,
    required_claims: [],
    clock_tolerance: 30_000,
    max_token_bytes: 8192,
    strip_credentials: false,
    failure_budget: { enabled: true, max_failures: 10, refill_rate: 0.1 },
    ...over,
  };
}

export function b64url(value: string | Uint8Array | object): string {
  if (typeof value === 'string') return Buffer.from(value, 'utf8').toString('base64url');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64url');
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

const HMAC_HASH: Record<string, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/**
 * A token HMAC-signed by hand, so a test controls every header byte (jose would refuse to sign
 * some of the headers these tests need). The hash follows `header.alg`, or `hash` if given.
 */
export function hmacToken(header: Record<string, unknown>, payload: Record<string, unknown> | string, secret: string | Uint8Array, hash?: string): string {
  const input = `${b64url(header)}.${typeof payload === 'string' ? b64url(payload) : b64url(payload)}`;
  const h = hash ?? HMAC_HASH[String(header.alg)] ?? 'sha256';
  return `${input}.${createHmac(h, secret).update(input).digest('base64url')}`;
}

export function bearer(token: string): IncomingHttpHeaders {
  return { authorization: `Bearer ${token}` };
}

/** Asserts a success and returns it. */
export async function expectOk(result: AuthResult | Promise<AuthResult>): Promise<{ consumer: string; method: string }> {
  const r = await result;
  assert.ok(r.ok, `expected success, got ${r.ok ? '' : `${r.error.code} (${String(r.error.cause)})`}`);
  return r;
}

/** Asserts a failure with `code` and returns its error. */
export async function expectFailure(result: AuthResult | Promise<AuthResult>, code: ErrorCode) {
  const r = await result;
  assert.equal(r.ok, false, `expected ${code}, got success`);
  if (r.ok) throw new Error('unreachable');
  assert.equal(r.error.code, code, `expected ${code}, got ${r.error.code} (${String(r.error.cause)})`);
  assert.equal(r.error.status, 401);
  return r.error;
}

/** Asserts that `result` was decided synchronously (no promise). */
export function assertSync(result: AuthResult | Promise<AuthResult>): asserts result is AuthResult {
  assert.ok(!(result instanceof Promise), 'expected a synchronous result');
}
