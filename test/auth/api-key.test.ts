import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAuthenticator } from '../../src/auth/index.js';
import { assertSync, authConfig, expectFailure, expectOk } from './helpers.js';

const KEYS = ['key-abc123-first', { id: 'billing-service', key: 'key-xyz789-second' }, 'key-third-0000000'];

describe('API keys', () => {
  const authn = createAuthenticator(authConfig({ api_keys: KEYS }));

  it('accepts a configured bare key and names the consumer by its 1-based position', async () => {
    const first = await expectOk(authn.authenticate({ 'x-api-key': 'key-abc123-first' }));
    assert.deepEqual(first, { ok: true, consumer: 'api-key-1', method: 'api_key' });
    const third = await expectOk(authn.authenticate({ 'x-api-key': 'key-third-0000000' }));
    assert.equal(third.consumer, 'api-key-3');
  });

  it('names the consumer of an {id, key} entry by its id', async () => {
    const r = await expectOk(authn.authenticate({ 'x-api-key': 'key-xyz789-second' }));
    assert.equal(r.consumer, 'billing-service');
  });

  it('decides an API key synchronously, without a promise', () => {
    const ok = authn.authenticate({ 'x-api-key': 'key-abc123-first' });
    assertSync(ok);
    assert.equal(ok.ok, true);
    const bad = authn.authenticate({ 'x-api-key': 'wrong-key-000000' });
    assertSync(bad);
    assert.equal(bad.ok, false);
  });

  it('rejects a wrong key with invalid_api_key and a Bearer challenge', async () => {
    const err = await expectFailure(authn.authenticate({ 'x-api-key': 'wrong-key-000000' }), 'invalid_api_key');
    assert.equal(err.headers?.['WWW-Authenticate'], 'Bearer realm="microgate"');
  });

  it('rejects near misses: a prefix, an extension, another case, surrounding spaces', async () => {
    for (const near of ['key-abc123-firs', 'key-abc123-first1', 'KEY-ABC123-FIRST', ' key-abc123-first', 'key-abc123-first ', 'key-abc123-first\0']) {
      await expectFailure(authn.authenticate({ 'x-api-key': near }), 'invalid_api_key');
    }
  });

  it('rejects a repeated X-API-Key header even when one of the values is valid', async () => {
    // Node joins repeated unknown headers with ", "; an array may come from other callers.
    await expectFailure(authn.authenticate({ 'x-api-key': 'key-abc123-first, key-third-0000000' }), 'invalid_api_key');
    await expectFailure(authn.authenticate({ 'x-api-key': ['key-abc123-first', 'key-abc123-first'] }), 'invalid_api_key');
  });

  it('treats an empty X-API-Key as no credentials', async () => {
    await expectFailure(authn.authenticate({ 'x-api-key': '' }), 'missing_credentials');
  });

  it('handles a very long presented key like any other wrong key', async () => {
    await expectFailure(authn.authenticate({ 'x-api-key': 'k'.repeat(100_000) }), 'invalid_api_key');
  });

  it('never puts the key itself in a consumer id, result or error', async () => {
    const keys = ['secret-key-aaaa1111', { id: 'svc', key: 'secret-key-bbbb2222' }];
    const a = createAuthenticator(authConfig({ api_keys: keys }));
    for (const presented of ['secret-key-aaaa1111', 'secret-key-bbbb2222', 'secret-key-cccc3333']) {
      const r = await a.authenticate({ 'x-api-key': presented });
      const seen = JSON.stringify(r) + (r.ok ? r.consumer : `${r.error.message} ${String(r.error.cause)} ${JSON.stringify(r.error.headers)}`);
      assert.ok(!seen.includes('secret-key'), `key leaked: ${seen}`);
    }
  });

  it('finds every one of many configured keys, and none of a thousand near misses of them', async () => {
    const many = Array.from({ length: 50 }, (_, i) => `configured-key-${i}-${'x'.repeat(i)}`);
    const a = createAuthenticator(authConfig({ api_keys: many }));
    for (let i = 0; i < many.length; i++) {
      const r = await expectOk(a.authenticate({ 'x-api-key': many[i]! }));
      assert.equal(r.consumer, `api-key-${i + 1}`);
    }
    for (let i = 0; i < 1000; i++) {
      const k = many[i % many.length]!;
      const at = i % k.length;
      const near = k.slice(0, at) + String.fromCharCode(k.charCodeAt(at) ^ (1 << (i % 16))) + k.slice(at + 1);
      await expectFailure(a.authenticate({ 'x-api-key': near }), 'invalid_api_key');
    }
  });
});
