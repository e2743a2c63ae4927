/** The client's address: the socket peer, or the right-most untrusted X-Forwarded-For hop when the peer is a trusted proxy. */
import { BlockList, isIP } from 'node:net';

export class ClientIpResolver {
  readonly #trusted: BlockList | null;

  constructor(trustedProxies: readonly string[]) {
    if (trustedProxies.length === 0) {
      this.#trusted = null;
      return;
    }
    const list = new BlockList();
    for (const entry of trustedProxies) {
      const [addr, bits] = entry.split('/') as [string, string | undefined];
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) list.addAddress(addr, type);
      else list.addSubnet(addr, Number(bits), type);
    }
    this.#trusted = list;
  }

  #isTrusted(ip: string): boolean {
    const family = isIP(ip);
    if (family === 0) return false;
    return this.#trusted!.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  }

  /** Resolves the client IP for a request from its socket address and X-Forwarded-For header. */
  resolve(peer: string | undefined, forwardedFor: string | string[] | undefined): string {
    const ip = normalizeIp(peer ?? '');
    if (this.#trusted === null || forwardedFor === undefined || !this.#isTrusted(ip)) return ip;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeIp(hops[i]!.trim());
      if (isIP(hop) === 0) return ip; // garbage in the header: do not trust any of it
      if (!this.#isTrusted(hop)) return hop;
    }
    return normalizeIp(hops[0]!.trim());
  }
}

const kPeerIp = Symbol('microgate.peerIp');
type PeerTagged = { [kPeerIp]?: string; readonly remoteAddress?: string };

/**
 * The socket peer's address, normalized, remembered on the socket: a keep-alive connection's
 * requests ask once (node's remoteAddress goes through the handle on every read).
 */
export function peerIpOf(socket: { readonly remoteAddress?: string }): string {
  const tagged = socket as PeerTagged;
  const known = tagged[kPeerIp];
  if (known !== undefined) return known;
  const addr = tagged.remoteAddress;
  // A socket already closed has no address; nothing is remembered for it.
  if (addr === undefined) return '';
  return (tagged[kPeerIp] = normalizeIp(addr));
}

/** "::ffff:127.0.0.1" → "127.0.0.1". */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.');
}
