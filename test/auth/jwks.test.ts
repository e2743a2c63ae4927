import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { SignJWT } from 'jose';
import { createAuthenticator, type AuthenticatorOptions } from '../../src/auth/index.js';
import type { AuthConfig } from '../../src/config/index.js';
import { authConfig, b64url, bearer, expectFailure, expectOk, hmacToken } from './helpers.js';

const JWKS_PATH = '/.well-known/jwks.json';

interface Signer {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

/** A fresh ES256 key (fast to generate) published with `kid`. */
function signer(kid: string, extra: Record<string, unknown> = {}): Signer {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, alg: 'ES256', privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig', ...extra } };
}

function rsaSigner(kid: string): Signer {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, alg: 'RS256', privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

function sign(s: Signer, claims: Record<string, unknown> = { sub: 'alice' }, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: s.alg, kid: s.kid, ...header }).sign(s.privateKey);
}

/** A JWKS endpoint on port 0 whose answer the test changes at will; it records every request path. */
async function jwksServer(t: TestContext) {
  const state = { keys: [] as Record<string, unknown>[], status: 200, hang: false, requests: [] as string[] };
  const server = createServer((req, res) => {
    state.requests.push(req.url ?? '');
    if (state.hang) return; // never answers
    res.statusCode = state.status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${JWKS_PATH}`;
  return { url, state };
}

function authenticator(t: TestContext, over: Partial<AuthConfig>, opts: AuthenticatorOptions = {}) {
  const a = createAuthenticator(authConfig(over), opts);
  t.after(() => a.close());
  return a;
}

describe('JWTs verified against a JWKS URL', () => {
  it('verifies a token with the key the JWKS URL serves for its kid', async (t) => {
    const { url, state } = await jwksServer(t);
    const a1 = signer('key-1');
    state.keys = [signer('decoy').jwk, a1.jwk];
    const a = authenticator(t, { jwks_url: url });
    const r = await expectOk(a.authenticate(bearer(await sign(a1))));
    assert.deepEqual(r, { ok: true, consumer: 'alice', method: 'jwt' });
    assert.deepEqual(state.requests, [JWKS_PATH]);
  });

  it('serves later tokens from the cached key set', async (t) => {
    const { url, state } = await jwksServer(t);
    const a1 = signer('key-1');
    state.keys = [a1.jwk];
    const a = authenticator(t, { jwks_url: url });
    for (let i = 0; i < 5; i++) await expectOk(a.authenticate(bearer(await sign(a1, { sub: `u${i}` }))));
    assert.equal(state.requests.length, 1);
  });

  it('fetches the key set at start(), before the first token', async (t) => {
    const { url, state } = await jwksServer(t);
    const a1 = signer('key-1');
    state.keys = [a1.jwk];
    const a = authenticator(t, { jwks_url: url });
    await a.start();
    assert.equal(state.requests.length, 1);
    await expectOk(a.authenticate(bearer(await sign(a1))));
    assert.equal(state.requests.length, 1);
  });

  it('refetches when a token names an unknown kid, so a rotated key is picked up', async (t) => {
    const { url, state } = await jwksServer(t);
    const oldKey = signer('2024-old');
    const newKey = signer('2025-new');
    state.keys = [oldKey.jwk];
    const a = authenticator(t, { jwks_url: url }, { jwksCooldownMs: 0 });
    await expectOk(a.authenticate(bearer(await sign(oldKey))));
    state.keys = [newKey.jwk]; // the IdP rotates
    await expectOk(a.authenticate(bearer(await sign(newKey))));
    assert.equal(state.requests.length, 2);
    // The retired key is gone after the refetch.
    await expectFailure(a.authenticate(bearer(await sign(oldKey))), 'invalid_token');
  });

  it('refetches for unknown kids at most once per cooldown, so made-up kids cannot flood the IdP', async (t) => {
    const { url, state } = await jwksServer(t);
    const known = signer('known');
    state.keys = [known.jwk];
    const a = authenticator(t, { jwks_url: url }); // default cooldown: min(30 s, jwks_cache_ttl)
    await expectOk(a.authenticate(bearer(await sign(known))));
    const stranger = signer('unused');
    for (let i = 0; i < 5; i++) {
      await expectFailure(a.authenticate(bearer(await sign({ ...stranger, kid: `random-${i}` }))), 'invalid_token');
    }
    assert.equal(state.requests.length, 1);
  });

  it('fetches only the configured URL whatever the kid says', async (t) => {
    const { url, state } = await jwksServer(t);
    const known = signer('known');
    state.keys = [known.jwk];
    const a = authenticator(t, { jwks_url: url }, { jwksCooldownMs: 0 });
    for (const kid of ['../../admin', '/etc/passwd', '?kid=1', "known' OR '1'='1", 'https://evil.example/jwks']) {
      await expectFailure(a.authenticate(bearer(await sign({ ...known, kid }))), 'invalid_token');
    }
    await expectOk(a.authenticate(bearer(await sign(known))));
    assert.ok(state.requests.length >= 1);
    assert.ok(state.requests.every((path) => path === JWKS_PATH), state.requests.join(' '));
  });

  it('never takes a jku from the token', async (t) => {
    const { url, state } = await jwksServer(t);
    const { url: evilUrl, state: evil } = await jwksServer(t);
    const attacker = signer('known');
    evil.keys = [attacker.jwk];
    state.keys = [signer('known').jwk];
    const a = authenticator(t, { jwks_url: url });
    await expectFailure(a.authenticate(bearer(await sign(attacker, { sub: 'admin' }, { jku: evilUrl }))), 'invalid_token');
    assert.equal(evil.requests.length, 0);
  });

  it('never uses an HMAC (oct) key published in the key set', async (t) => {
    const { url, state } = await jwksServer(t);
    const secret = 'shared-secret-in-jwks-0123';
    state.keys = [{ kty: 'oct', k: b64url(secret), kid: 'hmac', alg: 'HS256' }, signer('ec').jwk];
    const a = authenticator(t, { jwks_url: url });
    await expectFailure(a.authenticate(bearer(hmacToken({ alg: 'HS256', kid: 'hmac' }, { sub: 'admin' }, secret))), 'invalid_token');
  });

  it('ignores a key published for encryption only', async (t) => {
    const { url, state } = await jwksServer(t);
    const enc = signer('enc', { use: 'enc' });
    state.keys = [enc.jwk];
    const a = authenticator(t, { jwks_url: url });
    await expectFailure(a.authenticate(bearer(await sign(enc))), 'invalid_token');
  });

  it('accepts only the pinned jwt_algorithms for JWKS keys', async (t) => {
    const { url, state } = await jwksServer(t);
    const rsa = rsaSigner('rsa');
    const ec = signer('ec');
    state.keys = [rsa.jwk, ec.jwk];
    const open = authenticator(t, { jwks_url: url });
    await expectOk(open.authenticate(bearer(await sign(rsa))));
    const pinned = authenticator(t, { jwks_url: url, jwt_algorithms: ['ES256'] });
    await expectOk(pinned.authenticate(bearer(await sign(ec))));
    await expectFailure(pinned.authenticate(bearer(await sign(rsa))), 'invalid_token');
  });

  it('answers invalid_token, without crashing, while the JWKS server is down', async (t) => {
    const { url, state } = await jwksServer(t);
    const known = signer('known');
    state.keys = [known.jwk];
    const down = createServer();
    await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}${JWKS_PATH}`;
    await new Promise<void>((resolve) => down.close(() => resolve()));

    const a = authenticator(t, { jwks_url: deadUrl });
    await a.start(); // resolves even though the fetch fails
    const err = await expectFailure(a.authenticate(bearer(await sign(known))), 'invalid_token');
    assert.equal(err.headers?.['WWW-Authenticate'], 'Bearer realm="microgate", error="invalid_token"');
    // Every later token tries again and fails the same way.
    await expectFailure(a.authenticate(bearer(await sign(known))), 'invalid_token');

    state.status = 500;
    const b = authenticator(t, { jwks_url: url });
    await expectFailure(b.authenticate(bearer(await sign(known))), 'invalid_token');
  });

  it('close() aborts a JWKS fetch in flight and later lookups fail at once', { timeout: 5_000 }, async (t) => {
    const { url, state } = await jwksServer(t);
    const known = signer('known');
    state.hang = true;
    // A fetch timeout longer than this test's own: only the abort can end the lookup in time.
    const a = authenticator(t, { jwks_url: url }, { jwksTimeoutMs: 60_000 });
    const pending = a.authenticate(bearer(await sign(known)));
    while (state.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await a.close();
    await expectFailure(pending, 'invalid_token');
    await expectFailure(a.authenticate(bearer(await sign(known))), 'invalid_token');
    assert.equal(state.requests.length, 1);
  });
});
