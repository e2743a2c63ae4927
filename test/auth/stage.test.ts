import assert from 'node:assert/strict';
import { IncomingMessage, ServerResponse, type IncomingHttpHeaders } from 'node:http';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { auth, createAuthenticator, FailureBudget, type Authenticator, type AuthStageOptions } from '../../src/auth/index.js';
import { ManualClock } from '../../src/clock.js';
import { MemoryStore, type TakeResult } from '../../src/store/index.js';
import { GatewayError } from '../../src/errors.js';
import { compose, RequestContext, type CompiledRoute } from '../../src/pipeline/index.js';
import { SECRET, authConfig } from './helpers.js';

const API_KEY = 'key-abc123-valid';
const authenticator = createAuthenticator(authConfig({ api_keys: [{ id: 'svc', key: API_KEY }], jwt_secret: SECRET }));

interface Outcome {
  ctx: RequestContext;
  /** The error that reached compose's error handler, if any. */
  error: unknown;
  /** Whether the stage after auth ran. */
  forwarded: boolean;
  /** What the auth stage itself returned (undefined on the synchronous path). */
  returned: unknown;
  /** Headers as the next stage saw them. */
  headersSeen: IncomingHttpHeaders | undefined;
}

/** Runs one request through [auth, terminal] with compose() and resolves once either end is reached. */
function run(headers: IncomingHttpHeaders, opts: Partial<AuthStageOptions> = {}, route: Partial<CompiledRoute> | null = { isPublic: false }): Promise<Outcome> {
  const req = new IncomingMessage(new Socket());
  req.headers = { ...headers };
  const ctx = new RequestContext(req, new ServerResponse(req), performance.now(), Date.now());
  ctx.route = route as CompiledRoute | null;
  const stage = auth({ authenticator, stripCredentials: false, ...opts });
  return new Promise((resolve) => {
    const outcome: Outcome = { ctx, error: undefined, forwarded: false, returned: undefined, headersSeen: undefined };
    const wrapped = (c: RequestContext) => {
      outcome.returned = stage(c);
      return outcome.returned as void | Promise<void>;
    };
    const terminal = (c: RequestContext) => {
      outcome.forwarded = true;
      outcome.headersSeen = { ...c.req.headers };
      resolve(outcome);
    };
    compose([wrapped, terminal], (_c, err) => {
      outcome.error = err;
      resolve(outcome);
    })(ctx);
  });
}

function code(err: unknown): string | undefined {
  return err instanceof GatewayError ? err.code : undefined;
}

const jwt = () => new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));

describe('the auth stage', () => {
  it('is a named function', () => {
    assert.equal(auth({ authenticator, stripCredentials: false }).name, 'authStage');
  });

  it('lets a public route through without authenticating', async () => {
    let calls = 0;
    const counting: Authenticator = { ...authenticator, authenticate: (h) => (calls++, authenticator.authenticate(h)) };
    const out = await run({}, { authenticator: counting }, { isPublic: true });
    assert.equal(out.forwarded, true);
    assert.equal(out.ctx.consumer, undefined);
    assert.equal(calls, 0);
  });

  it('authenticates a request that matched no route', async () => {
    const out = await run({}, {}, null);
    assert.equal(code(out.error), 'missing_credentials');
  });

  it('sets the consumer and forwards on a valid API key, synchronously', async () => {
    const out = await run({ 'x-api-key': API_KEY });
    assert.equal(out.forwarded, true);
    assert.equal(out.ctx.consumer, 'svc');
    assert.equal(out.ctx.decision, undefined);
    assert.equal(out.returned, undefined, 'no promise on the API-key path');
  });

  it('sets the consumer and forwards on a valid JWT', async () => {
    const out = await run({ authorization: `Bearer ${await jwt()}` });
    assert.equal(out.forwarded, true);
    assert.equal(out.ctx.consumer, 'alice');
  });

  it('keeps the credentials when strip_credentials is off', async () => {
    const token = await jwt();
    const out = await run({ 'x-api-key': API_KEY, authorization: `Bearer ${token}`, accept: '*/*' });
    assert.equal(out.headersSeen?.['x-api-key'], API_KEY);
    assert.equal(out.headersSeen?.authorization, `Bearer ${token}`);
  });

  it('removes both X-API-Key and Authorization when strip_credentials is on', async () => {
    const viaKey = await run({ 'x-api-key': API_KEY, authorization: 'Basic dXNlcjpwYXNz', accept: '*/*' }, { stripCredentials: true });
    assert.equal(viaKey.forwarded, true);
    assert.deepEqual(viaKey.headersSeen, { accept: '*/*' });
    const viaJwt = await run({ 'x-api-key': 'wrong-key-00000', authorization: `Bearer ${await jwt()}`, accept: '*/*' }, { stripCredentials: true });
    assert.equal(viaJwt.forwarded, true);
    assert.deepEqual(viaJwt.headersSeen, { accept: '*/*' });
  });

  it('marks a failure auth_failed and throws the 401 with its challenge', async () => {
    const out = await run({ 'x-api-key': 'wrong-key-00000' });
    assert.equal(out.forwarded, false);
    assert.equal(out.ctx.decision, 'auth_failed');
    assert.equal(code(out.error), 'invalid_api_key');
    assert.equal((out.error as GatewayError).headers?.['WWW-Authenticate'], 'Bearer realm="microgate"');
  });

  it('calls onFailure with the context and the error before throwing it', async () => {
    const seen: Array<[RequestContext, string]> = [];
    const out = await run({ authorization: 'Bearer not.a.jwt' }, { onFailure: (ctx, err) => void seen.push([ctx, err.code]) });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]![0], out.ctx);
    assert.equal(seen[0]![1], 'invalid_token');
    assert.equal(out.ctx.decision, 'auth_failed', 'decision is set before onFailure runs');
    assert.equal(code(out.error), 'invalid_token');
  });

  it('waits for an async onFailure, then throws the auth error', async () => {
    let settled = false;
    const out = await run({}, { onFailure: async () => void (await new Promise((r) => setTimeout(r, 5)), (settled = true)) });
    assert.equal(settled, true);
    assert.equal(code(out.error), 'missing_credentials');
  });

  it('lets onFailure replace the error, by throwing or by rejecting', async () => {
    const limited = new GatewayError('rate_limited', undefined, { headers: { 'Retry-After': '1' } });
    const sync = await run({}, { onFailure: () => { throw limited; } });
    assert.equal(sync.error, limited);
    const async = await run({ authorization: `Bearer ${(await jwt()).slice(0, -2)}AA` }, { onFailure: async () => { throw limited; } });
    assert.equal(async.error, limited);
    assert.equal(async.ctx.decision, 'auth_failed');
  });

  it('does not call onFailure on success', async () => {
    let calls = 0;
    await run({ 'x-api-key': API_KEY }, { onFailure: () => void calls++ });
    await run({ authorization: `Bearer ${await jwt()}` }, { onFailure: () => void calls++ });
    assert.equal(calls, 0);
  });

  it('validates its options once, at construction', () => {
    assert.throws(() => auth({} as AuthStageOptions), TypeError);
    assert.throws(() => auth({ authenticator, stripCredentials: 'yes' } as unknown as AuthStageOptions), TypeError);
    assert.throws(() => auth({ authenticator, stripCredentials: true, onFailure: 42 } as unknown as AuthStageOptions), TypeError);
  });
});

describe('the auth stage with a failure budget', () => {
  function budgetOf(maxFailures = 2) {
    const clock = new ManualClock();
    const store = new MemoryStore({ clock });
    return { clock, store, budget: new FailureBudget({ store, config: { enabled: true, max_failures: maxFailures, refill_rate: 1 } }) };
  }

  it('decides an API key synchronously with a memory store, and spends nothing on success', async () => {
    const { store, budget } = budgetOf();
    for (let i = 0; i < 5; i++) {
      const out = await run({ 'x-api-key': API_KEY }, { budget });
      assert.equal(out.returned, undefined, 'no promise on the API-key path');
      assert.equal(out.forwarded, true);
    }
    assert.equal(store.size, 0, 'no budget bucket for an address that never failed');
  });

  it('keeps each address its own budget past the bucket keys it remembers, IPv6 addresses by /64', () => {
    const { budget } = budgetOf(1);
    for (let i = 0; i < 9000; i++) {
      const ip = `10.0.${(i >> 8) & 255}.${i & 255}`;
      assert.equal((budget.peek(ip) as TakeResult).allowed, true, ip);
      budget.charge(ip);
      assert.equal((budget.peek(ip) as TakeResult).allowed, false, `${ip} after a failure`);
    }
    assert.equal((budget.peek('10.0.0.0') as TakeResult).allowed, false, 'a forgotten key is made again for the same bucket');
    budget.charge('2001:db8:a:b::1');
    assert.equal((budget.peek('2001:db8:a:b:ffff::2') as TakeResult).allowed, false, 'same /64');
    assert.equal((budget.peek('2001:db8:a:c::1') as TakeResult).allowed, true, 'another /64');
  });

  it('refuses the right key with auth_throttled once wrong keys spent the budget, before verifying it', async () => {
    const { clock, budget } = budgetOf(2);
    assert.equal(code((await run({ 'x-api-key': 'wrong-wrong-1' }, { budget })).error), 'invalid_api_key');
    assert.equal(code((await run({ 'x-api-key': 'wrong-wrong-2' }, { budget })).error), 'invalid_api_key');
    const refused = await run({ 'x-api-key': API_KEY }, { budget });
    assert.equal(code(refused.error), 'auth_throttled');
    assert.equal((refused.error as GatewayError).headers?.['Retry-After'], '1');
    assert.equal(refused.ctx.decision, 'rate_limited');
    assert.equal(refused.ctx.detail?.budget, 'auth_failures');
    clock.advance(1_000);
    assert.equal((await run({ 'x-api-key': API_KEY }, { budget })).forwarded, true);
  });

  it('spends nothing for a request without credentials', async () => {
    const { store, budget } = budgetOf(1);
    for (let i = 0; i < 3; i++) assert.equal(code((await run({}, { budget })).error), 'missing_credentials');
    assert.equal(store.size, 0);
  });

  it('charges the budget and still runs the failure hook', async () => {
    const { budget } = budgetOf(1);
    const seen: string[] = [];
    await run({ 'x-api-key': 'wrong-wrong-1' }, { budget, onFailure: () => void seen.push('hook') });
    assert.deepEqual(seen, ['hook']);
    assert.equal(code((await run({ authorization: `Bearer ${await jwt()}` }, { budget })).error), 'auth_throttled');
  });

  it('works the same with a store that answers with promises (Redis)', async () => {
    const memory = new MemoryStore({ clock: new ManualClock() });
    const store = { take: (...args: Parameters<MemoryStore['take']>) => Promise.resolve(memory.take(...args)) };
    const budget = new FailureBudget({ store, config: { enabled: true, max_failures: 1, refill_rate: 1 } });
    const ok = await run({ 'x-api-key': API_KEY }, { budget });
    assert.equal(ok.forwarded, true);
    assert.equal(code((await run({ 'x-api-key': 'wrong-wrong-1' }, { budget })).error), 'invalid_api_key');
    assert.equal(code((await run({ 'x-api-key': API_KEY }, { budget })).error), 'auth_throttled');
  });
});
