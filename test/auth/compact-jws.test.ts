import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bearerToken, isCanonicalCompactJws } from '../../src/auth/compact-jws.js';

describe('canonical compact JWS shape', () => {
  it('accepts three canonical base64url parts, the payload possibly empty', () => {
    for (const token of ['eyJhbGciOiJIUzI1NiJ9.e30.c2ln', 'eyJhbGciOiJIUzI1NiJ9..c2ln', 'YQ.YWI.YWJj', 'AA.AAA.AAAA', '-w.-_-w.____']) {
      assert.equal(isCanonicalCompactJws(token), true, token);
    }
  });

  it('rejects a wrong number of parts, an empty header or an empty signature', () => {
    for (const token of ['', 'YQ', 'YQ.YQ', 'YQ.YQ.YQ.YQ', 'YQ.YQ.YQ.', '.YQ.YQ', 'YQ.YQ.', '..', '...']) {
      assert.equal(isCanonicalCompactJws(token), false, JSON.stringify(token));
    }
  });

  it('rejects padding, whitespace, the standard alphabet and non-ASCII characters', () => {
    for (const token of ['YQ==.YQ.YQ', 'YQ.YQ.YQ=', 'YQ.Y Q.YQ', 'YQ.YQ.Y\tQ', 'YQ\n.YQ.YQ', 'a+b/.YQ.YQ', 'YQ.YQ.Y?', 'YQ.é.YQ', 'YQ.YQ.YQ\u0000']) {
      assert.equal(isCanonicalCompactJws(token), false, JSON.stringify(token));
    }
  });

  it('rejects a length of 1 mod 4 and non-zero unused bits in the last character', () => {
    // "YQ" is the canonical spelling of "a"; "YR".."YT" decode to the same byte with unused bits set.
    for (const part of ['YR', 'YS', 'YT', 'YWJk', 'YWI', 'YWJ', 'YWK', 'Y', 'YWJjZ']) {
      const canonical = Buffer.from(Buffer.from(part, 'base64url')).toString('base64url') === part && part.length % 4 !== 1;
      assert.equal(isCanonicalCompactJws(`YQ.${part}.YQ`), canonical, part);
    }
  });
});

describe('the Bearer scheme', () => {
  it('extracts the token after the scheme and any number of spaces', () => {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer    abc'), 'abc');
  });

  it('returns null for another scheme and undefined for a Bearer without a token', () => {
    for (const value of ['Basic abc', 'Bearerabc', 'Bear abc', '', 'abc']) assert.equal(bearerToken(value), null, value);
    for (const value of ['Bearer', 'Bearer ', 'BEARER   ']) assert.equal(bearerToken(value), undefined, value);
  });
});
