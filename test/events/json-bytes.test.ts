import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FieldCache, IsoTimes, JsonBytes, JsonKey, NumField } from '../../src/events/json-bytes.js';
import { generatedId } from '../helpers/records.js';

function written(fn: (w: JsonBytes) => void): string {
  const w = new JsonBytes(Buffer.alloc(1 << 16));
  fn(w);
  return w.buf.toString('utf8', 0, w.pos);
}

/** A random string over ASCII, controls, Latin-1, BMP, surrogate pairs and lone surrogates. */
function randomString(rnd: () => number): string {
  const pools = [
    () => 0x20 + Math.floor(rnd() * 0x5f),
    () => Math.floor(rnd() * 0x20),
    () => [0x22, 0x5c, 0x7f][Math.floor(rnd() * 3)]!,
    () => 0x80 + Math.floor(rnd() * 0x780),
    () => 0x800 + Math.floor(rnd() * 0xd000),
    () => 0xd800 + Math.floor(rnd() * 0x800),
    () => 0xe000 + Math.floor(rnd() * 0x2000),
  ];
  let s = '';
  const n = Math.floor(rnd() * 12);
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.1) s += String.fromCodePoint(0x10000 + Math.floor(rnd() * 0xfffff));
    else s += String.fromCharCode(pools[Math.floor(rnd() * pools.length)]!());
  }
  return s;
}

function seeded(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

describe('JsonBytes', () => {
  it('writes every string exactly as JSON.stringify does (10,000 random strings with controls, quotes, UTF-8 and lone surrogates)', () => {
    const rnd = seeded(42);
    for (let i = 0; i < 10_000; i++) {
      const s = randomString(rnd);
      assert.equal(written((w) => w.str(s)), JSON.stringify(s), `string ${JSON.stringify(s)}`);
    }
  });

  it('writes long strings exactly as JSON.stringify does, plain ones and ones with a single character to escape anywhere, sliced or not', () => {
    const rnd = seeded(7);
    const plain = ' !#$%&()*+,-./0123456789:;<=>?@ABCXYZ[]^_`abcxyz{|}~';
    for (let i = 0; i < 2_000; i++) {
      const n = 16 + Math.floor(rnd() * 80);
      let s = '';
      for (let k = 0; k < n; k++) s += plain[Math.floor(rnd() * plain.length)];
      if (i % 2 === 1) {
        // One character that must not take the plain path: a quote, a backslash, a control, DEL or beyond ASCII.
        const odd = ['"', '\\', '\n', '\u0000', '\u007f', 'é', '\u2028', '\ud800', '😀'][i % 9]!;
        const at = Math.floor(rnd() * n);
        s = s.slice(0, at) + odd + s.slice(at);
      }
      const sliced = ('>' + s + '<').slice(1, -1);
      assert.equal(written((w) => w.str(s)), JSON.stringify(s), `string ${JSON.stringify(s)}`);
      assert.equal(written((w) => w.str(sliced)), JSON.stringify(sliced));
    }
  });

  it('writes numbers as JSON.stringify does, non-finite ones as null', () => {
    for (const n of [0, 7, 10, 99, 100, 12345, 2 ** 31, 2 ** 53 - 1, 1e15, 1e21, 1.5, 0.001, -3, -0, 1.235, 123456.789, NaN, Infinity, -Infinity]) {
      assert.equal(written((w) => w.num(n)), JSON.stringify(n), `number ${n}`);
    }
  });

  it('writes milliseconds rounded to the microsecond as JSON.stringify writes the rounded number', () => {
    const rnd = seeded(7);
    const samples = [0, 0.0004, 0.0005, 0.001, 0.01, 0.1, 1, 1.2345, 10.5, 99.999, 99.9995, 123.4, 1000, 86_400_000.001, 1e9 - 0.001, 2e12, -1, NaN];
    for (let i = 0; i < 20_000; i++) samples.push(rnd() * 10 ** Math.floor(rnd() * 9));
    for (const ms of samples) assert.equal(written((w) => w.ms3(ms)), JSON.stringify(Math.round(ms * 1000) / 1000), `ms ${ms}`);
  });

  it('writes request ids (any of [A-Za-z0-9._:-], 1-128 characters, sliced or not) as JSON.stringify does, without looking at each character', () => {
    const rnd = seeded(11);
    const alphabet = 'ABCXYZabcxyz0123456789._:-';
    for (let i = 0; i < 2_000; i++) {
      const n = 1 + Math.floor(rnd() * 128);
      let s = '';
      for (let k = 0; k < n; k++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      const sliced = ('<' + s + '>').slice(1, -1);
      assert.equal(written((w) => w.plain(s)), JSON.stringify(s));
      assert.equal(written((w) => w.plain(sliced)), JSON.stringify(sliced));
    }
  });

  it('writes a generated request id from its bytes as JSON.stringify writes its text, at every alignment', () => {
    for (let shift = 0; shift < 8; shift++) {
      const g = generatedId();
      assert.equal(written((w) => (w.raw('x'.repeat(shift)), w.hexId(g.idBytes!, g.idWord!), w.raw('!'))), 'x'.repeat(shift) + JSON.stringify(g.id) + '!');
    }
  });

  it('copies text already in JSON form as UTF-8', () => {
    assert.equal(written((w) => w.json('{"a":[1,"é"],"b":null}')), '{"a":[1,"é"],"b":null}');
  });

  it('knows whether a string of n characters fits in what is left', () => {
    const w = new JsonBytes(Buffer.alloc(100));
    assert.equal(w.fits(16), true);
    assert.equal(w.fits(17), false);
  });
});

describe('JsonKey', () => {
  it('writes its text exactly, at every alignment, for every tail length, between other writes', () => {
    for (let len = 0; len <= 26; len++) {
      const text = ',"' + 'abcdefghijklmnopqrstuvwxyz'.slice(0, len) + '":';
      const key = new JsonKey(text);
      for (let at = 0; at < 8; at++) {
        assert.equal(written((w) => {
          w.raw('x'.repeat(at));
          w.key(key);
          w.num(7);
        }), 'x'.repeat(at) + text + '7');
      }
    }
  });

  it('writes into the buffer it is reset to, including a slice of a larger one at an odd offset', () => {
    const key = new JsonKey('{"level":"info","time":"');
    const big = Buffer.alloc(256, 0x2e);
    const slice = big.subarray(13, 200);
    const w = new JsonBytes(Buffer.alloc(64));
    w.key(key);
    w.reset(slice, 5);
    w.key(key);
    assert.equal(big.toString('latin1', 0, 13 + 5 + key.text.length), '.'.repeat(18) + key.text);
    assert.equal(big[13 + 5 + key.text.length], 0x2e, 'nothing written past the text');
  });

  it('writes every ASCII byte exactly in each position of its eight-byte groups (controls and DEL too: no group is a NaN)', () => {
    // The groups are stored as doubles: a pattern a double could change (a NaN's payload) must not
    // exist among ASCII texts. Every byte value 0-127 in every one of the eight positions, with
    // the neighbours that give the largest exponents (0x7f) and the smallest (0x00: denormals).
    for (let b = 0; b < 128; b++) {
      for (let pos = 0; pos < 8; pos++) {
        for (const fill of [0x7f, 0x00, 0x41]) {
          const bytes = Buffer.alloc(8, fill);
          bytes[pos] = b;
          const text = bytes.toString('latin1') + 'tail';
          const w = new JsonBytes(Buffer.alloc(32));
          w.raw('x');
          w.key(new JsonKey(text));
          assert.deepEqual(w.buf.subarray(1, w.pos), Buffer.from(text, 'latin1'), `byte ${b} at ${pos} among ${fill}`);
        }
      }
    }
  });

  it('refuses text that is not ASCII, so a key is never written as something else', () => {
    assert.throws(() => new JsonKey(',"café":'), /not ASCII/);
  });
});

describe('ISO times', () => {
  const times = [0, 5, 1_700_000_000_000, 0, 1_700_000_000_001, 1_700_000_000_999, 1_700_000_001_000, 1_700_000_000_000, 1_700_000_000_050.7, 253_402_300_799_999, 253_402_300_800_000, -1];
  it('are written as Date#toISOString writes them, for alternating seconds', () => {
    const t = new IsoTimes();
    for (const ms of times) assert.equal(written((w) => w.iso(ms, t)), new Date(Math.floor(ms)).toISOString(), `ms ${ms}`);
  });
});

describe('cached fields', () => {
  it('write the key and the value as JSON.stringify would, for repeated, new, non-ASCII and missing values', () => {
    const cache = new FieldCache(',"route":', 8);
    const values = ['/api', '/api', '/b"q', 'caf\u00e9', '/api', '', '\ud800', null, undefined, '/api'];
    for (let i = 0; i < 40; i++) values.push(`/v${i % 12}`);
    for (const v of values) {
      assert.equal(written((w) => w.cachedField(cache, v)), `,"route":${v === null || v === undefined ? 'null' : JSON.stringify(v)}`, String(v));
    }
  });

  it('write the text that follows the value with it, prepared or not, and after null', () => {
    const cache = new FieldCache(',"method":', 4, ',"path":');
    const values = ['GET', 'GET', 'POST', 'caf\u00e9', 'a"b', 'PUT', 'DELETE', 'PATCH', 'GET', null, undefined];
    for (const v of values) {
      assert.equal(written((w) => w.cachedField(cache, v)), `,"method":${v === null || v === undefined ? 'null' : JSON.stringify(v)},"path":`, String(v));
    }
  });

  it('stop preparing new values at their limit and write those the ordinary way', () => {
    const cache = new FieldCache(',"k":', 3);
    for (let i = 0; i < 5; i++) cache.field(`v${i}`);
    assert.ok(cache.field('v0') !== null, 'a value seen before the limit stays prepared');
    assert.equal(cache.field('v4'), null, 'a value seen after the limit is not prepared');
    assert.equal(cache.field('caf\u00e9'), null, 'text that is not ASCII is not prepared');
    assert.equal(written((w) => w.cachedField(cache, 'v4')), ',"k":"v4"');
  });
});

describe('numeric fields', () => {
  it('write the key and the number as JSON.stringify would, small integers prepared and the rest not', () => {
    const field = new NumField(',"status":');
    for (const n of [0, 1, 200, 200, 499, 1023, 1024, 65536, -1, 0.5, 12.25, 1e21, Number.NaN, Infinity, -0]) {
      assert.equal(written((w) => w.numCached(field, n)), `,"status":${JSON.stringify(n)}`, String(n));
    }
    assert.ok(field.field(7) !== null && field.field(7) === field.field(7), 'a small integer is prepared once');
    assert.equal(field.field(1024), null);
    assert.equal(field.field(2.5), null);
  });

  it('write the text that follows the number with it, prepared or not', () => {
    const field = new NumField(',"status":', ',"latency_ms":');
    for (const n of [200, 200, 0, 1023, 1024, 70000, 0.5, Number.NaN]) {
      assert.equal(written((w) => w.numCached(field, n)), `,"status":${JSON.stringify(n)},"latency_ms":`, String(n));
    }
  });
});

describe('ISO times after constant text', () => {
  it('write the text and the time as Date#toISOString, across seconds', () => {
    const times = new IsoTimes('{"t":"');
    for (const ms of [0, 999, 1000, 1_795_876_700_050, 1_795_876_700_999, 1_795_876_701_000, 1_795_876_700_050]) {
      assert.equal(written((w) => w.iso(ms, times)), `{"t":"${new Date(ms).toISOString()}`);
    }
  });
});
