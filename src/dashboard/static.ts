/**
 * The built UI (web/dashboard/dist) at /dashboard/: content types, long-lived caching for the
 * hashed files under assets/, no-cache for index.html, SPA fallback for other extension-less
 * paths, and no way out of the dist directory (dot segments, backslashes and NUL are refused,
 * and the resolved real path must stay inside).
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';
import { fail, methodNotAllowed } from './http.js';

export const UI_PREFIX = '/dashboard/';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';
/**
 * The page loads only its own files and talks only to its own origin; it may not be framed
 * (its buttons start and stop processes).
 */
const HTML_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

type Target = { kind: 'file'; rel: string } | { kind: 'bad' } | { kind: 'hidden' };

/** Maps the URL path below /dashboard/ to a file path relative to dist, refusing anything odd. */
function target(path: string): Target {
  let rel: string;
  try {
    rel = decodeURIComponent(path.slice(UI_PREFIX.length));
  } catch {
    return { kind: 'bad' };
  }
  if (rel.includes('\0') || rel.includes('\\')) return { kind: 'bad' };
  const segs = rel.split('/');
  for (const s of segs) {
    if (s === '.' || s === '..') return { kind: 'bad' };
    if (s.startsWith('.')) return { kind: 'hidden' };
  }
  if (rel === '' || rel.endsWith('/')) rel += 'index.html';
  return { kind: 'file', rel };
}

/** Static UI handler for paths under /dashboard/ that are not the API. */
export function staticUi(distDir: string) {
  const root = distDir.endsWith(sep) ? distDir.slice(0, -1) : distDir;
  let realRoot: string | null = null;

  async function resolveFile(rel: string): Promise<{ file: string; size: number; mtimeMs: number } | null> {
    realRoot ??= await realpath(root);
    const file = join(root, rel);
    if (!file.startsWith(root + sep)) return null;
    try {
      const real = await realpath(file);
      if (!real.startsWith(realRoot + sep)) return null;
      const st = await stat(real);
      return st.isFile() ? { file: real, size: st.size, mtimeMs: st.mtimeMs } : null;
    } catch {
      return null;
    }
  }

  function send(req: IncomingMessage, res: ServerResponse, f: { file: string; size: number; mtimeMs: number }, cacheControl: string, isHtml: boolean): void {
    const etag = `W/"${f.size.toString(16)}-${Math.floor(f.mtimeMs).toString(16)}"`;
    res.setHeader('content-type', CONTENT_TYPES[extname(f.file).toLowerCase()] ?? 'application/octet-stream');
    res.setHeader('cache-control', cacheControl);
    res.setHeader('etag', etag);
    res.setHeader('x-content-type-options', 'nosniff');
    if (isHtml) for (const [k, v] of Object.entries(HTML_HEADERS)) res.setHeader(k, v);
    if (req.headers['if-none-match'] === etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.setHeader('content-length', f.size);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(f.file);
    stream.once('error', () => res.destroy());
    res.once('close', () => stream.destroy());
    stream.pipe(res);
  }

  async function serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(req, res, 'GET, HEAD');
    const index = await resolveFile('index.html').catch(() => null);
    if (index === null) {
      return fail(res, 503, 'dashboard_not_built', `The dashboard UI is not built (no index.html in ${root}): run \`npm run build\``);
    }
    const t = target(path);
    if (t.kind === 'bad') return fail(res, 400, 'bad_request', 'Invalid dashboard path');
    if (t.kind === 'hidden') return fail(res, 404, 'not_found', `Nothing at ${path}`);
    if (t.rel === 'index.html') return send(req, res, index, 'no-cache', true);
    const f = await resolveFile(t.rel);
    const isAsset = t.rel.startsWith('assets/');
    if (f !== null) return send(req, res, f, isAsset ? IMMUTABLE : 'no-cache', extname(f.file) === '.html');
    // A client-side route (no file extension, not an asset) gets the app; a missing file is a 404.
    if (isAsset || extname(t.rel) !== '') return fail(res, 404, 'not_found', `Nothing at ${path}`);
    send(req, res, index, 'no-cache', true);
  }

  return function dashboardStatic(req: IncomingMessage, res: ServerResponse, path: string): void {
    serve(req, res, path).catch(() => {
      if (!res.headersSent) fail(res, 500, 'internal_error', 'Internal Server Error');
      else res.destroy();
    });
  };
}
