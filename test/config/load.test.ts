/**
 * parseConfig / loadConfig: strict validation with positions, every problem at once, `${ENV}`
 * substitution, defaults, and a deeply frozen result.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { ConfigError, formatProblem, loadConfig } from '../../src/config/index.js';
import { parseConfig } from '../../src/config/load.js';
import { FILE, load, ONE_ROUTE, onlyProblem, problemsOf } from './helpers.js';

const LINE_FORMAT = /^gw\.yml:\d+:\d+ \S+: .+$/;

describe('problem reports', () => {
  it('reads logging.flush_interval as a duration (default 25 ms) and refuses one outside 1ms-60s, naming the key and its line', () => {
    assert.equal(load(ONE_ROUTE).logging.flush_interval, 25);
    assert.equal(load(`${ONE_ROUTE}logging:\n  flush_interval: 250ms\n`).logging.flush_interval, 250);
    for (const bad of ['2m', '0.5ms']) {
      const p = onlyProblem(`${ONE_ROUTE}logging:\n  flush_interval: ${bad}\n`);
      assert.equal(p.key, 'logging.flush_interval');
      assert.equal(p.line, 5);
      assert.match(p.message, /between 1ms and 60s/);
    }
  });

  it('refuses a cluster.redis_url the Redis client could not use, naming the key and its line and never quoting the password', () => {
    for (const [url, why] of [
      ['redis://cache.internal/abc', /database number/],
      ['redis://gw:%E0%A4%A@cache.internal', /not valid percent-encoding/],
      ['redis://:6379', /no host|not a URL/],
      ['http://cache.internal:6379', /must be a redis:\/\/ or rediss:\/\/ URL/],
    ] as const) {
      const p = onlyProblem(`${ONE_ROUTE}cluster:\n  redis_url: "${url}"\n`);
      assert.equal(p.key, 'cluster.redis_url');
      assert.equal(p.line, 5);
      assert.match(p.message, why);
      assert.doesNotMatch(p.message, /%E0/);
    }
    assert.equal(load(`${ONE_ROUTE}cluster:\n  redis_url: "rediss://gw:s3cret@cache.internal:6380/2"\n`).cluster.redis_url, 'rediss://gw:s3cret@cache.internal:6380/2');
  });

  it('names an unknown key with its full path and the line:col of the key itself', () => {
    const p = onlyProblem(`server:\n  port: 8080\n  prot: 9090\n`);
    assert.equal(p.file, FILE);
    assert.equal(p.key, 'server.prot');
    assert.equal(p.line, 3);
    assert.equal(p.col, 3);
    assert.match(p.message, /unknown key/);
  });

  it('rejects an unknown top-level section', () => {
    const p = onlyProblem(`${ONE_ROUTE}healthchecks:\n  interval: 10\n`);
    assert.equal(p.key, 'healthchecks');
    assert.equal(p.line, 4);
    assert.equal(p.col, 1);
  });

  it('rejects an unknown key inside a route list item, pointing at that item', () => {
    const p = onlyProblem(`routes:\n  - path: "/a"\n    backend: "http://x"\n  - path: "/b"\n    backend: "http://y"\n    stratgy: random\n`);
    assert.equal(p.key, 'routes[1].stratgy');
    assert.deepEqual([p.line, p.col], [6, 5]);
  });

  it('reports several mistakes at once, one line each, sorted by line', () => {
    const text = [
      'healthcheck:', //                       1
      '  interval: 0', //                      2  zero interval
      'server:', //                            3
      '  port: "abc"', //                      4  wrong type
      '  bogus: 1', //                         5  unknown key
      'routes:', //                            6
      '  - path: "api"', //                    7  no leading slash
      '    backend: "ftp://files.example"', // 8  not http
      'ratelimit:', //                         9
      '  max_tokens: 0', //                    10 zero-capacity bucket
      '  refill_rate: 1', //                   11
      '',
    ].join('\n');
    const { problems, message } = problemsOf(text);
    assert.deepEqual(
      problems.map((p) => [p.line, p.key]),
      [
        [2, 'healthcheck.interval'],
        [4, 'server.port'],
        [5, 'server.bogus'],
        [7, 'routes[0].path'],
        [8, 'routes[0].backend'],
        [10, 'ratelimit.max_tokens'],
      ],
    );
    const lines = message.split('\n');
    assert.equal(lines.length, 6);
    for (const line of lines) assert.match(line, LINE_FORMAT);
  });

  it('formats each problem as "file:line:col key: message"', () => {
    const { message } = problemsOf(`server:\n  port: "abc"\n`);
    assert.match(message, /^gw\.yml:2:9 server\.port: .*number/);
    assert.equal(formatProblem({ file: 'a.yml', line: 3, col: 7, key: 'x.y', message: 'bad' }), 'a.yml:3:7 x.y: bad');
    assert.equal(formatProblem({ file: 'a.yml', line: 1, col: 1, key: '', message: 'bad' }), 'a.yml:1:1 (top level): bad');
  });

  it('says a required key is required, at the object that lacks it', () => {
    const p = onlyProblem(`routes:\n  - backend: "http://x"\n`);
    assert.equal(p.key, 'routes[0].path');
    assert.equal(p.line, 2);
    assert.match(p.message, /required/);
  });

  it('rejects a value of the wrong type, such as a port out of range', () => {
    const p = onlyProblem(`server:\n  port: 70000\n`);
    assert.equal(p.key, 'server.port');
    assert.match(p.message, /65535/);
  });

  it('rejects a strategy the balancer does not know instead of silently using round-robin', () => {
    const p = onlyProblem(`routes:\n  - path: "/a"\n    backend: "http://x"\n    strategy: least-conn\n`);
    assert.equal(p.key, 'routes[0].strategy');
    assert.equal(p.line, 4);
  });
});

describe('every problem at once, including cross-entry checks', () => {
  // The checks that compare entries (gateway-owned paths, duplicate routes, process routes,
  // duplicate process ids) must not wait until every type error elsewhere is fixed.
  it('reports a gateway-owned route path together with a wrong type elsewhere', () => {
    const { problems } = problemsOf(`server:\n  port: "abc"\nroutes:\n  - path: "/health"\n    backend: "http://x"\n`);
    assert.deepEqual(
      problems.map((p) => [p.line, p.key]),
      [
        [2, 'server.port'],
        [4, 'routes[0].path'],
      ],
    );
  });

  it('reports a duplicate route path together with a zero duration elsewhere', () => {
    const { problems } = problemsOf(`healthcheck:\n  interval: 0\nroutes:\n  - path: "/a"\n    backend: "http://x"\n  - path: "/a"\n    backend: "http://y"\n`);
    assert.deepEqual(
      problems.map((p) => [p.line, p.key]),
      [
        [2, 'healthcheck.interval'],
        [6, 'routes[1].path'],
      ],
    );
  });

  it('reports a process route that does not exist together with a bad stop_timeout', () => {
    const { problems } = problemsOf(`${ONE_ROUTE}processes:\n  - id: a\n    command: x\n    route: "/nope"\n    stop_timeout: 0\n`);
    assert.deepEqual(
      problems.map((p) => p.key),
      ['processes[0].route', 'processes[0].stop_timeout'],
    );
  });

  it('reports a duplicate process id together with a zero-capacity bucket', () => {
    const { problems } = problemsOf(`ratelimit:\n  max_tokens: 0\n  refill_rate: 1\nprocesses:\n  - {id: a, command: x}\n  - {id: a, command: y}\n`);
    assert.deepEqual(
      problems.map((p) => p.key),
      ['ratelimit.max_tokens', 'processes[1].id'],
    );
  });
});

describe('a very long list of problems', () => {
  it('lists the first 100 problems and then says that more were left out', () => {
    const { problems, message } = problemsOf(Array.from({ length: 150 }, (_, i) => `unknown_${i}: 1`).join('\n') + '\n');
    const located = problems.filter((p) => p.line > 0);
    assert.equal(located.length, 100);
    assert.equal(located[0]!.key, 'unknown_0');
    assert.equal(located[99]!.key, 'unknown_99');
    assert.match(message.split('\n').at(-1)!, /more problems/, 'the reader must learn that the list is cut');
  });

  it('says so too when the problems come from many separate mistakes', () => {
    const routes = Array.from({ length: 120 }, (_, i) => `  - path: "r${i}"\n    backend: "http://x"\n`).join('');
    const { problems, message } = problemsOf(`routes:\n${routes}`);
    assert.equal(problems.filter((p) => p.line > 0).length, 100);
    assert.match(message.split('\n').at(-1)!, /more problems/);
  });
});

describe('adaptive_rate_limit limits', () => {
  it('rejects min_limit above max_limit', () => {
    const p = onlyProblem(`adaptive_rate_limit:\n  min_limit: 50\n  max_limit: 20\n`);
    assert.equal(p.key, 'adaptive_rate_limit.min_limit');
    assert.match(p.message, /max_limit/);
  });

  it('compares a given min_limit with the default max_limit (10000)', () => {
    assert.equal(onlyProblem(`adaptive_rate_limit:\n  min_limit: 20000\n`).key, 'adaptive_rate_limit.min_limit');
  });

  it('compares a given max_limit with the default min_limit (10)', () => {
    const p = onlyProblem(`adaptive_rate_limit:\n  max_limit: 5\n`);
    assert.match(p.key, /^adaptive_rate_limit\.(min|max)_limit$/);
  });
});

describe('YAML syntax errors', () => {
  it('are ConfigErrors with the line of the mistake', () => {
    const { problems, message } = problemsOf(`server:\n  port: 8080\n routes: [\n`);
    assert.ok(problems.length >= 1);
    assert.ok(problems.every((p) => p.line >= 2), message);
    assert.match(message, /^gw\.yml:\d+:\d+ /);
  });

  it('report a tab used for indentation at its line', () => {
    const p = problemsOf(`server:\n\tport: 1\n`).problems[0]!;
    assert.equal(p.line, 2);
    assert.match(p.message, /[Tt]ab/);
  });

  it('report a duplicated key at the line of the second one', () => {
    const p = onlyProblem(`server:\n  port: 1\n  port: 2\n`);
    assert.equal(p.line, 3);
    assert.match(p.message, /unique/);
  });

  it('reject a file with several YAML documents', () => {
    const { problems } = problemsOf(`server: {port: 1}\n---\nserver: {port: 2}\n`);
    assert.ok(problems[0]!.line >= 1);
  });
});

describe('defaults', () => {
  it('an empty file is a valid config with every default', () => {
    const cfg = load('');
    assert.equal(cfg.server.port, 8080);
    assert.deepEqual(cfg.routes, []);
    assert.equal(cfg.ratelimit, undefined);
    assert.equal(cfg.auth, undefined);
  });

  it('a missing healthcheck.interval gets the 10 s default', () => {
    const cfg = load(`healthcheck:\n  timeout: 1s\n`);
    assert.equal(cfg.healthcheck.interval, 10_000);
    assert.equal(cfg.healthcheck.timeout, 1000);
    assert.equal(load('').healthcheck.interval, 10_000);
  });

  it('fills the health, breaker and process defaults', () => {
    const cfg = load(`${ONE_ROUTE}processes:\n  - id: p\n    command: ./run\n`);
    assert.deepEqual(
      { ...cfg.healthcheck },
      { interval: 10_000, timeout: 2_000, path: '/', healthy_threshold: 2, unhealthy_threshold: 2 },
    );
    assert.deepEqual({ ...cfg.circuitbreaker }, { threshold: 5, timeout: 30_000, half_open_requests: 1 });
    const p = cfg.processes[0]!;
    assert.deepEqual([p.args, p.auto_start, p.restart, p.stop_timeout], [[], false, 'never', 5_000]);
  });
});

describe('health check interval', () => {
  for (const value of ['0', '-5', '"0s"']) {
    it(`rejects interval ${value} with a clear message instead of panicking later`, () => {
      const p = onlyProblem(`healthcheck:\n  interval: ${value}\n`);
      assert.equal(p.key, 'healthcheck.interval');
      assert.equal(p.line, 2);
      assert.match(p.message, /greater than zero/);
    });
  }

  it('rejects an interval below 100 ms', () => {
    assert.match(onlyProblem(`healthcheck:\n  interval: 50ms\n`).message, /at least 100ms/);
  });

  it('accepts a duration string and a number of seconds', () => {
    assert.equal(load(`healthcheck:\n  interval: "5m"\n`).healthcheck.interval, 300_000);
    assert.equal(load(`healthcheck:\n  interval: 2.5\n`).healthcheck.interval, 2_500);
    assert.equal(load(`healthcheck:\n  interval: 1m30s\n`).healthcheck.interval, 90_000);
  });

  it('rejects a word that is not a duration, with an example in the message', () => {
    assert.match(onlyProblem(`healthcheck:\n  interval: soon\n`).message, /not a duration.*"30s"/);
  });
});

describe('rate limit buckets', () => {
  it('rejects max_tokens: 0 because a zero-capacity bucket denies every request', () => {
    const p = onlyProblem(`ratelimit:\n  max_tokens: 0\n  refill_rate: 1\n`);
    assert.equal(p.key, 'ratelimit.max_tokens');
    assert.equal(p.line, 2);
    assert.match(p.message, /zero-capacity/);
  });

  it('rejects refill_rate: 0 because a client would be locked out for good', () => {
    const p = onlyProblem(`ratelimit:\n  max_tokens: 10\n  refill_rate: 0\n`);
    assert.equal(p.key, 'ratelimit.refill_rate');
    assert.match(p.message, /greater than zero/);
  });

  it('rejects a zero-capacity bucket on a route too', () => {
    const p = onlyProblem(`ratelimit:\n  max_tokens: 5\n  refill_rate: 1\nroutes:\n  - path: "/a"\n    backend: "http://x"\n    ratelimit:\n      max_tokens: 0\n      refill_rate: 1\n`);
    assert.equal(p.key, 'routes[0].ratelimit.max_tokens');
    assert.equal(p.line, 8);
  });

  it('accepts ratelimit: false on a route to switch it off', () => {
    assert.equal(load(`routes:\n  - path: "/a"\n    backend: "http://x"\n    ratelimit: false\n`).routes[0]!.ratelimit, false);
  });
});

describe('${ENV} substitution', () => {
  it('replaces ${NAME} with the variable', () => {
    const cfg = load(`auth:\n  jwt_secret: "\${JWT}"\n`, { JWT: 'a-secret-of-at-least-16-bytes' });
    assert.equal(cfg.auth?.jwt_secret, 'a-secret-of-at-least-16-bytes');
  });

  it('replaces a reference inside a longer string', () => {
    const cfg = load(`routes:\n  - path: "/a"\n    backend: "http://\${HOST}:9001"\n`, { HOST: 'svc.internal' });
    assert.equal(cfg.routes[0]!.backend, 'http://svc.internal:9001');
  });

  it('uses the default of ${NAME:-default} when the variable is unset or empty', () => {
    const text = `auth:\n  jwt_secret: "\${JWT:-fallback-secret-0123456789}"\n`;
    assert.equal(load(text, {}).auth?.jwt_secret, 'fallback-secret-0123456789');
    assert.equal(load(text, { JWT: '' }).auth?.jwt_secret, 'fallback-secret-0123456789');
    assert.equal(load(text, { JWT: 'set-in-the-environment-123' }).auth?.jwt_secret, 'set-in-the-environment-123');
  });

  it('allows an empty default', () => {
    const cfg = load(`server:\n  host: "127.0.0.\${LAST:-}1"\n`);
    assert.equal(cfg.server.host, '127.0.0.1');
  });

  it('keeps $${ as a literal "${"', () => {
    const cfg = load(`auth:\n  api_keys: ["$\${NOT_A_VAR}-literal"]\n`, { NOT_A_VAR: 'oops' });
    assert.deepEqual(cfg.auth?.api_keys, ['${NOT_A_VAR}-literal']);
  });

  it('does not expand references that come from a variable value', () => {
    const cfg = load(`auth:\n  jwt_secret: "\${A}"\n`, { A: '${B}-0123456789abcdef', B: 'injected' });
    assert.equal(cfg.auth?.jwt_secret, '${B}-0123456789abcdef');
  });

  it('ignores references in comments', () => {
    assert.doesNotThrow(() => load(`# jwt_secret: "\${UNSET_IN_A_COMMENT}"\n${ONE_ROUTE}`));
  });

  it('reports a missing variable as an error naming the key, the variable and the line', () => {
    const p = onlyProblem(`${ONE_ROUTE}auth:\n  jwt_secret: "\${MISSING_SECRET}"\n`);
    assert.equal(p.key, 'auth.jwt_secret');
    assert.equal(p.line, 5);
    assert.match(p.message, /MISSING_SECRET/);
    assert.match(p.message, /not set/);
  });

  it('reports every missing variable once, at its exact key, without also complaining about the emptied value', () => {
    // A list item is named with its index (auth.api_keys[0]), like every other problem, and the
    // emptied value must not add a second, misleading "at least 8 characters" problem.
    const { problems } = problemsOf(`auth:\n  jwt_secret: "\${NO_SECRET}"\n  api_keys:\n    - "\${NO_KEY}"\n`);
    assert.deepEqual(
      problems.map((p) => [p.line, p.key]),
      [
        [2, 'auth.jwt_secret'],
        [4, 'auth.api_keys[0]'],
      ],
    );
    assert.ok(problems.every((p) => /not set/.test(p.message)));
  });

  it('sorts a missing variable among schema problems by line', () => {
    const { problems } = problemsOf(`server:\n  prot: 1\nauth:\n  jwt_secret: "\${NOPE}"\nhealthcheck:\n  interval: 0\n`);
    assert.deepEqual(
      problems.map((p) => p.line),
      [2, 4, 6],
    );
  });
});

describe('auth', () => {
  it('rejects a JWT secret shorter than 16 bytes', () => {
    const p = onlyProblem(`auth:\n  jwt_secret: "short-secret"\n`);
    assert.equal(p.key, 'auth.jwt_secret');
    assert.equal(p.line, 2);
    assert.match(p.message, /16 bytes/);
  });

  it('rejects an empty JWT secret', () => {
    assert.equal(onlyProblem(`auth:\n  jwt_secret: ""\n`).key, 'auth.jwt_secret');
  });

  it('accepts a 16-byte JWT secret', () => {
    assert.equal(load(`auth:\n  jwt_secret: "0123456789abcdef"\n`).auth?.jwt_secret, '0123456789abcdef');
  });

  it('rejects duplicate and too-short API keys', () => {
    const { problems } = problemsOf(`auth:\n  api_keys: ["key-abc123", "key-abc123", "short"]\n`);
    assert.equal(problems.length, 2);
    assert.ok(problems.some((p) => /duplicate/.test(p.message)));
    assert.ok(problems.some((p) => p.key === 'auth.api_keys[2]' && /8 characters/.test(p.message)));
  });
});

describe('routes', () => {
  it('rejects a duplicate route path, naming the first one', () => {
    const p = onlyProblem(`routes:\n  - path: "/a"\n    backend: "http://x"\n  - path: "/a"\n    backend: "http://y"\n`);
    assert.equal(p.key, 'routes[1].path');
    assert.equal(p.line, 4);
    assert.match(p.message, /duplicate.*routes\[0\]/);
  });

  it('treats "/a/" as a duplicate of "/a"', () => {
    assert.equal(onlyProblem(`routes:\n  - path: "/a"\n    backend: "http://x"\n  - path: "/a/"\n    backend: "http://y"\n`).key, 'routes[1].path');
  });

  for (const path of ['/health', '/metrics', '/analytics', '/analytics/routes', '/dashboard', '/dashboard/x', '/dashboard/api/']) {
    it(`rejects the route path ${path}, which the gateway answers itself`, () => {
      const p = onlyProblem(`routes:\n  - path: "${path}"\n    backend: "http://x"\n`);
      assert.equal(p.key, 'routes[0].path');
      assert.match(p.message, /answered by the gateway itself/);
    });
  }

  it('accepts paths that only look like admin paths', () => {
    const cfg = load(`routes:\n  - path: "/healthz"\n    backend: "http://x"\n  - path: "/dashboards"\n    backend: "http://x"\n  - path: "/api/health"\n    backend: "http://x"\n`);
    assert.equal(cfg.routes.length, 3);
  });

  it('rejects a path without a leading slash, with "..", or with a query', () => {
    const { problems } = problemsOf(
      `routes:\n  - path: "api"\n    backend: "http://x"\n  - path: "/a/../b"\n    backend: "http://x"\n  - path: "/c?x=1"\n    backend: "http://x"\n`,
    );
    assert.deepEqual(
      problems.map((p) => p.key),
      ['routes[0].path', 'routes[1].path', 'routes[2].path'],
    );
  });

  it('requires a backend or a non-empty backends list, and not both', () => {
    assert.match(onlyProblem(`routes:\n  - path: "/a"\n`).message, /needs "backend"/);
    assert.match(onlyProblem(`routes:\n  - path: "/a"\n    backends: []\n`).message, /needs "backend"/);
    assert.match(onlyProblem(`routes:\n  - path: "/a"\n    backend: "http://x"\n    backends: ["http://y"]\n`).message, /not both/);
  });

  for (const [label, url] of [
    ['an ftp:// URL', 'ftp://files.example:21'],
    ['a file:// URL', 'file:///etc/passwd'],
    ['a URL with user:password', 'http://user:pass@backend:9001'],
    ['a URL with a user name only', 'http://user@backend:9001'],
    ['a host:port without a scheme', 'localhost:9001'],
    ['a URL without a host', 'http://'],
    ['a bare word', 'backend'],
  ] as const) {
    it(`rejects ${label} as a backend`, () => {
      const p = onlyProblem(`routes:\n  - path: "/a"\n    backends:\n      - "${url}"\n`);
      assert.equal(p.key, 'routes[0].backends[0]');
      assert.equal(p.line, 4);
      assert.match(p.message, /http:\/\/ or https:\/\//);
    });
  }

  it('accepts http and https backends, with a path, and the object form with a health_path', () => {
    const cfg = load(
      `routes:\n  - path: "/a"\n    backends:\n      - "https://api.example.com/base"\n      - {url: "http://127.0.0.1:9001", health_path: "/healthz"}\n`,
    );
    assert.deepEqual(cfg.routes[0]!.backends, ['https://api.example.com/base', { url: 'http://127.0.0.1:9001', health_path: '/healthz' }]);
  });

  it('rejects trusted_proxies entries that are not IPs or CIDRs', () => {
    const { problems } = problemsOf(`server:\n  trusted_proxies: ["10.0.0.0/8", "::1", "10.0.0.0/33", "proxy.local"]\n`);
    assert.deepEqual(
      problems.map((p) => p.key),
      ['server.trusted_proxies[2]', 'server.trusted_proxies[3]'],
    );
  });
});

describe('processes', () => {
  it('rejects a process route that no route has', () => {
    const p = onlyProblem(`${ONE_ROUTE}processes:\n  - id: p1\n    command: ./bin/x\n    route: "/nope"\n`);
    assert.equal(p.key, 'processes[0].route');
    assert.equal(p.line, 7);
    assert.match(p.message, /no route with path "\/nope"/);
  });

  it('accepts a process route that matches a route up to a trailing slash', () => {
    const cfg = load(`${ONE_ROUTE}processes:\n  - id: p1\n    command: ./bin/x\n    route: "/api/"\n`);
    assert.equal(cfg.processes[0]!.route, '/api/');
  });

  it('rejects a duplicate process id', () => {
    const p = onlyProblem(`processes:\n  - {id: a, command: x}\n  - {id: a, command: y}\n`);
    assert.equal(p.key, 'processes[1].id');
    assert.equal(p.line, 3);
  });

  it('rejects an id with characters outside [A-Za-z0-9._-]', () => {
    assert.equal(onlyProblem(`processes:\n  - {id: "a b/c", command: x}\n`).key, 'processes[0].id');
  });

  it('rejects a restart policy it does not know', () => {
    assert.equal(onlyProblem(`processes:\n  - {id: a, command: x, restart: always}\n`).key, 'processes[0].restart');
  });
});

describe('the result', () => {
  const text = `${ONE_ROUTE}processes:\n  - id: p1\n    command: ./bin/x\n    args: ["--port", "1"]\n    env: {A: "1"}\n`;

  it('is deeply frozen: sections, lists, list items and records', () => {
    const cfg = load(text);
    for (const value of [cfg, cfg.server, cfg.routes, cfg.routes[0], cfg.healthcheck, cfg.processes, cfg.processes[0], cfg.processes[0]!.args, cfg.processes[0]!.env, cfg.server.trusted_proxies]) {
      assert.ok(Object.isFrozen(value), `not frozen: ${JSON.stringify(value)}`);
    }
  });

  it('throws when code tries to change it (ESM is strict mode)', () => {
    const cfg = load(text);
    assert.throws(() => {
      (cfg.server as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (cfg.routes as unknown as unknown[]).push({});
    }, TypeError);
    assert.throws(() => {
      (cfg.processes[0]!.args as string[])[0] = '--evil';
    }, TypeError);
    assert.equal(cfg.server.port, 8080);
  });

  it('shares no state between two loads of the same text', () => {
    const a = load(text);
    const b = load(text);
    assert.notEqual(a.routes, b.routes);
    assert.deepEqual(a, b);
  });
});

describe('loadConfig', () => {
  test('reads and validates a file, naming it in problems', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const good = join(dir, 'good.yml');
    const bad = join(dir, 'bad.yml');
    await writeFile(good, ONE_ROUTE);
    await writeFile(bad, `server:\n  prot: 1\n`);
    assert.equal((await loadConfig(good, {})).routes[0]!.path, '/api');
    await assert.rejects(loadConfig(bad, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, `${bad}:2:3 server.prot: unknown key (check the spelling; see docs/configuration.md)`);
      return true;
    });
  });

  test('reports a missing file as a ConfigError that says so', async () => {
    await assert.rejects(loadConfig('/nonexistent/dir/config.yml', {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 1);
      assert.match(err.message, /^\/nonexistent\/dir\/config\.yml:0:0 .*file not found/);
      return true;
    });
  });

  test('reports a directory given as the config file as a ConfigError that says so', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await assert.rejects(loadConfig(dir, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 1);
      assert.equal(err.message, `${dir}:0:0 (top level): cannot read config: it is a directory`);
      return true;
    });
  });

  test('uses process.env by default for substitution', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'env.yml');
    await writeFile(file, `auth:\n  jwt_secret: "\${MG_TEST_SECRET_FROM_PROCESS_ENV}"\n`);
    process.env.MG_TEST_SECRET_FROM_PROCESS_ENV = 'process-env-secret-0123456789';
    t.after(() => delete process.env.MG_TEST_SECRET_FROM_PROCESS_ENV);
    assert.equal((await loadConfig(file)).auth?.jwt_secret, 'process-env-secret-0123456789');
  });

  test('parseConfig defaults the file name to config.yml in messages', () => {
    assert.throws(
      () => parseConfig('server:\n  prot: 1\n', undefined, {}),
      (err: unknown) => err instanceof ConfigError && err.problems[0]!.file === 'config.yml' && err.message.startsWith('config.yml:2:3 '),
    );
  });
});

describe('typed environment values', () => {
  it('an unquoted ${PORT:-8080} becomes a number, a quoted one stays a string', () => {
    const cfg = parseConfig(`server:\n  port: \${MG_PORT:-8080}\n  host: "\${MG_HOST:-127.0.0.1}"\ndashboard:\n  enabled: \${MG_DASH:-false}\n`, 'env.yml', { MG_PORT: '9090' });
    assert.equal(cfg.server.port, 9090);
    assert.equal(cfg.server.host, '127.0.0.1');
    assert.equal(cfg.dashboard.enabled, false);
  });
});
