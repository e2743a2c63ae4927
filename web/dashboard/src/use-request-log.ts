/**
 * The client-side request log: newest first, capped, fed by the stream in batches (one render per
 * FLUSH_MS however busy the gateway is). While paused, new rows wait in a buffer and are counted.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { RequestLog } from './api';
import { logKey } from './format';

export const MAX_ROWS = 200;
const FLUSH_MS = 200;

/** `fresh` (newest first) in front of `old`, without repeats (a reconnect may replay), capped. */
function mergeRows(fresh: RequestLog[], old: RequestLog[]): { rows: RequestLog[]; added: number } {
  const seen = new Set(old.map(logKey));
  const add: RequestLog[] = [];
  for (const l of fresh) {
    const k = logKey(l);
    if (!seen.has(k)) {
      seen.add(k);
      add.push(l);
    }
  }
  if (add.length === 0) return { rows: old, added: 0 };
  return { rows: add.concat(old).slice(0, MAX_ROWS), added: add.length };
}

export interface RequestLogState {
  rows: RequestLog[];
  paused: boolean;
  /** Rows received while paused, not yet shown. */
  pending: number;
  push: (l: RequestLog) => void;
  /** Merge the initial GET /logs answer (newest first) behind what the stream already delivered. */
  seed: (logs: RequestLog[]) => void;
  togglePause: () => void;
}

export function useRequestLog(): RequestLogState {
  const [rows, setRows] = useState<RequestLog[]>([]);
  const [paused, setPaused] = useState(false);
  const [pending, setPending] = useState(0);
  const incoming = useRef<RequestLog[]>([]); // oldest first, as received
  const held = useRef<RequestLog[]>([]); // newest first, while paused
  const pausedRef = useRef(false);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const flush = useCallback(() => {
    timer.current = null;
    const batch = incoming.current.reverse();
    incoming.current = [];
    if (batch.length === 0) return;
    if (pausedRef.current) {
      const merged = mergeRows(batch, held.current);
      held.current = merged.rows;
      if (merged.added > 0) setPending((n) => n + merged.added);
    } else {
      setRows((prev) => mergeRows(batch, prev).rows);
    }
  }, []);

  const push = useCallback(
    (l: RequestLog) => {
      incoming.current.push(l);
      if (timer.current === null) timer.current = setTimeout(flush, FLUSH_MS);
    },
    [flush],
  );

  const seed = useCallback((logs: RequestLog[]) => {
    setRows((prev) => {
      const seen = new Set(prev.map(logKey));
      const fresh = logs.filter((l) => !seen.has(logKey(l)));
      if (fresh.length === 0) return prev;
      // After a reconnect without replay, missed rows may be newer than shown ones: order by time.
      const t = (l: RequestLog) => Date.parse(l.timestamp) || 0;
      return prev.concat(fresh).sort((a, b) => t(b) - t(a)).slice(0, MAX_ROWS);
    });
  }, []);

  const togglePause = useCallback(() => {
    if (pausedRef.current) {
      flush();
      const buffered = held.current;
      held.current = [];
      pausedRef.current = false;
      setPaused(false);
      setPending(0);
      setRows((prev) => mergeRows(buffered, prev).rows);
    } else {
      flush();
      pausedRef.current = true;
      setPaused(true);
    }
  }, [flush]);

  useEffect(() => () => {
    if (timer.current !== null) clearTimeout(timer.current);
  }, []);

  return { rows, paused, pending, push, seed, togglePause };
}
