/**
 * Per-response feedback to balancing strategies, from the completion record (so the forwarding
 * code needs no call of its own): which route and backend, how long, and how it went.
 */
import type { CompletionListener, CompletionRecord } from '../events/index.js';
import type { CompiledRoute } from '../pipeline/index.js';
import type { Backend } from './backend.js';
import type { Outcome } from './strategies/index.js';

/** The outcome of a finished request for its backend, or null when the backend never judged it. */
export function outcomeOf(record: CompletionRecord): Outcome | null {
  if (record.backend === '') return null;
  switch (record.decision) {
    case 'client_aborted':
    case 'body_too_large':
      return 'client_error';
    case 'upstream_timeout':
    case 'upstream_error':
      return 'backend_error';
    case 'upstream_saturated':
      // The gateway refused: the queue to this backend was full. Not a response of the backend.
      return null;
    default:
      return record.status >= 500 ? 'backend_error' : 'success';
  }
}

/**
 * A completion subscriber feeding each route's strategy: `(backend, latencyMs, outcome)` per
 * response. A request retried after a connect failure also reports the backend it left
 * (`detail.retried_from`) as a backend error, with the request's latency.
 */
export function strategyFeedback(routes: readonly CompiledRoute[], backendOf: (url: string) => Backend | undefined): CompletionListener {
  const byPrefix = new Map<string, CompiledRoute>();
  for (const r of routes) byPrefix.set(r.prefix, r);
  return function balancerFeedback(record: CompletionRecord): void {
    if (record.route === null) return;
    const outcome = outcomeOf(record);
    if (outcome === null) return;
    const route = byPrefix.get(record.route);
    if (route === undefined) return;
    const backend = backendOf(record.backend);
    if (backend !== undefined) route.selector.feedback(backend, record.latencyMs, outcome);
    const from = record.detail?.retried_from;
    if (typeof from === 'string') {
      const failed = backendOf(from);
      if (failed !== undefined) route.selector.feedback(failed, record.latencyMs, 'backend_error');
    }
  };
}
