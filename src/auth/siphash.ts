/**
 * SipHash-2-4 with a 128-bit output (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * and the 128-bit variant of the reference implementation) over a string's bytes: Latin-1 when it
 * can be, UTF-16LE otherwise, with a last byte telling which (see sipHash128).
 *
 * Why it is here: the API-key check hashes every presented key. `crypto.hash('sha256', …)` costs
 * one call into OpenSSL, its UTF-8 encoding and a Buffer per request (0.6-4 µs, the larger on
 * machines where native calls are slow); this keyed PRF in JS costs a few hundred ns for a
 * typical key and allocates nothing. The key is random per process, so tags say nothing to anyone
 * who does not hold it, and 128 bits make a false match as unlikely as a SHA-256 one for any
 * attacker who cannot read the process's memory (who could read the digests too).
 *
 * 64-bit words are held as two 32-bit halves: JS has no 64-bit integer arithmetic that does not
 * allocate (BigInt does).
 */

/** The state v0..v3 as [hi, lo] pairs: v0h v0l v1h v1l v2h v2l v3h v3l. Reused, never escapes. */
const v = new Int32Array(8);

/**
 * `n` SipRounds on `v`: the state is loaded into locals once and stored once, whatever `n` (two per
 * message word, four per output half), instead of once per round.
 */
function rounds(n: number): void {
  let v0h = v[0]!, v0l = v[1]!, v1h = v[2]!, v1l = v[3]!, v2h = v[4]!, v2l = v[5]!, v3h = v[6]!, v3l = v[7]!;
  let lo: number, t: number;
  for (let i = 0; i < n; i++) {
    // v0 += v1; v1 <<<= 13; v1 ^= v0; v0 <<<= 32
    lo = (v0l + v1l) | 0;
    v0h = (v0h + v1h + ((lo >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0;
    v0l = lo;
    t = (v1h << 13) | (v1l >>> 19);
    v1l = (v1l << 13) | (v1h >>> 19);
    v1h = t ^ v0h;
    v1l ^= v0l;
    t = v0h;
    v0h = v0l;
    v0l = t;
    // v2 += v3; v3 <<<= 16; v3 ^= v2
    lo = (v2l + v3l) | 0;
    v2h = (v2h + v3h + ((lo >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0;
    v2l = lo;
    t = (v3h << 16) | (v3l >>> 16);
    v3l = ((v3l << 16) | (v3h >>> 16)) ^ v2l;
    v3h = t ^ v2h;
    // v0 += v3; v3 <<<= 21; v3 ^= v0
    lo = (v0l + v3l) | 0;
    v0h = (v0h + v3h + ((lo >>> 0) < (v0l >>> 0) ? 1 : 0)) | 0;
    v0l = lo;
    t = (v3h << 21) | (v3l >>> 11);
    v3l = ((v3l << 21) | (v3h >>> 11)) ^ v0l;
    v3h = t ^ v0h;
    // v2 += v1; v1 <<<= 17; v1 ^= v2; v2 <<<= 32
    lo = (v2l + v1l) | 0;
    v2h = (v2h + v1h + ((lo >>> 0) < (v2l >>> 0) ? 1 : 0)) | 0;
    v2l = lo;
    t = (v1h << 17) | (v1l >>> 15);
    v1l = ((v1l << 17) | (v1h >>> 15)) ^ v2l;
    v1h = t ^ v2h;
    // v2 <<<= 32: the halves swap
    t = v2h;
    v2h = v2l;
    v2l = t;
  }
  v[0] = v0h;
  v[1] = v0l;
  v[2] = v1h;
  v[3] = v1l;
  v[4] = v2h;
  v[5] = v2l;
  v[6] = v3h;
  v[7] = v3l;
}

/** Absorbs one 64-bit message word (hi, lo): v3 ^= m, two rounds, v0 ^= m. */
function compress(mh: number, ml: number): void {
  v[6] = v[6]! ^ mh;
  v[7] = v[7]! ^ ml;
  rounds(2);
  v[0] = v[0]! ^ mh;
  v[1] = v[1]! ^ ml;
}

/** The output of four finalization rounds: v0 ^ v1 ^ v2 ^ v3, written to out[at], out[at+1]. */
function finish(out: Int32Array, at: number): void {
  rounds(4);
  out[at] = v[0]! ^ v[2]! ^ v[4]! ^ v[6]!;
  out[at + 1] = v[1]! ^ v[3]! ^ v[5]! ^ v[7]!;
}

/** A 128-bit SipHash key as four 32-bit words, k0 = key[1]:key[0] and k1 = key[3]:key[2] (little-endian bytes 0-15). */
export type SipKey = Int32Array;

/**
 * SipHash-2-4-128 of `s` under `key`, written to `out[at..at+3]` as the output's words: out[at]
 * high and out[at+1] low half of its first 8 bytes, then the second 8.
 *
 * The message is the string's bytes and a last byte saying how they were read: its Latin-1 bytes
 * then 0x00 when every code unit is below 256 (API keys, tokens: eight characters per 64-bit
 * word), else its UTF-16LE code units then 0x01 (four per word). Each form is one-to-one and the
 * last byte keeps the two apart, so equal strings and only equal strings give equal input.
 */
export function sipHash128(key: SipKey, s: string, out: Int32Array, at = 0): void {
  const k0l = key[0]!, k0h = key[1]!, k1l = key[2]!, k1h = key[3]!;
  v[0] = k0h ^ 0x736f6d65;
  v[1] = k0l ^ 0x70736575;
  v[2] = k1h ^ 0x646f7261;
  v[3] = k1l ^ 0x6e646f83; // 0x…6d ^ 0xee: the 128-bit variant
  v[4] = k0h ^ 0x6c796765;
  v[5] = k0l ^ 0x6e657261;
  v[6] = k1h ^ 0x74656462;
  v[7] = k1l ^ 0x79746573;
  if (latin1Words(s)) utf16Words(s);
  v[5] = v[5]! ^ 0xee;
  finish(out, at);
  v[3] = v[3]! ^ 0xdd;
  finish(out, at + 2);
}

/**
 * Absorbs `s` as Latin-1 bytes and 0x00, eight per word. Returns true, having absorbed nothing,
 * when a code unit is 256 or more: the string must be read as UTF-16 instead. The state is only
 * changed once the whole string is known to be Latin-1 (a check before each word's compression
 * would leave half-absorbed state behind).
 */
function latin1Words(s: string): boolean {
  const n = s.length;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) > 0xff) return true;
  const whole = n - (n & 7);
  let i = 0;
  for (; i < whole; i += 8) {
    compress(
      s.charCodeAt(i + 4) | (s.charCodeAt(i + 5) << 8) | (s.charCodeAt(i + 6) << 16) | (s.charCodeAt(i + 7) << 24),
      s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24),
    );
  }
  // The last word: the 0-7 remaining bytes, then 0x00 (the marker, nothing to add), and in the top
  // byte the message's length mod 256 (the marker counts). With 7 remaining the marker is its top
  // byte, so the word is full and the length goes in a word of its own.
  const rest = n - whole;
  let ml = 0;
  let mh = 0;
  for (let k = 0; k < rest; k++) {
    const c = s.charCodeAt(i + k);
    if (k < 4) ml |= c << (8 * k);
    else mh |= c << (8 * (k - 4));
  }
  const len = ((n + 1) & 0xff) << 24;
  if (rest === 7) {
    compress(mh, ml);
    compress(len, 0);
  } else compress(mh | len, ml);
  return false;
}

/** Absorbs `s` as UTF-16LE code units and 0x01, four units per word. */
function utf16Words(s: string): void {
  const n = s.length;
  const whole = n - (n & 3);
  let i = 0;
  for (; i < whole; i += 4) {
    compress(s.charCodeAt(i + 2) | (s.charCodeAt(i + 3) << 16), s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
  }
  // The last word: the 0-3 remaining code units, the marker byte 0x01 after them, and the
  // message's byte length mod 256 in the top byte (at most 7 bytes before it: it always fits).
  const rest = n - whole;
  let ml = 0;
  let mh = ((n * 2 + 1) & 0xff) << 24;
  if (rest === 0) ml = 0x01;
  else if (rest === 1) ml = s.charCodeAt(i) | (0x01 << 16);
  else if (rest === 2) {
    ml = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    mh |= 0x01;
  } else {
    ml = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16);
    mh |= s.charCodeAt(i + 2) | (0x01 << 16);
  }
  compress(mh, ml);
}
