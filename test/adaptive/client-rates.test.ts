import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ClientRates } from '../../src/adaptive/index.js';
import { nextGapMs, seededRandom } from './sim.js';

describe('client rates', () => {
  it('estimates a steady client’s rate within 10%', () => {
    const rates = new ClientRates({ tauMs: 30_000 });
    const random = seededRandom(9);
    let t = 0;
    const seen: number[] = [];
    while (t < 600_000) {
      t += nextGapMs(random, 120);
      const r = rates.observe('c', t);
      if (t > 120_000) seen.push(r);
    }
    const mean = seen.reduce((a, b) => a + b, 0) / seen.length;
    assert.ok(Math.abs(mean - 120) < 12, `mean estimate ${mean}`);
  });

  it('starts a new client at 0 and lets an idle client’s rate decay', () => {
    const rates = new ClientRates({ tauMs: 10_000 });
    assert.equal(rates.observe('c', 0), 0);
    for (let i = 1; i <= 100; i++) rates.observe('c', i * 100);
    const busy = rates.rate('c', 10_000);
    assert.ok(busy > 300, `${busy}`);
    assert.ok(rates.rate('c', 40_000) < busy * 0.06);
    assert.equal(rates.rate('unknown', 0), 0);
  });

  it('computes the max-min fair share: light clients keep their rate, heavy ones split the rest', () => {
    // The slow estimate's arithmetic (requests put at one instant would read as a flood to the fast one).
    const rates = new ClientRates({ tauMs: 60_000, fast: false });
    // Build exact rates: s = rate × τ / 60 000 requests at one instant.
    const put = (key: string, perMin: number) => {
      for (let i = 0; i < perMin; i++) rates.observe(key, 0);
    };
    put('a', 10);
    put('b', 20);
    put('c', 300);
    put('d', 600);
    // 10 + 20 + 2f = 130 → f = 50.
    const fs = rates.fairShare(130, 0);
    assert.ok(Math.abs(fs.fairShare - 50) < 1e-9, `${fs.fairShare}`);
    assert.equal(fs.active, 4);
    assert.ok(Math.abs(fs.totalRate - 930) < 1e-9);
    assert.ok(fs.fairShare >= 130 / 4);
    assert.equal(rates.fairShare(1000, 0).fairShare, Infinity);
  });

  it('judges a client that starts flooding by its fast rate within a few dozen requests, and a steady one by its 30 s rate', () => {
    const rates = new ClientRates();
    // A steady client: one request every 250 ms for a minute (240/min).
    let t = 0;
    for (; t < 60_000; t += 250) rates.observe('steady', t);
    const steady = rates.rate('steady', t);
    assert.ok(steady > 180 && steady < 300, `steady ${steady}/min`);
    // A new client sending a request every millisecond (60 000/min): 40 requests in.
    for (let i = 0; i < 40; i++) rates.observe('flood', t + i);
    const flood = rates.rate('flood', t + 40);
    assert.ok(flood >= 1_500, `after 40 requests the flood reads ${flood}/min (the 30 s estimate alone: ~80/min)`);
    assert.ok(rates.rate('steady', t + 40) < 300, 'the steady client is not lifted by it');
  });

  it('is bounded: the least recently seen client makes room', () => {
    const rates = new ClientRates({ maxClients: 3 });
    rates.observe('a', 0);
    rates.observe('b', 1);
    rates.observe('c', 2);
    rates.observe('a', 3);
    rates.observe('d', 4); // evicts b
    assert.equal(rates.size, 3);
    assert.equal(rates.rate('b', 5), 0);
    assert.ok(rates.rate('a', 5) > 0);
    assert.ok(rates.rate('c', 5) > 0);
    assert.ok(rates.rate('d', 5) > 0);
  });

  it('costs at most 150 bytes per tracked client, key string included', (t) => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const n = 50_000;
    const keys = Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    // Typed-array backing stores live outside the JS heap: count them too.
    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    // Anything else allocated meanwhile only adds bytes: the least of three fresh tables is the table's own cost.
    let perClient = Infinity;
    let size = 0;
    for (let round = 0; round < 3; round++) {
      gc();
      const before = used();
      let rates: ClientRates | null = new ClientRates({ maxClients: n });
      for (let i = 0; i < n; i++) rates.observe(keys[i]!, i);
      gc();
      perClient = Math.min(perClient, (used() - before) / n);
      size = rates.size;
      rates = null;
    }
    // The key strings existed before; count them as the table's too, as in production they would be retained only by it.
    const keyBytes = 16 + 16; // a short sequential one-byte string: header + padded payload
    t.diagnostic(`${perClient.toFixed(1)} B/client in the table + ~${keyBytes} B key string`);
    assert.ok(perClient + keyBytes <= 150, `${perClient.toFixed(1)} B/client + ${keyBytes} B key`);
    assert.equal(size, n);
  });
});
