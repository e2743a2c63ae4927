/** Shared helpers for the analytics tests (not a test file itself): a seeded PRNG, Poisson traffic, an analytics instance on a manual clock. */
import { ManualClock } from '../../src/clock.js';
import { seededRandom } from '../helpers/random.js';
import { type AnalyticsConfig } from '../../src/config/index.js';
import { parseConfig } from '../../src/config/load.js';
import { createAnalytics, type Analytics, type AnalyticsOptions } from '../../src/analytics/index.js';
import { completionRecord } from '../helpers/records.js';
import type { CompletionRecord } from '../../src/events/index.js';

/** A small deterministic PRNG (mulberry32). */
export const rng = seededRandom;

/** A Poisson variate (Knuth for small λ, a rounded normal for large). */
export function poisson(rand: () => number, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 200) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * gaussian(rand)));
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = rand();
  while (p > limit) {
    k++;
    p *= rand();
  }
  return k;
}

export function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** The analytics section as the config loader would produce it. */
export function analyticsConfig(yaml = ''): AnalyticsConfig {
  const text = `analytics:\n  enabled: true\n${yaml
    .split('\n')
    .filter(Boolean)
    .map((l) => '  ' + l)
    .join('\n')}\n`;
  return parseConfig(text, 'test.yml', {}).analytics;
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg: string;
}

export function captureLogger(): { lines: LogLine[]; logger: AnalyticsOptions['logger'] } {
  const lines: LogLine[] = [];
  return {
    lines,
    logger: {
      info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
      warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
      error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
    },
  };
}

/** Epoch ms aligned to a whole hour, so buckets start on round times. */
export const T0 = Date.UTC(2026, 10, 1, 0, 0, 0);

export interface Harness {
  clock: ManualClock;
  analytics: Analytics;
  lines: LogLine[];
}

/** An analytics instance on a manual clock at T0, timers and persistence off unless overridden. */
export function harness(opts: Partial<AnalyticsOptions> & { yaml?: string; routes?: string[] } = {}): Harness {
  const clock = new ManualClock(T0);
  const { lines, logger } = captureLogger();
  const analytics = createAnalytics({
    config: analyticsConfig(opts.yaml ?? ''),
    routes: opts.routes ?? ['/api'],
    backends: opts.backends ?? ['http://127.0.0.1:9001'],
    clock,
    logger,
    dataDir: opts.dataDir ?? '/nonexistent',
    timers: false,
    persist: false,
    ...opts,
  });
  return { clock, analytics, lines };
}

/** A finished request completing at `endMs`. */
export function requestAt(endMs: number, overrides: Partial<CompletionRecord> = {}): CompletionRecord {
  const latencyMs = overrides.latencyMs ?? 10;
  return completionRecord({ ...overrides, latencyMs, time: endMs - latencyMs });
}

/**
 * Feeds `minutes` buckets of one-minute traffic starting at the clock's time: `count(minute)`
 * requests spread over each minute, then advances the clock by a minute; calls analyze() every
 * `analyzeEvery` minutes.
 */
export async function feed(
  h: Harness,
  minutes: number,
  count: (minute: number, route: string) => number,
  opts: { routes?: string[]; latency?: (rand: () => number) => number; errorP?: number; seed?: number; analyzeEvery?: number; widthMs?: number } = {},
): Promise<void> {
  const rand = rng(opts.seed ?? 1);
  const routes = opts.routes ?? ['/api'];
  const width = opts.widthMs ?? 60_000;
  const every = opts.analyzeEvery ?? 5;
  for (let m = 0; m < minutes; m++) {
    const start = h.clock.now();
    for (const route of routes) {
      const n = count(m, route);
      for (let i = 0; i < n; i++) {
        const end = start + ((i + 0.5) / n) * width;
        const lat = opts.latency ? opts.latency(rand) : 10;
        const status = opts.errorP !== undefined && rand() < opts.errorP ? 500 : 200;
        h.analytics.record(requestAt(end, { route, latencyMs: lat, status }));
      }
    }
    h.clock.advance(width);
    if ((m + 1) % every === 0) await h.analytics.analyze();
  }
}
