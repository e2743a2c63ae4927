/**
 * Attacks the security review found already held, where no test showed it yet: a flood of
 * dashboard event streams, and X-Forwarded-For claiming loopback to reach the admin surface.
 * (The others are pointed to from docs/security.md.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_STREAMS } from '../../src/dashboard/index.js';
import { call, SseReader, startGateway } from '../dashboard/helpers.js';

const TOKEN = 'an-admin-token-for-the-held-attack-tests';

describe('access control: attacks that held', () => {
  it('caps dashboard event streams: the stream after the cap gets 503 too_many_streams and the API still answers', async (t) => {
    const { url } = await startGateway(t, 'routes: []\n');
    const open: SseReader[] = [];
    t.after(() => {
      for (const r of open) r.close();
    });
    for (let i = 0; i < MAX_STREAMS; i++) {
      const r = await SseReader.open(url);
      assert.equal(r.status, 200);
      open.push(r);
    }
    const refused = await call(url, 'GET', '/dashboard/api/stream', { headers: { accept: 'text/event-stream' } });
    assert.equal(refused.status, 503, refused.body);
    assert.equal(refused.json.error.code, 'too_many_streams');
    assert.equal((await call(url, 'GET', '/dashboard/api/routes')).status, 200);
  });

  it('never admits an admin caller because X-Forwarded-For claims loopback, even through a trusted proxy', async (t) => {
    const { url } = await startGateway(
      t,
      `routes: []\nserver:\n  trusted_proxies: ["127.0.0.1"]\nadmin:\n  token: ${TOKEN}\n  allow_loopback: false\n`,
    );
    for (const xff of ['127.0.0.1', '::1', '203.0.113.9, 127.0.0.1']) {
      const r = await call(url, 'GET', '/dashboard/api/processes', { headers: { 'x-forwarded-for': xff } });
      assert.equal(r.status, 401, `${xff}: ${r.body}`);
    }
  });
});
