/**
 * The adaptive route limit in a running gateway, on the real clock with one-second analytics
 * buckets: once the route has `learning_period` of data, a client far over the learned limit gets
 * 429 `adaptive_rate_limited` with Retry-After and a message naming the limit, the baseline and its
 * share; the refusals are counted, explained in the request record and /analytics/routes, and the
 * new limit is one log line and an `adaptive` notice. In shadow mode nothing is refused and the
 * same decisions are counted as would-be refusals.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import type { CompletionRecord } from '../../src/events/index.js';
import type { Gateway } from '../../src/gateway.js';
import { send, startBackend, until, wait } from '../helpers/gateway.js';
import { captureLogger } from '../ops/helpers.js';
import { startLearningGateway } from './gateway-helpers.js';

function adaptiveBlock(shadow: boolean): string {
  return `adaptive_rate_limit:
  enabled: true
  multiplier: 2
  min_limit: 60
  max_limit: 120
  learning_period: 2s
  burst: 5s
  shadow: ${shadow}
`;
}

interface Setup {
  gw: Gateway;
  yaml: string;
  records: CompletionRecord[];
  notices: { event: string; data: any }[];
  lines: Record<string, any>[];
}

async function setup(t: TestContext, shadow: boolean): Promise<Setup> {
  const backend = await startBackend(t);
  const { logger, lines } = captureLogger('info');
  const { gw, yaml } = await startLearningGateway(t, `  - path: /api\n    backend: ${backend.url}\n`, adaptiveBlock(shadow), { logger });
  const records: CompletionRecord[] = [];
  t.after(gw.bus.subscribe((r) => records.push(r)));
  const notices: { event: string; data: any }[] = [];
  t.after(gw.notices.subscribe((n) => notices.push(n as { event: string; data: any })));
  return { gw, yaml, records, notices, lines };
}

/** Steady traffic (about 1200/min) until the route's learned limit is in force. */
async function learn(gw: Gateway): Promise<any> {
  return until(
    async () => {
      await Promise.all(Array.from({ length: 5 }, () => send(`${gw.url}/api/x`)));
      await wait(250);
      const route = (await send(`${gw.url}/analytics/routes`)).json().routes[0];
      return route.current_rate_limit !== null ? route : null;
    },
    15_000,
    0,
  );
}

describe('adaptive route limit in a running gateway', () => {
  it('refuses a client far over the learned limit with an explained 429 and Retry-After, and says so everywhere', async (t) => {
    const { gw, records, notices, lines } = await setup(t, false);
    const learned = await learn(gw);
    assert.equal(learned.current_rate_limit, 120, 'clamp(≈1200/min × 2, 60, 120)');
    assert.equal(learned.adaptive_mode, 'enforce');

    const replies = [];
    for (let i = 0; i < 40; i++) replies.push(await send(`${gw.url}/api/burst`));
    const refused = replies.filter((r) => r.status === 429);
    assert.ok(refused.length >= 25, `${refused.length} of 40 refused`);
    const body = refused[0]!.json();
    assert.equal(body.error.code, 'adaptive_rate_limited');
    // A lone client is the whole route: over its share, or (while its rate estimate catches up) a fair client finding the route over its limit.
    assert.match(body.error.message, /^route \/api limit 120\/min learned from \d+\/min × 2; this client \d+\/min, fair share 120\/min(, but the route is over its limit)?$/);
    assert.ok(Number(refused[0]!.headers['retry-after']) >= 1, `Retry-After ${refused[0]!.headers['retry-after']}`);

    const rec = records.find((r) => r.decision === 'adaptive_limited')!;
    assert.ok(rec !== undefined);
    assert.equal(rec.detail?.limit, 120);
    assert.match(String(rec.detail?.reason), /^(over_fair_share|route_exhausted)$/);
    assert.equal(rec.detail?.mode, 'enforce');
    assert.deepEqual(
      rec.verdicts.map((v) => [v.policy, v.verdict, v.mode]),
      [['adaptive', 'refuse', 'enforce']],
    );

    const route = (await send(`${gw.url}/analytics/routes`)).json().routes[0];
    assert.equal(route.adaptive_refusals, refused.length);
    assert.equal(route.shadow_refusals, 0);
    const metrics = (await send(`${gw.url}/metrics`)).text;
    assert.match(metrics, new RegExp(`gateway_adaptive_rejections_total\\{route="/api",mode="enforce"\\} ${refused.length}\\n`));
    assert.match(metrics, /gateway_adaptive_limit\{route="\/api"\} 120/);

    const change = notices.find((n) => n.event === 'adaptive');
    assert.ok(change !== undefined, 'an adaptive notice');
    assert.equal(change.data.limit, 120);
    assert.equal(change.data.previous, null);
    const line = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('adaptive limit /api: none -> 120/min'));
    assert.ok(line !== undefined, 'one log line for the new limit');
  });

  it('refuses nothing in shadow mode, and counts the would-be refusals in /analytics/routes, /metrics and the request records', async (t) => {
    const { gw, records } = await setup(t, true);
    const learned = await learn(gw);
    assert.equal(learned.adaptive_mode, 'shadow');
    const replies = [];
    for (let i = 0; i < 40; i++) replies.push(await send(`${gw.url}/api/burst`));
    assert.deepEqual(
      replies.filter((r) => r.status !== 200).map((r) => r.status),
      [],
    );
    const would = records.filter((r) => r.verdicts.some((v) => v.verdict === 'would_refuse'));
    assert.ok(would.length >= 25, `${would.length} would-be refusals`);
    const v = would[0]!.verdicts.find((x) => x.policy === 'adaptive')!;
    assert.equal(v.mode, 'shadow');
    assert.match(String(v.detail?.message), /^route \/api limit 120\/min/);
    assert.equal(would[0]!.decision, undefined, 'the request was not refused');
    const route = (await send(`${gw.url}/analytics/routes`)).json().routes[0];
    assert.equal(route.shadow_refusals, would.length);
    assert.equal(route.adaptive_refusals, 0);
    const metrics = (await send(`${gw.url}/metrics`)).text;
    assert.match(metrics, new RegExp(`gateway_adaptive_rejections_total\\{route="/api",mode="shadow"\\} ${would.length}\\n`));
    assert.doesNotMatch(metrics, /gateway_adaptive_rejections_total\{route="\/api",mode="enforce"\}/);
    // The dashboard's request log (and its SSE `request` events, same view) carries the verdict.
    const logs = (await send(`${gw.url}/dashboard/api/logs?limit=1000`)).json().logs as any[];
    const entry = logs.find((l) => l.id === would[0]!.id);
    assert.ok(entry !== undefined, 'the request is in the dashboard log');
    assert.equal(entry.status, 200);
    assert.deepEqual(
      entry.verdicts.map((x: any) => [x.policy, x.verdict, x.mode]),
      [['adaptive', 'would_refuse', 'shadow']],
    );
  });

  it('keeps a route\'s bucket and client rates across a config reload: a drained route stays drained', async (t) => {
    const { gw, yaml, notices } = await setup(t, false);
    await learn(gw);
    for (let i = 0; i < 40; i++) await send(`${gw.url}/api/burst`);
    // A reload that changes something (a second route): every module with stages is rebuilt.
    const next = yaml.replace('routes:\n', 'routes:\n  - path: /other\n    backend: http://127.0.0.1:9\n');
    const outcome = await gw.reload(parseConfig(next, 'test.yml', {}));
    assert.equal(outcome.result, 'success', JSON.stringify(outcome));
    const after = [];
    for (let i = 0; i < 5; i++) after.push((await send(`${gw.url}/api/again`)).status);
    assert.deepEqual(after, [429, 429, 429, 429, 429], 'not a fresh (full) bucket after the reload');
    assert.equal(notices.filter((n) => n.event === 'adaptive' && n.data.previous === null).length, 1, 'the learned limit is not announced again');
  });
});
