import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { compactVerify, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { createAuthenticator } from '../../src/auth/index.js';
import { ManualClock } from '../../src/clock.js';
import type { AuthConfig } from '../../src/config/index.js';
import { SECRET, assertSync, authConfig, b64url, bearer, expectFailure, expectOk, hmacToken } from './helpers.js';

const secretKey = new TextEncoder().encode(SECRET);
/** Seconds since the epoch on a fresh ManualClock. */
const T0 = new ManualClock().now() / 1000;

function setup(over: Partial<AuthConfig> = {}) {
  const clock = new ManualClock();
  const authn = createAuthenticator(authConfig({ jwt_secret: SECRET, ...over }), { clock });
  return { clock, authn };
}

/** Claims are loosely typed so tests can sign malformed ones (a string exp, a numeric sub). */
async function sign(claims: Record<string, unknown>, alg = 'HS256', header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ ...header, alg }).sign(secretKey);
}

describe('HMAC-signed JWTs', () => {
  it('accepts HS256, HS384 and HS512 by default', async () => {
    const { authn } = setup();
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const r = await expectOk(authn.authenticate(bearer(await sign({ sub: `user-${alg}` }, alg))));
      assert.equal(r.consumer, `user-${alg}`);
    }
  });

  it('accepts only the configured jwt_algorithms', async () => {
    const { authn } = setup({ jwt_algorithms: ['HS256'] });
    await expectOk(authn.authenticate(bearer(await sign({ sub: 'a' }, 'HS256'))));
    await expectFailure(authn.authenticate(bearer(await sign({ sub: 'a' }, 'HS512'))), 'invalid_token');
  });

  it('rejects a token signed with another secret', async () => {
    const { authn } = setup();
    const other = await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-0123456789'));
    await expectFailure(authn.authenticate(bearer(other)), 'invalid_token');
  });

  it('rejects a token whose payload was changed after signing', async () => {
    const { authn } = setup();
    const [h, , s] = (await sign({ sub: 'alice' })).split('.');
    await expectFailure(authn.authenticate(bearer(`${h}.${b64url({ sub: 'admin' })}.${s}`)), 'invalid_token');
  });
});

describe('exp and nbf on the injected clock', () => {
  it('accepts a token until exp plus the leeway, then answers token_expired', async () => {
    const { clock, authn } = setup({ clock_tolerance: 30_000 });
    const t = await sign({ sub: 'a', exp: T0 + 60 });
    await expectOk(authn.authenticate(bearer(t)));
    clock.advance(89_000); // 29 s past exp: inside the 30 s leeway
    await expectOk(authn.authenticate(bearer(t)));
    clock.advance(1_000);
    const err = await expectFailure(authn.authenticate(bearer(t)), 'token_expired');
    assert.equal(err.headers?.['WWW-Authenticate'], 'Bearer realm="microgate", error="invalid_token", error_description="The access token expired"');
  });

  it('with zero leeway a token expires exactly at exp', async () => {
    const { clock, authn } = setup({ clock_tolerance: 0 });
    const t = await sign({ sub: 'a', exp: T0 + 10 });
    clock.advance(9_999);
    await expectOk(authn.authenticate(bearer(t)));
    clock.advance(1);
    await expectFailure(authn.authenticate(bearer(t)), 'token_expired');
  });

  it('rejects a token before nbf minus the leeway, and accepts it from then on', async () => {
    const { clock, authn } = setup({ clock_tolerance: 30_000 });
    const t = await sign({ sub: 'a', nbf: T0 + 60 });
    const err = await expectFailure(authn.authenticate(bearer(t)), 'invalid_token');
    assert.equal(err.headers?.['WWW-Authenticate'], 'Bearer realm="microgate", error="invalid_token"');
    clock.advance(29_000);
    await expectFailure(authn.authenticate(bearer(t)), 'invalid_token');
    clock.advance(1_000);
    await expectOk(authn.authenticate(bearer(t)));
  });

  it('rejects a non-numeric exp', async () => {
    const { authn } = setup();
    await expectFailure(authn.authenticate(bearer(await sign({ sub: 'a', exp: 'tomorrow' }))), 'invalid_token');
  });
});

describe('issuer, audience and required claims', () => {
  it('checks the issuer when one is configured', async () => {
    const { authn } = setup({ issuer: 'https://idp.example' });
    await expectOk(authn.authenticate(bearer(await sign({ sub: 'a', iss: 'https://idp.example' }))));
    await expectFailure(authn.authenticate(bearer(await sign({ sub: 'a', iss: 'https://evil.example' }))), 'invalid_token');
    await expectFailure(authn.authenticate(bearer(await sign({ sub: 'a' }))), 'invalid_token');
  });

  it('accepts any of several configured issuers', async () => {
    const { authn } = setup({ issuer: ['https://a.example', 'https://b.example'] });
    await expectOk(authn.authenticate(bearer(await sign({ iss: 'https://b.example' }))));
    await expectFailure(authn.authenticate(bearer(await sign({ iss: 'https://c.example' }))), 'invalid_token');
  });

  it('checks the audience, as a string or within an array', async () => {
    const { authn } = setup({ audience: 'gateway' });
    await expectOk(authn.authenticate(bearer(await sign({ aud: 'gateway' }))));
    await expectOk(authn.authenticate(bearer(await sign({ aud: ['other', 'gateway'] }))));
    await expectFailure(authn.authenticate(bearer(await sign({ aud: 'other' }))), 'invalid_token');
    await expectFailure(authn.authenticate(bearer(await sign({}))), 'invalid_token');
  });

  it('requires every required claim to be present', async () => {
    const { clock, authn } = setup({ required_claims: ['exp', 'scope'] });
    const exp = clock.now() / 1000 + 60;
    await expectOk(authn.authenticate(bearer(await sign({ sub: 'a', exp, scope: 'read' }))));
    const err = await expectFailure(authn.authenticate(bearer(await sign({ sub: 'a', exp }))), 'invalid_token');
    assert.equal(err.cause, 'ERR_JWT_CLAIM_VALIDATION_FAILED:scope');
    await expectFailure(authn.authenticate(bearer(await sign({ sub: 'a', scope: 'read' }))), 'invalid_token');
  });

  it('rejects a payload that is not a JSON object', async () => {
    const { authn } = setup();
    await expectFailure(authn.authenticate(bearer(hmacToken({ alg: 'HS256' }, '"just a string"', SECRET))), 'invalid_token');
    await expectFailure(authn.authenticate(bearer(hmacToken({ alg: 'HS256' }, 'not json', SECRET))), 'invalid_token');
  });
});

describe('the consumer of a JWT', () => {
  const { authn } = setup();

  it('is the sub claim', async () => {
    assert.equal((await expectOk(authn.authenticate(bearer(await sign({ sub: 'user-42' }))))).consumer, 'user-42');
  });

  it('is "jwt" when sub is missing, not a string, empty, too long or has control characters', async () => {
    for (const sub of [undefined, 42, '', 'x'.repeat(257), 'evil\nlog-line', 'nul\u0000']) {
      const r = await expectOk(authn.authenticate(bearer(await sign(sub === undefined ? {} : { sub }))));
      assert.equal(r.consumer, 'jwt', `sub ${JSON.stringify(sub)}`);
    }
    assert.equal((await expectOk(authn.authenticate(bearer(await sign({ sub: 'y'.repeat(256) }))))).consumer, 'y'.repeat(256));
  });
});

describe('hostile tokens', () => {
  it('rejects alg none in any spelling', async () => {
    const { authn } = setup();
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const unsigned = `${b64url({ alg, typ: 'JWT' })}.${b64url({ sub: 'admin' })}.`;
      await expectFailure(authn.authenticate(bearer(unsigned)), 'invalid_token');
      // …and with a made-up signature, so the shape check is not what stops it.
      await expectFailure(authn.authenticate(bearer(`${unsigned}AAAA`)), 'invalid_token');
    }
  });

  it('rejects a token longer than max_token_bytes before decoding it', async () => {
    const { authn } = setup({ max_token_bytes: 256 });
    const big = await sign({ sub: 'a', pad: 'x'.repeat(300) });
    const r = authn.authenticate(bearer(big));
    assertSync(r); // refused without reaching jose
    await expectFailure(r, 'invalid_token');
    const garbage = authn.authenticate(bearer('%'.repeat(10_000)));
    assertSync(garbage);
    await expectFailure(garbage, 'invalid_token');
    await expectOk(authn.authenticate(bearer(await sign({ sub: 'a' }))));
  });

  it('accepts a token of exactly max_token_bytes', async () => {
    const t = await sign({ sub: 'a', pad: 'x'.repeat(200) });
    const { authn } = setup({ max_token_bytes: t.length });
    await expectOk(authn.authenticate(bearer(t)));
    const { authn: tighter } = setup({ max_token_bytes: t.length - 1 });
    await expectFailure(tighter.authenticate(bearer(t)), 'invalid_token');
  });

  it('rejects an unknown critical header parameter even when the signature is good', async () => {
    const { authn } = setup();
    const t = hmacToken({ alg: 'HS256', crit: ['x-must-understand'], 'x-must-understand': true }, { sub: 'a' }, SECRET);
    await expectFailure(authn.authenticate(bearer(t)), 'invalid_token');
    const unencoded = hmacToken({ alg: 'HS256', crit: ['b64'], b64: false }, { sub: 'a' }, SECRET);
    await expectFailure(authn.authenticate(bearer(unencoded)), 'invalid_token');
  });

  it('ignores kid tricks: a path-traversal or SQL-ish kid neither helps a forgery nor breaks a good token', async () => {
    const { authn } = setup();
    const kids = ['../../../../etc/passwd', "' OR '1'='1' --", '/dev/null', '\u0000', 'k'.repeat(2000), 'https://evil.example/key'];
    for (const kid of kids) {
      await expectOk(authn.authenticate(bearer(await sign({ sub: 'a' }, 'HS256', { kid }))));
      // An empty secret or /dev/null content is what a naive kid-to-file lookup would use.
      for (const guess of ['', '\n', 'null']) {
        await expectFailure(authn.authenticate(bearer(hmacToken({ alg: 'HS256', kid }, { sub: 'admin' }, guess))), 'invalid_token');
      }
    }
  });

  it('never takes a key from the token: an embedded jwk signed by its own secret is rejected', async () => {
    const { authn } = setup();
    const attacker = 'attacker-secret-0123456789';
    const header = { alg: 'HS256', jwk: { kty: 'oct', k: b64url(attacker) } };
    await expectFailure(authn.authenticate(bearer(hmacToken(header, { sub: 'admin' }, attacker))), 'invalid_token');
  });

  it('never fetches a jku or x5u: the URL is not contacted and a good signature still decides', async (t) => {
    let requests = 0;
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'evil', alg: 'RS256' }] });
    const server = createServer((_req, res) => {
      requests++;
      res.setHeader('content-type', 'application/json').end(jwks);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;

    const { authn } = setup();
    const forged = await new SignJWT({ sub: 'admin' }).setProtectedHeader({ alg: 'RS256', kid: 'evil', jku: url, x5u: url }).sign(privateKey);
    await expectFailure(authn.authenticate(bearer(forged)), 'invalid_token');
    const good = await sign({ sub: 'alice' }, 'HS256', { jku: url, x5u: url, x5c: ['MIIBIjAN'] });
    assert.equal((await expectOk(authn.authenticate(bearer(good)))).consumer, 'alice');
    assert.equal(requests, 0);
  });

  it('rejects non-canonical base64url spellings that jose alone would accept', async () => {
    const { authn } = setup();
    const good = await sign({ sub: 'alice' });
    const [h, p, s] = good.split('.') as [string, string, string];
    // 32-byte HS256 MAC = 43 characters; the last one carries 2 unused bits. Setting one gives a
    // second spelling of the same MAC.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const twin = s.slice(0, -1) + alphabet[alphabet.indexOf(s.at(-1)!) | 1];
    assert.notEqual(twin, s);
    await compactVerify(`${h}.${p}.${twin}`, secretKey); // jose on its own: accepted
    const spellings = [`${h}.${p}.${twin}`, `${h}.${p}.${s}=`, `${h}.${p}. ${s}`, `${h}.${p}.${s.slice(0, 10)}\t${s.slice(10)}`, `${h}=.${p}.${s}`];
    for (const spelling of spellings) {
      const r = authn.authenticate({ authorization: `Bearer ${spelling}` });
      assertSync(r);
      await expectFailure(r, 'invalid_token');
    }
  });

  it('never echoes the token in the error', async () => {
    const { clock, authn } = setup({ audience: 'gateway' });
    const t = await sign({ sub: 'alice', aud: 'other', exp: T0 + 1 });
    const [, payload, signature] = t.split('.') as [string, string, string];
    const errs = [await expectFailure(authn.authenticate(bearer(t)), 'invalid_token')];
    clock.advance(3_600_000);
    errs.push(await expectFailure(authn.authenticate(bearer(await sign({ sub: 'alice', aud: 'gateway', exp: T0 + 1 }))), 'token_expired'));
    errs.push(await expectFailure(authn.authenticate(bearer(t.slice(0, -2))), 'invalid_token'));
    for (const err of errs) {
      const text = `${err.message} ${String(err.cause)} ${JSON.stringify(err.headers)} ${err.stack}`;
      assert.ok(!text.includes(signature) && !text.includes(payload) && !text.includes('alice'), text);
    }
  });
});
