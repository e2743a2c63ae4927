/**
 * Which protocol upgrades a request may get: only the tokens its route lists (`routes[].upgrades`,
 * default websocket). Everything else — h2c above all — is stripped and the request is served as
 * plain HTTP/1.1, so the connection never leaves the pipeline.
 */
import type { RouteTable } from '../pipeline/index.js';

/** The tokens a route without `upgrades` admits. */
export const DEFAULT_UPGRADES: readonly string[] = ['websocket'];

/**
 * The tokens of an `Upgrade` header value that `allowed` (lower-case) admits, comma-joined in the
 * client's order and spelling; "" when none is admitted.
 */
export function acceptedUpgrades(header: string | undefined, allowed: readonly string[]): string {
  if (header === undefined || header === '') return '';
  let out = '';
  for (const part of header.split(',')) {
    const token = part.trim();
    if (token === '' || !allowed.includes(token.toLowerCase())) continue;
    out = out === '' ? token : `${out}, ${token}`;
  }
  return out;
}

/** Whether the `Upgrade` token a backend switched to is one the gateway offered it. */
export function isOffered(switchedTo: string | undefined, offered: string): boolean {
  if (switchedTo === undefined) return false;
  const want = switchedTo.trim().toLowerCase();
  for (const part of offered.split(',')) if (part.trim().toLowerCase() === want) return true;
  return false;
}

/** The upgrade tokens the route serving `url` admits (the default list when no route matches: it will 404). */
export function upgradesFor(routes: RouteTable, url: string): readonly string[] {
  const q = url.indexOf('?');
  const route = routes.match(q === -1 ? url : url.slice(0, q));
  return route === null ? DEFAULT_UPGRADES : route.config.upgrades;
}
