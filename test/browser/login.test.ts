/**
 * Signing in to the dashboard from a browser when the gateway trusts no address
 * (`admin.allow_loopback: false`): the built `bin/microgate` and headless Debian Chromium through
 * playwright-core. Needs `npm run build` first (npm test does it).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { freePort } from '../helpers/ports.js';
import { chromiumSkipReason, launchChromium, stopChild, until, watchPage } from './browser.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GATEWAY_BIN = process.env.MICROGATE_TEST_GATEWAY ?? join(ROOT, 'bin', 'microgate');
const TOKEN = 'browser-login-admin-token-0123456789';

const skip = chromiumSkipReason();


describe('dashboard sign-in in Chromium', { skip, timeout: 120_000 }, () => {
  let dir = '';
  let base = '';
  let gateway: ChildProcess | undefined;
  let gatewayOutput = '';
  let configFile = '';
  let backend: Server | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  /** Failed requests, HTTP errors, console and page errors; tests remove the ones they expect. */
  const problems: string[] = [];
  const takeProblems = (re: RegExp): string[] => {
    const hit = problems.filter((p) => re.test(p));
    problems.splice(0, problems.length, ...problems.filter((p) => !re.test(p)));
    return hit;
  };

  async function startGatewayProcess(): Promise<void> {
    gatewayOutput = '';
    const child = spawn(process.execPath, [GATEWAY_BIN, '--config', configFile], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MICROGATE_ADMIN_TOKEN: TOKEN },
    });
    gateway = child;
    const collect = (chunk: Buffer) => {
      gatewayOutput = (gatewayOutput + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => reject(new Error(`gateway exited early (${code ?? signal}):\n${gatewayOutput}`))),
    );
    exited.catch(() => {});
    await Promise.race([until('the gateway to listen', () => gatewayOutput.includes('listening on'), 20_000), exited]);
  }

  const stopGatewayProcess = (): Promise<void> => stopChild(gateway);

  before(async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'microgate.js')), 'gateway not built: run `npm run build`');
    assert.ok(existsSync(join(ROOT, 'web', 'dashboard', 'dist', 'index.html')), 'dashboard not built: run `npm run build:dashboard`');

    backend = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url }));
    });
    await new Promise<void>((r) => backend!.listen(0, '127.0.0.1', r));
    const backendPort = (backend.address() as AddressInfo).port;
    const gwPort = await freePort();
    base = `http://127.0.0.1:${gwPort}`;
    dir = await mkdtemp(join(tmpdir(), 'microgate-login-'));
    const file = join(dir, 'microgate.yml');
    await writeFile(
      file,
      `
server:
  port: ${gwPort}
  host: 127.0.0.1
routes:
  - path: /api
    backend: "http://127.0.0.1:${backendPort}"
healthcheck:
  interval: 1h
dashboard:
  enabled: true
admin:
  token: "\${MICROGATE_ADMIN_TOKEN}"
  allow_loopback: false
logging:
  level: warn
`,
    );
    configFile = file;
    await startGatewayProcess();

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    watchPage(page, problems);
  });

  after(async () => {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await stopGatewayProcess();
    if (backend) {
      backend.closeAllConnections();
      await new Promise<void>((r) => backend!.close(() => r()));
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('shows a calm sign-in panel, not errors, when the gateway does not admit the page', async () => {
    await page.goto(`${base}/dashboard/`, { waitUntil: 'load' });
    await page.getByTestId('login-panel').waitFor({ timeout: 5000 });
    assert.equal(await page.getByTestId('connection-state').count(), 0, 'no dashboard behind the panel');
    assert.equal(await page.getByTestId('login-error').innerText(), '');
    // It asked how it is admitted instead of firing API calls into 401s.
    assert.deepEqual(problems, []);
  });

  test('a wrong token says so and keeps the panel', async () => {
    await page.getByTestId('login-token').fill('not-the-token-at-all-sorry');
    await page.getByTestId('login-submit').click();
    await until('the error text', async () => (await page.getByTestId('login-error').innerText()).includes('not the admin token'), 5000);
    assert.equal(await page.getByTestId('login-panel').count(), 1);
    assert.ok(takeProblems(/^HTTP 401: POST .*\/dashboard\/api\/session$|status of 401/).length >= 1);
    assert.deepEqual(problems, []);
  });

  test('the admin token opens the dashboard with live data, kept in an HttpOnly cookie only', async () => {
    await page.getByTestId('login-token').fill(TOKEN);
    await page.getByTestId('login-submit').click();
    await page.locator('[data-testid="connection-state"][data-state="live"]').waitFor({ timeout: 5000 });
    assert.equal(await page.getByTestId('login-panel').count(), 0);
    await until('metrics to load', async () => (await page.getByTestId('metric-backends-value').textContent())?.includes('/'), 5000);

    // A request through the gateway arrives over the event stream.
    const probe = `login-probe-${Date.now().toString(36)}`;
    const res = await fetch(`${base}/api/${probe}`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await page.getByTestId('request-row').filter({ hasText: probe }).first().waitFor({ timeout: 3000 });

    const cookies = await context.cookies(`${base}/dashboard/`);
    const session = cookies.find((c) => c.name === 'microgate_admin');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/dashboard');
    assert.ok(!session.value.includes(TOKEN));
    // Runs in the page (a string, as the test project has no DOM types).
    const stored = await page.evaluate<string>('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie');
    assert.ok(!stored.includes(TOKEN), 'the page keeps no copy of the token');
    assert.deepEqual(problems, []);
  });

  test('the session survives a reload and Log out ends it', async () => {
    await page.reload({ waitUntil: 'load' });
    await page.locator('[data-testid="connection-state"][data-state="live"]').waitFor({ timeout: 5000 });
    const cookie = (await context.cookies(`${base}/dashboard/`)).find((c) => c.name === 'microgate_admin')!;

    await page.getByTestId('logout').click();
    await page.getByTestId('login-panel').waitFor({ timeout: 5000 });
    assert.match(await page.getByTestId('login-reason').innerText(), /signed out/i);
    assert.equal((await context.cookies(`${base}/dashboard/`)).find((c) => c.name === 'microgate_admin'), undefined, 'the cookie is gone');
    // A copy of the old cookie is refused too.
    const replay = await fetch(`${base}/dashboard/api/processes`, { headers: { cookie: `microgate_admin=${cookie.value}` } });
    assert.equal(replay.status, 401);
    await replay.arrayBuffer();
    assert.deepEqual(problems, []);
  });

  test('after a gateway restart (a new signing key) the page asks to sign in again, then reconnects', async () => {
    await page.getByTestId('login-token').fill(TOKEN);
    await page.getByTestId('login-submit').click();
    await page.locator('[data-testid="connection-state"][data-state="live"]').waitFor({ timeout: 5000 });

    await stopGatewayProcess();
    await startGatewayProcess();
    // The stream reconnects, is refused (401), and the page notices instead of retrying forever.
    await page.getByTestId('login-panel').waitFor({ timeout: 15_000 });
    assert.match(await page.getByTestId('login-reason').innerText(), /session ended/i);
    // The stream's refusal is the only trace: no API call ran into a 401.
    assert.ok(takeProblems(/^HTTP 401: GET .*\/dashboard\/api\/stream$|status of 401/).length >= 1);
    // While the gateway was down, a reconnect or poll that fell into the gap is refused by the OS:
    // the browser logs that, and it says nothing about the page (how long the gap lasts is the machine's).
    takeProblems(/ERR_CONNECTION_REFUSED/);
    assert.deepEqual(problems, []);

    await page.getByTestId('login-token').fill(TOKEN);
    await page.getByTestId('login-submit').click();
    await page.locator('[data-testid="connection-state"][data-state="live"]').waitFor({ timeout: 5000 });
    const probe = `after-restart-${Date.now().toString(36)}`;
    await (await fetch(`${base}/api/${probe}`)).arrayBuffer();
    await page.getByTestId('request-row').filter({ hasText: probe }).first().waitFor({ timeout: 3000 });
    assert.deepEqual(problems, []);
  });
});
