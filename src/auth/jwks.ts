/** A remote JSON Web Key Set (jwks_url): jose's cached fetcher, with fetches the owner can abort. */
import type { createRemoteJWKSet, FlattenedJWSInput, JWSHeaderParameters } from 'jose';
import { loadJose } from './jose.js';
import type { KeySetResolver } from './jwt.js';

/** jose's default: after a fetch, an unknown `kid` may trigger another fetch only after this long. */
const DEFAULT_COOLDOWN_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 5_000;

export interface RemoteKeySetOptions {
  /** How long fetched keys are used before a refetch (`jwks_cache_ttl`), ms. */
  cacheTtlMs: number;
  /** Minimum time between fetches triggered by an unknown `kid`, ms. Default min(30 s, cacheTtlMs). */
  cooldownMs?: number;
  /** Timeout of one fetch, ms. Default 5 s. */
  timeoutMs?: number;
}

/**
 * Keys come only from the configured URL (never from a token's `jku`/`x5u`), are cached for
 * `cacheTtlMs`, and an unknown `kid` refetches at most once per cooldown (jose's behaviour), so a
 * flood of made-up kids cannot turn into a flood of fetches. Redirects are not followed.
 * Concurrent lookups share one in-flight fetch. `close()` aborts it and any later one.
 */
export class RemoteKeySet {
  readonly #abort = new AbortController();
  readonly #url: URL;
  readonly #opts: RemoteKeySetOptions;
  /** jose's key set, made when jose is first loaded (jose.ts). */
  #set: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(url: string, opts: RemoteKeySetOptions) {
    this.#url = new URL(url);
    this.#opts = opts;
  }

  async #keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.#set !== undefined) return this.#set;
    const { createRemoteJWKSet, customFetch } = await loadJose();
    const signal = this.#abort.signal;
    const opts = this.#opts;
    return (this.#set ??= createRemoteJWKSet(this.#url, {
      cacheMaxAge: opts.cacheTtlMs,
      cooldownDuration: opts.cooldownMs ?? Math.min(DEFAULT_COOLDOWN_MS, opts.cacheTtlMs),
      timeoutDuration: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      [customFetch]: (resource: string, init: RequestInit & { signal: AbortSignal }) => fetch(resource, { ...init, signal: AbortSignal.any([init.signal, signal]) }),
    }));
  }

  /** The resolver to hand to the verifier. */
  readonly resolve: KeySetResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    const set = this.#set;
    return set !== undefined ? set(header, token) : this.#keySet().then((s) => s(header, token));
  };

  /** Fetches the key set now. Resolves false (never rejects) if the endpoint is unavailable: lookups retry. */
  async warm(): Promise<boolean> {
    if (this.#abort.signal.aborted) return false;
    try {
      await (await this.#keySet()).reload();
      return true;
    } catch {
      return false;
    }
  }

  /** Aborts an in-flight fetch; any later lookup that needs a fetch fails at once. */
  close(): void {
    this.#abort.abort();
  }
}
