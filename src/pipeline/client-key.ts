/** The key a per-client limit is kept under: the address itself, or its /64 for IPv6. */

/**
 * `203.0.113.7` → `203.0.113.7`; `2001:db8:a:b:1:2:3:4` → `2001:db8:a:b::/64`. One IPv6 host
 * commonly holds a whole /64 and can pick any address in it, so per-address state for IPv6 would
 * give one client 2^64 buckets. Expects a normalized address (`normalizeIp`, no `::ffff:` form);
 * a zone index (`%eth0`) is ignored. O(1) for IPv4 (no allocation).
 */
export function clientKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  const pct = ip.indexOf('%');
  const addr = (pct === -1 ? ip : ip.slice(0, pct)).toLowerCase();
  const gap = addr.indexOf('::');
  let groups: string[];
  if (gap === -1) groups = addr.split(':');
  else {
    const head = gap === 0 ? [] : addr.slice(0, gap).split(':');
    const tailText = addr.slice(gap + 2);
    const tail = tailText === '' ? [] : tailText.split(':');
    // An embedded IPv4 tail (`::1.2.3.4`) is two groups wide.
    const width = tail.length > 0 && tail[tail.length - 1]!.includes('.') ? tail.length + 1 : tail.length;
    groups = head.concat(new Array<string>(Math.max(0, 8 - head.length - width)).fill('0'), tail);
  }
  let key = '';
  for (let i = 0; i < 4; i++) key += (i === 0 ? '' : ':') + (Number.parseInt(groups[i] ?? '0', 16) || 0).toString(16);
  return key + '::/64';
}

/** How many distinct clients a BucketKeys remembers before it starts over. */
export const MAX_REMEMBERED_KEYS = 2048;

/**
 * Store keys `prefix + derive(part)` for a per-client limit, remembered per part (a consumer id, a
 * client address) up to MAX_REMEMBERED_KEYS, then started over. A key made per request is a new
 * string the store's map must flatten and hash every time; a remembered one carries its hash, and
 * so does the part it is looked up by (a consumer id, or a connection's address). At most ~200 KB
 * each; with more active clients than it holds, a request costs what it did without it, not more.
 */
export class BucketKeys {
  readonly #prefix: string;
  readonly #derive: ((part: string) => string) | null;
  readonly #keys = new Map<string, string>();

  /** @param derive what of `part` the key holds (clientKey: an IPv6 address's /64); the part itself when null */
  constructor(prefix: string, derive: ((part: string) => string) | null = null) {
    this.#prefix = prefix;
    this.#derive = derive;
  }

  /** Parts remembered now (never more than MAX_REMEMBERED_KEYS). */
  get size(): number {
    return this.#keys.size;
  }

  of(part: string): string {
    let key = this.#keys.get(part);
    if (key === undefined) {
      if (this.#keys.size >= MAX_REMEMBERED_KEYS) this.#keys.clear();
      key = this.#prefix + (this.#derive === null ? part : this.#derive(part));
      this.#keys.set(part, key);
    }
    return key;
  }
}
