/**
 * The analytics module: builds the traffic store and analyzer from the host, records every
 * completion, mounts /analytics/, counts anomalies in /metrics, streams them as `anomaly` notices
 * and reports a degraded Redis link in /health. What the adaptive layer enforces (limits, weights,
 * breaker thresholds) is read back lazily from the services that provide it.
 */
import { resolve } from 'node:path';
import type { ModuleSpec } from '../host.js';
import { normalizePrefix } from '../config/index.js';
import { createAnalytics } from './index.js';

/** The dashboard's API prefix; its analytics alias is the API's paths below it. */
const DASHBOARD_API_PREFIX = '/dashboard/api';
const DASHBOARD_ANALYTICS = `${DASHBOARD_API_PREFIX}/analytics/`;

export const analyticsModule: ModuleSpec = {
  name: 'analytics',
  enabled: (config) => config.analytics.enabled,
  build(host) {
    const config = host.config.current;
    const cluster = config.cluster.redis_url ? { url: config.cluster.redis_url, keyPrefix: config.cluster.key_prefix, timeoutMs: config.cluster.timeout } : undefined;
    const analytics = createAnalytics({
      config: config.analytics,
      routes: config.routes.map((r) => normalizePrefix(r.path)),
      backends: [...host.topology.backends()].map((b) => b.url),
      clock: host.clock,
      logger: host.logger,
      dataDir: resolve(host.options.baseDir ?? process.cwd(), config.data_dir),
      cluster,
      // Read back at request time of the API: the services providing them may come later in the list.
      currentLimit: (route) => host.services.get('adaptive')?.currentLimit(route) ?? null,
      backendWeight: (url) => host.services.get('adaptive')?.backendWeight(url) ?? null,
      breakerThreshold: (url) => host.services.get('adaptive')?.breakerThreshold(url) ?? null,
    });
    host.provide('analytics', analytics);
    const metrics = host.services.get('metrics');
    const off = [
      host.bus.subscribe(analytics.record),
      host.topology.onAdded((b) => analytics.addBackend(b.url)),
      analytics.onAnomaly((a) => {
        metrics?.anomaly(a.route, a.metric);
        host.notices.publish('anomaly', a);
      }),
      analytics.onAnomalyEnd((a) => host.notices.publish('anomaly', a)),
    ];
    let closed = false;
    return {
      admin: {
        '/analytics/': analytics.handle,
        // The same API under the dashboard's path: its session cookie is scoped to /dashboard, so a
        // dashboard signed in with a cookie (not on loopback) reads analytics here.
        ...(config.dashboard.enabled ? { [DASHBOARD_ANALYTICS]: (req, res, path) => analytics.handle(req, res, path.slice(DASHBOARD_API_PREFIX.length)) } : {}),
      },
      start: () => analytics.start(),
      // Kept across reloads (learned series stay); routes a reload adds get their own series.
      reload(next) {
        for (const r of next.routes) analytics.addRoute(normalizePrefix(r.path));
      },
      async close() {
        if (closed) return;
        closed = true;
        for (const f of off) f();
        await analytics.close();
      },
    };
  },
};
