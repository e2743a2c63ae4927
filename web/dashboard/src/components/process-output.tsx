/** A managed process's stdout/stderr: the last 200 lines, then a live tail from the stream. */
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { api, type ManagedProcess, type ProcessLogLine } from '../api';

const HISTORY_LINES = 200;
/** Lines kept on screen; older ones scroll away. */
const MAX_LINES = 2000;

interface Line {
  n: number;
  text: string;
  stream: 'stdout' | 'stderr' | undefined;
}

export interface ProcessOutputProps {
  processes: ManagedProcess[];
  selectedId: string | null;
  onSelect: (id: string) => void;
  /** Registers a listener for `process_log` events; returns the unsubscribe function. */
  subscribe: (fn: (l: ProcessLogLine) => void) => () => void;
}

/**
 * Lines that arrive while the history is loading may also be in it: drop the longest prefix of
 * `live` that repeats the end of `history`.
 */
function mergeOverlap(history: string[], live: ProcessLogLine[]): ProcessLogLine[] {
  for (let k = Math.min(history.length, live.length); k > 0; k--) {
    let same = true;
    for (let i = 0; i < k; i++) {
      if (history[history.length - k + i] !== live[i]!.line) {
        same = false;
        break;
      }
    }
    if (same) return live.slice(k);
  }
  return live;
}

export function ProcessOutput({ processes, selectedId, onSelect, subscribe }: ProcessOutputProps) {
  const [lines, setLines] = useState<Line[]>([]);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [following, setFollowing] = useState(true);
  const boxRef = useRef<HTMLDivElement>(null);
  const counter = useRef(0);
  const held = useRef<ProcessLogLine[] | null>(null);
  const queue = useRef<ProcessLogLine[]>([]);
  const frame = useRef<number | null>(null);
  const selectedRef = useRef(selectedId);
  selectedRef.current = selectedId;
  const followRef = useRef(true);

  const toLines = (items: { line: string; stream?: 'stdout' | 'stderr' }[]): Line[] =>
    items.map((l) => ({ n: ++counter.current, text: l.line, stream: l.stream }));

  const append = useCallback((items: Line[]) => {
    if (items.length === 0) return;
    setLines((prev) => {
      const next = prev.concat(items);
      return next.length > MAX_LINES ? next.slice(next.length - MAX_LINES) : next;
    });
  }, []);

  const load = useCallback(
    (id: string) => {
      held.current = [];
      queue.current = [];
      setLines([]);
      setError(null);
      setLoading(true);
      api.processLogs(id, HISTORY_LINES).then(
        (history) => {
          if (selectedRef.current !== id) return;
          const live = mergeOverlap(history, held.current ?? []);
          held.current = null;
          setLines(toLines(history.map((line) => ({ line })).concat(live)));
          setLoading(false);
        },
        (e: unknown) => {
          if (selectedRef.current !== id) return;
          append(toLines(held.current ?? []));
          held.current = null;
          setError(`could not load output: ${e instanceof Error ? e.message : String(e)}`);
          setLoading(false);
        },
      );
    },
    [append],
  );

  useEffect(() => {
    if (selectedId) load(selectedId);
    else setLines([]);
  }, [selectedId, load]);

  // Live tail, batched to one render per animation frame.
  useEffect(
    () =>
      subscribe((l) => {
        if (l.id !== selectedRef.current) return;
        if (held.current) {
          held.current.push(l);
          return;
        }
        queue.current.push(l);
        if (frame.current === null) {
          frame.current = requestAnimationFrame(() => {
            frame.current = null;
            const items = queue.current;
            queue.current = [];
            append(toLines(items));
          });
        }
      }),
    [subscribe, append],
  );
  useEffect(() => () => {
    if (frame.current !== null) cancelAnimationFrame(frame.current);
  }, []);

  // Follow the end unless the user scrolled up to read.
  useLayoutEffect(() => {
    const el = boxRef.current;
    if (el && followRef.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  // The panel changes height with its neighbour (e.g. the add form): stay at the end if following.
  useEffect(() => {
    const el = boxRef.current;
    if (!el) return;
    const ro = new ResizeObserver(() => {
      if (followRef.current) el.scrollTop = el.scrollHeight;
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const lastTop = useRef(0);
  const onScroll = () => {
    const el = boxRef.current;
    if (!el) return;
    const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
    // Only a move up is the reader's choice to stop following; a resize may also fire this.
    const movedUp = el.scrollTop < lastTop.current - 1;
    lastTop.current = el.scrollTop;
    const follow = atEnd || (followRef.current && !movedUp);
    if (follow !== followRef.current) {
      followRef.current = follow;
      setFollowing(follow);
    }
  };

  const jumpToEnd = () => {
    followRef.current = true;
    setFollowing(true);
    const el = boxRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  };

  return (
    <section className="card output" aria-label="Process output">
      <header className="card-head">
        <h2>Output</h2>
        <select value={selectedId ?? ''} onChange={(e) => onSelect(e.target.value)} aria-label="Process" data-testid="output-process">
          {selectedId === null && <option value="">— pick a process —</option>}
          {processes.map((p) => (
            <option key={p.id} value={p.id}>
              {p.id} ({p.status})
            </option>
          ))}
        </select>
        {loading && <span className="card-note">loading…</span>}
        <button type="button" className="btn btn-small btn-ghost push-right" onClick={() => selectedId && load(selectedId)} disabled={!selectedId} data-testid="output-reload">
          Reload
        </button>
        <button type="button" className="btn btn-small btn-ghost" onClick={() => setLines([])} data-testid="output-clear">
          Clear
        </button>
      </header>
      <div className="output-wrap">
        <div ref={boxRef} className="output-box mono" onScroll={onScroll} data-testid="output-lines" role="log" aria-live="off">
          {error && <div className="line stderr">{error}</div>}
          {lines.map((l) => (
            <div key={l.n} className={`line${l.stream === 'stderr' || /^\s*(\[[^\]]*\]\s*)?(ERROR|FATAL|panic)\b/.test(l.text) ? ' stderr' : ''}`}>
              {l.text || '\u00a0'}
            </div>
          ))}
          {!loading && !error && lines.length === 0 && <div className="empty">{selectedId ? 'No output yet.' : 'No process selected.'}</div>}
        </div>
        {!following && (
          <button type="button" className="btn btn-small jump" onClick={jumpToEnd}>
            ↓ Follow
          </button>
        )}
      </div>
    </section>
  );
}
