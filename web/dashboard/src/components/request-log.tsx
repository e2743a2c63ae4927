/** The live request table: newest first, filters, pause with a "N new" buffer. */
import { memo, useDeferredValue, useMemo, useState } from 'react';
import type { RequestLog } from '../api';
import { describe, formatClock, formatLatency, logKey, pathWithQuery, statusTone } from '../format';

export interface RequestLogTableProps {
  rows: RequestLog[];
  paused: boolean;
  pending: number;
  onTogglePause: () => void;
  selectedKey: string | null;
  onSelect: (log: RequestLog) => void;
  error: string | null;
  onRetry: () => void;
}

const STATUS_FILTERS = ['all', '2xx', '3xx', '4xx', '5xx'] as const;
type StatusFilter = (typeof STATUS_FILTERS)[number];
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

export function RequestLogTable(props: RequestLogTableProps) {
  const [status, setStatus] = useState<StatusFilter>('all');
  const [method, setMethod] = useState('all');
  const [pathQuery, setPathQuery] = useState('');
  const query = useDeferredValue(pathQuery.trim().toLowerCase());

  const visible = useMemo(() => {
    const cls = status === 'all' ? 0 : Number(status[0]);
    return props.rows.filter(
      (l) =>
        (cls === 0 || Math.floor(l.status / 100) === cls) &&
        (method === 'all' || l.method.toUpperCase() === method) &&
        (query === '' || pathWithQuery(l).toLowerCase().includes(query)),
    );
  }, [props.rows, status, method, query]);

  const filtered = status !== 'all' || method !== 'all' || query !== '';

  return (
    <section className="card requests" aria-label="Request log">
      <header className="card-head">
        <h2>Requests</h2>
        <span className="card-note" data-testid="request-count">
          {filtered ? `${visible.length} of ${props.rows.length}` : `${props.rows.length}`} shown
        </span>
        <div className="filters push-right">
          <div className="segmented" role="group" aria-label="Status class">
            {STATUS_FILTERS.map((s) => (
              <button key={s} type="button" className={status === s ? 'on' : ''} aria-pressed={status === s} onClick={() => setStatus(s)} data-testid={`filter-status-${s}`}>
                {s === 'all' ? 'All' : s}
              </button>
            ))}
          </div>
          <select value={method} onChange={(e) => setMethod(e.target.value)} aria-label="Method" data-testid="filter-method">
            <option value="all">All methods</option>
            {METHODS.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
          <input type="search" value={pathQuery} onChange={(e) => setPathQuery(e.target.value)} placeholder="Filter path…" aria-label="Path contains" className="path-filter" data-testid="filter-path" />
          <button type="button" className={`btn pause-btn${props.paused ? ' btn-warn' : ''}`} onClick={props.onTogglePause} aria-pressed={props.paused} data-testid="pause-toggle">
            {props.paused ? (props.pending > 0 ? `Resume · ${props.pending} new` : 'Resume') : 'Pause'}
          </button>
        </div>
      </header>
      {props.error && (
        <div className="banner banner-error" role="alert">
          Could not load the request log: {props.error}
          <button type="button" className="btn btn-small" onClick={props.onRetry}>
            Retry
          </button>
        </div>
      )}
      <div className="table-scroll">
        <table className="log-table" data-testid="request-table">
          <colgroup>
            <col className="c-time" />
            <col className="c-method" />
            <col className="c-path" />
            <col className="c-status" />
            <col className="c-latency" />
            <col className="c-backend" />
            <col className="c-route" />
          </colgroup>
          <thead>
            <tr>
              <th>Time</th>
              <th>Method</th>
              <th>Path</th>
              <th>Status</th>
              <th className="num">Latency</th>
              <th>Backend</th>
              <th>Route</th>
            </tr>
          </thead>
          <tbody>
            {visible.map((l) => {
              const key = logKey(l);
              return <Row key={key} log={l} selected={key === props.selectedKey} onSelect={props.onSelect} />;
            })}
          </tbody>
        </table>
        {visible.length === 0 && (
          <div className="empty" data-testid="request-empty">
            {props.rows.length === 0 ? 'Waiting for traffic…' : 'No request matches the filters.'}
          </div>
        )}
      </div>
    </section>
  );
}

const Row = memo(function Row({ log, selected, onSelect }: { log: RequestLog; selected: boolean; onSelect: (l: RequestLog) => void }) {
  const full = pathWithQuery(log);
  const tone = statusTone(log.status);
  const note = describe(log.decision) || describe(log.error);
  return (
    <tr
      className={selected ? 'selected' : undefined}
      onClick={() => onSelect(log)}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          onSelect(log);
        }
      }}
      tabIndex={0}
      data-testid="request-row"
      data-request-id={log.id}
      data-status={log.status}
    >
      <td className="mono muted">{formatClock(log.timestamp)}</td>
      <td>
        <span className={`method m-${log.method.toLowerCase()}`}>{log.method}</span>
      </td>
      <td className="mono path-cell" title={note ? `${full}\n${note}` : full}>
        {full}
      </td>
      <td>
        <span className={`badge tone-${tone}`} data-testid="request-status">
          {log.status || '—'}
        </span>
      </td>
      <td className="mono num" data-testid="request-latency">
        {formatLatency(log.latency_ms)}
      </td>
      <td className="mono muted" title={log.backend ?? ''}>
        {log.backend ? log.backend.replace(/^https?:\/\//, '') : '—'}
      </td>
      <td className="mono muted" title={log.route ?? ''}>
        {log.route || '—'}
      </td>
    </tr>
  );
});
