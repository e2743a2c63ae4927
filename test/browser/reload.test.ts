/**
 * The dashboard shows config reloads: a refused file with every problem at file:line:col (the
 * `config` event), then a reload that took effect. A real gateway in this process, the built UI
 * (web/dashboard/dist: `npm run build:dashboard` first), headless Debian Chromium.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startBackend } from '../helpers/gateway.js';
import { startFromFile } from '../reload/helpers.js';
import { chromiumSkipReason, launchChromium, until } from './browser.js';

describe('config reload on the dashboard', { skip: chromiumSkipReason(), timeout: 120_000 }, () => {
  it('shows each problem of a refused file, then what a good reload changed', async (t) => {
    const a = await startBackend(t);
    const good = `routes:\n  - path: /a\n    backend: ${a.url}\nanalytics:\n  enabled: false\nlogging:\n  level: silent\n`;
    const { gw, file, write } = await startFromFile(t, good);
    const browser = await launchChromium();
    t.after(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${gw.url.replace('127.0.0.1', 'localhost')}/dashboard/`);
    await page.getByTestId('config-status').waitFor({ timeout: 15_000 });

    await write(`${good}ratelimit:\n  max_tokens: 0\n  refill_rate: 1\n`);
    await page.getByTestId('config-reload').click();
    const banner = page.getByTestId('config-error');
    await banner.waitFor({ timeout: 10_000 });
    const text = await banner.innerText();
    assert.ok(text.includes(`${file}:9:15 ratelimit.max_tokens:`), text);
    assert.equal(gw.generation, 0);

    await write(`${good.replace('  - path: /a', '  - path: /b')}`);
    void gw.reloadFromFile(); // as SIGHUP would: the page learns it from the stream
    const status = page.getByTestId('config-status');
    await until('the reload shows', async () => (await status.count()) > 0 && /route\(s\) added/.test(await status.innerText()), 10_000);
    assert.match(await status.innerText(), /1 route\(s\) added · 1 route\(s\) removed/);
  });
});
