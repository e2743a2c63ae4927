/** The Authenticator: decides who a request is from its `X-API-Key` or `Authorization: Bearer` header. */
import type { IncomingHttpHeaders } from 'node:http';
import type { JWTPayload } from 'jose';
import { systemClock, type Clock } from '../clock.js';
import type { AuthConfig } from '../config/index.js';
import { GatewayError, type ErrorCode } from '../errors.js';
import { ApiKeyStore } from './api-key.js';
import { bearerToken, isBearerScheme } from './compact-jws.js';
import { joseIfLoaded, loadJose } from './jose.js';
import { RemoteKeySet } from './jwks.js';
import { AuthConfigError, JwtVerifier } from './jwt.js';

export type AuthMethod = 'api_key' | 'jwt';

/** The outcome of `authenticate`. A success names the consumer (never a secret). */
export type AuthResult =
  | { readonly ok: true; readonly consumer: string; readonly method: AuthMethod }
  | { readonly ok: false; readonly error: GatewayError };

export interface Authenticator {
  /**
   * Authenticates one request from its headers. Synchronous for an API key and for every failure
   * decided without cryptography; a Promise only when a bearer token must be verified.
   */
  authenticate(headers: IncomingHttpHeaders): AuthResult | Promise<AuthResult>;
  /** Fetches the JWKS once (best effort; never rejects, lookups retry). A no-op without jwks_url. */
  start(): Promise<void>;
  /** Aborts any JWKS fetch. Safe without `start()` and more than once. */
  close(): Promise<void>;
}

export interface AuthenticatorOptions {
  /** Time source for `exp`/`nbf`. Default: the system clock. (JWKS cache ages use the system clock.) */
  clock?: Clock;
  /** Minimum time between JWKS refetches caused by an unknown `kid`, ms. Default min(30 s, jwks_cache_ttl). */
  jwksCooldownMs?: number;
  /** Timeout of one JWKS fetch, ms. Default 5 s. */
  jwksTimeoutMs?: number;
}

/** `sub` values longer than this, empty or with control characters are not used as a consumer id. */
const MAX_SUBJECT_LENGTH = 256;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/** Consumer id of a valid token whose `sub` is missing or unusable. */
const JWT_CONSUMER = 'jwt';

// RFC 6750 §3: every 401 carries a challenge; `error` only once a token was actually presented.
const REALM = 'Bearer realm="microgate"';
const CHALLENGE = Object.freeze({ 'WWW-Authenticate': REALM });
const CHALLENGE_INVALID_REQUEST = Object.freeze({ 'WWW-Authenticate': `${REALM}, error="invalid_request"` });
const CHALLENGE_INVALID_TOKEN = Object.freeze({ 'WWW-Authenticate': `${REALM}, error="invalid_token"` });
const CHALLENGE_EXPIRED = Object.freeze({
  'WWW-Authenticate': `${REALM}, error="invalid_token", error_description="The access token expired"`,
});

/**
 * Builds the authenticator for the `auth:` config section. Throws an `AuthConfigError` naming the
 * key when the section cannot work as written (no credentials at all, HS algorithms without a
 * secret, a public key that does not fit `jwt_algorithms`, both jwt_public_key and jwks_url, …).
 */
export function createAuthenticator(cfg: AuthConfig, opts: AuthenticatorOptions = {}): Authenticator {
  return new GatewayAuthenticator(cfg, opts);
}

class GatewayAuthenticator implements Authenticator {
  readonly #keys: ApiKeyStore;
  /** One frozen success result per configured key, so the API-key path allocates nothing but a digest. */
  readonly #keyResults: readonly AuthResult[];
  readonly #jwt: JwtVerifier | undefined;
  readonly #remote: RemoteKeySet | undefined;
  readonly #clock: Clock;
  readonly #toleranceMs: number;

  constructor(cfg: AuthConfig, opts: AuthenticatorOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#toleranceMs = cfg.clock_tolerance;
    this.#keys = new ApiKeyStore(cfg.api_keys);
    this.#keyResults = cfg.api_keys.map((_, i) => Object.freeze({ ok: true, consumer: this.#keys.consumerAt(i), method: 'api_key' }) as AuthResult);

    const hasJwt = cfg.jwt_secret !== undefined || cfg.jwt_public_key !== undefined || cfg.jwks_url !== undefined;
    if (!hasJwt) {
      if (cfg.jwt_algorithms !== undefined) throw new AuthConfigError('auth.jwt_algorithms: set, but there is no jwt_secret, jwt_public_key or jwks_url');
      if (this.#keys.size === 0) throw new AuthConfigError('auth: no api_keys and no JWT key material; nothing could authenticate');
    }
    if (cfg.jwt_public_key !== undefined && cfg.jwks_url !== undefined) {
      throw new AuthConfigError('auth: give either jwt_public_key or jwks_url, not both');
    }
    this.#remote =
      cfg.jwks_url === undefined
        ? undefined
        : new RemoteKeySet(cfg.jwks_url, { cacheTtlMs: cfg.jwks_cache_ttl, cooldownMs: opts.jwksCooldownMs, timeoutMs: opts.jwksTimeoutMs });
    this.#jwt = hasJwt
      ? new JwtVerifier({
          secret: cfg.jwt_secret === undefined ? undefined : Buffer.from(cfg.jwt_secret, 'utf8'),
          publicKeyPem: cfg.jwt_public_key,
          keySet: this.#remote?.resolve,
          algorithms: cfg.jwt_algorithms,
          issuer: cfg.issuer,
          audience: cfg.audience,
          requiredClaims: cfg.required_claims,
          clockToleranceMs: cfg.clock_tolerance,
          maxTokenBytes: cfg.max_token_bytes,
          clock: opts.clock,
        })
      : undefined;
  }

  authenticate(headers: IncomingHttpHeaders): AuthResult | Promise<AuthResult> {
    const apiKey = headers['x-api-key'];
    const authorization = headers.authorization;
    if (apiKey !== undefined && apiKey !== '') {
      // A repeated X-API-Key arrives joined ("a, b") or as an array: never a configured key.
      const index = typeof apiKey === 'string' ? this.#keys.indexOf(apiKey) : -1;
      if (index >= 0) return this.#keyResults[index]!;
      // A wrong key does not hide a bearer token: the token decides (the reference answered 401 here).
      if (authorization === undefined || !isBearerScheme(authorization)) return failure('invalid_api_key', CHALLENGE);
    } else if (authorization === undefined || authorization === '') {
      return failure('missing_credentials', CHALLENGE);
    }
    return this.#bearer(authorization);
  }

  #bearer(authorization: string): AuthResult | Promise<AuthResult> {
    const token = bearerToken(authorization);
    if (token === null) return failure('invalid_authorization_header', CHALLENGE);
    if (token === undefined) return failure('invalid_authorization_header', CHALLENGE_INVALID_REQUEST);
    const jwt = this.#jwt;
    // Size first, then syntax: an oversized or malformed token is refused without decoding it.
    if (jwt === undefined || !jwt.acceptsShape(token)) return failure('invalid_token', CHALLENGE_INVALID_TOKEN, 'malformed');
    const hit = this.#verified.get(token);
    if (hit !== undefined) {
      if (this.#clock.now() < hit.until) return hit.result;
      this.#verified.delete(token);
    }
    return verifyToken(jwt, token, (result, claims) => this.#remember(token, result, claims));
  }

  /**
   * Verified tokens are remembered until they expire, for at most VERIFIED_TTL_MS, so a client's
   * repeated token costs a map lookup instead of a signature check (tokens are canonical: one
   * token has one spelling). Bounded; the oldest entry goes first.
   */
  #verified = new Map<string, { result: AuthResult; until: number }>();
  #remember(token: string, result: AuthResult, claims: JWTPayload): void {
    const now = this.#clock.now();
    let until = now + VERIFIED_TTL_MS;
    if (typeof claims.exp === 'number') until = Math.min(until, claims.exp * 1000 + this.#toleranceMs);
    if (until <= now) return;
    if (this.#verified.size >= VERIFIED_MAX) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, { result, until });
  }

  async start(): Promise<void> {
    // jose is loaded here, before the gateway listens, so no request waits for the import.
    if (this.#jwt !== undefined) await loadJose();
    await this.#remote?.warm();
  }

  async close(): Promise<void> {
    this.#remote?.close();
  }
}

/** How long a verified token is remembered at most (also bounds how long a key removed from a JWKS keeps working). */
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;

async function verifyToken(jwt: JwtVerifier, token: string, onVerified: (result: AuthResult, claims: JWTPayload) => void): Promise<AuthResult> {
  let claims: JWTPayload;
  try {
    claims = await jwt.verify(token);
  } catch (err) {
    const errors = joseIfLoaded()?.errors;
    if (errors !== undefined && err instanceof errors.JWTExpired) return failure('token_expired', CHALLENGE_EXPIRED, err.code);
    return failure('invalid_token', CHALLENGE_INVALID_TOKEN, reasonOf(err));
  }
  const result: AuthResult = { ok: true, consumer: consumerOf(claims), method: 'jwt' };
  onVerified(result, claims);
  return result;
}

function consumerOf(claims: JWTPayload): string {
  const sub = claims.sub;
  return typeof sub === 'string' && sub.length > 0 && sub.length <= MAX_SUBJECT_LENGTH && !CONTROL_CHARS.test(sub) ? sub : JWT_CONSUMER;
}

/**
 * A short, token-free reason for logs (the GatewayError `cause`): the jose error code and, for a
 * claim check, the claim name. Never the error message, which for claims may quote the payload.
 */
function reasonOf(err: unknown): string {
  const errors = joseIfLoaded()?.errors;
  if (errors === undefined) return err instanceof Error ? err.name : 'unknown';
  if (err instanceof errors.JWTClaimValidationFailed) return `${err.code}:${err.claim}`;
  if (err instanceof errors.JOSEError) return err.code;
  return err instanceof Error ? err.name : 'unknown';
}

function failure(code: ErrorCode, headers: Readonly<Record<string, string>>, reason?: string): AuthResult {
  return { ok: false, error: new GatewayError(code, undefined, reason === undefined ? { headers } : { headers, cause: reason }) };
}
