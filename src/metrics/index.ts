/**
 * Metrics: Prometheus metrics on a registry per gateway (never prom-client's global one), fed by
 * the completion event and by a few setters (store errors, weights, anomalies), and the `/metrics`
 * handler. Labels are bounded by construction: route is a configured prefix or "unmatched", method a
 * fixed set, backend a configured URL. It must not read request paths into labels, block the event
 * loop on the hot path, or be called inline by the proxy.
 */
export {
  createMetrics,
  normalizeMethod,
  METHOD_LABELS,
  UNMATCHED_ROUTE,
  RATE_LIMIT_REASONS,
  CIRCUIT_STATE_VALUE,
  type Metrics,
  type MetricsOptions,
  type MethodLabel,
} from './metrics.js';
