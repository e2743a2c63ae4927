/**
 * Syntax checks on a bearer token before any decoding: the `Authorization` value, and the compact
 * JWS shape with strictly canonical base64url parts.
 */

/** 6-bit value of each base64url character (RFC 4648 §5), -1 for anything else. */
const B64URL = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  B64URL['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.charCodeAt(i)] = i;
}
const DOT = 0x2e;

/**
 * True when `token` is `header.payload.signature` with each part canonical unpadded base64url:
 * only the URL-safe alphabet (no padding, whitespace or other characters, RFC 7515 §2), a length
 * that is not 1 mod 4, and zero unused bits in the last character (RFC 4648 §3.5). The header and
 * signature must be non-empty; the payload may be empty (a detached or empty JWS payload).
 *
 * jose on Node 20 decodes with `atob`, which skips whitespace and ignores unused bits, so without
 * this check one token would have several accepted spellings (and whitespace would be accepted).
 */
export function isCanonicalCompactJws(token: string): boolean {
  let part = 0;
  let start = 0;
  const n = token.length;
  for (let i = 0; i <= n; i++) {
    const c = i === n ? DOT : token.charCodeAt(i);
    if (c === DOT) {
      if (part === 2 && i !== n) return false; // a fourth part
      const len = i - start;
      if (len === 0 ? part !== 1 : !canonicalTail(token, start, len)) return false;
      part++;
      start = i + 1;
    } else if (c > 127 || B64URL[c]! < 0) {
      return false;
    }
  }
  return part === 3;
}

/** The last character of a base64url run of `len` characters must leave its unused bits zero. */
function canonicalTail(s: string, start: number, len: number): boolean {
  const rem = len % 4;
  if (rem === 0) return true;
  if (rem === 1) return false;
  const last = B64URL[s.charCodeAt(start + len - 1)]!;
  // 2 chars carry 8 bits (4 unused), 3 chars carry 16 bits (2 unused).
  return (last & (rem === 2 ? 0x0f : 0x03)) === 0;
}

/**
 * The token of an `Authorization: Bearer <token>` value. The scheme is matched case-insensitively
 * (RFC 7235 §2.1) and one or more spaces separate it from the token. Returns `null` when the scheme
 * is not Bearer and `undefined` when it is Bearer with no token. The token itself is not inspected
 * here: the caller checks its size first, then its syntax.
 */
export function bearerToken(value: string): string | null | undefined {
  if (!isBearerScheme(value)) return null;
  let i = 6;
  while (i < value.length && value.charCodeAt(i) === 0x20) i++;
  return i === value.length ? undefined : value.slice(i);
}

/** True when the value starts with the scheme name `Bearer` (any case) followed by a space or nothing. */
export function isBearerScheme(value: string): boolean {
  return value.length >= 6 && (value.length === 6 || value.charCodeAt(6) === 0x20) && value.slice(0, 6).toLowerCase() === 'bearer';
}
