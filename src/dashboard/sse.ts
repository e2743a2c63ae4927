/**
 * The SSE broker. Publishing is O(1) and never writes: it numbers the event, keeps it in a
 * bounded history ring and, when clients are connected, schedules one flush on the next turn of
 * the event loop. The flush serialises each event once and writes the same string to every
 * client. A client whose socket is not draining gets a bounded queue; beyond it events are
 * dropped and counted, and once it drains it is ended so that it reconnects with Last-Event-ID
 * and catches up from the history. A slow client never blocks the gateway or other clients.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JsonBytes, JsonKey } from '../events/json-bytes.js';
import type { Logger } from '../logging/index.js';
import type { DashboardErrorCode } from './http.js';

/** Turns a stored value into the JSON payload (e.g. a completion record into a RequestLog). */
export type Encoder = (value: never) => unknown;


interface SseEvent {
  readonly id: number;
  readonly event: string;
  readonly value: unknown;
  readonly encode: Encoder | null;
  /** `encode` gives JSON text, or undefined when the value is gone (the event is then not sent), not a value to stringify. */
  readonly json: boolean;
  /** The wire form, built on first use and shared by every client. */
  text: string | null;
}

export interface SseBrokerOptions {
  /** Events kept for Last-Event-ID replay (0 disables replay). */
  history: number;
  /** Events queued per client while its socket is not draining; more are dropped. */
  buffer: number;
  /** Interval of the `: ping` comment. */
  heartbeatMs: number;
  /** Reconnection delay advertised to browsers. */
  retryMs: number;
  /** Concurrent streams; more are refused with 503. */
  maxClients: number;
  logger: Logger;
  /**
   * The entries `publishEntry` publishes (the request log's): their event name, and their JSON
   * text by number, or undefined once the entry is gone (the event is then not sent).
   */
  entries: {
    event: string;
    json: (seq: number) => string | undefined;
    /**
     * The entry's JSON as UTF-8 bytes, when the store can give them: their length (-1 once the
     * entry is gone) and a copy into `target` at `at`. With them, a batch of request events for
     * clients that keep up is written as one buffer, the entries copied from the store as they
     * are: no text is made, joined or encoded again per event.
     */
    bytes?: { length: (seq: number) => number; copy: (seq: number, target: Buffer, at: number) => void };
  };
}

/** The broker's counters (exposed for tests and operators). */
export interface SseStats {
  clients: number;
  /** Events dropped for slow clients since start. */
  droppedEvents: number;
  /** Id of the newest event published. */
  lastEventId: number;
}

class SseClient {
  readonly res: ServerResponse;
  readonly queue: string[] = [];
  /** The last write returned false: queue until 'drain'. */
  blocked = false;
  /** Events dropped since the client last drained. */
  dropped = 0;
  ended = false;
  /** Id the client is up to date with when it connected (it was replayed everything up to it). */
  readonly after: number;

  constructor(res: ServerResponse, after: number) {
    this.res = res;
    this.after = after;
  }
}

function entryEvent(id: number, entries: SseBrokerOptions['entries'], seq: number): SseEvent {
  return { id, event: entries.event, value: seq, encode: entries.json as Encoder, json: true, text: null };
}

function wire(ev: SseEvent): string {
  if (ev.text === null) {
    if (ev.json) {
      const json = (ev.encode as (v: unknown) => string | undefined)(ev.value);
      // JSON text has no raw newlines, so the payload is always one `data:` line.
      ev.text = json === undefined ? '' : `id: ${ev.id}\nevent: ${ev.event}\ndata: ${json}\n\n`;
    } else {
      const data = ev.encode === null ? ev.value : (ev.encode as (v: unknown) => unknown)(ev.value);
      // JSON.stringify escapes newlines, so the payload is always one `data:` line.
      ev.text = `id: ${ev.id}\nevent: ${ev.event}\ndata: ${JSON.stringify(data)}\n\n`;
    }
  }
  return ev.text;
}

/** The constant text around a request entry's id and its JSON (the event name's part is per broker). */
const ID_KEY = new JsonKey('id: ');
const EVENT_END = new JsonKey('\n\n');
/** Digits of an event id at most: ids stay below 2^53 (see #firstId). */
const MAX_ID_DIGITS = 16;
const NO_BYTES = Buffer.alloc(0);

export class SseBroker {
  readonly #opts: SseBrokerOptions;
  readonly #clients = new Set<SseClient>();
  /**
   * The history ring: per slot the event's id and, for an entry (one event per request), its kind
   * and number; for any other event, the event itself. A request's event is two numbers written
   * into typed arrays, not an object kept for `history` events' time: that object outlived a
   * scavenge or two and was promoted, a cost on every request whether or not a browser watched.
   */
  readonly #histId: Float64Array;
  readonly #histSeq: Float64Array;
  /** A slot's event, or null for an entry (its number is in #histSeq). */
  readonly #history: (SseEvent | null | undefined)[];
  #histNext = 0;
  #histSize = 0;
  /** Id of the newest kept event that fell out of the history: a client behind it missed something. */
  #evictedUpTo = 0;
  /**
   * Ids start at the boot time in microseconds, so a browser that reconnects with an id from a
   * previous gateway run is recognised (its id is below every id of this run) instead of being
   * served a wrong replay. 2^53 µs since 1970 lasts until the year 2255.
   */
  readonly #firstId: number;
  #seq: number;
  #pending: SseEvent[] = [];
  #flushHandle: NodeJS.Immediate | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #dropped = 0;
  #closed = false;
  /** `\nevent: <entries.event>\ndata: `: what follows an entry event's id. */
  readonly #entryHead: JsonKey;
  /** Writes a batch's buffer (src/events/json-bytes.ts). */
  readonly #w = new JsonBytes(NO_BYTES);
  /** Entry lengths of the batch being written (reused). */
  #lengths = new Int32Array(64);

  constructor(opts: SseBrokerOptions) {
    this.#opts = opts;
    this.#entryHead = new JsonKey(`\nevent: ${opts.entries.event}\ndata: `);
    this.#history = new Array<SseEvent | null | undefined>(opts.history);
    this.#histId = new Float64Array(opts.history);
    this.#histSeq = new Float64Array(opts.history);
    this.#firstId = Date.now() * 1000;
    this.#seq = this.#firstId;
  }

  stats(): SseStats {
    return { clients: this.#clients.size, droppedEvents: this.#dropped, lastEventId: this.#seq };
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /**
   * Publishes an event. `encode` (a module-level function, so no closure per call) maps `value`
   * to the JSON payload when the event is first sent. Events with `keep: false` (periodic
   * snapshots) are numbered but not kept for replay.
   */
  publish<T>(event: string, value: T, encode: ((v: T) => unknown) | null = null, keep = true): void {
    this.#publish(event, value, encode as Encoder | null, keep);
  }

  /**
   * Publishes entry number `seq` (see `entries`), whose JSON text is read when the event is first
   * sent. Nothing is allocated unless a client is connected.
   */
  publishEntry(seq: number): void {
    if (this.#closed) return;
    const id = ++this.#seq;
    if (this.#history.length > 0) {
      const i = this.#remember(id);
      this.#histSeq[i] = seq;
      if (this.#history[i] !== null) this.#history[i] = null;
    }
    if (this.#clients.size === 0) return;
    this.#pending.push(entryEvent(id, this.#opts.entries, seq));
    this.#flushHandle ??= setImmediate(this.#flush);
  }

  #publish(event: string, value: unknown, encode: Encoder | null, keep: boolean): void {
    if (this.#closed) return;
    const ev: SseEvent = { id: ++this.#seq, event, value, encode, json: false, text: null };
    if (keep && this.#history.length > 0) this.#history[this.#remember(ev.id)] = ev;
    if (this.#clients.size === 0) return;
    this.#pending.push(ev);
    this.#flushHandle ??= setImmediate(this.#flush);
  }

  /** Takes the next history slot for event `id` (evicting the oldest when full) and returns its index. */
  #remember(id: number): number {
    const i = this.#histNext;
    const len = this.#history.length;
    if (this.#histSize === len) this.#evictedUpTo = this.#histId[i]!;
    else this.#histSize++;
    this.#histId[i] = id;
    this.#histNext = i + 1 === len ? 0 : i + 1;
    return i;
  }

  /** The kept event in history slot `i`. */
  #eventAt(i: number): SseEvent {
    return this.#history[i] ?? entryEvent(this.#histId[i]!, this.#opts.entries, this.#histSeq[i]!);
  }

  readonly #flush = (): void => {
    this.#flushHandle = null;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0 || this.#clients.size === 0) return;
    if (this.#opts.entries.bytes !== undefined && this.#entriesOnly(batch)) {
      const buf = this.#entryBytes(batch, this.#opts.entries.bytes);
      if (buf === null) return;
      for (const c of this.#clients) if (!c.ended && !c.res.write(buf)) c.blocked = true;
      return;
    }
    const texts = batch.map(wire);
    const all = texts.length === 1 ? texts[0]! : texts.join('');
    const firstId = batch[0]!.id;
    for (const c of this.#clients) {
      if (c.after < firstId) {
        this.#send(c, all, texts);
      } else {
        // Connected after some of these were published: it already has them (replay) or starts after them.
        const rest = texts.filter((_, i) => batch[i]!.id > c.after);
        if (rest.length > 0) this.#send(c, rest.join(''), rest);
      }
    }
  };

  /** Whether the batch holds only request entries and every client takes it whole: connected before it, and not blocked. */
  #entriesOnly(batch: SseEvent[]): boolean {
    const firstId = batch[0]!.id;
    for (const c of this.#clients) if (c.blocked || c.after >= firstId) return false;
    for (let i = 0; i < batch.length; i++) if (!batch[i]!.json) return false;
    return true;
  }

  /** The batch's wire form as one buffer (entries no longer kept are left out), or null when none is left. */
  #entryBytes(batch: SseEvent[], bytes: NonNullable<SseBrokerOptions['entries']['bytes']>): Buffer | null {
    const lengths = this.#lengths.length >= batch.length ? this.#lengths : (this.#lengths = new Int32Array(batch.length * 2));
    const head = this.#entryHead;
    let room = 0;
    for (let i = 0; i < batch.length; i++) {
      const len = bytes.length(batch[i]!.value as number);
      lengths[i] = len;
      if (len >= 0) room += ID_KEY.length + MAX_ID_DIGITS + head.length + len + EVENT_END.length;
    }
    if (room === 0) return null;
    const w = this.#w;
    w.reset(Buffer.allocUnsafe(room), 0);
    for (let i = 0; i < batch.length; i++) {
      const len = lengths[i]!;
      if (len < 0) continue;
      const ev = batch[i]!;
      w.key(ID_KEY);
      w.num(ev.id);
      w.key(head);
      bytes.copy(ev.value as number, w.buf, w.pos);
      w.pos += len;
      w.key(EVENT_END);
    }
    const out = w.buf.subarray(0, w.pos);
    w.reset(NO_BYTES, 0); // the writer does not keep the batch alive until the next one
    return out;
  }

  #send(c: SseClient, all: string, texts: string[]): void {
    if (c.ended) return;
    if (!c.blocked) {
      if (!c.res.write(all)) c.blocked = true;
      return;
    }
    const room = this.#opts.buffer - c.queue.length;
    if (room >= texts.length) {
      for (const t of texts) c.queue.push(t);
      return;
    }
    for (let i = 0; i < room; i++) c.queue.push(texts[i]!);
    const lost = texts.length - Math.max(0, room);
    if (c.dropped === 0) {
      this.#opts.logger.warn({ queued_events: c.queue.length, total_dropped_events: this.#dropped + lost }, 'SSE client not reading: its queue is full, dropping events');
    }
    c.dropped += lost;
    this.#dropped += lost;
  }

  #onDrain(c: SseClient): void {
    if (c.ended) return;
    let ok = true;
    if (c.queue.length > 0) {
      ok = c.res.write(c.queue.join(''));
      c.queue.length = 0;
    }
    if (c.dropped > 0) {
      this.#opts.logger.warn(
        { dropped_events: c.dropped, total_dropped_events: this.#dropped },
        'SSE client too slow: events dropped; ending its stream so it resumes from the history',
      );
      c.ended = true;
      c.res.end();
      return;
    }
    c.blocked = !ok;
  }

  /** Answers a stream request: headers, retry, `connected`, then any replay after Last-Event-ID. */
  connect(req: IncomingMessage, res: ServerResponse, onRefused: (status: number, code: DashboardErrorCode, message: string) => void): void {
    if (this.#closed) {
      onRefused(503, 'shutting_down', 'Gateway is shutting down');
      return;
    }
    if (this.#clients.size >= this.#opts.maxClients) {
      onRefused(503, 'too_many_streams', `At most ${this.#opts.maxClients} dashboard streams at once`);
      return;
    }
    const c = new SseClient(res, this.#seq);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    req.socket.setTimeout(0);

    let head = `retry: ${this.#opts.retryMs}\n\n`;
    const raw = req.headers['last-event-id'];
    const lastId = typeof raw === 'string' && /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : null;
    if (lastId === null) {
      head += `id: ${this.#seq}\nevent: connected\ndata: {}\n\n`;
    } else {
      // Complete when the id belongs to this run and nothing after it fell out of the history.
      const known = lastId >= this.#firstId && lastId <= this.#seq;
      const replay: string[] = [];
      if (known) {
        const len = this.#history.length;
        for (let i = 0; i < this.#histSize; i++) {
          const slot = (this.#histNext - this.#histSize + i + len) % len;
          if (this.#histId[slot]! > lastId) replay.push(wire(this.#eventAt(slot)));
        }
      }
      const complete = known && lastId >= this.#evictedUpTo;
      const data = JSON.stringify({ resumed: true, replayed: replay.length, complete });
      head += `id: ${known ? lastId : this.#seq}\nevent: connected\ndata: ${data}\n\n` + replay.join('');
    }
    if (!res.write(head)) c.blocked = true;
    // Events published before this point were either replayed or sent; pending ones follow.
    this.#clients.add(c);
    res.on('drain', () => this.#onDrain(c));
    res.on('close', () => {
      if (c.dropped > 0 && !c.ended) this.#opts.logger.warn({ dropped_events: c.dropped }, 'slow SSE client disconnected after dropped events');
      c.ended = true;
      this.#clients.delete(c);
      if (this.#clients.size === 0) this.#stopHeartbeat();
      this.#opts.logger.debug({ clients: this.#clients.size }, 'dashboard stream closed');
    });
    this.#startHeartbeat();
    this.#opts.logger.debug({ clients: this.#clients.size, resumed_from: lastId }, 'dashboard stream opened');
  }

  #startHeartbeat(): void {
    if (this.#heartbeat !== null) return;
    this.#heartbeat = setInterval(() => {
      for (const c of this.#clients) if (!c.blocked && !c.ended) c.blocked = !c.res.write(': ping\n\n');
    }, this.#opts.heartbeatMs);
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  /** Ends every stream at once (a stalled client's socket is destroyed) and stops the timers. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopHeartbeat();
    if (this.#flushHandle !== null) clearImmediate(this.#flushHandle);
    this.#flushHandle = null;
    this.#pending = [];
    for (const c of this.#clients) {
      c.ended = true;
      if (c.blocked) c.res.destroy();
      else c.res.end();
    }
    this.#clients.clear();
  }
}
