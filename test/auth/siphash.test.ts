import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { sipHash128 } from '../../src/auth/siphash.js';

// The `siphash` package (BSD-2, Frank Denis) is the reference here: its 128-bit variant works on bytes.
const reference = createRequire(import.meta.url)('siphash/lib/siphash-double.js') as {
  hash(key: ArrayLike<number>, m: Uint8Array): Uint32Array;
};

/** Key bytes 00 01 … 0f, as in the paper's test vectors. */
const PAPER_KEY = new Int32Array([0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c]);

function hex(words: Int32Array): string {
  // Output bytes in order: each half's low word first, little-endian.
  const b = Buffer.alloc(16);
  b.writeInt32LE(words[1]!, 0);
  b.writeInt32LE(words[0]!, 4);
  b.writeInt32LE(words[3]!, 8);
  b.writeInt32LE(words[2]!, 12);
  return b.toString('hex');
}

function ours(key: Int32Array, s: string): string {
  const out = new Int32Array(4);
  sipHash128(key, s, out);
  return hex(out);
}

/** The reference's hash of a message given as bytes. */
function theirsBytes(key: Int32Array, m: Uint8Array): string {
  const r = reference.hash(new Uint32Array(key.buffer), m);
  // [second output hi, lo, first output hi, lo]
  return hex(new Int32Array([r[2]!, r[3]!, r[0]!, r[1]!]));
}

/** The reference's hash of the message sipHash128 makes of a string: Latin-1 bytes and 0x00, or UTF-16LE and 0x01. */
function theirs(key: Int32Array, s: string): string {
  const latin1 = [...s].every((c) => c.length === 1 && c.charCodeAt(0) < 256);
  const bytes = latin1 ? Buffer.concat([Buffer.from(s, 'latin1'), Buffer.from([0])]) : Buffer.concat([Buffer.from(s, 'utf16le'), Buffer.from([1])]);
  return theirsBytes(key, new Uint8Array(bytes));
}

describe('SipHash-2-4-128', () => {
  it("is checked against a reference that gives the paper's 128-bit test vectors", () => {
    assert.equal(theirsBytes(PAPER_KEY, new Uint8Array(0)), 'a3817f04ba25a8e66df67214c7550293');
    // The reference implementation's vector for the 15-byte message 00 01 … 0e.
    assert.equal(theirsBytes(PAPER_KEY, Uint8Array.from({ length: 15 }, (_, i) => i)), '5493e99933b0a8117e08ec0f97cfc3d9');
  });

  it('reads a Latin-1 string eight characters a word and any other string as UTF-16, and never confuses the two', () => {
    // "ab" as Latin-1 and "\u6261" as UTF-16 are the same two bytes, 61 62: the last byte tells them apart.
    assert.notEqual(ours(PAPER_KEY, 'ab'), ours(PAPER_KEY, '\u6261'));
    assert.notEqual(ours(PAPER_KEY, 'ab\u0001'), ours(PAPER_KEY, '\u6261'));
    assert.notEqual(ours(PAPER_KEY, '\u00ff'), ours(PAPER_KEY, '\u0100'));
    for (let n = 0; n <= 40; n++) {
      const latin = 'k'.repeat(n);
      assert.equal(ours(PAPER_KEY, latin), theirs(PAPER_KEY, latin), `latin-1 length ${n}`);
      const wide = '\u0101'.repeat(n);
      assert.equal(ours(PAPER_KEY, wide), theirs(PAPER_KEY, wide), `utf-16 length ${n}`);
    }
  });

  it('matches the reference implementation on strings of every length from 0 to 70', () => {
    for (let n = 0; n <= 70; n++) {
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode((i * 7919 + n * 31) & 0xffff);
      assert.equal(ours(PAPER_KEY, s), theirs(PAPER_KEY, s), `length ${n}`);
    }
  });

  it('matches the reference on 2,000 random keys and strings, including lone surrogates and high code units', () => {
    for (let t = 0; t < 2000; t++) {
      const key = new Int32Array(4).map(() => (Math.random() * 2 ** 32) | 0);
      const n = Math.floor(Math.random() * 80);
      let s = '';
      for (let i = 0; i < n; i++) s += String.fromCharCode(Math.random() < 0.8 ? 0x20 + Math.floor(Math.random() * 95) : Math.floor(Math.random() * 0x10000));
      assert.equal(ours(key, s), theirs(key, s), JSON.stringify({ key: [...key], s }));
    }
  });

  it('writes at the offset it is given and leaves the rest of the output alone', () => {
    const out = new Int32Array(8).fill(7);
    sipHash128(PAPER_KEY, 'abc', out, 4);
    assert.deepEqual([...out.subarray(0, 4)], [7, 7, 7, 7]);
    assert.equal(hex(out.subarray(4)), ours(PAPER_KEY, 'abc'));
  });

  it('gives different tags under different keys', () => {
    const other = new Int32Array([1, 2, 3, 4]);
    assert.notEqual(ours(PAPER_KEY, 'key-abc123-first'), ours(other, 'key-abc123-first'));
  });
});
