/** API keys: constant-time lookup of an `X-API-Key` value among the configured keys. */
// Called through the module object (not a named import) so a test can count the comparisons.
import crypto from 'node:crypto';
import type { AuthConfig } from '../config/index.js';

/**
 * The configured API keys, held only as SHA-256 digests. Matching hashes the presented value and
 * compares it with every configured digest using `timingSafeEqual`, always all of them, so the time
 * taken says neither whether nor which key matched. Hashing first makes every comparison the same
 * length, whatever the client sent. Cost is one SHA-256 plus ~50 ns per configured key.
 */
export class ApiKeyStore {
  readonly #digests: Buffer[];
  readonly #consumers: readonly string[];

  constructor(entries: AuthConfig['api_keys']) {
    this.#digests = entries.map((e) => crypto.hash('sha256', typeof e === 'string' ? e : e.key, 'buffer'));
    this.#consumers = entries.map((e, i) => (typeof e === 'string' ? `api-key-${i + 1}` : e.id));
  }

  /** Number of configured keys. */
  get size(): number {
    return this.#digests.length;
  }

  /**
   * The position of the configured key equal to `presented`, or -1. The consumer id for a position
   * is `consumerAt(index)`; the key itself is never returned or stored in clear.
   */
  indexOf(presented: string): number {
    const digests = this.#digests;
    if (digests.length === 0) return -1;
    const digest = crypto.hash('sha256', presented, 'buffer');
    let found = -1;
    for (let i = 0; i < digests.length; i++) {
      // No early exit: every key is compared whichever one matches. Keys are unique (the config
      // rejects duplicates), so at most one comparison is true.
      const equal = crypto.timingSafeEqual(digest, digests[i]!);
      found = equal ? i : found;
    }
    return found;
  }

  /** The consumer id for position `index`: the entry's `id`, or `api-key-<n>` (1-based) for a bare key. */
  consumerAt(index: number): string {
    return this.#consumers[index]!;
  }
}
