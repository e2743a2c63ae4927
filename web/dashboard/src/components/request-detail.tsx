/** Side panel for one request: overview, transfer, headers and "Copy as cURL". */
import { useEffect, useState } from 'react';
import { api, ApiError, type RequestLog } from '../api';
import { describe, formatBytes, formatLatency, formatTimestamp, headerValues, isSecretHeader, pathWithQuery, statusTone, toCurl } from '../format';

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-http pages on a non-loopback host have no Clipboard API.
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.style.position = 'fixed';
  ta.style.opacity = '0';
  document.body.appendChild(ta);
  ta.select();
  const ok = document.execCommand('copy');
  ta.remove();
  if (!ok) throw new Error('copy refused by the browser');
}

export function RequestDetail({ log, onClose }: { log: RequestLog; onClose: () => void }) {
  const [full, setFull] = useState<RequestLog>(log);
  const [fetchNote, setFetchNote] = useState<string | null>(null);
  const [copyState, setCopyState] = useState<'idle' | 'copied' | string>('idle');

  // The streamed row may be a summary: fetch the stored record (headers included) once.
  useEffect(() => {
    let cancelled = false;
    setFull(log);
    setFetchNote(null);
    setCopyState('idle');
    api.log(log.id).then(
      (stored) => {
        if (cancelled) return;
        // Ids can repeat; only take the record for this very request.
        if (stored.timestamp === log.timestamp) setFull({ ...log, ...stored });
      },
      (e: unknown) => {
        if (!cancelled) setFetchNote(e instanceof ApiError && e.status === 404 ? 'no longer in the gateway’s log store; showing what was streamed' : `could not load details: ${e instanceof Error ? e.message : String(e)}`);
      },
    );
    return () => {
      cancelled = true;
    };
  }, [log]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose]);

  const curl = toCurl(full, window.location.origin);
  const copy = () => {
    copyText(curl.command).then(
      () => setCopyState('copied'),
      (e: unknown) => setCopyState(`copy failed: ${e instanceof Error ? e.message : String(e)}`),
    );
  };
  useEffect(() => {
    if (copyState !== 'copied') return;
    const t = setTimeout(() => setCopyState('idle'), 1500);
    return () => clearTimeout(t);
  }, [copyState]);

  const overview: [string, string][] = [
    ['Request ID', full.id],
    ['Status', String(full.status)],
    ['Method', full.method],
    ['Path', pathWithQuery(full)],
    ['Route', full.route || '—'],
    ['Backend', full.backend || '—'],
    ['Client IP', full.client_ip || '—'],
    ['Consumer', describe(full.consumer) || '—'],
    ['Decision', [describe(full.decision), describe(full.detail)].filter(Boolean).join('  ') || '—'],
    ['Time', formatTimestamp(full.timestamp)],
    ['Latency', formatLatency(full.latency_ms)],
  ];
  const err = describe(full.error);
  if (err) overview.push(['Error', err]);

  return (
    <aside className="detail" role="dialog" aria-label="Request detail" data-testid="request-detail">
      <header className="detail-head">
        <span className={`badge tone-${statusTone(full.status)}`}>{full.status}</span>
        <span className={`method m-${full.method.toLowerCase()}`}>{full.method}</span>
        <span className="mono detail-path" title={pathWithQuery(full)}>
          {pathWithQuery(full)}
        </span>
        <button type="button" className="btn btn-ghost btn-small push-right" onClick={onClose} aria-label="Close detail" data-testid="detail-close">
          ✕
        </button>
      </header>
      <div className="detail-body">
        {fetchNote && <div className="banner banner-info">{fetchNote}</div>}
        <h3>Overview</h3>
        <dl className="kv" data-testid="detail-overview">
          {overview.map(([k, v]) => (
            <div key={k}>
              <dt>{k}</dt>
              <dd className="mono">{v}</dd>
            </div>
          ))}
        </dl>
        <h3>Transfer</h3>
        <dl className="kv">
          <div>
            <dt>Bytes in</dt>
            <dd className="mono">
              {formatBytes(full.bytes_in)}
              {full.bytes_in >= 1024 && <span className="muted"> ({full.bytes_in} B)</span>}
            </dd>
          </div>
          <div>
            <dt>Bytes out</dt>
            <dd className="mono">
              {formatBytes(full.bytes_out)}
              {full.bytes_out >= 1024 && <span className="muted"> ({full.bytes_out} B)</span>}
            </dd>
          </div>
        </dl>
        <HeaderTable title="Request headers" headers={full.request_headers} testId="detail-request-headers" />
        <HeaderTable title="Response headers" headers={full.response_headers} testId="detail-response-headers" />
        <h3>Replay</h3>
        <pre className="curl mono" data-testid="detail-curl">
          {curl.command}
        </pre>
        <div className="curl-actions">
          <button type="button" className="btn btn-primary btn-small" onClick={copy} data-testid="copy-curl">
            {copyState === 'copied' ? 'Copied' : 'Copy as cURL'}
          </button>
          <span className="muted small">
            {copyState !== 'idle' && copyState !== 'copied' ? copyState : curl.omitted > 0 ? `${curl.omitted} credential header${curl.omitted > 1 ? 's' : ''} left out; the body is not logged` : 'the body is not logged'}
          </span>
        </div>
      </div>
    </aside>
  );
}

function HeaderTable({ title, headers, testId }: { title: string; headers: RequestLog['request_headers']; testId: string }) {
  const entries = Object.entries(headers ?? {}).sort(([a], [b]) => a.localeCompare(b));
  return (
    <>
      <h3>{title}</h3>
      {entries.length === 0 ? (
        <div className="muted small">not recorded</div>
      ) : (
        <table className="headers" data-testid={testId}>
          <tbody>
            {entries.flatMap(([name, raw]) =>
              headerValues(raw).map((value, i) => (
                <tr key={`${name}:${i}`}>
                  <th className="mono">{name}</th>
                  <td className={`mono${isSecretHeader(name, value) ? ' redacted' : ''}`}>{value}</td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      )}
    </>
  );
}
