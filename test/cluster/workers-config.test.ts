import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { resolveWorkers } from '../../src/cluster/index.js';
import { ConfigError } from '../../src/config/index.js';
import { parseConfig } from '../../src/config/load.js';

const ROUTE = 'routes:\n  - path: /\n    backend: "http://127.0.0.1:9001"\n';

test('server.workers defaults to 1: a single process', () => {
  assert.equal(parseConfig(ROUTE).server.workers, 1);
});

test('server.workers takes a count or "auto", which means the available cores', () => {
  assert.equal(parseConfig(`server:\n  workers: 4\n${ROUTE}`).server.workers, 4);
  const auto = parseConfig(`server:\n  workers: auto\n${ROUTE}`).server.workers;
  assert.equal(auto, 'auto');
  assert.equal(resolveWorkers(auto), availableParallelism());
  assert.equal(resolveWorkers(3), 3);
});

test('a bad server.workers is refused naming the key and its place in the file', () => {
  for (const bad of ['0', '1.5', '"many"', '-2']) {
    assert.throws(
      () => parseConfig(`server:\n  workers: ${bad}\n${ROUTE}`, 'gw.yml'),
      (err: unknown) => err instanceof ConfigError && /server\.workers/.test(err.message) && /gw\.yml:2:/.test(err.message) && /1 to 256, or "auto"/.test(err.message),
      bad,
    );
  }
});
