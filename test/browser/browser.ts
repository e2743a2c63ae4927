/** Shared by the browser tests: Debian's Chromium driven by playwright-core, and a page watcher. */
import type { ChildProcess } from 'node:child_process';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Headless Debian Chromium with the flags this machine needs (no downloads, no background traffic). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** Collects failed requests, HTTP errors, console errors and page errors of a page into `problems`. */
export function watchPage(page: Page, problems: string[]): void {
  page.on('requestfailed', (r) => {
    // The SSE stream is cut when the page closes at the end: not a failure of the page.
    if (!r.url().endsWith('/dashboard/api/stream')) problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
}

/**
 * Why the browser tests cannot run here, or false. Outside CI a machine without Chromium skips
 * them with that reason; in CI (CI set) a missing Chromium fails the run, it never skips.
 */
export function chromiumSkipReason(): string | false {
  if (existsSync(CHROMIUM)) return false;
  const reason = `no Chromium at ${CHROMIUM} (Debian: apt-get install chromium)`;
  if (process.env.CI) throw new Error(`${reason}: CI must run the browser tests`);
  return reason;
}

/** Polls `fn` until it returns a truthy value. */
export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `count` distinct free loopback ports, all held while choosing so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: NetServer[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const s = createNetServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve());
      });
      servers.push(s);
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/** SIGTERM a child process and wait for it to exit (SIGKILL after 10 s). */
export async function stopChild(child: ChildProcess | null | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exit;
  clearTimeout(timer);
}
