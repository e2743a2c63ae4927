import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import type { RateLimitConfig, RouteConfig } from '../../src/config/index.js';
import { GatewayError } from '../../src/errors.js';
import { compose, RequestContext, type CompiledRoute, type Stage } from '../../src/pipeline/index.js';
import { rateLimit, sfString } from '../../src/ratelimit/index.js';
import { MemoryStore, type RateLimitStore, type TakeResult } from '../../src/store/index.js';

function config(over: Partial<RateLimitConfig> = {}): RateLimitConfig {
  return { enabled: true, max_tokens: 10, refill_rate: 1, scope: 'global', idle_ttl: 600_000, max_buckets: 10_000, ...over };
}

function route(prefix: string, ratelimit?: RouteConfig['ratelimit']): CompiledRoute {
  return { prefix, config: { path: prefix, ratelimit } } as unknown as CompiledRoute;
}

function ctxFor(opts: { ip?: string; consumer?: string; route?: CompiledRoute | null } = {}): RequestContext {
  const ctx = new RequestContext({} as IncomingMessage, {} as ServerResponse, 0, 0);
  ctx.clientIp = opts.ip ?? '192.0.2.1';
  ctx.consumer = opts.consumer;
  ctx.route = opts.route === undefined ? route('/api') : opts.route;
  return ctx;
}

interface Outcome {
  passed: boolean;
  error: GatewayError | undefined;
  headers: Record<string, string>;
  ctx: RequestContext;
  /** What the stage returned: a promise only when the store answered asynchronously. */
  returned: unknown;
}

/** Runs the stage in a real compose() chain ending in a stage that marks the request as passed. */
async function run(stage: Stage, ctx: RequestContext): Promise<Outcome> {
  const out: Outcome = { passed: false, error: undefined, headers: {}, ctx, returned: undefined };
  const chain = compose(
    [
      function probe(c) {
        out.returned = stage(c);
        return out.returned as void | Promise<void>;
      },
      function passed() {
        out.passed = true;
      },
    ],
    (_c, err) => {
      out.error = err as GatewayError;
    },
  );
  chain(ctx);
  await new Promise((r) => setImmediate(r));
  const h = ctx.extraHeaders ?? [];
  for (let i = 0; i < h.length; i += 2) out.headers[h[i]!] = h[i + 1]!;
  return out;
}

async function admitted(stage: Stage, make: () => RequestContext, max = 1000): Promise<number> {
  let n = 0;
  while (n < max && (await run(stage, make())).passed) n++;
  return n;
}

function setup(over: Partial<RateLimitConfig> = {}) {
  const clock = new ManualClock();
  const store = new MemoryStore({ clock });
  const rl = rateLimit({ config: config(over), store });
  return { clock, store, ...rl };
}

describe('rateLimit stage', () => {
  it('admits max_tokens requests, then answers 429', async () => {
    const { stage } = setup();
    assert.equal(await admitted(stage, () => ctxFor()), 10);
    const out = await run(stage, ctxFor());
    assert.equal(out.passed, false);
    assert.ok(out.error instanceof GatewayError);
    assert.equal(out.error.code, 'rate_limited');
    assert.equal(out.error.status, 429);
  });

  it('refills in simulated time', async () => {
    const { stage, clock } = setup({ max_tokens: 2, refill_rate: 0.5 });
    assert.equal(await admitted(stage, () => ctxFor()), 2);
    clock.advance(1_999);
    assert.equal((await run(stage, ctxFor())).passed, false);
    clock.advance(1);
    assert.equal((await run(stage, ctxFor())).passed, true);
  });

  it('sends RateLimit-Policy and RateLimit on an admitted response', async () => {
    const { stage } = setup();
    const out = await run(stage, ctxFor());
    assert.equal(out.passed, true);
    assert.deepEqual(out.headers, { 'RateLimit-Policy': '"default";q=10;w=10', RateLimit: '"default";r=9;t=1' });
  });

  it('sends the exact RateLimit value for every (r, t) as they change, repeat and share slots, admitted or refused, per policy', async () => {
    // A slow policy (t up to 3,000 s) and a fast one, drained and refilled at random: r and t take
    // many values and repeat, an r comes with many t's (r=0 admitted, and refused with each
    // Retry-After), and more pairs are seen than a policy keeps. What the store answered for each
    // request says what its field must be.
    const clock = new ManualClock();
    const memory = new MemoryStore({ clock });
    let last: TakeResult | undefined;
    const store: RateLimitStore = Object.assign(Object.create(memory) as RateLimitStore, {
      take: (key: string, capacity: number, refill: number): TakeResult => (last = memory.take(key, capacity, refill) as TakeResult),
    });
    const { stage } = rateLimit({ config: config({ max_tokens: 3, refill_rate: 0.001 }), store });
    const fast = route('/fast', { max_tokens: 500, refill_rate: 3 });
    const seen = new Set<string>();
    let x = 7;
    const rnd = (): number => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 3000; i++) {
      for (const rt of [route('/api'), fast]) {
        const out = await run(stage, ctxFor({ route: rt }));
        const name = rt === fast ? '"/fast"' : '"default"';
        const t = out.passed ? Math.ceil(last!.resetMs / 1000) : Math.max(1, Math.ceil(last!.retryAfterMs / 1000));
        const field = out.passed ? out.headers.RateLimit : (out.error!.headers as Record<string, string>).RateLimit;
        assert.equal(field, `${name};r=${last!.remaining};t=${t}`);
        seen.add(field!);
      }
      clock.advance(rnd() < 0.2 ? Math.floor(rnd() * 400_000) : Math.floor(rnd() * 2_000));
    }
    assert.ok(seen.size > 512, `many distinct values (${seen.size})`);
  });

  it('counts the effective window as the time until the bucket is full again', async () => {
    const { stage } = setup({ max_tokens: 10, refill_rate: 2 });
    await admitted(stage, () => ctxFor(), 6);
    const out = await run(stage, ctxFor());
    assert.equal(out.headers.RateLimit, '"default";r=3;t=4'); // 7 tokens short at 2/s = 3.5 s, rounded up
    assert.equal(out.headers['RateLimit-Policy'], '"default";q=10;w=5');
  });

  it('rejects with Retry-After, the RateLimit fields and the decision numbers', async () => {
    const { stage, clock } = setup({ max_tokens: 3, refill_rate: 0.25 });
    await admitted(stage, () => ctxFor());
    clock.advance(1_000); // 0.25 token: 3 s to go
    const out = await run(stage, ctxFor());
    assert.equal(out.error?.code, 'rate_limited');
    assert.deepEqual(out.error?.headers, {
      'Retry-After': '3',
      'RateLimit-Policy': '"default";q=3;w=12',
      RateLimit: '"default";r=0;t=3',
    });
    assert.equal(out.ctx.decision, 'rate_limited');
    assert.deepEqual(out.ctx.detail, { limit: 3, remaining: 0, retry_after_s: 3 });
    assert.deepEqual(out.headers, {}, 'the fields go on the error only, never twice');
  });

  it('rounds Retry-After up to whole seconds and never below 1', async () => {
    const { stage, clock } = setup({ max_tokens: 1, refill_rate: 1 });
    await run(stage, ctxFor());
    clock.advance(999); // 1 ms to go
    const out = await run(stage, ctxFor());
    assert.equal(out.error?.headers?.['Retry-After'], '1');
    const fast = setup({ max_tokens: 1, refill_rate: 3 });
    await run(fast.stage, ctxFor());
    assert.equal((await run(fast.stage, ctxFor())).error?.headers?.['Retry-After'], '1'); // 334 ms
    const slow = setup({ max_tokens: 1, refill_rate: 0.4 });
    await run(slow.stage, ctxFor());
    assert.equal((await run(slow.stage, ctxFor())).error?.headers?.['Retry-After'], '3'); // 2.5 s
  });

  it('keys anonymous clients by IP', async () => {
    const { stage } = setup({ max_tokens: 2 });
    assert.equal(await admitted(stage, () => ctxFor({ ip: '192.0.2.1' })), 2);
    assert.equal(await admitted(stage, () => ctxFor({ ip: '192.0.2.2' })), 2);
  });

  it('keys authenticated clients by consumer, not by IP', async () => {
    const { stage } = setup({ max_tokens: 2 });
    assert.equal(await admitted(stage, () => ctxFor({ ip: '192.0.2.1', consumer: 'alice' })), 2);
    assert.equal(await admitted(stage, () => ctxFor({ ip: '192.0.2.1', consumer: 'bob' })), 2, 'same IP, other consumer');
    assert.equal(await admitted(stage, () => ctxFor({ ip: '192.0.2.1' })), 2, 'same IP, anonymous');
    assert.equal(await admitted(stage, () => ctxFor({ ip: '198.51.100.7', consumer: 'alice' })), 0, 'alice from elsewhere');
  });

  it('never confuses a consumer named like an IP with that IP', async () => {
    const { stage } = setup({ max_tokens: 1 });
    assert.equal(await admitted(stage, () => ctxFor({ ip: '192.0.2.1' })), 1);
    assert.equal(await admitted(stage, () => ctxFor({ ip: '203.0.113.9', consumer: '192.0.2.1' })), 1);
  });

  it('keeps each client in its own bucket past the keys it remembers, IPv6 clients by /64', async () => {
    const { stage } = setup({ max_tokens: 1 });
    // More distinct clients than a policy remembers bucket keys for (2,048): each still gets exactly its own token.
    for (let i = 0; i < 9000; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      assert.equal((await run(stage, ctxFor({ ip }))).passed, true, ip);
      assert.equal((await run(stage, ctxFor({ ip }))).passed, false, `${ip} again`);
      if (i % 1000 === 0) assert.equal((await run(stage, ctxFor({ ip: '192.0.2.1', consumer: `c${i}` }))).passed, true);
    }
    // The first clients' keys were forgotten and made again: their buckets are the same ones, still empty.
    assert.equal((await run(stage, ctxFor({ ip: '10.0.0.0' }))).passed, false);
    assert.equal((await run(stage, ctxFor({ ip: '192.0.2.9', consumer: 'c0' }))).passed, false);
    assert.equal((await run(stage, ctxFor({ ip: '2001:db8:a:b::1' }))).passed, true);
    assert.equal((await run(stage, ctxFor({ ip: '2001:db8:a:b:ffff::2' }))).passed, false, 'same /64');
    assert.equal((await run(stage, ctxFor({ ip: '2001:db8:a:c::1' }))).passed, true, 'another /64');
  });

  it('shares one bucket across routes with scope global', async () => {
    const { stage } = setup({ max_tokens: 4, scope: 'global' });
    const a = route('/a');
    const b = route('/b');
    assert.equal(await admitted(stage, () => ctxFor({ route: a }), 3), 3);
    assert.equal(await admitted(stage, () => ctxFor({ route: b })), 1);
  });

  it('gives each route its own bucket with scope route', async () => {
    const { stage } = setup({ max_tokens: 4, scope: 'route' });
    const a = route('/a');
    const b = route('/b');
    assert.equal(await admitted(stage, () => ctxFor({ route: a })), 4);
    assert.equal(await admitted(stage, () => ctxFor({ route: b })), 4);
    assert.equal((await run(stage, ctxFor({ route: a }))).passed, false);
  });

  it('applies a route override with its own capacity and bucket', async () => {
    const { stage } = setup({ max_tokens: 10, scope: 'global' });
    const strict = route('/login', { max_tokens: 2, refill_rate: 0.1 });
    const plain = route('/api');
    const first = await run(stage, ctxFor({ route: strict }));
    assert.deepEqual(first.headers, { 'RateLimit-Policy': '"/login";q=2;w=20', RateLimit: '"/login";r=1;t=10' });
    assert.equal(await admitted(stage, () => ctxFor({ route: strict })), 1);
    assert.equal(await admitted(stage, () => ctxFor({ route: plain })), 10, 'the global bucket is untouched');
  });

  it('lets every request through a route with ratelimit: false, without fields', async () => {
    const { stage } = setup({ max_tokens: 1 });
    const open = route('/open', false);
    for (let i = 0; i < 50; i++) {
      const out = await run(stage, ctxFor({ route: open }));
      assert.equal(out.passed, true);
      assert.deepEqual(out.headers, {});
    }
    assert.equal(await admitted(stage, () => ctxFor()), 1, 'other routes still limited');
  });

  it('lets everything through when disabled', async () => {
    const { stage, chargeAuthFailure } = setup({ max_tokens: 1, enabled: false });
    assert.equal(await admitted(stage, () => ctxFor(), 20), 20);
    for (let i = 0; i < 5; i++) assert.equal(chargeAuthFailure(ctxFor()), undefined);
  });

  it('is a named stage', () => {
    assert.equal(setup().stage.name, 'rateLimitStage');
  });

  it('answers without a promise when the store is synchronous', async () => {
    const { stage } = setup({ max_tokens: 1 });
    assert.equal((await run(stage, ctxFor())).returned, undefined);
    assert.equal((await run(stage, ctxFor())).returned, undefined);
  });

  it('waits for an asynchronous store and then admits or rejects', async () => {
    const memory = new MemoryStore({ clock: new ManualClock() });
    const store: RateLimitStore = {
      take: (key, cap, rate, cost) => new Promise<TakeResult>((r) => setTimeout(() => r(memory.take(key, cap, rate, cost)), 1)),
      start: async () => {},
      close: async () => {},
      degraded: false,
    };
    const { stage } = rateLimit({ config: config({ max_tokens: 1 }), store });
    const ctx = ctxFor();
    const returned = stage(Object.assign(ctx, { runNext: () => {} }));
    assert.ok(returned instanceof Promise);
    await returned;
    const ok = await waitFor(stage, ctxFor());
    assert.equal(ok.error?.code, 'rate_limited');
    assert.equal(ok.error?.headers?.['Retry-After'], '1');
  });

  it('lets a failing store error reach the error handler', async () => {
    const store: RateLimitStore = {
      take: () => {
        throw new GatewayError('store_unavailable');
      },
      start: async () => {},
      close: async () => {},
      degraded: true,
    };
    const { stage } = rateLimit({ config: config(), store });
    const out = await run(stage, ctxFor());
    assert.equal(out.error?.code, 'store_unavailable');
    assert.equal(out.passed, false);
  });

  it('rejects options that cannot work at construction', () => {
    const store = new MemoryStore({ clock: new ManualClock() });
    assert.throws(() => rateLimit({ config: config({ max_tokens: 0 }), store }), RangeError);
    assert.throws(() => rateLimit({ config: config({ refill_rate: -1 }), store }), RangeError);
    assert.throws(() => rateLimit({ config: config(), store: undefined as unknown as RateLimitStore }), TypeError);
  });
});

/** Runs a stage against an async store and waits until it settles. */
async function waitFor(stage: Stage, ctx: RequestContext): Promise<Outcome> {
  const out = await run(stage, ctx);
  for (let i = 0; i < 100 && !out.passed && out.error === undefined; i++) await new Promise((r) => setTimeout(r, 2));
  return out;
}

describe('chargeAuthFailure', () => {
  it('takes a token from the client IP bucket per failed attempt', async () => {
    const { stage, chargeAuthFailure } = setup({ max_tokens: 5 });
    for (let i = 0; i < 3; i++) chargeAuthFailure(ctxFor({ ip: '192.0.2.1' }));
    assert.equal(await admitted(stage, () => ctxFor({ ip: '192.0.2.1' })), 2, 'anonymous requests share the IP bucket');
    assert.equal(await admitted(stage, () => ctxFor({ ip: '192.0.2.1', consumer: 'alice' })), 5, 'a consumer has its own');
  });

  it('throws the 429 once the IP bucket is empty, so guessing keys is limited', () => {
    const { chargeAuthFailure } = setup({ max_tokens: 2, refill_rate: 1 });
    const ctx = ctxFor();
    chargeAuthFailure(ctx);
    assert.equal(ctx.extraHeaders?.[1], '"default";q=2;w=2');
    chargeAuthFailure(ctxFor());
    const last = ctxFor();
    assert.throws(
      () => chargeAuthFailure(last),
      (err: unknown) => err instanceof GatewayError && err.code === 'rate_limited' && err.headers?.['Retry-After'] === '1',
    );
    assert.equal(last.decision, 'rate_limited');
  });

  it('charges the gateway-wide IP bucket even with scope route', async () => {
    const { stage, chargeAuthFailure } = setup({ max_tokens: 2, scope: 'route' });
    chargeAuthFailure(ctxFor());
    chargeAuthFailure(ctxFor());
    assert.throws(() => chargeAuthFailure(ctxFor()), GatewayError);
    assert.equal(await admitted(stage, () => ctxFor({ route: route('/a') })), 2, 'route buckets are separate');
  });

  it('never calls next()', () => {
    const { chargeAuthFailure } = setup();
    const ctx = ctxFor();
    let nexted = false;
    ctx.runNext = () => {
      nexted = true;
    };
    chargeAuthFailure(ctx);
    assert.equal(nexted, false);
  });
});

describe('sfString', () => {
  it('quotes and escapes a policy name as a structured-field string', () => {
    assert.equal(sfString('default'), '"default"');
    assert.equal(sfString('/a"b\\c'), '"/a\\"b\\\\c"');
    assert.equal(sfString('/caf\u00e9'), '"/caf%C3%A9"');
  });
});
