import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { summarize } from '../../src/config/index.js';
import { load } from './helpers.js';

const FULL = `server:
  port: 9090
  host: 127.0.0.1
routes:
  - path: "/api/v1"
    backends: ["http://127.0.0.1:9001", {url: "http://127.0.0.1:9002", health_path: "/hz"}]
    strategy: random
    strip_prefix: true
    timeout: 2s
  - path: "/public"
    backend: "http://127.0.0.1:9003"
    public: true
ratelimit:
  max_tokens: 20
  refill_rate: 2.5
  scope: route
auth:
  api_keys: ["secret-key-1", {id: team-a, key: "secret-key-2"}]
  jwt_secret: "super-secret-jwt-signing-key"
healthcheck:
  interval: 5s
  path: /healthz
cluster:
  redis_url: "redis://user:redis-password@redis.internal:6379/0"
admin:
  token: "admin-token-0123456789abcdef"
processes:
  - id: b1
    command: ./bin/microgate-testbackend
    args: ["--port", "9001"]
    port: 9001
    route: /api/v1
    auto_start: true
`;

describe('summarize', () => {
  const text = summarize(load(FULL));
  const lines = text.split('\n');

  it('starts with the listen address', () => {
    assert.match(lines[0]!, /^listen 127\.0\.0\.1:9090 /);
  });

  it('lists each route with its backends and flags', () => {
    assert.ok(lines.includes('route /api/v1 -> http://127.0.0.1:9001, http://127.0.0.1:9002 (random, strip_prefix, timeout 2000ms)'), text);
    assert.ok(lines.includes('route /public -> http://127.0.0.1:9003 (round-robin, public)'), text);
  });

  it('describes auth, rate limit, breaker, health checks and processes', () => {
    assert.ok(lines.includes('auth: 2 API key(s), JWT HMAC secret'), text);
    assert.ok(lines.includes('rate limit: 20 tokens, +2.5/s per client (route)'), text);
    assert.match(text, /circuit breaker: per backend, opens after 5 consecutive failures, half-open after 30000ms/);
    assert.ok(lines.includes('health checks: every 5000ms on /healthz'), text);
    assert.ok(lines.includes('process b1: ./bin/microgate-testbackend --port 9001 (auto start)'), text);
  });

  it('never prints a secret: API keys, the JWT secret, the admin token or the Redis password', () => {
    for (const secret of ['secret-key-1', 'secret-key-2', 'super-secret-jwt-signing-key', 'admin-token-0123456789abcdef', 'redis-password']) {
      assert.ok(!text.includes(secret), `summary leaks ${secret}:\n${text}`);
    }
    assert.match(text, /cluster store: redis:\/\/\*\*\*@redis\.internal:6379\/0/);
  });

  it('says when auth and rate limiting are off and the store is in memory', () => {
    const minimal = summarize(load(''));
    assert.match(minimal, /^listen 0\.0\.0\.0:8080 /);
    assert.match(minimal, /auth: off/);
    assert.match(minimal, /rate limit: off/);
    assert.match(minimal, /cluster store: memory/);
    assert.doesNotMatch(minimal, /^note:/m);
  });

  it('no longer calls adaptive keys "not built yet"', () => {
    const text = summarize(load('analytics:\n  enabled: true\nweighted_lb:\n  enabled: true\nadaptive_rate_limit:\n  enabled: true\n'));
    assert.doesNotMatch(text, /not built yet/);
    assert.match(text, /weighted balancing: every route/);
  });
});

describe('summary of the adaptive layer', () => {
  const ADAPTIVE = `routes:
  - path: /one
    backend: http://127.0.0.1:9001
  - path: /two
    backends: [http://127.0.0.1:9002, http://127.0.0.1:9003]
analytics:
  enabled: true
adaptive_rate_limit:
  enabled: true
  multiplier: 2
  shadow: true
weighted_lb:
  enabled: true
`;

  it('says what the adaptive limit, weighted balancing and learned breakers will do', async () => {
    const text = summarize(load(ADAPTIVE));
    assert.match(text, /adaptive limit: per route, clamp\(learned rate × 2, 10, 10000\) requests\/min .* SHADOW mode/);
    assert.match(text, /weighted balancing: every route, weight = \(1 − error rate\) \/ latency²/);
    assert.match(text, /circuit breaker \(learned\): .* clamp\(5 × its baseline, 5%, 50%\)/);
    assert.doesNotMatch(text, /not built yet/);
  });

  it('says that weighted balancing on a route with one backend is allowed but a no-op', async () => {
    const text = summarize(load(ADAPTIVE));
    assert.match(text, /note: route \/one has one backend: weighted balancing is allowed there, but a no-op/);
    assert.doesNotMatch(text, /route \/two has one backend/);
  });
});
