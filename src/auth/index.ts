/**
 * Auth: who is calling. An `X-API-Key` (compared in constant time, against digests only) or an
 * `Authorization: Bearer` JWT verified by jose with pinned algorithms; a wrong API key next to a
 * bearer token lets the token decide. The `auth()` stage sets `ctx.consumer` or throws a 401 with a
 * `WWW-Authenticate` challenge.
 *
 * Must not: keep or log an API key or token in clear, echo a token in an error, use a key a token
 * names or carries (`jwk`, `jku`, `x5u`, `x5c`), let the token's `alg` pick the kind of key, or
 * return a promise on the API-key path.
 */
export { createAuthenticator, type Authenticator, type AuthenticatorOptions, type AuthResult, type AuthMethod } from './authenticator.js';
export { auth, type AuthStageOptions } from './stage.js';
export { AuthConfigError } from './jwt.js';
export { FailureBudget, type FailureBudgetOptions } from './failure-budget.js';
