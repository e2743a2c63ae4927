import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IsoTimes, JsonBytes } from '../../src/events/json-bytes.js';

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

  it('copies text already in JSON form as UTF-8', () => {
    assert.equal(written((w) => w.json('{"a":[1,"é"],"b":null}')), '{"a":[1,"é"],"b":null}');
  });

  it('knows whether a string of n characters fits in what is left', () => {
    const w = new JsonBytes(Buffer.alloc(100));
    assert.equal(w.fits(16), true);
    assert.equal(w.fits(17), false);
  });
});

describe('ISO times', () => {
  const times = [0, 5, 1_700_000_000_000, 0, 1_700_000_000_001, 1_700_000_000_999, 1_700_000_001_000, 1_700_000_000_000, 1_700_000_000_050.7, 253_402_300_799_999, 253_402_300_800_000, -1];
  it('are written as Date#toISOString writes them, for alternating seconds', () => {
    const t = new IsoTimes();
    for (const ms of times) assert.equal(written((w) => w.iso(ms, t)), new Date(Math.floor(ms)).toISOString(), `ms ${ms}`);
  });
});
