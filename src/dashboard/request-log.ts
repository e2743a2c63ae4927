/**
 * The request log: the newest requests as the dashboard shows them, kept as JSON bytes in one
 * off-heap ring, newest overwriting oldest. Keeping the completion records themselves (with their
 * header objects) kept ~1,500 objects per second's worth of traffic alive long enough to be
 * promoted, and the garbage collector paid for it on every request; writing an entry's bytes costs
 * less and keeps nothing on the heap. Entries are parsed only when served.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { CompletionRecord, HeaderList, Verdict } from '../events/index.js';
import { SECRET_HEADERS } from '../events/index.js';
import { FieldCache, IsoTimes, JsonBytes, JsonKey, NumField } from '../events/json-bytes.js';

/** One request as the dashboard API and SSE `request` event show it. */
export interface RequestLog {
  id: string;
  /** Request start, ISO 8601. */
  timestamp: string;
  method: string;
  path: string;
  /** Query string without "?" ("" when none). */
  query: string;
  status: number;
  /** Real milliseconds (float, rounded to the microsecond). The reference sent nanoseconds here (B4). */
  latency_ms: number;
  client_ip: string;
  bytes_in: number;
  bytes_out: number;
  /** The backend URL the gateway chose ("" when the gateway answered itself). */
  backend: string;
  /** The matched route prefix ("" when none matched). */
  route: string;
  consumer?: string;
  decision?: string;
  /** The numbers behind `decision` (limit, retry_after_s, …). */
  detail?: Record<string, number | string>;
  /** Policies' opinions (e.g. an adaptive limit in shadow mode that would have refused). */
  verdicts?: readonly Verdict[];
  /** The gateway error code, when the gateway wrote an error response. */
  error?: string;
  /** Header values, with credentials replaced by "[redacted]". */
  request_headers: Record<string, string>;
  response_headers: Record<string, string>;
  /** Present (true) when something was left out: a field longer than MAX_FIELD_CHARS, or header values beyond MAX_ENTRY_BYTES. */
  truncated?: true;
}

/** Filters of `GET /logs`. */
export interface LogQuery {
  limit: number;
  /** Exact status, or a class: 5 matches 500-599. */
  status?: { exact: number } | { cls: number };
  /** Case-sensitive substring of the path. */
  path?: string;
}

/** The largest entry: header values beyond it are left out and the entry says `truncated`. */
export const MAX_ENTRY_BYTES = 64 * 1024;
/**
 * The longest text field (id, method, path, query, client IP, consumer) an entry keeps; longer ones
 * are cut and the entry says `truncated`. Six such fields, escaped at worst, fit in an entry.
 */
export const MAX_FIELD_CHARS = 1500;
/** Ring bytes per kept entry (a typical entry is 400-1,000 bytes). */
const BYTES_PER_ENTRY = 1536;
const MIN_RING_BYTES = 256 * 1024;
const MAX_RING_BYTES = 256 * 1024 * 1024;

export class RequestLogStore {
  /** Entries `search` serves at most (`dashboard.log_capacity`). */
  readonly capacity: number;
  /** Entries kept: at least `capacity`, more when the SSE history needs them for replay. */
  readonly #slots: number;
  readonly #ring: Buffer;
  /** Per slot (sequence number modulo #slots): where the entry's bytes are, and its status. */
  readonly #offset: Uint32Array;
  readonly #length: Uint32Array;
  readonly #status: Uint16Array;
  /** Sequence number of the next entry, and of the oldest still kept. */
  #next = 0;
  #oldest = 0;
  /** Where the next entry's bytes go. */
  #write = 0;
  readonly #scratch = Buffer.allocUnsafeSlow(MAX_ENTRY_BYTES);
  readonly #w = new JsonBytes(this.#scratch);

  /**
   * @param capacity entries served by `search` (`dashboard.log_capacity`)
   * @param keep entries kept for `json(seq)` (the SSE history's replay); at least `capacity`
   */
  constructor(capacity: number, keep = capacity) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`log capacity must be a positive integer (got ${capacity})`);
    this.capacity = capacity;
    this.#slots = Math.max(capacity, Number.isInteger(keep) ? keep : capacity);
    // Not zero-filled: pages are touched as entries arrive.
    this.#ring = Buffer.allocUnsafeSlow(Math.min(MAX_RING_BYTES, Math.max(MIN_RING_BYTES, this.#slots * BYTES_PER_ENTRY)));
    this.#offset = new Uint32Array(this.#slots);
    this.#length = new Uint32Array(this.#slots);
    this.#status = new Uint16Array(this.#slots);
  }

  /** Entries `search` can serve now. */
  get size(): number {
    return Math.min(this.capacity, this.#next - this.#oldest);
  }

  /**
   * Stores a request as its JSON entry, with credential header values redacted, evicting the
   * oldest entries it needs room for. O(entry size); allocates nothing for ASCII requests.
   * Returns the entry's sequence number (for `json`).
   */
  push(record: CompletionRecord): number {
    const w = this.#w;
    // Where a whole entry of the largest size fits before the ring's end, it is written in place
    // (nothing reads the ring until push returns, and the entries it overwrites are evicted below);
    // near the end it goes to the scratch buffer first, then to the start of the ring.
    const direct = this.#write + MAX_ENTRY_BYTES <= this.#ring.length;
    if (direct) w.reset(this.#ring, this.#write, this.#write + MAX_ENTRY_BYTES);
    else w.reset(this.#scratch, 0);
    writeEntry(w, record);
    const len = direct ? w.pos - this.#write : w.pos;
    if (!direct && this.#write + len > this.#ring.length) this.#write = 0;
    const start = this.#write;
    const end = start + len;
    // Entries lie in the ring in the order they came, so the ones in the way are the oldest.
    while (this.#oldest < this.#next) {
      const slot = this.#oldest % this.#slots;
      const o = this.#offset[slot]!;
      if (this.#next - this.#oldest < this.#slots && (o >= end || o + this.#length[slot]! <= start)) break;
      this.#oldest++;
    }
    if (!direct) this.#scratch.copy(this.#ring, start, 0, len);
    const seq = this.#next++;
    const slot = seq % this.#slots;
    this.#offset[slot] = start;
    this.#length[slot] = len;
    this.#status[slot] = record.status;
    this.#write = end;
    return seq;
  }

  /** The JSON text of entry `seq`, or undefined when it is no longer kept. */
  json(seq: number): string | undefined {
    if (seq < this.#oldest || seq >= this.#next) return undefined;
    const slot = seq % this.#slots;
    const o = this.#offset[slot]!;
    return this.#ring.toString('utf8', o, o + this.#length[slot]!);
  }

  /** The byte length of entry `seq`'s JSON, or -1 when it is no longer kept. */
  byteLength(seq: number): number {
    if (seq < this.#oldest || seq >= this.#next) return -1;
    return this.#length[seq % this.#slots]!;
  }

  /** Copies entry `seq`'s JSON bytes into `target` at `at` (the entry must be kept: see byteLength). */
  copyTo(seq: number, target: Buffer, at: number): void {
    const slot = seq % this.#slots;
    const o = this.#offset[slot]!;
    this.#ring.copy(target, at, o, o + this.#length[slot]!);
  }

  /** Matching entries, newest first, at most `q.limit` (of the newest `capacity`). */
  search(q: LogQuery): RequestLog[] {
    const out: RequestLog[] = [];
    const st = q.status;
    const first = Math.max(this.#oldest, this.#next - this.capacity);
    for (let seq = this.#next - 1; seq >= first && out.length < q.limit; seq--) {
      const status = this.#status[seq % this.#slots]!;
      if (st !== undefined && ('exact' in st ? status !== st.exact : Math.floor(status / 100) !== st.cls)) continue;
      const entry = JSON.parse(this.json(seq)!) as RequestLog;
      if (q.path !== undefined && !entry.path.includes(q.path)) continue;
      out.push(entry);
    }
    return out;
  }

  /** The newest entry with this request ID (IDs repeat when clients reuse X-Request-Id). */
  find(id: string): RequestLog | undefined {
    // Every entry starts with {"id":<id>, so the bytes decide before anything is parsed.
    const head = Buffer.from(`{"id":${JSON.stringify(id)},`, 'utf8');
    const first = Math.max(this.#oldest, this.#next - this.capacity);
    for (let seq = this.#next - 1; seq >= first; seq--) {
      const slot = seq % this.#slots;
      const o = this.#offset[slot]!;
      if (this.#length[slot]! >= head.length && this.#ring.compare(head, 0, head.length, o, o + head.length) === 0) {
        return JSON.parse(this.json(seq)!) as RequestLog;
      }
    }
    return undefined;
  }
}

/** Room kept for what follows the headers: the closing of both objects and `"truncated":true`. */
const TAIL_BYTES = 64;

/** The entry's constant text, and the fields whose values come from a small set, prepared once (src/events/json-bytes.ts: JsonKey, FieldCache). */
const K = {
  id: new JsonKey('{"id":'),
  /** The timestamp's key with the time's second. */
  timestamp: new IsoTimes(',"timestamp":"'),
  /** The method with the next key (the path's value follows). */
  methodPath: new FieldCache('","method":', 256, ',"path":'),
  query: new JsonKey(',"query":'),
  /** The status with the next key: one copy for both. */
  status: new NumField(',"status":', ',"latency_ms":'),
  clientIp: new FieldCache(',"client_ip":', 1024),
  bytesIn: new NumField(',"bytes_in":', ',"bytes_out":'),
  bytesOut: new NumField(''),
  backend: new FieldCache(',"backend":'),
  route: new FieldCache(',"route":'),
  /** The route, or the consumer, with the request headers' key: for an entry with nothing between (most). */
  routeHeaders: new FieldCache(',"route":', 256, ',"request_headers":'),
  consumer: new FieldCache(',"consumer":', 1024),
  consumerHeaders: new FieldCache(',"consumer":', 1024, ',"request_headers":'),
  decision: new FieldCache(',"decision":'),
  detail: new JsonKey(',"detail":'),
  verdicts: new JsonKey(',"verdicts":'),
  error: new FieldCache(',"error":'),
  requestHeaders: new JsonKey(',"request_headers":'),
  responseHeaders: new JsonKey(',"response_headers":'),
  truncatedEnd: new JsonKey(',"truncated":true}'),
};

/** One entry: a RequestLog's JSON, written as bytes (test/dashboard/request-log.test.ts has the same view built as an object). */
function writeEntry(w: JsonBytes, r: CompletionRecord): void {
  // The fields before the headers always fit (clipped to MAX_FIELD_CHARS; detail and verdicts only
  // when they fit); header values are left out once the entry is full.
  truncated = false;
  w.key(K.id);
  // At most 128 characters, never escaped (CompletionRecord.id); a generated one copied as bytes.
  if (r.idBytes != null) w.hexId(r.idBytes, r.idWord!);
  else w.plain(r.id);
  w.iso(r.time, K.timestamp);
  w.cachedField(K.methodPath, clip(r.method));
  w.str(clip(r.path));
  w.strField(K.query, clip(r.query));
  w.numCached(K.status, r.status);
  w.ms3(r.latencyMs);
  w.cachedField(K.clientIp, clip(r.clientIp));
  w.numCached(K.bytesIn, r.bytesIn);
  w.numCached(K.bytesOut, r.bytesOut);
  w.cachedField(K.backend, r.backend);
  if (r.decision === undefined && r.detail === undefined && r.verdicts.length === 0 && r.errorCode === undefined) {
    // Nothing between the route (or consumer) and the request headers: one piece with their key.
    if (r.consumer === undefined) w.cachedField(K.routeHeaders, r.route ?? '');
    else {
      w.cachedField(K.route, r.route ?? '');
      w.cachedField(K.consumerHeaders, clip(r.consumer));
    }
  } else {
    w.cachedField(K.route, r.route ?? '');
    if (r.consumer !== undefined) w.cachedField(K.consumer, clip(r.consumer));
    if (r.decision !== undefined) w.cachedField(K.decision, r.decision);
    if (r.detail !== undefined) writeValue(w, K.detail, r.detail);
    if (r.verdicts.length > 0) writeValue(w, K.verdicts, r.verdicts);
    if (r.errorCode !== undefined) w.cachedField(K.error, r.errorCode);
    w.key(K.requestHeaders);
  }
  writeHeaders(w, r.requestHeaders, requestNames);
  w.key(K.responseHeaders);
  writeHeaderList(w, r.responseHeaders, responseNames, r);
  if (truncated) w.key(K.truncatedEnd);
  else w.raw('}');
}

/** A rare, nested value (a decision's numbers, policies' verdicts) through JSON.stringify, when it fits. */
function writeValue(w: JsonBytes, key: JsonKey, v: unknown): void {
  const text = JSON.stringify(v);
  if (text === undefined) return;
  if (!w.fits(text.length + TAIL_BYTES)) {
    truncated = true;
    return;
  }
  w.key(key);
  w.json(text);
}

/** Whether the entry being written lost something (a clipped field, a left-out value). */
let truncated = false;

function clip(s: string): string {
  if (s.length <= MAX_FIELD_CHARS) return s;
  truncated = true;
  return s.slice(0, MAX_FIELD_CHARS);
}

/** A header name as an entry writes it: `,"<lower-case name>":` prepared once, and whether its value is a secret. */
interface HeaderName {
  readonly field: JsonKey;
  readonly secret: boolean;
  /**
   * The value this header had the last two times it was seen alike (most headers repeat: Host,
   * Content-Type, Connection, Date within its second), prepared with the name as one text
   * (`,"host":"example.com"`, or the redacted value for a secret); and the value seen last, which
   * becomes the prepared one when it comes again. A value that never repeats costs two comparisons
   * and is written the ordinary way.
   */
  value: string | null;
  pair: JsonKey | null;
  candidate: string | null;
  /** Values written the ordinary way since the last preparation (see writeKnown). */
  sincePrepared: number;
  /** The response list this name was last met in (writeHeaderList). */
  stamp: number;
}
/** Values longer than this are never prepared (nor kept as a candidate). */
const MAX_PREPARED_VALUE = 256;
/** A header's value is prepared at most once per this many of its values written the ordinary way. */
const PREPARE_EVERY = 64;
/**
 * Header names seen so far, as spelled (the names a gateway sees are a small set: Node hands out the
 * same string for each well-known one, and a backend spells each name its one way), each to the
 * one HeaderName of its lower-case form. Past MAX_HEADER_NAMES distinct spellings, new ones are
 * written the ordinary way.
 */
const headerNames = new Map<string, HeaderName | null>();
const byLowerCase = new Map<string, HeaderName | null>();
const MAX_HEADER_NAMES = 1024;
const REDACTED = new JsonKey('"[redacted]"');

function headerName(key: string): HeaderName | null {
  let known = headerNames.get(key);
  if (known === undefined) {
    if (headerNames.size >= MAX_HEADER_NAMES) return null;
    const lower = key.toLowerCase();
    known = byLowerCase.get(lower);
    if (known === undefined) {
      const field = JsonKey.ascii(`,${JSON.stringify(lower)}:`);
      const secret = SECRET_HEADERS.has(lower);
      // A secret's value is never looked at: its pair is the name with the redacted value.
      known = field === null ? null : { field, secret, value: null, pair: secret ? new JsonKey(field.text + REDACTED.text) : null, candidate: null, sincePrepared: PREPARE_EVERY, stamp: 0 };
      byLowerCase.set(lower, known);
    }
    headerNames.set(key, known);
  }
  return known;
}

/** X-Request-Id's name (see writeHeaderList). */
const REQUEST_ID = headerName('x-request-id');

/**
 * The names at each position of the last header object written on one side (requests' or
 * responses'): objects of one shape list their names in the same order, so a name is found by one
 * comparison of its (interned) string instead of a lookup.
 */
class NameCursor {
  readonly keys: (string | undefined)[] = [];
  readonly known: (HeaderName | null)[] = [];
}
/** Positions a cursor remembers; names past it are looked up every time. */
const CURSOR_POSITIONS = 64;
const requestNames = new NameCursor();
const responseNames = new NameCursor();

/** A known header's value: prepared with its name once it came twice in a row (see HeaderName). */
function writeKnown(w: JsonBytes, known: HeaderName, value: string): void {
  if (value === known.value) {
    w.key(known.pair!);
    return;
  }
  w.key(known.field);
  w.str(value);
  if (value.length > MAX_PREPARED_VALUE) return;
  known.sincePrepared++;
  if (value !== known.candidate) {
    known.candidate = value;
    return;
  }
  known.candidate = null;
  // A value that flips between a few (a RateLimit remaining count) would be prepared every other
  // time, and preparing costs ~5,000 instructions: at most once per PREPARE_EVERY of the header's
  // values written the ordinary way.
  if (known.sincePrepared < PREPARE_EVERY) return;
  known.sincePrepared = 0;
  const pair = JsonKey.ascii(known.field.text + JSON.stringify(value));
  if (pair !== null) {
    known.value = value;
    known.pair = pair;
  }
}

/** A header object as {name: value}, credentials redacted; values that do not fit are left out. */
function writeHeaders(w: JsonBytes, headers: IncomingHttpHeaders | undefined, names: NameCursor): void {
  // Every member is written with a leading comma; the first one's becomes the opening brace.
  const open = w.pos;
  if (headers !== undefined) {
    let at = 0;
    for (const key in headers) {
      const v = headers[key];
      if (v === undefined) continue;
      const known = nameAt(names, at++, key);
      writeMember(w, key, typeof v === 'string' ? v : Array.isArray(v) ? v.join(', ') : String(v), known);
    }
  }
  closeMembers(w, open);
}

/** The HeaderName of `key`, the name at position `at` of a header set on the cursor's side (see NameCursor). */
function nameAt(names: NameCursor, at: number, key: string): HeaderName | null {
  if (at >= CURSOR_POSITIONS) return headerName(key);
  if (names.keys[at] === key) return names.known[at]!;
  const known = headerName(key);
  names.keys[at] = key;
  names.known[at] = known;
  return known;
}

/** Ends an object whose members were written from `open` on, each with a leading comma: the first one's becomes `{`; none gives `{}`. */
function closeMembers(w: JsonBytes, open: number): void {
  if (w.pos === open) w.raw('{}');
  else {
    w.buf[open] = 0x7b; // {
    w.raw('}');
  }
}

/** The HeaderName of each pair of the response list being written (reused; see writeHeaderList). */
const listKnown: (HeaderName | null)[] = [];
/** A count of the lists written: a HeaderName's `stamp` says in which it was last met, so a name sent twice is found without comparing names. */
let listStamp = 0;

/**
 * A header list (the response's, as sent) as {name: value}, credentials redacted, written as
 * writeHeaders writes an object: a name sent more than once (Set-Cookie, in any case) is one member
 * with its values joined by ", ". Names are looked up once (the name cursor); a list whose names
 * are all different (nearly every one) is then written in one pass, the others after merging.
 */
function writeHeaderList(w: JsonBytes, list: HeaderList | undefined, names: NameCursor, r: CompletionRecord): void {
  const open = w.pos;
  if (list !== undefined) {
    const stamp = ++listStamp;
    let repeated = false;
    for (let i = 0; i < list.length; i += 2) {
      const known = nameAt(names, i >> 1, list[i]!);
      listKnown[i >> 1] = known;
      if (known === null || known.stamp === stamp) repeated = true;
      else known.stamp = stamp;
    }
    if (repeated) writeMerged(w, mergedList(list));
    else {
      for (let i = 0; i < list.length; i += 2) {
        const known = listKnown[i >> 1]!;
        const value = list[i + 1]!;
        // The gateway's X-Request-Id is the entry's id: copied as bytes when the gateway made it.
        if (known === REQUEST_ID && value === r.id && r.idBytes != null && w.fits(48 + TAIL_BYTES)) {
          w.key(known.field);
          w.hexId(r.idBytes, r.idWord!);
        } else writeMember(w, list[i]!, value, known);
      }
    }
  }
  closeMembers(w, open);
}

/** One header as a member of the object being written (a leading comma; the caller opens and closes). */
function writeMember(w: JsonBytes, key: string, value: string, known: HeaderName | null): void {
  const secret = known !== null ? known.secret : SECRET_HEADERS.has(key.toLowerCase());
  if (!w.fits(key.length + (secret ? 0 : value.length) + TAIL_BYTES)) {
    truncated = true;
    return;
  }
  if (known === null) {
    w.raw(',');
    w.str(key.toLowerCase());
    w.raw(':');
    if (secret) w.key(REDACTED);
    else w.str(value);
  } else if (secret) w.key(known.pair!);
  else writeKnown(w, known, value);
}

/** The members of a merged list (each name once, lower-cased). */
function writeMerged(w: JsonBytes, list: HeaderList): void {
  for (let i = 0; i < list.length; i += 2) writeMember(w, list[i]!, list[i + 1]!, headerName(list[i]!));
}

/** A list with each name once (lower-cased), its values joined by ", ", in order of first appearance. */
function mergedList(list: HeaderList): HeaderList {
  const merged = new Map<string, string>();
  for (let i = 0; i < list.length; i += 2) {
    const lower = list[i]!.toLowerCase();
    const had = merged.get(lower);
    merged.set(lower, had === undefined ? list[i + 1]! : `${had}, ${list[i + 1]!}`);
  }
  const out: HeaderList = [];
  for (const [name, value] of merged) out.push(name, value);
  return out;
}
