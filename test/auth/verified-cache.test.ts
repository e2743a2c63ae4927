import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuthenticator } from '../../src/auth/index.js';
import { ManualClock } from '../../src/clock.js';
import { SECRET, authConfig, bearer, expectFailure, expectOk, hmacToken } from './helpers.js';

test('a token verified once is accepted again synchronously, without another signature check', async () => {
  const clock = new ManualClock();
  const auth = createAuthenticator(authConfig({ jwt_secret: SECRET }), { clock });
  const token = hmacToken({ alg: 'HS256', typ: 'JWT' }, { sub: 'u1', exp: clock.now() / 1000 + 300 }, SECRET);
  const first = auth.authenticate(bearer(token));
  assert.ok(first instanceof Promise, 'the first sight of a token verifies its signature');
  assert.equal((await expectOk(first)).consumer, 'u1');
  const second = auth.authenticate(bearer(token));
  assert.ok(!(second instanceof Promise), 'a remembered token is answered at once');
  assert.equal((await expectOk(second)).consumer, 'u1');
});

test('a remembered token is still refused once it expires', async () => {
  const clock = new ManualClock();
  const auth = createAuthenticator(authConfig({ jwt_secret: SECRET, clock_tolerance: 0 }), { clock });
  const token = hmacToken({ alg: 'HS256' }, { sub: 'u1', exp: clock.now() / 1000 + 10 }, SECRET);
  await expectOk(auth.authenticate(bearer(token)));
  clock.advance(11_000);
  await expectFailure(auth.authenticate(bearer(token)), 'token_expired');
});

test('a token is remembered for at most a minute, then verified again', async () => {
  const clock = new ManualClock();
  const auth = createAuthenticator(authConfig({ jwt_secret: SECRET }), { clock });
  const token = hmacToken({ alg: 'HS256' }, { sub: 'u1' }, SECRET);
  await expectOk(auth.authenticate(bearer(token)));
  assert.ok(!(auth.authenticate(bearer(token)) instanceof Promise));
  clock.advance(61_000);
  const again = auth.authenticate(bearer(token));
  assert.ok(again instanceof Promise, 'verified again after the cache lifetime');
  await expectOk(again);
});

test('a token that failed verification is never remembered', async () => {
  const clock = new ManualClock();
  const auth = createAuthenticator(authConfig({ jwt_secret: SECRET }), { clock });
  const forged = hmacToken({ alg: 'HS256' }, { sub: 'admin' }, 'another-secret-0123456789abcdef');
  const first = auth.authenticate(bearer(forged));
  assert.ok(first instanceof Promise, 'a well-formed token has its signature checked');
  await expectFailure(first, 'invalid_token');
  // Not remembered, either way: the second sight is verified again (a promise), not answered from the cache.
  const second = auth.authenticate(bearer(forged));
  assert.ok(second instanceof Promise, 'the failed token was remembered');
  await expectFailure(second, 'invalid_token');
  // And a good token with the same claims is still accepted afterwards: the failure poisoned nothing.
  const good = hmacToken({ alg: 'HS256' }, { sub: 'admin' }, SECRET);
  assert.equal((await expectOk(auth.authenticate(bearer(good)))).consumer, 'admin');
});
