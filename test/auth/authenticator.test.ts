import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT } from 'jose';
import { AuthConfigError, createAuthenticator } from '../../src/auth/index.js';
import { ManualClock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { SECRET, assertSync, authConfig, bearer, expectFailure, expectOk } from './helpers.js';

const clock = new ManualClock();
const secretKey = new TextEncoder().encode(SECRET);
const API_KEY = 'key-abc123-valid';

async function token(claims: Record<string, unknown> = { sub: 'alice' }): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(clock.now() / 1000).sign(secretKey);
}

describe('choosing between API key and bearer token', () => {
  const authn = createAuthenticator(authConfig({ api_keys: [API_KEY], jwt_secret: SECRET }), { clock });

  it('a valid API key authenticates without looking at the Authorization header', async () => {
    const r = await expectOk(authn.authenticate({ 'x-api-key': API_KEY, authorization: 'Bearer garbage' }));
    assert.equal(r.method, 'api_key');
  });

  it('a wrong API key with a valid JWT is decided by the JWT', async () => {
    const r = await expectOk(authn.authenticate({ 'x-api-key': 'wrong-key-0000', ...bearer(await token()) }));
    assert.deepEqual(r, { ok: true, consumer: 'alice', method: 'jwt' });
  });

  it('a wrong API key with an invalid JWT fails as an invalid token', async () => {
    const forged = (await token()).slice(0, -4) + 'AAAA';
    await expectFailure(authn.authenticate({ 'x-api-key': 'wrong-key-0000', ...bearer(forged) }), 'invalid_token');
  });

  it('a wrong API key with no bearer token is an invalid API key, even next to another scheme', async () => {
    await expectFailure(authn.authenticate({ 'x-api-key': 'wrong-key-0000' }), 'invalid_api_key');
    await expectFailure(authn.authenticate({ 'x-api-key': 'wrong-key-0000', authorization: 'Basic dXNlcjpwYXNz' }), 'invalid_api_key');
  });

  it('no credentials at all is missing_credentials, with a challenge that names no error', async () => {
    const err = await expectFailure(authn.authenticate({}), 'missing_credentials');
    assert.deepEqual(err.headers, { 'WWW-Authenticate': 'Bearer realm="microgate"' });
    await expectFailure(authn.authenticate({ authorization: '' }), 'missing_credentials');
  });

  it('a JWT alone authenticates with its sub as the consumer', async () => {
    const r = await expectOk(authn.authenticate(bearer(await token({ sub: 'bob' }))));
    assert.deepEqual(r, { ok: true, consumer: 'bob', method: 'jwt' });
  });
});

describe('the Authorization header', () => {
  const authn = createAuthenticator(authConfig({ jwt_secret: SECRET }), { clock });

  it('matches the Bearer scheme in any case (RFC 7235)', async () => {
    const t = await token();
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      await expectOk(authn.authenticate({ authorization: `${scheme} ${t}` }));
    }
  });

  it('accepts more than one space between scheme and token', async () => {
    await expectOk(authn.authenticate({ authorization: `Bearer   ${await token()}` }));
  });

  it('rejects another scheme as invalid_authorization_header', async () => {
    for (const value of ['Basic dXNlcjpwYXNz', 'Token abc', 'Bearertoken', 'Bearer:abc', 'eyJhbGciOiJIUzI1NiJ9.e30.sig']) {
      const err = await expectFailure(authn.authenticate({ authorization: value }), 'invalid_authorization_header');
      assert.equal(err.headers?.['WWW-Authenticate'], 'Bearer realm="microgate"');
    }
  });

  it('rejects Bearer without a token as an invalid request', async () => {
    const err = await expectFailure(authn.authenticate({ authorization: 'Bearer' }), 'invalid_authorization_header');
    assert.equal(err.headers?.['WWW-Authenticate'], 'Bearer realm="microgate", error="invalid_request"');
  });

  it('rejects a bearer token that is not a JWT as invalid_token, synchronously', async () => {
    for (const value of ['Bearer abc', 'Bearer a.b', 'Bearer a.b.c.d', 'Bearer a b c', 'Bearer a.b.c=']) {
      const r = authn.authenticate({ authorization: value });
      assertSync(r);
      const err = await expectFailure(r, 'invalid_token');
      assert.equal(err.headers?.['WWW-Authenticate'], 'Bearer realm="microgate", error="invalid_token"');
    }
  });

  it('rejects a bearer token when only API keys are configured', async () => {
    const keysOnly = createAuthenticator(authConfig({ api_keys: [API_KEY] }));
    await expectFailure(keysOnly.authenticate(bearer(await token())), 'invalid_token');
  });
});

describe('configuration', () => {
  const rsaPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;

  it('refuses a section with neither API keys nor JWT key material', () => {
    assert.throws(() => createAuthenticator(authConfig()), AuthConfigError);
  });

  it('refuses HS algorithms without a secret, and a secret with no HS algorithm to use it', () => {
    assert.throws(() => createAuthenticator(authConfig({ jwt_public_key: rsaPem, jwt_algorithms: ['HS256', 'RS256'] })), /HS256 need jwt_secret/);
    assert.throws(() => createAuthenticator(authConfig({ jwt_secret: SECRET, jwt_algorithms: ['RS256'] })), /no HS algorithm/);
  });

  it('refuses jwt_algorithms with no key material', () => {
    assert.throws(() => createAuthenticator(authConfig({ api_keys: [API_KEY], jwt_algorithms: ['HS256'] })), AuthConfigError);
  });

  it('refuses both jwt_public_key and jwks_url', () => {
    assert.throws(() => createAuthenticator(authConfig({ jwt_public_key: rsaPem, jwks_url: 'http://127.0.0.1:1/jwks' })), /not both/);
  });

  it('refuses algorithms the public key cannot verify', () => {
    assert.throws(() => createAuthenticator(authConfig({ jwt_public_key: rsaPem, jwt_algorithms: ['ES256'] })), /ES256 cannot be used/);
  });

  it('refuses a private key, a short RSA key and a non-key as jwt_public_key', () => {
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    assert.throws(() => createAuthenticator(authConfig({ jwt_public_key: priv })), /private key/);
    const short = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assert.throws(() => createAuthenticator(authConfig({ jwt_public_key: short })), /at least 2048 bits/);
    assert.throws(() => createAuthenticator(authConfig({ jwt_public_key: 'not a key' })), /not a PEM public key/);
    assert.throws(() => createAuthenticator(authConfig({ jwt_public_key: '' })), AuthConfigError);
  });

  it('never mentions the secret in a configuration error', () => {
    try {
      createAuthenticator(authConfig({ jwt_secret: SECRET, jwt_algorithms: ['RS256'] }));
      assert.fail('expected a throw');
    } catch (err) {
      assert.ok(!String((err as Error).message).includes(SECRET));
    }
  });

  it('builds from a parsed, frozen config.yml section in the reference format', async () => {
    const cfg = parseConfig('auth:\n  api_keys: ["key-abc123", "key-xyz789"]\n  jwt_secret: "my-super-secret-key"\n  clock_tolerance: 5s\n');
    const a = createAuthenticator(cfg.auth!);
    assert.equal((await expectOk(a.authenticate({ 'x-api-key': 'key-xyz789' }))).consumer, 'api-key-2');
    const t = await new SignJWT({ sub: 'ref' }).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode('my-super-secret-key'));
    assert.equal((await expectOk(a.authenticate(bearer(t)))).consumer, 'ref');
  });

  it('close() is safe without start() and twice, and start() after close still authenticates', async () => {
    const a = createAuthenticator(authConfig({ jwt_secret: SECRET }), { clock });
    await assert.doesNotReject(a.close());
    await assert.doesNotReject(a.close());
    await assert.doesNotReject(a.start());
    assert.equal((await expectOk(a.authenticate(bearer(await token({ sub: 'after-close' }))))).consumer, 'after-close');
    await a.close();
  });
});
