/**
 * POST /dashboard/api/reload and what a reload tells operators: the JSON result, 422 with every
 * problem at file:line:col for an invalid file (nothing changes), the `config` SSE event, and
 * gateway_config_reloads_total.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request } from 'undici';
import { SseReader } from '../dashboard/helpers.js';
import { startBackend } from '../helpers/gateway.js';
import { get, postReload, sample, startFromFile } from './helpers.js';

const QUIET = `analytics:\n  enabled: false\nlogging:\n  level: silent\n`;

describe('POST /dashboard/api/reload', () => {
  it('answers what changed and streams a config event', async (t) => {
    const a = await startBackend(t);
    const { gw, write } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}`);
    const sse = await SseReader.open(gw.url);
    t.after(() => sse.close());
    await write(`routes:\n  - path: /a\n    backend: ${a.url}\n  - path: /b\n    backend: ${a.url}\n${QUIET}`);
    const out = await postReload(gw.url);
    assert.equal(out.status, 200);
    assert.equal(out.body.result, 'success');
    assert.deepEqual(out.body.routes, { added: ['/b'], removed: [], changed: [] });
    assert.deepEqual(out.body.restart_required, []);
    assert.equal(out.body.changed, true);
    const ev = await sse.until((r) => r.of('config')[0], 5_000, 'a config event');
    assert.equal(ev.result, 'success');
    assert.deepEqual(ev.routes.added, ['/b']);
  });

  it('an invalid file changes nothing and answers 422 with every problem at file:line:col', async (t) => {
    const a = await startBackend(t);
    const { gw, file, write } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}`);
    const sse = await SseReader.open(gw.url);
    t.after(() => sse.close());
    await write(`routes:\n  - path: /b\n    backend: not-a-url\nratelimit:\n  max_tokens: 0\n  refill_rate: 1\n${QUIET}`);
    const out = await postReload(gw.url);
    assert.equal(out.status, 422);
    assert.equal(out.body.error.code, 'config_invalid');
    assert.equal(out.body.result, 'error');
    const texts: string[] = out.body.problems.map((p: { text: string }) => p.text);
    assert.ok(texts.length >= 2, texts.join('\n'));
    assert.ok(texts.some((s) => s.startsWith(`${file}:3:14 routes[0].backend: `)), texts.join('\n'));
    assert.ok(texts.some((s) => s.startsWith(`${file}:5:15 ratelimit.max_tokens: `)), texts.join('\n'));
    for (const p of out.body.problems) assert.match(p.text, /^\S+:\d+:\d+ \S+: .+/);
    // Nothing changed.
    assert.equal(gw.generation, 0);
    assert.equal((await get(`${gw.url}/a/x`)).status, 200);
    assert.equal((await get(`${gw.url}/b/x`)).status, 404);
    const ev = await sse.until((r) => r.of('config')[0], 5_000, 'a config event');
    assert.equal(ev.result, 'error');
    assert.deepEqual(
      ev.problems.map((p: { text: string }) => p.text),
      texts,
    );
    const metrics = (await get(`${gw.url}/metrics`)).body as string;
    assert.equal(sample(metrics, 'gateway_config_reloads_total{result="failure"}'), 1);
    assert.equal(sample(metrics, 'gateway_config_reloads_total{result="success"}'), 0);

    // Fixed, it goes through.
    await write(`routes:\n  - path: /b\n    backend: ${a.url}\n${QUIET}`);
    assert.equal((await postReload(gw.url)).status, 200);
    assert.equal((await get(`${gw.url}/b/x`)).status, 200);
    const after = (await get(`${gw.url}/metrics`)).body as string;
    assert.equal(sample(after, 'gateway_config_reloads_total{result="success"}'), 1);
  });

  it('follows the mutating-call rules: POST only, JSON content type, same origin', async (t) => {
    const a = await startBackend(t);
    const { gw } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\n${QUIET}`);
    const url = `${gw.url}/dashboard/api/reload`;
    const getRes = await request(url);
    await getRes.body.dump();
    assert.equal(getRes.statusCode, 405);
    const plain = await request(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    await plain.body.dump();
    assert.equal(plain.statusCode, 415);
    const cross = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: '{}' });
    await cross.body.dump();
    assert.equal(cross.statusCode, 403);
    assert.equal(gw.generation, 0);
  });

  it('is admin-guarded: with a token configured, a remote-looking caller without it is refused', async (t) => {
    const a = await startBackend(t);
    const { gw } = await startFromFile(t, `routes:\n  - path: /a\n    backend: ${a.url}\nadmin:\n  token: admin-token-0123456789\n  allow_loopback: false\n${QUIET}`);
    const res = await request(`${gw.url}/dashboard/api/reload`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    await res.body.dump();
    assert.equal(res.statusCode, 401);
    const ok = await request(`${gw.url}/dashboard/api/reload`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer admin-token-0123456789' }, body: '{}' });
    assert.equal(ok.statusCode, 200, await ok.body.text());
    assert.equal(gw.generation, 1);
  });
});
