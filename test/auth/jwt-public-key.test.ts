import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, it } from 'node:test';
import { exportJWK, SignJWT } from 'jose';
import { createAuthenticator } from '../../src/auth/index.js';
import type { AuthConfig } from '../../src/config/index.js';
import { SECRET, authConfig, bearer, expectFailure, expectOk, hmacToken } from './helpers.js';

/** Node KeyObjects, so one RSA private key can sign with every RS and PS algorithm. */
function keyPair(type: 'rsa' | 'P-256' | 'P-384' | 'ed25519') {
  const { publicKey, privateKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ed25519'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('ec', { namedCurve: type });
  return { pem: publicKey.export({ type: 'spki', format: 'pem' }) as string, publicKey, privateKey };
}

function sign(privateKey: KeyObject, alg: string, claims: Record<string, unknown> = { sub: 'alice' }, header: Record<string, unknown> = {}) {
  return new SignJWT(claims).setProtectedHeader({ ...header, alg }).sign(privateKey);
}

function authWith(over: Partial<AuthConfig>) {
  return createAuthenticator(authConfig(over));
}

describe('JWTs signed with an RSA key (jwt_public_key PEM)', () => {
  const rsa = keyPair('rsa');

  it('accepts RS256 with the configured public key', async () => {
    const r = await expectOk(authWith({ jwt_public_key: rsa.pem }).authenticate(bearer(await sign(rsa.privateKey, 'RS256'))));
    assert.deepEqual(r, { ok: true, consumer: 'alice', method: 'jwt' });
  });

  it('accepts every RS and PS algorithm by default, and only the pinned ones when jwt_algorithms is set', async () => {
    const open = authWith({ jwt_public_key: rsa.pem });
    const pinned = authWith({ jwt_public_key: rsa.pem, jwt_algorithms: ['RS256'] });
    for (const alg of ['RS384', 'RS512', 'PS256', 'PS384', 'PS512']) {
      const t = await sign(rsa.privateKey, alg);
      await expectOk(open.authenticate(bearer(t)));
      await expectFailure(pinned.authenticate(bearer(t)), 'invalid_token');
    }
  });

  it('rejects a token signed by another RSA key', async () => {
    const other = keyPair('rsa');
    await expectFailure(authWith({ jwt_public_key: rsa.pem }).authenticate(bearer(await sign(other.privateKey, 'RS256'))), 'invalid_token');
  });

  it('rejects HS/RS key confusion: a token HMAC-signed with the public key PEM as the secret', async () => {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      for (const secret of [rsa.pem, rsa.pem.trim(), Buffer.from(JSON.stringify(await exportJWK(rsa.publicKey)))]) {
        const confused = hmacToken({ alg, typ: 'JWT' }, { sub: 'admin' }, secret);
        await expectFailure(authWith({ jwt_public_key: rsa.pem }).authenticate(bearer(confused)), 'invalid_token');
        // With a secret configured as well, HS tokens are checked against that secret only.
        await expectFailure(authWith({ jwt_public_key: rsa.pem, jwt_secret: SECRET }).authenticate(bearer(confused)), 'invalid_token');
      }
    }
  });

  it('keeps both key kinds working side by side: HS with the secret, RS with the public key', async () => {
    const both = authWith({ jwt_public_key: rsa.pem, jwt_secret: SECRET });
    await expectOk(both.authenticate(bearer(await sign(rsa.privateKey, 'RS256'))));
    await expectOk(both.authenticate(bearer(hmacToken({ alg: 'HS256' }, { sub: 'a' }, SECRET))));
  });

  it('rejects an attacker key embedded in the header as jwk or x5c', async () => {
    const attacker = keyPair('rsa');
    const jwk = await exportJWK(attacker.publicKey);
    const forged = await sign(attacker.privateKey, 'RS256', { sub: 'admin' }, { jwk, x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] });
    await expectFailure(authWith({ jwt_public_key: rsa.pem }).authenticate(bearer(forged)), 'invalid_token');
  });
});

describe('JWTs signed with an EC or Ed25519 key (jwt_public_key PEM)', () => {
  const p256 = keyPair('P-256');
  const p384 = keyPair('P-384');

  it('accepts ES256 with a P-256 public key', async () => {
    await expectOk(authWith({ jwt_public_key: p256.pem }).authenticate(bearer(await sign(p256.privateKey, 'ES256'))));
  });

  it('accepts ES384 with a P-384 key and rejects it with a P-256 key', async () => {
    const t = await sign(p384.privateKey, 'ES384');
    await expectOk(authWith({ jwt_public_key: p384.pem }).authenticate(bearer(t)));
    await expectFailure(authWith({ jwt_public_key: p256.pem }).authenticate(bearer(t)), 'invalid_token');
  });

  it('rejects a token HMAC-signed with the EC public key PEM', async () => {
    const confused = hmacToken({ alg: 'HS256' }, { sub: 'admin' }, p256.pem);
    await expectFailure(authWith({ jwt_public_key: p256.pem }).authenticate(bearer(confused)), 'invalid_token');
  });

  it('rejects an ES256 signature in the wrong (DER) encoding', async () => {
    const t = await sign(p256.privateKey, 'ES256');
    const [h, p, s] = t.split('.') as [string, string, string];
    const raw = Buffer.from(s, 'base64url');
    const der = Buffer.concat([Buffer.from([0x30, 0x44, 0x02, 0x20]), raw.subarray(0, 32), Buffer.from([0x02, 0x20]), raw.subarray(32)]);
    await expectFailure(authWith({ jwt_public_key: p256.pem }).authenticate(bearer(`${h}.${p}.${der.toString('base64url')}`)), 'invalid_token');
  });

  it('accepts EdDSA with an Ed25519 public key', async () => {
    const ed = keyPair('ed25519');
    await expectOk(authWith({ jwt_public_key: ed.pem }).authenticate(bearer(await sign(ed.privateKey, 'EdDSA'))));
    await expectFailure(authWith({ jwt_public_key: p256.pem }).authenticate(bearer(await sign(ed.privateKey, 'EdDSA'))), 'invalid_token');
  });
});
