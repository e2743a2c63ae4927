/**
 * JSON written straight into a Buffer, without building the text as a string first. The access
 * log and the dashboard's request log write a line per request; as strings those lines cost
 * 1-2 KB of garbage per request (template parts, cons strings, the flattened copy), and kept in a
 * ring they were promoted to the old generation. Written as bytes they cost no garbage at all for
 * ASCII text, which is nearly all of it: characters are copied in a JS loop (short strings are
 * cheaper than a call into the native encoder), and anything else is encoded as UTF-8 by hand.
 *
 * Output is what JSON.stringify would write for the same values: `"` `\` and control characters
 * escaped, lone surrogates as \uXXXX, everything else as UTF-8.
 */

const HEX = '0123456789abcdef';
/**
 * What JSON makes of each ASCII character: 0 written as it is (printable, not `"` or `\`); else the
 * letter of its two-character escape (`\"`, `\\`, `\n`, …); 1 for the other controls (`\u00XX`).
 * One table load per character, escapes included: a header value with quotes in it (a RateLimit
 * field, `"default";r=9;t=1`) costs no call per quote.
 */
const ESCAPE = new Uint8Array(128);
for (let c = 0; c < 0x20; c++) ESCAPE[c] = 1;
for (const [c, letter] of [[0x22, 0x22], [0x5c, 0x5c], [0x08, 0x62], [0x0c, 0x66], [0x0a, 0x6e], [0x0d, 0x72], [0x09, 0x74]] as const) ESCAPE[c] = letter;
/** The characters ESCAPE writes as they are, as a pattern (printable ASCII but `"` and `\`), for the native path of `str`. */
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/**
 * Strings at least this long take the native path of `str`: below it the loop costs fewer instructions
 * than the check and the call (bench/line-instructions.mjs: 10 and 16 cost more per record than 24 or 32).
 */
const NATIVE_MIN = 32;

/**
 * Constant ASCII text (a key with its punctuation, such as `,"path":`) prepared once: its bytes as
 * little-endian 64-bit groups (held as the doubles they spell), then one 32-bit word and 0-3 bytes
 * for the rest. Most of an access line is such text: it is written eight bytes per store. A native
 * copy (`Uint8Array#set`) costs ~170 instructions a call whatever the length, more than the stores
 * of any key a line has (bench/line-instructions.mjs).
 *
 * Why doubles are safe: a group of ASCII bytes is never a NaN (that needs the top byte 0x7f or 0xff
 * and the next one 0xf0 or above), so loading and storing it as a double keeps every bit; the
 * constructor refuses text that is not ASCII.
 */
export class JsonKey {
  readonly text: string;
  /** Bytes 0 to 8·n-1, eight at a time. */
  readonly groups: Float64Array;
  /** Bytes 8·n to 8·n+3 when at least four remain (`hasWord`). */
  readonly word: number;
  readonly hasWord: boolean;
  /** The last 0-3 bytes. */
  readonly tail: Uint8Array;
  readonly length: number;

  /** `text` prepared, or null when it is not ASCII (JSON text from data: a value that cannot be prepared). */
  static ascii(text: string): JsonKey | null {
    return isAscii(text) ? new JsonKey(text) : null;
  }

  constructor(text: string) {
    if (!isAscii(text)) throw new RangeError(`JsonKey: ${JSON.stringify(text)} is not ASCII`);
    const bytes = Buffer.from(text, 'latin1');
    const n = bytes.length >> 3;
    this.text = text;
    this.length = bytes.length;
    this.groups = new Float64Array(n);
    for (let i = 0; i < n; i++) this.groups[i] = bytes.readDoubleLE(i * 8);
    let at = n * 8;
    this.hasWord = bytes.length - at >= 4;
    this.word = this.hasWord ? bytes.readUInt32LE(at) : 0;
    if (this.hasWord) at += 4;
    this.tail = Uint8Array.from(bytes.subarray(at));
  }
}

const EMPTY_KEY = new JsonKey('');

/**
 * Request ids the gateway made (src/pipeline/request-id.ts), as the ASCII bytes of their batch's
 * hex text held eight to a double: a log writer copies an id with four 8-byte stores (hexId)
 * instead of encoding its string, which, being a slice of the batch's text, costs a native call
 * (~850 instructions) or a slow character loop. Safe as doubles for the reason JsonKey's groups
 * are: bytes of hex digits never spell a NaN. `toJSON` keeps the batch out of a record sent to
 * the cluster's primary as JSON (it arrives as null, and the id is written from its string).
 */
export class IdBytes {
  /** Bytes 8·i to 8·i+7 of the text, read little-endian (as JsonKey's groups, so stores need no byte order of their own). */
  readonly words: Float64Array;

  /** The ASCII bytes of a batch of ids (a multiple of eight long). */
  static of(text: Buffer): IdBytes {
    const words = new Float64Array(text.length >> 3);
    for (let i = 0; i < words.length; i++) words[i] = text.readDoubleLE(i * 8);
    return new IdBytes(words);
  }

  private constructor(words: Float64Array) {
    this.words = words;
  }

  toJSON(): null {
    return null;
  }
}

/**
 * A field whose values come from a small set (a route prefix, a backend URL, a method, a key id):
 * its key and each value's quoted JSON text are prepared once as one JsonKey, so writing the field
 * is a lookup and a few four-byte stores instead of a key and a string copied a character at a time
 * (a 22-character backend URL cost ~1,100 instructions that way). Values seen after `max` distinct
 * ones, or with text that is not ASCII, are written the ordinary way.
 */
export class FieldCache {
  /** The key alone (such as `,"route":`), for values written the ordinary way. */
  readonly key: JsonKey;
  /** The key and `null` (and `after`). */
  readonly none: JsonKey;
  /** Constant text that always follows the value (the next field's key), prepared with each value as NumField's is. */
  readonly after: JsonKey;
  readonly #text: string;
  readonly #max: number;
  readonly #fields = new Map<string, JsonKey | null>();
  /** The last value looked up and its entry: most lines repeat the previous line's value. */
  #last: string | null = null;
  #lastField: JsonKey | null = null;

  constructor(key: string, max = 256, after = '') {
    this.key = new JsonKey(key);
    this.none = new JsonKey(key + 'null' + after);
    this.after = new JsonKey(after);
    this.#text = key;
    this.#max = max;
  }

  /** The key, `value` and `after` as one JsonKey, or null: write `key`, the value and `after` yourself. */
  field(value: string): JsonKey | null {
    if (value === this.#last) return this.#lastField;
    let field = this.#fields.get(value);
    if (field === undefined) {
      if (this.#fields.size >= this.#max) return null;
      field = JsonKey.ascii(this.#text + JSON.stringify(value) + this.after.text);
      this.#fields.set(value, field);
    }
    this.#last = value;
    this.#lastField = field;
    return field;
  }
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

export class JsonBytes {
  buf: Buffer;
  pos = 0;
  /** Bytes that may be written: past this the writer refuses (see `fits`). */
  limit: number;
  /** A view of `buf` for the four-byte stores of `key`. */
  #view: DataView;

  constructor(buf: Buffer, limit = buf.length) {
    this.buf = buf;
    this.limit = limit;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Starts writing at `pos` of `buf` (a different buffer, or the same one again). */
  reset(buf: Buffer, pos: number, limit = buf.length): void {
    if (buf !== this.buf) {
      this.buf = buf;
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.pos = pos;
    this.limit = limit;
  }

  /** Constant text prepared as a JsonKey (written eight bytes at a time). */
  key(k: JsonKey): void {
    const groups = k.groups;
    const view = this.#view;
    let p = this.pos;
    for (let i = 0; i < groups.length; i++) {
      view.setFloat64(p, groups[i]!, true);
      p += 8;
    }
    if (k.hasWord) {
      view.setUint32(p, k.word, true);
      p += 4;
    }
    const tail = k.tail;
    if (tail.length > 0) {
      const buf = this.buf;
      for (let i = 0; i < tail.length; i++) buf[p++] = tail[i]!;
    }
    this.pos = p;
  }

  /** Whether a string of `chars` UTF-16 units (escaped and quoted, worst case) still fits. */
  fits(chars: number): boolean {
    return this.pos + chars * 6 + 2 <= this.limit;
  }

  /** ASCII text the caller knows needs no escaping (punctuation, keys, digits, hex ids). */
  raw(s: string): void {
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** A number as JSON.stringify writes it (non-finite numbers as null). */
  num(n: number): void {
    // Integers up to 2^53 are exact through #uint's divisions, and JSON.stringify writes them as digits.
    if (Number.isInteger(n) && n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
      this.#uint(n);
      return;
    }
    this.raw(Number.isFinite(n) ? String(n) : 'null');
  }

  /**
   * Milliseconds rounded to the microsecond (`Math.round(ms * 1000) / 1000`), written without
   * making a string: the integer part, then up to three decimals without trailing zeros, which is
   * what JSON.stringify writes for such a number below 1e9.
   */
  ms3(ms: number): void {
    const us = Math.round(ms * 1000);
    if (!(us >= 0 && us < 1e12)) {
      this.num(us / 1000);
      return;
    }
    const whole = Math.floor(us / 1000);
    let frac = us - whole * 1000;
    this.#uint(whole);
    if (frac === 0) return;
    const buf = this.buf;
    buf[this.pos++] = 0x2e;
    buf[this.pos++] = 48 + Math.floor(frac / 100);
    frac %= 100;
    if (frac === 0) return;
    buf[this.pos++] = 48 + Math.floor(frac / 10);
    frac %= 10;
    if (frac !== 0) buf[this.pos++] = 48 + frac;
  }

  #uint(n: number): void {
    const buf = this.buf;
    if (n < 10) {
      buf[this.pos++] = 48 + n;
      return;
    }
    let digits = 1;
    for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = Math.floor(n / 10);
      buf[--p] = 48 + (n - q * 10);
      n = q;
    } while (n > 0);
  }

  /** A JSON string literal (quoted and escaped). */
  str(s: string): void {
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = 0x22;
    if (s.length >= NATIVE_MIN && PLAIN_TEXT.test(s)) {
      // A long string that needs no escaping (request ids, long URLs and paths): checked and copied by
      // native code. The loop below reads a character at a time, which costs several times more
      // for the sliced strings most of these are.
      p += buf.write(s, p, 'latin1');
      buf[p++] = 0x22;
      this.pos = p;
      return;
    }
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) {
        const e = ESCAPE[c]!;
        if (e === 0) buf[p++] = c;
        else if (e !== 1) {
          buf[p++] = 0x5c;
          buf[p++] = e;
        } else p = unicodeEscape(buf, p, c);
      } else if (c < 0x800) {
        buf[p++] = 0xc0 | (c >> 6);
        buf[p++] = 0x80 | (c & 0x3f);
      } else if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          buf[p++] = 0xf0 | (cp >> 18);
          buf[p++] = 0x80 | ((cp >> 12) & 0x3f);
          buf[p++] = 0x80 | ((cp >> 6) & 0x3f);
          buf[p++] = 0x80 | (cp & 0x3f);
          i++;
        } else p = unicodeEscape(buf, p, c); // a lone surrogate, as JSON.stringify writes it
      } else {
        buf[p++] = 0xe0 | (c >> 12);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      }
    }
    buf[p++] = 0x22;
    this.pos = p;
  }

  /**
   * A JSON string literal of text the caller knows is printable ASCII without `"` or `\` (a
   * request id: [A-Za-z0-9._:-], checked where it was made): quoted and copied without a look at
   * each character. Text that is not such ASCII must go through `str`.
   */
  plain(s: string): void {
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = 0x22;
    if (s.length >= NATIVE_MIN) p += buf.write(s, p, 'latin1');
    else for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
    buf[p++] = 0x22;
    this.pos = p;
  }

  /** A generated request id, quoted: the 32 hex digits at word `at` of `id` (see IdBytes). */
  hexId(id: IdBytes, at: number): void {
    const words = id.words;
    const view = this.#view;
    const buf = this.buf;
    const p = this.pos;
    buf[p] = 0x22;
    view.setFloat64(p + 1, words[at]!, true);
    view.setFloat64(p + 9, words[at + 1]!, true);
    view.setFloat64(p + 17, words[at + 2]!, true);
    view.setFloat64(p + 25, words[at + 3]!, true);
    buf[p + 33] = 0x22;
    this.pos = p + 34;
  }

  /**
   * The ISO-8601 text of epoch milliseconds (as Date#toISOString writes it), without quotes. The
   * text up to the seconds is remembered for the last two seconds seen (a line's request start and
   * its end are usually within them); the milliseconds are written as digits.
   */
  iso(ms: number, times: IsoTimes): void {
    ms = Math.floor(ms);
    const sec = Math.floor(ms / 1000);
    this.key(times.secondPrefix(sec));
    let frac = ms - sec * 1000;
    const buf = this.buf;
    const p = this.pos;
    buf[p] = 48 + Math.floor(frac / 100);
    frac %= 100;
    buf[p + 1] = 48 + Math.floor(frac / 10);
    buf[p + 2] = 48 + (frac % 10);
    buf[p + 3] = 0x5a; // Z
    this.pos = p + 4;
  }

  /** `key` (such as `,"path":`) and a string value. */
  strField(key: JsonKey, s: string): void {
    this.key(key);
    this.str(s);
  }

  /** A numeric field and the text after it (see NumField). */
  numCached(field: NumField, n: number): void {
    const k = field.field(n);
    if (k !== null) this.key(k);
    else {
      this.key(field.key);
      this.num(n);
      this.key(field.after);
    }
  }

  /** A field whose value comes from a small set (see FieldCache), or null when it has none. */
  cachedField(cache: FieldCache, s: string | undefined | null): void {
    if (s === undefined || s === null) {
      this.key(cache.none);
      return;
    }
    const field = cache.field(s);
    if (field !== null) this.key(field);
    else {
      this.key(cache.key);
      this.str(s);
      if (cache.after.length > 0) this.key(cache.after);
    }
  }

  /** Text already in JSON form, copied as UTF-8. */
  json(text: string): void {
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }
}

function unicodeEscape(buf: Buffer, p: number, c: number): number {
  buf[p++] = 0x5c;
  buf[p++] = 0x75;
  buf[p++] = HEX.charCodeAt((c >> 12) & 15);
  buf[p++] = HEX.charCodeAt((c >> 8) & 15);
  buf[p++] = HEX.charCodeAt((c >> 4) & 15);
  buf[p++] = HEX.charCodeAt(c & 15);
  return p;
}

/**
 * ISO-8601 text of recent times: under load many lines share a second, so the text up to the
 * seconds ("2026-11-28T08:22:08.") is formatted once per second and kept for the last two.
 */
export class IsoTimes {
  readonly #before: string;
  #sec = [NaN, NaN];
  #prefix: JsonKey[] = [EMPTY_KEY, EMPTY_KEY];
  #next = 0;

  /** @param before constant ASCII text written before every time (the key, say), prepared with it */
  constructor(before = '') {
    this.#before = before;
  }

  /** `before` and "YYYY-MM-DDTHH:MM:SS." of the epoch second `sec`, prepared as a JsonKey. */
  secondPrefix(sec: number): JsonKey {
    if (sec === this.#sec[0]) return this.#prefix[0]!;
    if (sec === this.#sec[1]) return this.#prefix[1]!;
    const i = this.#next;
    this.#next = 1 - i;
    this.#sec[i] = sec;
    return (this.#prefix[i] = new JsonKey(this.#before + new Date(sec * 1000).toISOString().slice(0, -4)));
  }
}

/**
 * A numeric field whose values are mostly small integers (a status, a byte count): its key and each
 * value from 0 to 1023 prepared once, as the key and number in one JsonKey, when first seen. `after`
 * is constant text that always follows the number (the next field's key), prepared with it: one
 * copy instead of two.
 */
export class NumField {
  readonly key: JsonKey;
  /** The text after the number, for numbers written the ordinary way. */
  readonly after: JsonKey;
  readonly #text: string;
  readonly #small: (JsonKey | undefined)[] = new Array<JsonKey | undefined>(1024).fill(undefined);

  constructor(key: string, after = '') {
    this.key = new JsonKey(key);
    this.after = new JsonKey(after);
    this.#text = key;
  }

  /** The key, `n` and `after` as one JsonKey, or null for a number that is not an integer from 0 to 1023. */
  field(n: number): JsonKey | null {
    if (!(n >= 0 && n < 1024) || n !== Math.floor(n)) return null;
    return (this.#small[n] ??= new JsonKey(this.#text + n + this.after.text));
  }
}
