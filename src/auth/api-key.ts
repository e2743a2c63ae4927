/** API keys: a constant-work lookup of an `X-API-Key` value among the configured keys. */
import { randomBytes } from 'node:crypto';
import type { AuthConfig } from '../config/index.js';
import { sipHash128 } from './siphash.js';

/**
 * The configured API keys, held only as 128-bit SipHash tags under a key drawn at random when the
 * store is built (src/auth/siphash.ts says why not SHA-256). Matching hashes the presented value
 * and compares its tag with every configured tag, always all of them and without a branch on the
 * words, so the time taken says neither whether nor which key matched; and since tags are keyed,
 * even a timing difference would tell a client nothing about a key. Hashing first makes every
 * comparison the same length, whatever the client sent. Nothing is allocated per request.
 */
export class ApiKeyStore {
  readonly #key: Int32Array;
  /** Four words per configured key. */
  readonly #tags: Int32Array;
  readonly #consumers: readonly string[];
  /** The presented key's tag: reused, so a lookup allocates nothing. */
  readonly #probe = new Int32Array(4);

  constructor(entries: AuthConfig['api_keys']) {
    const seed = randomBytes(16);
    this.#key = new Int32Array([seed.readInt32LE(0), seed.readInt32LE(4), seed.readInt32LE(8), seed.readInt32LE(12)]);
    this.#tags = new Int32Array(entries.length * 4);
    entries.forEach((e, i) => sipHash128(this.#key, typeof e === 'string' ? e : e.key, this.#tags, i * 4));
    this.#consumers = entries.map((e, i) => (typeof e === 'string' ? `api-key-${i + 1}` : e.id));
  }

  /** Number of configured keys. */
  get size(): number {
    return this.#consumers.length;
  }

  /**
   * The position of the configured key equal to `presented`, or -1. The consumer id for a position
   * is `consumerAt(index)`; the key itself is never returned or stored in clear.
   */
  indexOf(presented: string): number {
    const tags = this.#tags;
    if (tags.length === 0) return -1;
    const p = this.#probe;
    sipHash128(this.#key, presented, p);
    const a = p[0]!, b = p[1]!, c = p[2]!, d = p[3]!;
    let found = -1;
    for (let i = 0, at = 0; at < tags.length; i++, at += 4) {
      // No early exit: every key is compared whichever one matches. Keys are unique (the config
      // rejects duplicates), so at most one difference is zero.
      const diff = (tags[at]! ^ a) | (tags[at + 1]! ^ b) | (tags[at + 2]! ^ c) | (tags[at + 3]! ^ d);
      found = diff === 0 ? i : found;
    }
    return found;
  }

  /** The consumer id for position `index`: the entry's `id`, or `api-key-<n>` (1-based) for a bare key. */
  consumerAt(index: number): string {
    return this.#consumers[index]!;
  }
}
