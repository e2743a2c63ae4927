/** Header rewriting for both directions: hop-by-hop removal and the X-Forwarded-* set. */
import { createRequire } from 'node:module';
import { SECRET_HEADERS } from '../events/index.js';

/** The names the gateway adds to every upstream request, in the spelling it sends. */
export const GATEWAY_REQUEST_HEADERS = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id', 'x-gateway'] as const;

/**
 * Names undici is taught (below): the gateway's own, and `x-api-key`, which is forwarded upstream
 * unless `auth.strip_credentials`.
 */
export const UNDICI_TAUGHT_HEADERS: readonly string[] = [...GATEWAY_REQUEST_HEADERS, 'x-api-key'];

/**
 * undici looks each request header name up in its table of well-known names (name → lower-case
 * name); a name it does not know is lower-cased and checked against the token grammar on every
 * request. The names above are valid lower-case tokens, so they are added to the table once
 * (in-process, undici's Request with the gateway's headers went from ~1,100-1,350 to ~900-980 ns).
 * The table is an internal of undici 7 (lib/core/constants.js; the version is pinned); if a later
 * undici moves it, the names are simply checked per request again, and the test
 * (test/proxy/headers.test.ts) that expects them in the table fails.
 */
export function teachUndiciGatewayHeaders(): boolean {
  try {
    const constants = createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord?: Record<string, string> };
    const table = constants.headerNameLowerCasedRecord;
    if (table === undefined || table === null || typeof table !== 'object') return false;
    for (const name of UNDICI_TAUGHT_HEADERS) if (table[name] === undefined) table[name] = name;
    return true;
  } catch {
    return false;
  }
}
teachUndiciGatewayHeaders();

/**
 * Request header names the gateway never forwards as sent: hop-by-hop (RFC 9110 §7.6.1), the
 * forwarding headers it rewrites itself, and `expect` (the gateway answers 100-continue itself).
 */
const DROP_REQUEST = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'expect',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-request-id',
]);
const CREDENTIALS = new Set(['x-api-key', 'authorization']);

/** What the upstream header list does with a request header the client sent. */
const DROP = 1;
const APPEND_XFF = 2;
const CONNECTION = 3;
const CREDENTIAL = 4;

/**
 * The names above by length and first letter (a = 0): a header whose length and first letter match
 * none (most of them: accept, user-agent, content-type, …) is passed on after two loads, and one
 * that does is compared, ignoring ASCII case, with the one or two names of its bucket. A Map keyed
 * by the name cost ~400 instructions for `Connection` (the hash of a string the parser just made,
 * then a lower-cased copy when the spelling was not in it); the comparison costs ~60.
 */
type Buckets = ({ readonly name: string; readonly action: number }[] | undefined)[];

function bucketsOf(entries: [string, number][]): Buckets {
  const buckets: Buckets = new Array(32 * 26).fill(undefined);
  for (const [name, action] of entries) {
    if (name.length >= 32 || !/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`header name ${name} does not fit the buckets`);
    (buckets[name.length * 26 + (name.charCodeAt(0) - 97)] ??= []).push({ name, action });
  }
  return buckets;
}

/** The action `buckets` gives a header name (in any ASCII case), or 0. */
function actionIn(buckets: Buckets, name: string): number {
  const len = name.length;
  const letter = (name.charCodeAt(0) | 0x20) - 97;
  if (len >= 32 || letter < 0 || letter >= 26) return 0;
  const bucket = buckets[len * 26 + letter];
  if (bucket === undefined) return 0;
  for (let i = 0; i < bucket.length; i++) if (sameIgnoringAsciiCase(name, bucket[i]!.name)) return bucket[i]!.action;
  return 0;
}

const BUCKETS = bucketsOf([
  ...[...DROP_REQUEST].map((n): [string, number] => [n, n === 'x-forwarded-for' ? APPEND_XFF : n === 'connection' ? CONNECTION : DROP]),
  ...[...CREDENTIALS].map((n): [string, number] => [n, CREDENTIAL]),
]);

/** The action for a request header name, or 0 (forward it). */
function actionOf(name: string): number {
  return actionIn(BUCKETS, name);
}

/**
 * Whether `name` spells `lower` (lower-case ASCII of the same length) in any ASCII case. Only A-Z
 * fold: Node's parser refuses a header name that is not an ASCII token, and a Unicode case mapping
 * (the Kelvin sign to `k`) must not make a name match.
 */
function sameIgnoringAsciiCase(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

const HOP_RESPONSE = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

export interface ForwardInfo {
  /** The address of the socket peer: what X-Forwarded-For gets appended (a trusted proxy stays visible in the chain). */
  peerIp: string;
  requestId: string;
  proto: string;
  stripCredentials: boolean;
  /** For an upgrade handshake: the accepted `Upgrade` tokens, sent with `Connection: Upgrade`. */
  upgrade?: string;
}

/**
 * Builds the flat [name, value, ...] header list for the upstream request from the client's raw
 * headers: hop-by-hop and Connection-named headers dropped, X-Forwarded-For appended,
 * X-Forwarded-Host/-Proto and X-Request-Id set, Host preserved.
 */
export function upstreamHeaders(raw: string[], info: ForwardInfo): string[] {
  const out: string[] = [];
  let xff = '';
  let host = '';
  let connectionNamed: Set<string> | null = null;
  // One pass; headers a Connection header names (rare) are taken out of the list afterwards.
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const action = actionOf(name);
    if (action !== 0) {
      if (action === APPEND_XFF) {
        xff = xff === '' ? value : `${xff}, ${value}`;
        continue;
      }
      if (action === CONNECTION) {
        connectionNamed = connectionTokens(value, connectionNamed);
        continue;
      }
      if (action === DROP || info.stripCredentials) continue;
    } else if (name.length === 4 && host === '' && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) host = value;
    out.push(name, value);
  }
  if (connectionNamed !== null) {
    dropNamed(out, connectionNamed);
    if (connectionNamed.has('host')) host = '';
  }
  if (info.upgrade) out.push('connection', 'Upgrade', 'upgrade', info.upgrade);
  out.push('x-forwarded-for', xff === '' ? info.peerIp : `${xff}, ${info.peerIp}`);
  if (host !== '') out.push('x-forwarded-host', host);
  out.push('x-forwarded-proto', info.proto, 'x-request-id', info.requestId, 'x-gateway', 'microgate');
  return out;
}

/** Adds the header names a Connection value lists (other than close, keep-alive and upgrade) to `into`. */
function connectionTokens(value: string, into: Set<string> | null): Set<string> | null {
  // What nearly every client sends: nothing to split.
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return into;
  const lower = value.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return into;
  for (const l of lower.split(',')) {
    const t = l.trim();
    if (t !== '' && t !== 'close' && t !== 'keep-alive' && t !== 'upgrade') (into ??= new Set()).add(t);
  }
  return into;
}

/** Removes, in place, the [name, value] pairs of `list` whose lower-cased name is in `names`. */
function dropNamed(list: string[], names: Set<string>): void {
  let w = 0;
  for (let r = 0; r < list.length; r += 2) {
    if (names.has(list[r]!.toLowerCase())) continue;
    list[w++] = list[r]!;
    list[w++] = list[r + 1]!;
  }
  list.length = w;
}

/** What the client response's list does with a backend's header (responseHeaderList). */
const R_DROP = 1;
const R_CONNECTION = 2;
const R_TRANSFER_ENCODING = 3;
const R_CONTENT_LENGTH = 4;
const R_SECRET = 5;
const RESPONSE_BUCKETS = bucketsOf([
  // Hop-by-hop headers, and the backend's X-Request-Id (the gateway sends its own).
  ...[...HOP_RESPONSE, 'x-request-id'].map((n): [string, number] => [n, n === 'connection' ? R_CONNECTION : n === 'transfer-encoding' ? R_TRANSFER_ENCODING : R_DROP]),
  ['content-length', R_CONTENT_LENGTH],
  ...[...SECRET_HEADERS].map((n): [string, number] => [n, R_SECRET]),
]);

/** Node's Latin-1 decoder without `toString`'s encoding dispatch (a Buffer method since Node 0.x, absent from @types/node). */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/**
 * The Latin-1 text of header bytes, with the text of recent byte strings kept: a backend sends the
 * same names and mostly the same values on every response, and decoding them is a native call
 * (~600 instructions) and a new string each, where finding them here costs ~150 instructions and a
 * comparison of the bytes in JS (~20 a byte). One string per slot (the latest to hash there),
 * so a backend that never repeats itself costs the hash more and holds at most `slots` strings.
 * The same bytes give the same string object, which is what later comparisons want (the request
 * log's name cursor and prepared values compare by identity first).
 */
export class Latin1Cache {
  readonly #strings: (string | undefined)[];
  readonly #mask: number;
  readonly #maxLength: number;

  /** @param slots a power of two; @param maxLength longer byte strings are decoded every time */
  constructor(slots: number, maxLength: number) {
    if (!Number.isInteger(Math.log2(slots))) throw new RangeError(`Latin1Cache: slots must be a power of two (got ${slots})`);
    this.#strings = new Array<string | undefined>(slots).fill(undefined);
    this.#mask = slots - 1;
    this.#maxLength = maxLength;
  }

  text(b: Buffer | string): string {
    if (typeof b === 'string') return b;
    const len = b.length;
    if (len > this.#maxLength) return (b as Latin1Buffer).latin1Slice(0, len);
    if (len === 0) return '';
    // A few of the bytes pick the slot (the comparison below checks them all: it costs ~20
    // instructions a byte, a typed array's element loads being what they are in optimised code,
    // which is why values longer than maxLength are decoded instead).
    const slot = (len * 0x9e3 + b[0]! * 31 + b[len >> 1]! * 1021 + b[len - 1]! * 4093) & this.#mask;
    const s = this.#strings[slot];
    if (s !== undefined && s.length === len) {
      let i = 0;
      while (i < len && s.charCodeAt(i) === b[i]) i++;
      if (i === len) return s;
    }
    const t = (b as Latin1Buffer).latin1Slice(0, len);
    this.#strings[slot] = t;
    return t;
  }
}

const responseNames = new Latin1Cache(256, 64);
/** Short values only (Content-Length, a content type, `keep-alive`): a long one costs more to compare than to decode. */
const responseValues = new Latin1Cache(1024, 16);

/** What responseHeaderList tells about the backend's headers besides the list. */
export interface RawResponseInfo {
  /** Content-Length as the backend sent it, or null. */
  contentLength: string | null;
  /** Whether the backend sent Transfer-Encoding. */
  chunked: boolean;
  /** Whether the list names a secret header (the publisher redacts it then). */
  responseSecrets: boolean;
}

/**
 * The client response's headers as a flat [name, value, ...] list for writeHead, from the backend's
 * raw header list (undici's Buffers, or node's `rawHeaders` strings; names as the backend spelled
 * them): without hop-by-hop ones (and those named in Connection), then X-Request-Id and the
 * gateway's own headers (`extra`). A hop-by-hop header's value is never decoded; names and values a
 * backend repeats are found in Latin1Cache instead of decoded. undici's header object cost more
 * (each value decoded, each member stored under a computed key) before a list could even be built.
 */
export function responseHeaderList(raw: readonly (Buffer | string)[], requestId: string, extra: string[] | null, info: RawResponseInfo): string[] {
  const out: string[] = [];
  let named: Set<string> | null = null;
  let secret = false;
  let chunked = false;
  let contentLength: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = responseNames.text(raw[i]!);
    const action = actionIn(RESPONSE_BUCKETS, name);
    if (action === R_DROP) continue;
    const value = responseValues.text(raw[i + 1]!);
    if (action !== 0) {
      if (action === R_CONNECTION) {
        named = connectionTokens(value, named);
        continue;
      }
      if (action === R_TRANSFER_ENCODING) {
        chunked = true;
        continue;
      }
      if (action === R_CONTENT_LENGTH) contentLength = value;
      else secret = true;
    }
    out.push(name, value);
  }
  if (named !== null) dropNamed(out, named);
  out.push('x-request-id', requestId);
  if (extra !== null) for (let i = 0; i < extra.length; i++) out.push(extra[i]!);
  info.contentLength = contentLength;
  info.chunked = chunked;
  info.responseSecrets = secret;
  return out;
}
