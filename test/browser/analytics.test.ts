/**
 * The dashboard's traffic analytics view in a real browser against a real gateway: `bin/microgate`
 * (built) learning from 1 s buckets, real `bin/microgate-testbackend` processes, headless Debian
 * Chromium through playwright-core (never a downloaded browser). Traffic goes through the gateway:
 * steady, then a spike. Needs `npm run build` first (npm test does it).
 * Leaves test-artifacts/analytics.png behind: the view after the spike.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumSkipReason, freePorts, launchChromium, stopChild, until, watchPage } from './browser.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GATEWAY_BIN = process.env.MICROGATE_TEST_GATEWAY ?? join(ROOT, 'bin', 'microgate');
const BACKEND_BIN = join(ROOT, 'bin', 'microgate-testbackend');
const ARTIFACTS = join(ROOT, 'test-artifacts');
const ROUTES = ['/api/v1', '/api/v2', '/api/idle'];

const skip = chromiumSkipReason();


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stop = stopChild;

interface Running {
  base: string;
  dir: string;
  gateway: ChildProcess;
  output: () => string;
}

/**
 * A gateway on a free port, up and listening, with the dashboard on (loopback admin, warn logs),
 * `routes` (the indented items of `routes:`) and `extra` (more top-level blocks).
 */
async function startGateway(routes: string, extra = ''): Promise<Running> {
  const [port] = await freePorts(1);
  const dir = await mkdtemp(join(tmpdir(), 'microgate-analytics-'));
  const file = join(dir, 'microgate.yml');
  await writeFile(
    file,
    `
server:
  port: ${port}
  host: 127.0.0.1
routes:
${routes}dashboard:
  enabled: true
admin:
  allow_loopback: true
logging:
  level: warn
${extra}`,
  );
  const gateway = spawn(process.execPath, [GATEWAY_BIN, '--config', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-20_000);
  };
  gateway.stdout!.on('data', collect);
  gateway.stderr!.on('data', collect);
  const exited = new Promise<never>((_, reject) => gateway.once('exit', (code, signal) => reject(new Error(`gateway exited early (${code ?? signal}):\n${out}`))));
  exited.catch(() => {});
  await Promise.race([until('the gateway to listen', () => out.includes('listening on'), 20_000), exited]);
  return { base: `http://127.0.0.1:${port}`, dir, gateway, output: () => out };
}

/** Sends `perSecond` GETs a second to `path` for `seconds`, paced, one at a time per worker (bounded). */
async function traffic(base: string, path: string, perSecond: number, seconds: number, workers = 1): Promise<number> {
  const total = Math.round(perSecond * seconds);
  let sent = 0;
  let ok = 0;
  const start = Date.now();
  const worker = async (w: number) => {
    for (let i = w; i < total; i += workers) {
      const due = start + (i / perSecond) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      sent++;
      const res = await fetch(`${base}${path}/item/${i}`);
      await res.arrayBuffer();
      if (res.status === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  assert.equal(sent, total);
  return ok;
}

describe('traffic analytics view in Chromium', { skip, timeout: 240_000 }, () => {
  let gw: Running | undefined;
  const backends: ChildProcess[] = [];
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const problems: string[] = [];
  const card = (route: string) => page.locator(`[data-testid="route-card"][data-route="${route}"]`);

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'microgate.js')), 'gateway not built: run `npm run build`');
    assert.ok(existsSync(join(ROOT, 'web', 'dashboard', 'dist', 'index.html')), 'dashboard not built: run `npm run build:dashboard`');
    // The browser first: the page must open while the routes are still learning.
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1440, height: 1200 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    watchPage(page, problems);

    const ports = await freePorts(3);
    for (const [i, port] of ports.entries()) {
      const args = [BACKEND_BIN, '--port', String(port), '--quiet'];
      if (i === 1) args.push('--latency-ms', '4', '--jitter-ms', '3');
      backends.push(spawn(process.execPath, args, { stdio: 'ignore' }));
    }
    for (const port of ports) await until(`backend :${port}`, async () => (await fetch(`http://127.0.0.1:${port}/`)).ok, 15_000, 100);
    const [a, b, c] = ports;
    gw = await startGateway(
      `  - path: /api/v1
    backends: ["http://127.0.0.1:${a}", "http://127.0.0.1:${b}"]
  - path: /api/v2
    backend: "http://127.0.0.1:${c}"
  - path: /api/idle
    backend: "http://127.0.0.1:${c}"
`,
      `analytics:
  enabled: true
  bucket_interval: 1s
  analyzer_interval: 1s
  window: 20s
  retention: 10m
`,
    );
  });

  after(async () => {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await stop(gw?.gateway);
    await Promise.all(backends.map(stop));
    if (gw) await rm(gw.dir, { recursive: true, force: true });
  });

  test('lists every configured route, in config order, each learning with the data it has so far', async () => {
    await page.goto(`${gw!.base}/dashboard/#analytics`, { waitUntil: 'load' });
    await page.getByTestId('analytics-view').waitFor({ timeout: 5000 });
    await until('the route cards', async () => (await page.getByTestId('route-card').count()) === ROUTES.length, 8000);
    const shown = await page.getByTestId('route-card').evaluateAll((els) => els.map((e) => e.getAttribute('data-route')));
    assert.deepEqual(shown, ROUTES);
    // Fresh gateway: every route is still learning, and says how far it has got.
    for (const route of ROUTES) {
      assert.equal(await card(route).getAttribute('data-learning'), 'true', `${route} is learning`);
      assert.match(await card(route).getByTestId('route-learning').innerText(), /learning… \d+/);
    }
    assert.equal(await page.getByTestId('analytics-off').count(), 0);
    assert.deepEqual(problems, []);
  });

  test('steady traffic draws a chart with data and a learned baseline; backends show latency and errors', async () => {
    // About 20 s of steady traffic: enough for a baseline over a 20 s window.
    await Promise.all([traffic(gw!.base, '/api/v1', 10, 20, 2), traffic(gw!.base, '/api/v2', 4, 20)]);
    await until('the /api/v1 chart to show the traffic', async () => Number(await card('/api/v1').getByTestId('route-chart').getAttribute('data-max-rate')) > 0, 10_000, 250);
    assert.ok(Number(await card('/api/v1').getByTestId('route-chart').getAttribute('data-points')) >= 3);
    assert.equal(await card('/api/v1').locator('.route-chart canvas').count(), 1);
    await until('a learned rate for /api/v1', async () => /\d+\/min/.test(await card('/api/v1').getByTestId('route-baseline').innerText()), 10_000, 250);
    const baseline = Number.parseFloat((await card('/api/v1').getByTestId('route-baseline').innerText()).replace(/[^\d.]/g, ' ').trim());
    assert.ok(baseline > 200 && baseline < 1200, `a baseline near 600/min, got ${baseline}`);
    // No limit is configured: the card says so and the chart draws none.
    assert.equal(await card('/api/v1').getByTestId('route-limit').locator('dd').innerText(), 'none');
    // The backends that served traffic, with a p99.
    await until('backend rows with latency', async () => {
      const rows = page.getByTestId('backend-row');
      if ((await rows.count()) < 3) return false;
      const p99s = await page.getByTestId('backend-p99').allInnerTexts();
      return p99s.filter((t) => /\d/.test(t)).length >= 3;
    }, 10_000, 250);
    assert.deepEqual(problems, []);
  });

  test('a spike on one route shows an anomaly marker on its chart and in the list', async () => {
    // 10x the steady rate for 6 s, the other route steady beside it; watched while it happens.
    const spike = Promise.all([traffic(gw!.base, '/api/v1', 100, 6, 8), traffic(gw!.base, '/api/v2', 4, 6)]);
    try {
      await card('/api/v1').getByTestId('anomaly-marker').first().waitFor({ state: 'attached', timeout: 15_000 });
      assert.match((await card('/api/v1').getByTestId('anomaly-marker').first().getAttribute('title')) ?? '', /vs normal/);
      // The spike itself in the chart (its history refetches on the anomaly event).
      await until('the spike in the chart', async () => Number(await card('/api/v1').getByTestId('route-chart').getAttribute('data-max-rate')) >= 2000, 10_000, 250);
      await mkdir(ARTIFACTS, { recursive: true });
      const file = join(ARTIFACTS, 'analytics.png');
      await page.screenshot({ path: file, fullPage: true });
      assert.ok((await stat(file)).size > 20_000);
    } finally {
      await spike;
    }
    await page.locator('[data-testid="anomaly-row"][data-route="/api/v1"]').first().waitFor({ timeout: 5000 });
    assert.equal(await page.locator('[data-testid="anomaly-row"][data-route="/api/idle"]').count(), 0, 'a route without traffic raised nothing');
    assert.deepEqual(problems, []);
  });

  test('the range selector asks for 6 h and 48 h and still draws the data', async () => {
    for (const range of ['6h', '48h', '1h']) {
      await page.getByTestId(`range-${range}`).click();
      await page.locator(`[data-testid="range-${range}"][aria-pressed="true"]`).waitFor({ timeout: 2000 });
      await until(
        `the ${range} chart`,
        async () => (await card('/api/v1').getAttribute('data-history-range')) === range && Number(await card('/api/v1').getByTestId('route-chart').getAttribute('data-max-rate')) > 0,
        8000,
        250,
      );
    }
    assert.deepEqual(problems, []);
  });
});

describe('traffic analytics view with analytics off', { skip, timeout: 120_000 }, () => {
  let gw: Running | undefined;
  let browser: Browser | undefined;

  before(async () => {
    const [dead] = await freePorts(1);
    gw = await startGateway(`  - path: /api
    backend: "http://127.0.0.1:${dead}"
`);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await stop(gw?.gateway);
    if (gw) await rm(gw.dir, { recursive: true, force: true });
  });

  test('says analytics is off and how to turn it on, instead of an error', async () => {
    const page = await browser!.newPage();
    const problems: string[] = [];
    watchPage(page, problems);
    await page.goto(`${gw!.base}/dashboard/#analytics`, { waitUntil: 'load' });
    const off = page.getByTestId('analytics-off');
    await off.waitFor({ timeout: 8000 });
    assert.match(await off.innerText(), /Analytics is off/);
    assert.match(await off.innerText(), /analytics\.enabled: true/);
    assert.equal(await page.getByTestId('analytics-error').count(), 0);
    // The 404s of /analytics/* are how the gateway says it; anything else is a problem.
    assert.deepEqual(
      problems.filter((p) => !/HTTP 404: GET .*\/analytics\//.test(p) && !/status of 404/.test(p)),
      [],
    );
    // Back to the overview: the usual dashboard.
    await page.getByTestId('nav-overview').click();
    await page.getByTestId('metric-rpm').waitFor({ timeout: 5000 });
    await page.close();
  });
});
