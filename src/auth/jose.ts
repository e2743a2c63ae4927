/**
 * jose, loaded on first need. A gateway without JWT auth never loads it; one with JWT auth loads
 * it in the authenticator's `start()`, before it listens, so no request waits for the import.
 *
 * Only the four entry points the gateway uses are imported (jose's own `exports` subpaths), not
 * jose's index, which also loads JWE, key generation and export, and the unsecured-JWT code: a
 * process that loads these four has ~2 MB less RSS than one that loads the index (49.5 against
 * 51.3 MB, a bare Node 20 process at 43), docs/decisions.md ("Start-up memory").
 */
import type { compactVerify } from 'jose/jws/compact/verify';
import type { createRemoteJWKSet, customFetch } from 'jose/jwks/remote';
import type { jwtVerify } from 'jose/jwt/verify';

/** What the gateway uses of jose. */
export interface Jose {
  jwtVerify: typeof jwtVerify;
  compactVerify: typeof compactVerify;
  createRemoteJWKSet: typeof createRemoteJWKSet;
  customFetch: typeof customFetch;
  errors: typeof import('jose/errors');
}

let loaded: Jose | undefined;
let loading: Promise<Jose> | undefined;

async function importJose(): Promise<Jose> {
  const [jwt, jws, jwks, errors] = await Promise.all([import('jose/jwt/verify'), import('jose/jws/compact/verify'), import('jose/jwks/remote'), import('jose/errors')]);
  return (loaded = {
    jwtVerify: jwt.jwtVerify,
    compactVerify: jws.compactVerify,
    createRemoteJWKSet: jwks.createRemoteJWKSet,
    customFetch: jwks.customFetch,
    errors,
  });
}

/** jose, importing it the first time. */
export function loadJose(): Promise<Jose> {
  return (loading ??= importJose());
}

/** jose if it has been loaded, else undefined (an error that came out of jose implies it is). */
export function joseIfLoaded(): Jose | undefined {
  return loaded;
}
