import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatUptime, parseDuration, parseSize } from '../../src/config/index.js';

describe('parseDuration', () => {
  for (const [text, ms] of [
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['48h', 172_800_000],
    ['1m30s', 90_000],
    ['2h15m30s', 8_130_000],
    ['1.5h', 5_400_000],
    ['1d', 86_400_000],
    ['10', 10_000],
    ['0.5', 500],
    [' 5s ', 5_000],
    ['1500us', 1.5],
  ] as const) {
    it(`reads "${text}" as ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  for (const text of ['', '   ', 'soon', '5x', '-5s', 's', '5 s', '1h-30m', '5s!']) {
    it(`returns undefined for ${JSON.stringify(text)}`, () => assert.equal(parseDuration(text), undefined));
  }
});

describe('parseSize', () => {
  for (const [text, bytes] of [
    ['100', 100],
    ['10MB', 10_000_000],
    ['10mb', 10_000_000],
    ['10 MB', 10_000_000],
    ['512KiB', 524_288],
    ['1GiB', 1_073_741_824],
    ['1.5kb', 1_500],
  ] as const) {
    it(`reads "${text}" as ${bytes} bytes`, () => assert.equal(parseSize(text), bytes));
  }

  for (const text of ['', 'ten', '10XB', '-1MB', 'MB']) {
    it(`returns undefined for ${JSON.stringify(text)}`, () => assert.equal(parseSize(text), undefined));
  }
});

describe('formatUptime', () => {
  for (const [ms, text] of [
    [0, '0s'],
    [499, '0s'],
    [1_499, '1s'],
    [1_500, '2s'],
    [45_000, '45s'],
    [65_000, '1m5s'],
    [3_600_000, '1h0m0s'],
    [8_130_000, '2h15m30s'],
    [100 * 3_600_000, '100h0m0s'],
  ] as const) {
    it(`prints ${ms} ms as "${text}" like a Go duration rounded to the second`, () => assert.equal(formatUptime(ms), text));
  }
});
