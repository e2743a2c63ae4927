/**
 * The dashboard in a real browser against a real gateway: `bin/microgate` (built) with two
 * `bin/microgate-testbackend` processes it manages, driven by headless Debian Chromium through
 * playwright-core (never a downloaded browser). Needs `npm run build` first (npm test does it).
 * Leaves test-artifacts/dashboard.png behind: the dashboard under a little load.
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
/** The gateway entry point; MICROGATE_TEST_GATEWAY runs another script with the same CLI (debugging). */
const GATEWAY_BIN = process.env.MICROGATE_TEST_GATEWAY ?? join(ROOT, 'bin', 'microgate');
const BACKEND_BIN = join(ROOT, 'bin', 'microgate-testbackend');
const ARTIFACTS = join(ROOT, 'test-artifacts');

const skip = chromiumSkipReason();


function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface ApiProcess {
  id: string;
  status: string;
  pid?: number;
  healthy: boolean;
}

describe('dashboard in Chromium', { skip, timeout: 180_000 }, () => {
  let dir = '';
  let base = '';
  let gateway: ChildProcess | undefined;
  let gatewayOutput = '';
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let backendPorts: number[] = [];
  const seenPids = new Set<number>();
  /** Everything that went wrong in the page: failed requests, HTTP errors, console errors. */
  const problems: string[] = [];
  const requestedUrls: string[] = [];

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${base}/dashboard/api${path}`);
    assert.equal(res.status, 200, `GET ${path}`);
    return (await res.json()) as T;
  };
  const processes = async () => {
    const { processes: list } = await api<{ processes: ApiProcess[] }>('/processes');
    for (const p of list) if (p.pid) seenPids.add(p.pid);
    return list;
  };
  const processById = async (id: string) => (await processes()).find((p) => p.id === id);
  const statusOf = (id: string) => page.getByTestId(`process-status-${id}`);
  const waitStatus = (id: string, label: string, timeout = 10_000) =>
    page.locator(`[data-testid="process-status-${id}"][data-status="${label}"]`).waitFor({ timeout });

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'microgate.js')), 'gateway not built: run `npm run build`');
    assert.ok(existsSync(join(ROOT, 'web', 'dashboard', 'dist', 'index.html')), 'dashboard not built: run `npm run build:dashboard`');

    // deadPort: a route whose only backend is down, so the load below has some 5xx too.
    const [gwPort, portA, portB, deadPort] = await freePorts(4);
    backendPorts = [portA!, portB!];
    base = `http://127.0.0.1:${gwPort}`;
    dir = await mkdtemp(join(tmpdir(), 'microgate-browser-'));
    const config = `
server:
  port: ${gwPort}
  host: 127.0.0.1
routes:
  - path: /api/v1
    backends: ["http://127.0.0.1:${portA}", "http://127.0.0.1:${portB}"]
  - path: /api/legacy
    backend: "http://127.0.0.1:${deadPort}"
healthcheck:
  interval: 300ms
  timeout: 1s
  healthy_threshold: 1
  unhealthy_threshold: 1
dashboard:
  enabled: true
admin:
  allow_loopback: true
logging:
  level: warn
processes:
  - id: backend-a
    command: ${JSON.stringify(BACKEND_BIN)}
    args: ["--port", "${portA}"]
    port: ${portA}
    route: /api/v1
    auto_start: true
  - id: backend-b
    command: ${JSON.stringify(BACKEND_BIN)}
    args: ["--port", "${portB}", "--latency-ms", "3", "--jitter-ms", "3"]
    port: ${portB}
    route: /api/v1
    auto_start: true
`;
    const file = join(dir, 'microgate.yml');
    await writeFile(file, config);

    gateway = spawn(process.execPath, [GATEWAY_BIN, '--config', file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => {
      gatewayOutput = (gatewayOutput + chunk.toString()).slice(-20_000);
    };
    gateway.stdout!.on('data', collect);
    gateway.stderr!.on('data', collect);
    const exited = new Promise<never>((_, reject) =>
      gateway!.once('exit', (code, signal) => reject(new Error(`gateway exited early (${code ?? signal}):\n${gatewayOutput}`))),
    );
    exited.catch(() => {});
    await Promise.race([until('the gateway to listen', () => gatewayOutput.includes('listening on'), 20_000), exited]);
    await until(
      'both backends running and healthy',
      async () => {
        const list = await processes();
        return list.length === 2 && list.every((p) => p.status === 'running' && p.healthy);
      },
      20_000,
      200,
    );

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
    page = await context.newPage();
    page.on('request', (r) => requestedUrls.push(r.url()));
    watchPage(page, problems);
  });

  after(async () => {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await stopChild(gateway);
    // The gateway stops its children on SIGTERM; make sure, so a failed run leaves no orphan.
    for (const pid of seenPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('loads from the gateway with no failed request, no console error and no other host', async () => {
    await page.goto(`${base}/dashboard/`, { waitUntil: 'load' });
    await page.locator('[data-testid="connection-state"][data-state="live"]').waitFor({ timeout: 5000 });
    await waitStatus('backend-a', 'healthy');
    await waitStatus('backend-b', 'healthy');
    await until('metrics to load', async () => (await page.getByTestId('metric-backends-value').textContent())?.includes('/'), 5000);
    // Both process backends are healthy; the legacy route's backend is down.
    await until('the health tile', async () => (await page.getByTestId('metric-backends-value').textContent()) === '2 / 3', 8000, 200);
    assert.equal(await page.getByTestId('process-row-backend-a').getByText(`:${backendPorts[0]}`).count(), 1);
    // uPlot drew three charts.
    assert.equal(await page.locator('.chart canvas').count(), 3);
    const foreign = requestedUrls.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('data:'));
    assert.deepEqual(foreign, [], 'the page must not contact any other host');
    assert.ok(requestedUrls.some((u) => u.startsWith(`${base}/dashboard/assets/`)), 'assets are served under /dashboard/assets/');
    assert.deepEqual(problems, []);
  });

  test('a request sent through the gateway appears in the table within 3 s, with real ms and its backend', async () => {
    const probe = `probe=${Date.now().toString(36)}`;
    const secret = 'Bearer s3cr3t-token-for-the-browser-test';
    const res = await fetch(`${base}/api/v1/browser/check?${probe}&x=1`, { headers: { authorization: secret, 'x-trace-id': 'trace-42' } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();

    const row = page.getByTestId('request-row').filter({ hasText: probe });
    await row.first().waitFor({ timeout: 3000 });
    const text = (await row.first().innerText()).replace(/\s+/g, ' ');
    assert.match(text, /GET/);
    assert.match(text, new RegExp(`/api/v1/browser/check\\?${probe}&x=1`));
    assert.match(text, /\b200\b/);
    assert.match(text, /\d+(\.\d+)? (ms|s)\b/);
    const latency = (await row.first().getByTestId('request-latency').innerText()).trim();
    const ms = Number.parseFloat(latency) * (latency.endsWith(' s') ? 1000 : 1);
    assert.ok(ms > 0 && ms < 5000, `a plausible latency in real milliseconds, got "${latency}"`);
    assert.ok(backendPorts.some((p) => text.includes(`:${p}`)), `the backend column names the backend that answered: ${text}`);
    assert.match(text, /\/api\/v1\b/);

    // The detail panel, and a cURL with origin, path and query, and no credential.
    await row.first().click();
    const detail = page.getByTestId('request-detail');
    await detail.waitFor({ timeout: 2000 });
    await until('the stored record to load', async () => (await page.getByTestId('detail-overview').innerText()).includes('/api/v1'), 3000);
    const curl = await page.getByTestId('detail-curl').innerText();
    assert.ok(curl.includes(`${base}/api/v1/browser/check?${probe}&x=1`), curl);
    assert.ok(!curl.toLowerCase().includes('authorization'), `no credential header in: ${curl}`);
    assert.ok(!(await detail.innerText()).includes('s3cr3t-token'), 'the credential value never reaches the page');
    await page.getByTestId('detail-close').click();
    await detail.waitFor({ state: 'detached', timeout: 2000 });
    assert.deepEqual(problems, []);
  });

  test('pause buffers new rows behind an "N new" counter, resume shows them', async () => {
    const probe = `paused-${Date.now().toString(36)}`;
    await page.getByTestId('pause-toggle').click();
    for (let i = 0; i < 3; i++) await (await fetch(`${base}/api/v1/${probe}/${i}`)).arrayBuffer();
    await until('the counter', async () => /3 new/.test((await page.getByTestId('pause-toggle').innerText()) ?? ''), 3000);
    assert.equal(await page.getByTestId('request-row').filter({ hasText: probe }).count(), 0, 'paused: no new row shown');
    await page.getByTestId('pause-toggle').click();
    await until('the buffered rows', async () => (await page.getByTestId('request-row').filter({ hasText: probe }).count()) === 3, 2000);
    assert.match(await page.getByTestId('pause-toggle').innerText(), /^Pause$/);
  });

  test('Stop in the UI stops the OS process and the row shows it stopped; Start brings it back', async () => {
    const before = await processById('backend-b');
    assert.ok(before?.pid && alive(before.pid), 'backend-b runs');
    const pid = before.pid;
    await page.getByTestId('process-stop-backend-b').click();
    await waitStatus('backend-b', 'stopped');
    await until(`pid ${pid} to exit`, () => !alive(pid), 10_000);
    assert.equal((await processById('backend-b'))?.status, 'stopped');
    assert.equal(await page.getByTestId('process-start-backend-b').innerText(), 'Start');

    await page.getByTestId('process-start-backend-b').click();
    await waitStatus('backend-b', 'healthy', 15_000);
    const after = await processById('backend-b');
    assert.ok(after?.pid && after.pid !== pid && alive(after.pid));
    assert.deepEqual(problems, []);
  });

  test('a process killed with SIGKILL from outside shows crashed', async () => {
    const p = await processById('backend-a');
    assert.ok(p?.pid);
    process.kill(p.pid, 'SIGKILL');
    await waitStatus('backend-a', 'crashed', 10_000);
    assert.match(await statusOf('backend-a').innerText(), /crashed/);
    assert.match(await page.getByTestId('process-row-backend-a').innerText(), /SIGKILL/);
    // Crashed processes offer a restart.
    await page.getByTestId('process-start-backend-a').click();
    await waitStatus('backend-a', 'healthy', 15_000);
    assert.deepEqual(problems, []);
  });

  test('Add backend: a command outside the allow-list shows the server error; an allowed one appears live', async () => {
    const [port] = await freePorts(1);
    await page.getByTestId('add-backend-toggle').click();
    await page.getByTestId('add-route').selectOption('/api/v1');
    await page.getByTestId('add-port').fill(String(port));
    await page.getByTestId('add-command').fill('/bin/sh');
    await page.getByTestId('add-args').fill('-c "echo pwned"');
    await page.getByTestId('add-submit').click();
    await until('the 403 message', async () => (await page.getByTestId('add-error').innerText()).includes('403'), 5000);
    assert.equal(await page.getByTestId(`process-row-backend-${port}`).count(), 0);
    // That 403 is the expected answer, not a page problem.
    const forbidden = problems.filter((p) => /HTTP 403: POST .*\/dashboard\/api\/processes$/.test(p) || /status of 403/.test(p));
    assert.ok(forbidden.length >= 1);
    problems.splice(0, problems.length, ...problems.filter((p) => !forbidden.includes(p)));

    await page.getByTestId('add-command').fill(BACKEND_BIN);
    await page.getByTestId('add-args').fill('--port {port}');
    await page.getByTestId('add-submit').click();
    await page.getByTestId(`process-row-backend-${port}`).waitFor({ timeout: 5000 });
    await waitStatus(`backend-${port}`, 'healthy', 15_000);
    const added = await processById(`backend-${port}`);
    assert.ok(added?.pid && alive(added.pid));
    assert.deepEqual(problems, []);
  });

  test('under a little load: screenshot to test-artifacts/dashboard.png', async () => {
    // A bounded mix: mostly 200s through both backends, a few 404s (unrouted) and 5xx (backend down).
    const paths = ['/api/v1/users', '/api/v1/orders/1234?expand=items', '/api/v1/search?q=gateway', '/api/v1/users/42', '/api/v1/orders', '/api/v1/search?q=metrics&page=2', '/api/v1/users', '/unrouted/path', '/api/legacy/report'];
    let sent = 0;
    const worker = async (w: number) => {
      for (let i = 0; i < 60; i++) {
        const path = paths[(i + w) % paths.length]!;
        const res = await fetch(`${base}${path}`, { method: i % 9 === 0 ? 'POST' : 'GET', headers: { 'content-type': 'application/json' }, body: i % 9 === 0 ? '{"n":1}' : undefined });
        await res.arrayBuffer();
        sent++;
        await new Promise((r) => setTimeout(r, 15));
      }
    };
    await Promise.all([0, 1, 2, 3].map(worker));
    assert.equal(sent, 240);
    await until('requests per minute in the tile', async () => Number((await page.getByTestId('metric-rpm-value').innerText()).replace(/[^\d.]/g, '')) >= 100, 8000, 250);
    await until('the table to fill', async () => (await page.getByTestId('request-row').count()) >= 100, 3000);
    await mkdir(ARTIFACTS, { recursive: true });
    const file = join(ARTIFACTS, 'dashboard.png');
    await page.screenshot({ path: file });
    assert.ok((await stat(file)).size > 20_000);
    assert.deepEqual(problems, []);
  });
});
