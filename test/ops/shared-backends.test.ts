/**
 * One backend URL named by several routes is one Backend (one pool, one breaker, one health check):
 * routes that disagree on its health_path or connect_timeout are a config error naming both places.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../src/config/index.js';
import { parseConfig } from '../../src/config/load.js';

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'gw.yml');
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('a backend URL shared by routes', () => {
  test('with different route health_path values is an error at the second place, naming the first by file:line:col', () => {
    const yaml = [
      'routes:', //                                   1
      '  - path: /a', //                              2
      '    backend: http://127.0.0.1:9001', //        3
      '    health_path: /healthz', //                 4
      '  - path: /b', //                              5
      '    backend: http://127.0.0.1:9001', //        6
      '    health_path: /ping', //                    7
      '',
    ].join('\n');
    assert.deepEqual(problems(yaml), [
      'gw.yml:7:18 routes[1].health_path: backend http://127.0.0.1:9001 is also named by routes[0] at gw.yml:4:18 (routes[0].health_path) with health_path "/healthz", here "/ping": routes naming one backend URL share its health check, so give them the same health_path',
    ]);
  });

  test('a backend-level health_path against the default is a conflict too, pointing at the backend entry', () => {
    const yaml = ['routes:', '  - path: /a', '    backends: ["http://127.0.0.1:9001"]', '  - path: /b', '    backends:', '      - url: http://127.0.0.1:9001', '        health_path: /ready', ''].join('\n');
    const [p, ...rest] = problems(yaml);
    assert.deepEqual(rest, []);
    assert.match(p!, /^gw\.yml:7:22 routes\[1\]\.backends\[0\]\.health_path: .* at gw\.yml:3:16 \(routes\[0\]\.backends\[0\]\) with health_path "\/", here "\/ready"/);
  });

  test('with different connect_timeout values (after units) is an error naming both places', () => {
    const yaml = ['routes:', '  - path: /a', '    backend: http://127.0.0.1:9001', '    connect_timeout: 2s', '  - path: /b', '    backend: http://127.0.0.1:9001', '    connect_timeout: 3s', ''].join('\n');
    assert.deepEqual(problems(yaml), [
      'gw.yml:7:22 routes[1].connect_timeout: backend http://127.0.0.1:9001 is also named by routes[0] at gw.yml:4:22 (routes[0].connect_timeout) with connect_timeout 2000ms, here 3000ms: routes naming one backend URL share its connection pool, so give them the same connect_timeout',
    ]);
  });

  test('agreeing routes are fine, whatever the spelling: "2s" and 2, default and explicit default', () => {
    const yaml = [
      'server:',
      '  connect_timeout: 4s',
      'healthcheck:',
      '  path: /hc',
      'routes:',
      '  - path: /a',
      '    backend: http://127.0.0.1:9001',
      '    connect_timeout: 2s',
      '  - path: /b',
      '    backend: http://127.0.0.1:9001',
      '    connect_timeout: 2',
      '  - path: /c',
      '    backend: http://127.0.0.1:9002',
      '  - path: /d',
      '    backend: {url: http://127.0.0.1:9002, health_path: /hc}',
      '    connect_timeout: 4000ms',
      '',
    ].join('\n');
    assert.deepEqual(problems(yaml), []);
  });

  test('different URLs never conflict', () => {
    assert.deepEqual(problems('routes:\n  - path: /a\n    backend: http://127.0.0.1:9001\n    health_path: /x\n  - path: /b\n    backend: http://127.0.0.1:9002\n    health_path: /y\n'), []);
  });
});
