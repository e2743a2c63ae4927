/**
 * Per backend, from GET /analytics/backends: latency p50 / p99 (p50 when the gateway gives it),
 * error rate, balancing weight and the breaker's threshold. Weight and threshold may be null
 * (weighted balancing off, static breaker): shown as such, never as 0.
 */
import { extraFields, formatPct, num, type BackendAnalytics } from '../analytics-model';
import { errorRateTone, formatLatency } from '../format';
import type { Load } from '../use-analytics';

const KNOWN_BACKEND_FIELDS = ['backend', 'avg_latency_ms', 'p50_latency_ms', 'p99_latency_ms', 'error_rate', 'weight', 'breaker_threshold', 'learning', 'sample_size'];

export function BackendsCard({ backends }: { backends: Load<BackendAnalytics[]> }) {
  const list = backends.status === 'ok' ? backends.data : [];
  const maxLatency = Math.max(0, ...list.map((b) => num(b.p99_latency_ms) ?? num(b.avg_latency_ms) ?? 0));
  const weights = list.map((b) => num(b.weight)).filter((w): w is number => w !== null && w >= 0);
  const weightSum = weights.reduce((s, w) => s + w, 0);
  const anyThreshold = list.some((b) => num(b.breaker_threshold) !== null);
  const extraKeys = [...new Set(list.flatMap((b) => extraFields(b, KNOWN_BACKEND_FIELDS).map(([k]) => k)))];

  return (
    <section className="card" aria-label="Backends" data-testid="analytics-backends">
      <header className="card-head">
        <h2>Backends</h2>
        <span className="card-note">
          latency, errors and weight as learned{weights.length === 0 && list.length > 0 ? ' · weights appear when weighted_lb is on' : ''}
        </span>
        {(backends.status === 'error' || (backends.status === 'ok' && backends.error)) && (
          <span className="inline-error" role="alert">
            {backends.status === 'error' ? backends.message : `not refreshed: ${backends.error}`}
          </span>
        )}
      </header>
      {backends.status === 'loading' && <div className="empty">loading…</div>}
      {backends.status === 'ok' && list.length === 0 && (
        <div className="empty" data-testid="backends-empty">
          no backend has served traffic yet
        </div>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table className="data-table backends-table">
            <thead>
              <tr>
                <th>Backend</th>
                <th className="num">p50</th>
                <th className="num">p99</th>
                <th className="c-bar">Latency</th>
                <th className="num">Errors</th>
                <th className="num">Weight</th>
                <th className="c-bar">Share</th>
                <th className="num" title="Error rate over the breaker window that opens the circuit">
                  Breaker at
                </th>
                {extraKeys.map((k) => (
                  <th key={k} className="num">
                    {k.replace(/_/g, ' ')}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {list.map((b) => {
                const p50 = num(b.p50_latency_ms);
                const p99 = num(b.p99_latency_ms);
                const avg = num(b.avg_latency_ms);
                const er = num(b.error_rate);
                const w = num(b.weight);
                const thr = num(b.breaker_threshold);
                const extras = new Map(extraFields(b, KNOWN_BACKEND_FIELDS));
                const pct = (v: number | null) => (v === null || maxLatency <= 0 ? 0 : Math.min(100, (v / maxLatency) * 100));
                return (
                  <tr key={b.backend} data-testid="backend-row" data-backend={b.backend}>
                    <td className="mono ellipsis" title={b.backend}>
                      {b.backend}
                      {b.learning === true && (
                        <span className="chip tone-muted chip-inline" title={`baseline from ${num(b.sample_size) ?? 0} buckets so far`} data-testid="backend-learning">
                          learning
                        </span>
                      )}
                    </td>
                    <td className="num mono" data-testid="backend-p50">
                      {formatLatency(p50)}
                    </td>
                    <td className="num mono" data-testid="backend-p99">
                      {formatLatency(p99)}
                    </td>
                    <td className="c-bar">
                      <span className="lat-bar" role="img" aria-label={`p50 ${formatLatency(p50)}, p99 ${formatLatency(p99)}, average ${formatLatency(avg)}`}>
                        <span className="lat-p99" style={{ width: `${pct(p99 ?? avg)}%` }} />
                        {(p50 ?? avg) !== null && <span className="lat-p50" style={{ width: `${pct(p50 ?? avg)}%` }} />}
                      </span>
                    </td>
                    <td className={`num mono ${er === null ? '' : `tone-${errorRateTone(er)} toned`}`} data-testid="backend-errors">
                      {formatPct(er)}
                    </td>
                    <td className="num mono" data-testid="backend-weight" title={w === null ? 'weighted balancing is off for this backend' : undefined}>
                      {w === null ? '–' : w.toFixed(w >= 10 ? 1 : 3)}
                    </td>
                    <td className="c-bar">
                      {w !== null && weightSum > 0 ? (
                        <span className="share-bar" title={`${((w / weightSum) * 100).toFixed(1)}% of the total weight`}>
                          <span style={{ width: `${(w / weightSum) * 100}%` }} />
                          <em>{Math.round((w / weightSum) * 100)}%</em>
                        </span>
                      ) : (
                        <span className="muted small">–</span>
                      )}
                    </td>
                    <td className="num mono" data-testid="backend-breaker" title={thr === null ? (anyThreshold ? 'no learned threshold yet: the static rule applies' : 'static breaker rule') : undefined}>
                      {thr === null ? 'static' : formatPct(thr)}
                    </td>
                    {extraKeys.map((k) => (
                      <td key={k} className="num mono">
                        {extras.has(k) ? String(extras.get(k)) : '–'}
                      </td>
                    ))}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
