import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { call, startGateway } from './helpers.js';

/** The package's built UI. */
const BUILT = fileURLToPath(new URL('../../web/dashboard/dist/', import.meta.url));
const INDEX = '<!doctype html><title>MicroGate test UI</title><div id="root"></div>';

/** A dist directory with an index, hashed assets, a dotfile and a symlink pointing outside. */
async function fixture(t: TestContext): Promise<{ dist: string; root: string }> {
  const root = await mkdtemp(join(tmpdir(), 'microgate-ui-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const dist = join(root, 'dist');
  await mkdir(join(dist, 'assets'), { recursive: true });
  await writeFile(join(dist, 'index.html'), INDEX);
  await writeFile(join(dist, 'assets', 'app-abc123.js'), 'console.log("app")');
  await writeFile(join(dist, 'assets', 'style-x1.css'), 'body{color:red}');
  await writeFile(join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(join(dist, '.env'), 'TOP SECRET');
  await writeFile(join(root, 'secret.txt'), 'TOP SECRET');
  await symlink(join(root, 'secret.txt'), join(dist, 'assets', 'link.js'));
  return { dist, root };
}

/**
 * `dashboard.enabled: false` keeps a gateway that mounts the dashboard itself from doing so, so
 * this test's mount (with its own dist directory) is the one that answers.
 */
async function ui(t: TestContext, distDir?: string) {
  return startGateway(t, 'routes: []\ndashboard: { enabled: false }\n', { dashboard: distDir === undefined ? {} : { distDir } });
}

describe('dashboard static UI', () => {
  it('serves index.html at /dashboard/ uncached, with a strict content security policy', async (t) => {
    const { dist } = await fixture(t);
    const { url } = await ui(t, dist);
    const r = await call(url, 'GET', '/dashboard/');
    assert.equal(r.status, 200);
    assert.equal(r.body, INDEX);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.match(String(r.headers['content-security-policy']), /connect-src 'self'/);
    assert.equal((await call(url, 'GET', '/dashboard/index.html')).body, INDEX);
  });

  it('redirects /dashboard to /dashboard/ keeping the query', async (t) => {
    const { dist } = await fixture(t);
    const { url } = await ui(t, dist);
    const r = await call(url, 'GET', '/dashboard');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/dashboard/');
    assert.equal((await call(url, 'GET', '/dashboard?tab=logs')).headers.location, '/dashboard/?tab=logs');
  });

  it('serves hashed assets with their content type and immutable caching, other files revalidated', async (t) => {
    const { dist } = await fixture(t);
    const { url } = await ui(t, dist);
    const js = await call(url, 'GET', '/dashboard/assets/app-abc123.js');
    assert.equal(js.status, 200);
    assert.equal(js.body, 'console.log("app")');
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    const css = await call(url, 'GET', '/dashboard/assets/style-x1.css');
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(css.headers['cache-control'], 'public, max-age=31536000, immutable');
    const svg = await call(url, 'GET', '/dashboard/favicon.svg');
    assert.equal(svg.headers['content-type'], 'image/svg+xml');
    assert.equal(svg.headers['cache-control'], 'no-cache');
  });

  it('answers HEAD with headers only and 304 to a matching If-None-Match', async (t) => {
    const { dist } = await fixture(t);
    const { url } = await ui(t, dist);
    const head = await call(url, 'HEAD', '/dashboard/assets/app-abc123.js');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String('console.log("app")'.length));
    const etag = String(head.headers.etag);
    const again = await call(url, 'GET', '/dashboard/', { headers: { 'if-none-match': String((await call(url, 'HEAD', '/dashboard/')).headers.etag) } });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    assert.ok(etag.length > 0);
  });

  it('falls back to index.html for client-side routes but 404s missing assets and files', async (t) => {
    const { dist } = await fixture(t);
    const { url } = await ui(t, dist);
    for (const p of ['/dashboard/processes', '/dashboard/logs/abc-123']) {
      const r = await call(url, 'GET', p);
      assert.equal(r.status, 200, p);
      assert.equal(r.body, INDEX);
      assert.equal(r.headers['cache-control'], 'no-cache');
    }
    for (const p of ['/dashboard/assets/missing-123.js', '/dashboard/assets/sub', '/dashboard/missing.png']) {
      const r = await call(url, 'GET', p);
      assert.equal(r.status, 404, p);
      assert.equal(r.json.error.code, 'not_found');
    }
  });

  it('never serves a file outside dist, a dotfile, or through a symlink leading out', async (t) => {
    const { dist } = await fixture(t);
    const { url } = await ui(t, dist);
    const attempts: [string, number][] = [
      ['/dashboard/../secret.txt', 400],
      ['/dashboard/assets/../../secret.txt', 400],
      ['/dashboard/%2e%2e/secret.txt', 400],
      ['/dashboard/%2E%2E%2Fsecret.txt', 400],
      ['/dashboard/assets/..%2f..%2fsecret.txt', 400],
      ['/dashboard/..%5csecret.txt', 400],
      ['/dashboard/..\\secret.txt', 400],
      ['/dashboard/index.html%00.js', 400],
      ['/dashboard/%E0%A4%A', 400],
      ['/dashboard/.env', 404],
      ['/dashboard/assets/link.js', 404],
    ];
    for (const [p, status] of attempts) {
      const r = await call(url, 'GET', p);
      assert.equal(r.status, status, p);
      assert.equal(r.body.includes('TOP SECRET'), false, p);
      assert.equal(r.headers['content-type'], 'application/json', p);
    }
    const abs = await call(url, 'GET', `/dashboard/${resolve(dist, '..', 'secret.txt')}`);
    assert.equal(abs.body.includes('TOP SECRET'), false, 'an absolute path stays inside dist');
  });

  it('answers only GET and HEAD (405 with Allow)', async (t) => {
    const { dist } = await fixture(t);
    const { url } = await ui(t, dist);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await call(url, method, '/dashboard/');
      assert.equal(r.status, 405);
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
  });

  it('answers 503 JSON telling to run npm run build when the UI is not built', async (t) => {
    const { url } = await ui(t, join(tmpdir(), 'microgate-no-such-dist-dir'));
    for (const p of ['/dashboard/', '/dashboard/assets/app.js', '/dashboard/processes']) {
      const r = await call(url, 'GET', p);
      assert.equal(r.status, 503, p);
      assert.equal(r.json.error.code, 'dashboard_not_built');
      assert.match(r.json.error.message, /npm run build/);
    }
    assert.equal((await call(url, 'GET', '/dashboard/api/routes')).status, 200, 'the API works without the UI');
  });

  it('serves web/dashboard/dist of the package by default', async (t) => {
    const { dashboard } = await ui(t);
    assert.equal(dashboard.distDir, BUILT);
  });

  it('serves the built UI with every script and stylesheet loading from /dashboard/assets/', { skip: existsSync(join(BUILT, 'index.html')) ? false : 'web/dashboard/dist not built (npm run build)' }, async (t) => {
    const { url } = await ui(t);
    const page = await call(url, 'GET', '/dashboard/');
    assert.equal(page.status, 200);
    const refs = [...page.body.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.length > 0, 'the page references its assets');
    for (const ref of refs) {
      assert.ok(ref.startsWith('/dashboard/assets/'), `${ref} is under /dashboard/assets/ (vite base)`);
      const r = await call(url, 'GET', ref);
      assert.equal(r.status, 200, ref);
      assert.match(String(r.headers['content-type']), ref.endsWith('.css') ? /^text\/css/ : /^text\/javascript/);
      assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
    }
  });
});
