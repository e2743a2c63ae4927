/**
 * Cluster-wide learning through Redis: each instance writes its counts of a completed bucket into
 * one hash per series per bucket (`<prefix>analytics:<width>:<series>:<bucket>`, TTL = retention,
 * so memory is bounded), under fields of its own (`<instance>.<counter>`), and analyzers read the
 * hashes back and add the instances up. Writing is idempotent: a publish that timed out but reached
 * Redis later, and its retry, never count twice. Every call is bounded by a timeout; on any failure
 * the link is marked down (the caller learns locally) and a background PING brings it back.
 */
import { RedisLink } from '../store/index.js';
import { HIST_BINS } from './histogram.js';
import { FIELDS, LAT_MAX, type TrafficStore } from './store.js';

/** Hash field names of the counters, by store field index (COUNT, ERRORS, REJECTED, BYTES_IN, BYTES_OUT, LAT_SUM, LAT_SUMSQ, LAT_MAX). */
const FIELD_NAMES = ['c', 'e', 'r', 'bi', 'bo', 'ls', 'lq', 'lm'];
const FIELD_INDEX = new Map(FIELD_NAMES.map((n, i) => [n, i]));

const PROBE_INTERVAL_MS = 500;
const CONNECT_WAIT_MS = 2_000;

export interface ClusterOptions {
  url: string;
  keyPrefix: string;
  /** Longest one batch of commands may take (ms). */
  timeoutMs: number;
  widthMs: number;
  retentionMs: number;
  /** This instance's name in the shared hashes, 1-64 of [A-Za-z0-9_-] (kept across restarts through the snapshot). */
  instanceId: () => string;
  onError: (op: string, err: unknown) => void;
}

export class ClusterLink {
  readonly #opts: ClusterOptions;
  readonly #link: RedisLink;

  constructor(opts: ClusterOptions) {
    this.#opts = opts;
    this.#link = new RedisLink({
      url: opts.url,
      connectWaitMs: CONNECT_WAIT_MS,
      connectTimeoutMs: CONNECT_WAIT_MS,
      probeIntervalMs: PROBE_INTERVAL_MS,
      probeTimeoutMs: bulkTimeoutMs(opts.timeoutMs),
      // a failed first connection is always worth a report; the rest only when they end a healthy spell
      reportEvery: (op) => op === 'connect',
      onError: (op, err) => opts.onError(op, err),
    });
  }

  get healthy(): boolean {
    return this.#link.healthy;
  }

  /** Connects, waiting at most 2 s; never throws because Redis is down (the link starts down and keeps trying). */
  async start(): Promise<void> {
    await this.#link.start();
  }

  async close(): Promise<void> {
    this.#link.close();
  }

  #key(series: string, bucket: number): string {
    return `${this.#opts.keyPrefix}analytics:${this.#opts.widthMs}:${series}:${bucket}`;
  }

  /** Writes this instance's buckets [from, to] of every series of `store` (non-empty ones only). True when Redis took them all. */
  async publish(store: TrafficStore, from: number, to: number): Promise<boolean> {
    const client = this.#link.ready();
    if (client === null) return false;
    const ttl = String(Math.ceil(this.#opts.retentionMs + store.widthMs));
    const me = this.#opts.instanceId() + '.';
    const calls: Promise<unknown>[] = [];
    for (let s = 0; s < store.names.length; s++) {
      const cells = store.cells[s]!;
      const hist = store.hists[s]!;
      for (let b = from; b <= to; b++) {
        const slot = store.slotOf(s, b);
        if (slot === -1) continue;
        const args: string[] = [];
        for (let f = 0; f < FIELDS; f++) {
          const v = cells[slot * FIELDS + f]!;
          if (v !== 0) args.push(me + FIELD_NAMES[f]!, String(v));
        }
        for (let i = 0; i < HIST_BINS; i++) {
          const v = hist[slot * HIST_BINS + i]!;
          if (v !== 0) args.push(`${me}h${i}`, String(v));
        }
        if (args.length === 0) continue;
        const key = this.#key(store.names[s]!, b);
        calls.push(client.sendCommand(['HSET', key, ...args]), client.sendCommand(['PEXPIRE', key, ttl]));
      }
    }
    return this.#bounded('publish', Promise.all(calls));
  }

  /**
   * Reads the merged buckets `buckets` of every series into `into` (an empty hash is an empty
   * bucket). True when every read succeeded; on failure `into` may hold part of them.
   */
  async fetch(into: TrafficStore, buckets: readonly number[], series: readonly number[], current: () => boolean): Promise<boolean> {
    const client = this.#link.ready();
    if (client === null) return false;
    const cells = new Float64Array(FIELDS);
    const hist = new Uint32Array(HIST_BINS);
    const calls: Promise<void>[] = [];
    for (const s of series) {
      const name = into.names[s]!;
      for (const b of buckets) {
        calls.push(
          (client.sendCommand(['HGETALL', this.#key(name, b)]) as Promise<unknown>).then((reply) => {
            // A reply that arrives after the fetch was given up must not land in a store read since.
            if (!current()) return;
            cells.fill(0);
            hist.fill(0);
            const flat = toPairs(reply);
            for (let i = 0; i + 1 < flat.length; i += 2) {
              const full = flat[i]!;
              const field = full.slice(full.indexOf('.') + 1);
              const value = Number(flat[i + 1]);
              if (!Number.isFinite(value) || value < 0) continue;
              if (field.charCodeAt(0) === 104 /* h */) {
                const bin = Number(field.slice(1));
                if (Number.isInteger(bin) && bin >= 0 && bin < HIST_BINS) hist[bin]! += value;
              } else {
                const f = FIELD_INDEX.get(field);
                if (f === undefined) continue;
                if (f === LAT_MAX) cells[f] = Math.max(cells[f]!, value);
                else cells[f]! += value;
              }
            }
            into.setBucket(s, b, cells, hist);
          }),
        );
      }
    }
    return this.#bounded('fetch', Promise.all(calls));
  }

  async #bounded(op: string, work: Promise<unknown>): Promise<boolean> {
    const limit = bulkTimeoutMs(this.#opts.timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(reject, limit, new Error(`redis: analytics ${op} timed out after ${limit}ms`));
        }),
      ]);
      return true;
    } catch (err) {
      work.catch(() => {});
      this.#link.fail(op, err);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Bulk calls (and the probe) get 20× the per-take timeout, at least 1 s. */
function bulkTimeoutMs(timeoutMs: number): number {
  return Math.max(1_000, timeoutMs * 20);
}

/** HGETALL answers a flat array (RESP2) or a map (RESP3 / node-redis type mapping). */
function toPairs(reply: unknown): string[] {
  if (Array.isArray(reply)) return reply.map(String);
  if (reply instanceof Map) return [...reply].flatMap(([k, v]) => [String(k), String(v)]);
  if (reply !== null && typeof reply === 'object') return Object.entries(reply).flatMap(([k, v]) => [k, String(v)]);
  return [];
}
