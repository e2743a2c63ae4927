/**
 * Project Wycheproof JWS vectors (test/fixtures/wycheproof, see its README) run through the
 * gateway's verifier: every case whose key we support must get Wycheproof's verdict, except the
 * few listed in ERRATA, where the file contradicts itself or the RFCs and we assert the correct
 * verdict instead, with the reason.
 *
 * Each group is checked the ways an operator could configure its key:
 *  - oct keys as the HMAC secret (default HS algorithms);
 *  - public keys as a JWKS (the same jose key-set matching jwks_url uses: kid, alg, use, key_ops),
 *    with the default asymmetric algorithms;
 *  - public keys as a PEM jwt_public_key with jwt_algorithms pinned to the key's `alg`, for keys
 *    meant for signatures (a PEM carries no `use`/`key_ops`, so the encryption-key groups do not
 *    apply to it).
 * The verifier's JWS layer is used (signature, algorithm, shape): most payloads are not JWT claims.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createLocalJWKSet, type JWK } from 'jose';
import { JwtVerifier } from '../../src/auth/jwt.js';

interface Vector {
  tcId: number;
  comment: string;
  jws: string;
  result: 'valid' | 'invalid' | 'acceptable';
}
interface Group {
  comment: string;
  private?: JWK;
  public?: JWK;
  tests: Vector[];
}

const file = new URL('../fixtures/wycheproof/wycheproof_json_web_signature_test.json', import.meta.url);
const data = JSON.parse(readFileSync(file, 'utf8')) as { numberOfTests: number; testGroups: Group[] };

/** Verdicts where the vector file is wrong; each value is the verdict a correct verifier gives. */
const ERRATA: Record<number, { verdict: 'valid' | 'invalid'; why: string }> = {
  346: {
    verdict: 'invalid',
    why: 'the key declares "alg": "PS256" but RFC 7520 Figure 20 is a PS384 token; a key is only used with its declared alg (RFC 7517 §4.4)',
  },
  350: { verdict: 'invalid', why: 'same as 346 (the key_ops variant of the group)' },
  367: { verdict: 'valid', why: 'byte-identical to tcId 357 (valid): the padding this case meant to add is missing (C2SP/wycheproof#236)' },
  370: { verdict: 'valid', why: 'byte-identical to tcId 357 (valid), like 367 (C2SP/wycheproof#236)' },
  372: {
    verdict: 'invalid',
    why: 'the header contains "?", not base64url: RFC 7515 §5.2 requires rejection (the same group marks "?" invalid in 361-364, 371)',
  },
  373: { verdict: 'invalid', why: 'the payload contains "?", not base64url; as 372' },
};

/** "ES521" in the RFC 7520 groups' keys is not a JWA name: P-521 keys sign with ES512 (RFC 7518 §3.1). */
function normaliseJwk(jwk: JWK): JWK {
  return jwk.alg === 'ES521' ? { ...jwk, alg: 'ES512' } : jwk;
}

function usableForSignatures(jwk: JWK): boolean {
  return (jwk.use === undefined || jwk.use === 'sig') && (jwk.key_ops === undefined || jwk.key_ops.includes('verify'));
}

const MAX = 65_536;

function verifiersFor(group: Group): Array<[string, JwtVerifier]> {
  if (group.private?.kty === 'oct') {
    return [['HMAC secret', new JwtVerifier({ secret: Buffer.from(group.private.k!, 'base64url'), maxTokenBytes: MAX })]];
  }
  const jwk = normaliseJwk(group.public!);
  const out: Array<[string, JwtVerifier]> = [
    ['JWKS', new JwtVerifier({ keySet: createLocalJWKSet({ keys: [jwk] }), maxTokenBytes: MAX })],
  ];
  if (usableForSignatures(jwk)) {
    const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    out.push(['PEM', new JwtVerifier({ publicKeyPem: pem, algorithms: jwk.alg ? [jwk.alg] : undefined, maxTokenBytes: MAX })]);
  }
  return out;
}

describe('Wycheproof JWS vectors', () => {
  it('the fixture holds the 401 vectors of the pinned commit', () => {
    assert.equal(data.numberOfTests, 401);
    assert.equal(data.testGroups.reduce((n, g) => n + g.tests.length, 0), 401);
  });

  for (const [index, group] of data.testGroups.entries()) {
    for (const [path, verifier] of verifiersFor(group)) {
      const ids = `${group.tests[0]!.tcId}${group.tests.length > 1 ? `-${group.tests.at(-1)!.tcId}` : ''}`;
      it(`group ${index} "${group.comment}" via ${path}: every verdict matches (tcId ${ids})`, async () => {
        const mismatches: string[] = [];
        for (const v of group.tests) {
          const verdict = await verifier.verifySignature(v.jws).then(
            () => 'valid',
            () => 'invalid',
          );
          const expected: string = ERRATA[v.tcId]?.verdict ?? v.result;
          if (expected !== 'acceptable' && verdict !== expected) mismatches.push(`tcId ${v.tcId} ${v.comment}: expected ${expected}, got ${verdict}`);
        }
        assert.deepEqual(mismatches, []);
      });
    }
  }

  it('refuses the whitespace and unused-bit spellings by shape, before jose (which on Node 20 accepts them)', () => {
    const byId = new Map(data.testGroups.flatMap((g) => g.tests.map((t) => [t.tcId, t] as const)));
    const verifier = new JwtVerifier({ secret: Buffer.alloc(32), maxTokenBytes: MAX });
    for (const id of [360, 365, 368, 374, 375]) assert.equal(verifier.acceptsShape(byId.get(id)!.jws), false, `tcId ${id}`);
    assert.equal(verifier.acceptsShape(byId.get(357)!.jws), true);
  });

  it('each erratum names a vector that exists and contradicts the file', () => {
    const byId = new Map(data.testGroups.flatMap((g) => g.tests.map((t) => [t.tcId, t] as const)));
    for (const [id, e] of Object.entries(ERRATA)) {
      const v = byId.get(Number(id));
      assert.ok(v, `tcId ${id} exists`);
      assert.notEqual(v.result, e.verdict, `tcId ${id} really is an erratum`);
    }
    // 367 and 370 are literally the same input as the valid 357.
    assert.equal(byId.get(367)!.jws, byId.get(357)!.jws);
    assert.equal(byId.get(370)!.jws, byId.get(357)!.jws);
  });
});
