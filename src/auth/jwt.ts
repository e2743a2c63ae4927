/**
 * JWT verification with jose: pinned algorithms, each bound to one kind of key, so a token can
 * never choose how it is checked (no alg confusion, no `none`, no keys embedded in the token).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { CryptoKey, FlattenedJWSInput, JWSHeaderParameters, JWTPayload } from 'jose';
import { systemClock, type Clock } from '../clock.js';
import { isCanonicalCompactJws } from './compact-jws.js';
import { joseIfLoaded, loadJose } from './jose.js';

export const HMAC_ALGORITHMS: readonly string[] = Object.freeze(['HS256', 'HS384', 'HS512']);
const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EDDSA_ALGORITHMS = ['EdDSA', 'Ed25519'];
export const ASYMMETRIC_ALGORITHMS: readonly string[] = Object.freeze([...RSA_ALGORITHMS, 'ES256', 'ES384', 'ES512', ...EDDSA_ALGORITHMS]);
const EC_CURVE_ALGORITHM: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };
/** Below this an HMAC secret can be brute-forced offline from one token. */
const MIN_SECRET_BYTES = 16;
/** jose refuses smaller RSA moduli anyway; refusing at start-up names the problem. */
const MIN_RSA_BITS = 2048;

/** Resolves the verification key for an asymmetric token from a key set (jose's remote or local JWKS). */
export type KeySetResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

export interface JwtVerifierOptions {
  /** HMAC secret; used only for the HS algorithms. */
  secret?: Uint8Array;
  /** PEM public key (SPKI or X.509 certificate); used only for the asymmetric algorithms its type allows. */
  publicKeyPem?: string;
  /** A JWKS resolver; used only for asymmetric algorithms. Mutually exclusive with `publicKeyPem`. */
  keySet?: KeySetResolver;
  /** Allowed algorithms (`jwt_algorithms`). Default: HS256/384/512 with a secret, plus what the public key or JWKS allows. */
  algorithms?: readonly string[];
  issuer?: string | string[];
  audience?: string | string[];
  /** Claims that must be present. */
  requiredClaims?: readonly string[];
  /** Leeway for `exp`/`nbf`, ms. */
  clockToleranceMs?: number;
  /** Longer tokens are rejected before any decoding. */
  maxTokenBytes: number;
  clock?: Clock;
}

/** A configuration mistake found at construction; the message names the `auth.*` key. */
export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthConfigError';
  }
}

/**
 * Verifies compact JWS/JWT tokens. The algorithm allow-list is split by key kind: an HS* header is
 * only ever checked with the secret, any other allowed header only with the public key or JWKS.
 * jose additionally refuses a key of the wrong type for the algorithm. Header parameters that
 * carry keys (`jwk`, `jku`, `x5u`, `x5c`) are never consulted; unknown `crit` extensions fail.
 */
export class JwtVerifier {
  readonly #secret: Uint8Array | undefined;
  readonly #hmac: ReadonlySet<string>;
  readonly #publicKey: KeyObject | undefined;
  readonly #keySet: KeySetResolver | undefined;
  readonly #algorithms: string[];
  readonly #issuer: string | string[] | undefined;
  readonly #audience: string | string[] | undefined;
  readonly #requiredClaims: string[];
  readonly #clockToleranceS: number;
  readonly #maxTokenBytes: number;
  readonly #clock: Clock;

  constructor(opts: JwtVerifierOptions) {
    const { secret, publicKeyPem, keySet } = opts;
    if (publicKeyPem !== undefined && keySet !== undefined) {
      throw new AuthConfigError('auth: give either jwt_public_key or jwks_url, not both');
    }
    if (secret !== undefined && secret.byteLength < MIN_SECRET_BYTES) {
      throw new AuthConfigError(`auth.jwt_secret: must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    const publicKey = publicKeyPem === undefined ? undefined : parsePublicKey(publicKeyPem);
    const keyAlgs = publicKey ? algorithmsForKey(publicKey) : keySet ? ASYMMETRIC_ALGORITHMS : [];

    let hmac: string[];
    let asymmetric: string[];
    if (opts.algorithms === undefined) {
      hmac = secret ? [...HMAC_ALGORITHMS] : [];
      asymmetric = [...keyAlgs];
    } else {
      const unknown = opts.algorithms.filter((a) => !HMAC_ALGORITHMS.includes(a) && !ASYMMETRIC_ALGORITHMS.includes(a));
      if (unknown.length > 0) throw new AuthConfigError(`auth.jwt_algorithms: unsupported ${unknown.join(', ')}`);
      hmac = opts.algorithms.filter((a) => HMAC_ALGORITHMS.includes(a));
      asymmetric = opts.algorithms.filter((a) => ASYMMETRIC_ALGORITHMS.includes(a));
      if (hmac.length > 0 && !secret) throw new AuthConfigError(`auth.jwt_algorithms: ${hmac.join(', ')} need jwt_secret`);
      if (secret && hmac.length === 0) throw new AuthConfigError('auth.jwt_secret: set, but jwt_algorithms lists no HS algorithm to use it with');
      if (asymmetric.length > 0 && !publicKey && !keySet) {
        throw new AuthConfigError(`auth.jwt_algorithms: ${asymmetric.join(', ')} need jwt_public_key or jwks_url`);
      }
      if ((publicKey || keySet) && asymmetric.length === 0) {
        throw new AuthConfigError(`auth.jwt_algorithms: lists no algorithm for the ${publicKey ? 'jwt_public_key' : 'jwks_url'} keys`);
      }
      const unfit = asymmetric.filter((a) => !keyAlgs.includes(a));
      if (unfit.length > 0) {
        throw new AuthConfigError(`auth.jwt_algorithms: ${unfit.join(', ')} cannot be used with the ${publicKey?.asymmetricKeyType ?? ''} jwt_public_key`);
      }
    }
    if (hmac.length + asymmetric.length === 0) throw new AuthConfigError('auth: no JWT key material (jwt_secret, jwt_public_key or jwks_url)');

    this.#secret = secret;
    this.#hmac = new Set(hmac);
    this.#publicKey = publicKey;
    this.#keySet = keySet;
    this.#algorithms = [...hmac, ...asymmetric];
    this.#issuer = opts.issuer;
    this.#audience = opts.audience;
    this.#requiredClaims = [...(opts.requiredClaims ?? [])];
    this.#clockToleranceS = (opts.clockToleranceMs ?? 0) / 1000;
    this.#maxTokenBytes = opts.maxTokenBytes;
    this.#clock = opts.clock ?? systemClock;
  }

  /**
   * Cheap synchronous pre-check: at most `maxTokenBytes` long (checked first, before reading a
   * single character) and a canonical compact JWS. Tokens failing it never reach jose.
   */
  acceptsShape(token: string): boolean {
    return token.length <= this.#maxTokenBytes && isCanonicalCompactJws(token);
  }

  /**
   * Verifies a JWT: shape, signature with a pinned algorithm, then `exp`/`nbf` (with leeway, on the
   * injected clock), issuer, audience and required claims. Rejects with a jose error
   * (`errors.JWTExpired` for an expired token); error messages never contain the token.
   */
  async verify(token: string): Promise<JWTPayload> {
    const jose = joseIfLoaded() ?? (await loadJose());
    if (!this.acceptsShape(token)) throw new jose.errors.JWSInvalid('not a canonical compact JWS within the size limit');
    const { payload } = await jose.jwtVerify(token, this.#getKey, {
      algorithms: this.#algorithms,
      issuer: this.#issuer,
      audience: this.#audience,
      requiredClaims: this.#requiredClaims,
      clockTolerance: this.#clockToleranceS,
      currentDate: new Date(this.#clock.now()),
    });
    return payload;
  }

  /**
   * Verifies only the JWS layer (shape, algorithm, signature) and resolves to the raw payload. The
   * same checks `verify` makes before it reads the claims; used to run JWS test vectors.
   */
  async verifySignature(token: string): Promise<Uint8Array> {
    const jose = joseIfLoaded() ?? (await loadJose());
    if (!this.acceptsShape(token)) throw new jose.errors.JWSInvalid('not a canonical compact JWS within the size limit');
    const { payload } = await jose.compactVerify(token, this.#getKey, { algorithms: this.#algorithms });
    return payload;
  }

  /** The secret imported once per HS algorithm (jose would import the raw bytes on every verification). */
  #hmacKeys = new Map<string, Promise<CryptoKey>>();
  #hmacKey(alg: string): Promise<CryptoKey> {
    let key = this.#hmacKeys.get(alg);
    if (key === undefined) {
      key = crypto.subtle.importKey('raw', this.#secret!, { name: 'HMAC', hash: `SHA-${alg.slice(2)}` }, false, ['verify']);
      this.#hmacKeys.set(alg, key);
    }
    return key;
  }

  // jose has already checked that header.alg is in #algorithms when it calls this. The secret is
  // returned for HS algorithms only; the public key or key set for the others only.
  #getKey = (header: JWSHeaderParameters, token: FlattenedJWSInput): Uint8Array | KeyObject | Promise<CryptoKey> => {
    if (this.#hmac.has(header.alg!)) return this.#hmacKey(header.alg!);
    if (this.#publicKey) return this.#publicKey;
    // Only asymmetric algs get here, so an oct key in the set is never used. jose picks the key
    // by alg, kid, use and key_ops.
    return this.#keySet!(header, token);
  };
}

/** Parses the configured PEM; refuses private keys (they must never be in the gateway's config). */
function parsePublicKey(pem: string): KeyObject {
  if (/PRIVATE KEY-----/.test(pem)) {
    throw new AuthConfigError('auth.jwt_public_key: is a private key; configure the public key (SPKI PEM) only');
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new AuthConfigError(`auth.jwt_public_key: not a PEM public key (${(err as Error).message})`);
  }
  return key;
}

/** The algorithms a public key can verify, from its type (and curve). */
function algorithmsForKey(key: KeyObject): readonly string[] {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa') {
    if ((details.modulusLength ?? 0) < MIN_RSA_BITS) throw new AuthConfigError(`auth.jwt_public_key: RSA keys must be at least ${MIN_RSA_BITS} bits`);
    return RSA_ALGORITHMS;
  }
  if (type === 'ec') {
    const alg = EC_CURVE_ALGORITHM[details.namedCurve ?? ''];
    if (alg === undefined) throw new AuthConfigError(`auth.jwt_public_key: unsupported EC curve ${details.namedCurve ?? '?'} (use P-256, P-384 or P-521)`);
    return [alg];
  }
  if (type === 'ed25519') return EDDSA_ALGORITHMS;
  throw new AuthConfigError(`auth.jwt_public_key: unsupported key type ${type ?? '?'} (use RSA, EC P-256/384/521 or Ed25519)`);
}
