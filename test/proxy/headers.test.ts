import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRequire } from 'node:module';
import { GATEWAY_REQUEST_HEADERS, Latin1Cache, responseHeaderList, UNDICI_TAUGHT_HEADERS, teachUndiciGatewayHeaders, upstreamHeaders, type RawResponseInfo } from '../../src/proxy/headers.js';

const INFO = { peerIp: '10.0.0.9', requestId: 'rid-1', proto: 'http', stripCredentials: true };

function pairs(list: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i]!, list[i + 1]!]);
  return out;
}

test('drops a header a Connection header names, wherever the two appear in the request', () => {
  for (const raw of [
    ['Host', 'h', 'X-Secret-Hop', '1', 'Connection', 'close, x-secret-hop', 'Accept', '*/*'],
    ['Host', 'h', 'Connection', 'X-Secret-Hop', 'Accept', '*/*', 'x-secret-hop', '2'],
  ]) {
    const names = pairs(upstreamHeaders(raw, INFO)).map(([n]) => n.toLowerCase());
    assert.ok(!names.includes('x-secret-hop'), JSON.stringify(names));
    assert.ok(!names.includes('connection'));
    assert.ok(names.includes('accept'));
  }
});

test('sends no X-Forwarded-Host when the Connection header names Host', () => {
  const out = pairs(upstreamHeaders(['Host', 'h.example', 'Connection', 'host'], INFO));
  assert.deepEqual(out.filter(([n]) => n.toLowerCase() === 'host' || n === 'x-forwarded-host'), []);
});

test('appends the peer to X-Forwarded-For even when a Connection header names X-Forwarded-For', () => {
  const out = pairs(upstreamHeaders(['X-Forwarded-For', '1.2.3.4', 'Connection', 'x-forwarded-for', 'Host', 'h'], INFO));
  assert.deepEqual(out.filter(([n]) => n === 'x-forwarded-for'), [['x-forwarded-for', '1.2.3.4, 10.0.0.9']]);
});

test('keeps the order and case of the headers it passes, then adds the forwarding headers', () => {
  const out = upstreamHeaders(['Host', 'h', 'User-Agent', 'ua', 'X-Api-Key', 'k', 'Accept', '*/*'], INFO);
  assert.deepEqual(out, [
    'Host', 'h', 'User-Agent', 'ua', 'Accept', '*/*',
    'x-forwarded-for', '10.0.0.9', 'x-forwarded-host', 'h', 'x-forwarded-proto', 'http', 'x-request-id', 'rid-1', 'x-gateway', 'microgate',
  ]);
});

test('drops every hop-by-hop, forwarding and (when stripping) credential header in any spelling, and passes look-alikes', () => {
  const dropped = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', 'expect', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id'];
  const credentials = ['x-api-key', 'authorization'];
  const capitalized = (n: string) => n.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
  const alternating = (n: string) => [...n].map((c, i) => (i % 2 === 1 ? c.toUpperCase() : c)).join('');
  const spellings = (n: string) => [n, n.toUpperCase(), capitalized(n), n[0]!.toUpperCase() + n.slice(1), alternating(n)];
  // Same length and first letter as a dropped name, or a first character that is not a letter.
  const lookAlikes = ['X-Forwarded-Port', 'Keep-Alivf', 'Trailers', 'Te2', 'Expecs', 'Authorizatio', 'X-Api-Kez', '-onnection', '4e', 'Host'];
  for (const name of [...dropped, ...credentials]) {
    for (const spelled of spellings(name)) {
      const raw = ['Host', 'h', spelled, 'v', ...lookAlikes.flatMap((n) => [n, 'kept'])];
      const out = pairs(upstreamHeaders(raw, INFO));
      assert.ok(!out.some(([n, v]) => n === spelled && v === 'v'), `${spelled} was forwarded`);
      for (const n of lookAlikes) assert.ok(out.some(([m, v]) => m === n && (v === 'kept' || n === 'Host')), `${n} was dropped`);
      const kept = pairs(upstreamHeaders(raw, { ...INFO, stripCredentials: false }));
      assert.equal(kept.some(([n, v]) => n === spelled && v === 'v'), credentials.includes(name), `${spelled} with stripCredentials false`);
    }
  }
  // X-Forwarded-For in any spelling is appended to, never forwarded as sent.
  for (const spelled of spellings('x-forwarded-for')) {
    assert.deepEqual(pairs(upstreamHeaders([spelled, '1.2.3.4', 'Host', 'h'], INFO)).filter(([n]) => n.toLowerCase() === 'x-forwarded-for'), [['x-forwarded-for', '1.2.3.4, 10.0.0.9']]);
  }
  // Host in any spelling becomes X-Forwarded-Host.
  for (const spelled of ['host', 'Host', 'HOST', 'hOsT']) {
    assert.deepEqual(pairs(upstreamHeaders([spelled, 'h.example'], INFO)).filter(([n]) => n === 'x-forwarded-host'), [['x-forwarded-host', 'h.example']]);
  }
});

test('undici knows the names the gateway adds to every upstream request, so it does not lower-case and check them per request', () => {
  assert.equal(teachUndiciGatewayHeaders(), true);
  const { headerNameLowerCasedRecord } = createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord: Record<string, string> };
  for (const name of UNDICI_TAUGHT_HEADERS) assert.equal(headerNameLowerCasedRecord[name], name);
  assert.ok(UNDICI_TAUGHT_HEADERS.includes('x-api-key'));
  // Every name upstreamHeaders adds is one of them (a new one must be added to the list too).
  const added = pairs(upstreamHeaders(['Host', 'h.example'], INFO)).map(([n]) => n).filter((n) => n !== 'Host');
  assert.deepEqual(added.filter((n) => !(GATEWAY_REQUEST_HEADERS as readonly string[]).includes(n)), []);
  assert.equal(added.length, GATEWAY_REQUEST_HEADERS.length);
});

/** A backend's header block as undici hands it over: each name and value a view of one read's bytes. */
function rawHeaders(pairs: string[]): Buffer[] {
  const block = Buffer.from(pairs.join(''), 'latin1');
  const out: Buffer[] = [];
  let at = 0;
  for (const p of pairs) {
    out.push(block.subarray(at, at + p.length));
    at += p.length;
  }
  return out;
}

function info(): RawResponseInfo {
  return { contentLength: null, chunked: false, responseSecrets: false };
}

test('builds the client response list from raw header bytes: hop-by-hop and Connection-named headers out, names as spelled, X-Request-Id and the gateway\'s headers last', () => {
  const i = info();
  const list = responseHeaderList(
    rawHeaders(['Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Internal', 'Keep-Alive', 'timeout=5', 'X-Internal', 'secret-route', 'Content-Length', '12', 'X-Request-Id', 'from-backend', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'Transfer-Encoding', 'chunked', 'Caf\u00e9', '\u00e9t\u00e9']),
    'rid-1',
    ['RateLimit', 'limit=5'],
    i,
  );
  assert.deepEqual(list, ['Content-Type', 'text/plain', 'Content-Length', '12', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'Caf\u00e9', '\u00e9t\u00e9', 'x-request-id', 'rid-1', 'RateLimit', 'limit=5']);
  assert.deepEqual(i, { contentLength: '12', chunked: true, responseSecrets: true });
  const plain = info();
  assert.deepEqual(responseHeaderList(rawHeaders(['ETag', '"x"']), 'rid-2', null, plain), ['ETag', '"x"', 'x-request-id', 'rid-2']);
  assert.deepEqual(plain, { contentLength: null, chunked: false, responseSecrets: false });
});

test('gives the same text as decoding, for names and values that repeat, change, collide in its table or are too long to keep', () => {
  const cache = new Latin1Cache(4, 16);
  let seed = 11;
  const next = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  const words = ['', 'a', 'b', 'ab', 'ba', 'Date', 'date', 'content-length', 'content-lengtH', 'x'.repeat(16), 'x'.repeat(17), '\u00ff\u00e9\u0000'];
  for (let k = 0; k < 2000; k++) {
    const word = k % 97 === 0 ? `r${next(100000)}` : words[next(words.length)]!;
    // A view into a larger read, as undici's are.
    const bytes = Buffer.from(`<${word}>`, 'latin1').subarray(1, word.length + 1);
    assert.equal(cache.text(bytes), word, `entry ${k}`);
  }
  // The same bytes twice in a row give the same string object (what the request log compares first).
  const date = Buffer.from('Date', 'latin1');
  assert.equal(cache.text(date), cache.text(Buffer.from('Date', 'latin1')));
  assert.throws(() => new Latin1Cache(3, 8), /power of two/);
});
