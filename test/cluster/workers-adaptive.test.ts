/**
 * The adaptive route limit with `server.workers: 2` through bin/microgate (run
 * `npx tsc -p tsconfig.build.json && node scripts/copy-assets.mjs` first), without Redis: the
 * primary's analytics (one-second buckets) learns the route's rate from both workers' records,
 * pushes the baseline to the workers, and the learned limit L holds across both workers within ±2%
 * (the route bucket is leased from the primary); the refusals are counted and the limit announced
 * once, in the primary.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { assertBuilt, metric, MICROGATE, Running, sleep, startTestBackend, tempDir, TWO_WORKERS_SERVER, waitUntil } from '../cli/helpers.js';
import { LEARNING_ANALYTICS } from '../helpers/learning.js';

/** The learned limit, pinned by min_limit = max_limit so the test knows it: 3000/min = 50/s. */
const LIMIT_PER_MIN = 3000;
const RATE = LIMIT_PER_MIN / 60;

async function routeEntry(url: string): Promise<Record<string, any> | undefined> {
  const res = await request(`${url}/analytics/routes`);
  const body = (await res.body.json()) as { routes?: Record<string, any>[] } | Record<string, any>[];
  const routes = Array.isArray(body) ? body : (body.routes ?? []);
  return routes.find((r) => r.route === '/');
}

test('two workers enforce one learned adaptive route limit within 2%, counted and announced once in the primary', { timeout: 120_000 }, async (t) => {
  assertBuilt();
  const { dir, write } = await tempDir(t);
  const backend = await startTestBackend(t);
  const file = await write(
    'workers-adaptive.yml',
    `${TWO_WORKERS_SERVER}logging:
  level: info
  access_log: false
data_dir: ${JSON.stringify(dir)}
routes:
  - path: /
    backend: "${backend.url}"
${LEARNING_ANALYTICS}adaptive_rate_limit:
  enabled: true
  multiplier: 2
  min_limit: ${LIMIT_PER_MIN}
  max_limit: ${LIMIT_PER_MIN}
  learning_period: 2s
  burst: 2s
`,
  );
  const gw = new Running(t, MICROGATE, ['--config', file]);
  const m = await gw.waitForStdout(/MicroGate listening on http:\/\/127\.0\.0\.1:(\d+) \(2 workers\)/, 30_000);
  const url = `http://127.0.0.1:${m[1]}`;
  const agent = new Agent({ connections: 8, pipelining: 1 });
  t.after(() => agent.close());

  // Learning: light traffic until the primary's analytics has 2 s of data and the limit is learned.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const res = await request(`${url}/x`, { dispatcher: agent });
    await res.body.dump();
    const e = await routeEntry(url);
    if (e?.current_rate_limit === LIMIT_PER_MIN) break;
    await sleep(150);
  }
  assert.equal((await routeEntry(url))?.current_rate_limit, LIMIT_PER_MIN, 'the limit was learned');
  // The workers get the baselines with the same analysis; give the push a moment.
  await sleep(1_200);

  // Flood with 4 connections (spread over both workers), each pacing itself a little so the flood is
  // many times L without starving the machine; count by send time. At first the client's rate
  // estimate is low, so it counts as a fair client and borrows the bucket's bounded debt (as in one
  // process; with workers each worker sees part of the client's traffic, so this lasts longer). Once
  // it is refused as over its fair share everywhere (no more "route over its limit" refusals), the
  // debt (half the 2 s burst) is repaid within a second and the route admits exactly L: the window
  // starts 1.5 s after the last refusal of the borrowing phase.
  const statuses = new Map<number, number>();
  const codes = new Map<string, number>();
  let stop = false;
  const MEASURE_MS = 15_000;
  const PACE_MS = 5;
  const start = Date.now();
  let windowStart = Infinity;
  let lastExhaustedAt = 0;
  let overShareSeen = false;
  let admitted = 0;
  let measured = 0;
  const perSecond: number[] = [];
  const flood = Array.from({ length: 4 }, async () => {
    while (!stop) {
      const sentAt = Date.now() - start;
      const res = await request(`${url}/x`, { dispatcher: agent });
      const body = await res.body.text();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode === 429) {
        const error = (JSON.parse(body) as { error: { code: string; message: string } }).error;
        codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
        if (error.message.includes('over its limit')) lastExhaustedAt = sentAt;
        else overShareSeen = true;
      }
      if (res.statusCode === 200) perSecond[Math.floor(sentAt / 1000)] = (perSecond[Math.floor(sentAt / 1000)] ?? 0) + 1;
      if (sentAt >= windowStart && sentAt < windowStart + MEASURE_MS) {
        measured++;
        if (res.statusCode === 200) admitted++;
      }
      await sleep(PACE_MS);
    }
  });
  await waitUntil(
    () => {
      const now = Date.now() - start;
      if (overShareSeen && now - lastExhaustedAt >= 1_500) windowStart = now;
      return windowStart !== Infinity;
    },
    60_000,
    'the client is refused as over its fair share in every worker',
  );
  await sleep(windowStart + MEASURE_MS + 200 - (Date.now() - start));
  stop = true;
  await Promise.all(flood);

  const expected = (RATE * MEASURE_MS) / 1000;
  const msg = `admitted ${admitted} of ${measured} in ${MEASURE_MS / 1000} s; L = ${LIMIT_PER_MIN}/min allows ${expected}; statuses ${JSON.stringify([...statuses])}`;
  t.diagnostic(msg);
  t.diagnostic(`admitted per second of the flood: ${perSecond.join(' ')} (window from ${windowStart} ms)`);
  assert.ok(measured > expected * 3, `the flood was well over the limit (${msg})`);
  assert.ok(Math.abs(admitted - expected) <= expected * 0.02, msg);
  assert.deepEqual([...codes.keys()], ['adaptive_rate_limited'], 'every refusal is the adaptive limit\'s');

  // The refusals are counted once, in the primary, from both workers' records.
  const refused = statuses.get(429) ?? 0;
  await waitUntil(async () => (await metric(url, 'gateway_adaptive_rejections_total')) === refused, 5_000, `gateway_adaptive_rejections_total = ${refused}`);
  const entry = await routeEntry(url);
  assert.equal(entry?.adaptive_refusals, refused, '/analytics/routes counts the workers\' refusals');
  assert.equal(entry?.adaptive_mode, 'enforce');
  // The limit change is announced once, by the primary (the workers compute the same L silently).
  const announced = (gw.stdout + gw.stderr).split('\n').filter((l) => l.includes('adaptive limit /: none -> 3000/min'));
  assert.equal(announced.length, 1, `one announcement: ${JSON.stringify(announced)}`);
});
