/**
 * What the worker's two lease stores have in common (ipc-store.ts for the static limit,
 * route-lease-store.ts for the adaptive route limit): asks of one tick sent to the primary in one
 * message, each answer matched to its ask by id, how long a lease may be held, the periodic sweep
 * that settles old leases, and sending when the primary may already be gone. What a take answers
 * and what a grant does to the lease are the stores' own.
 */
import { systemClock, timersOf, type Clock, type TimerClock, type TimerHandle } from '../clock.js';
import type { WorkerToPrimary } from './messages.js';

export interface LeaseClientOptions {
  /** Sends one message to the primary. */
  send: (msg: WorkerToPrimary) => void;
  clock?: Clock;
  maxLeaseMs?: number;
  relaxedLeaseMs?: number;
}

/** `Q`: what waits in this tick's batch; `F`: what an ask in flight is for. */
export abstract class LeaseClient<Q, F> {
  protected readonly clock: TimerClock;
  /** A lease is settled after this long... */
  protected readonly maxLeaseMs: number;
  /** ...or this long when the primary's bucket was at least half full at the grant. */
  protected readonly relaxedLeaseMs: number;
  readonly #send: (msg: WorkerToPrimary) => void;
  #queued: Q[] = [];
  #flushQueued = false;
  #nextId = 1;
  readonly #inFlight = new Map<number, F>();
  #sweepTimer: TimerHandle | null = null;
  #closed = false;
  readonly #flush = (): void => this.#flushBatch();

  constructor(opts: LeaseClientOptions, defaultMaxLeaseMs: number, defaultRelaxedLeaseMs: number) {
    this.#send = opts.send;
    this.clock = timersOf(opts.clock ?? systemClock);
    this.maxLeaseMs = opts.maxLeaseMs ?? defaultMaxLeaseMs;
    this.relaxedLeaseMs = Math.max(this.maxLeaseMs, opts.relaxedLeaseMs ?? defaultRelaxedLeaseMs);
  }

  /** Settles leases past their time; run every half lease time once started. */
  abstract sweep(): void;

  /** Sends the batch of this tick (never empty). */
  protected abstract sendBatch(batch: Q[]): void;

  protected get closed(): boolean {
    return this.#closed;
  }

  /** Adds `item` to this tick's batch, sent in one message after the current task. */
  protected enqueue(item: Q): void {
    this.#queued.push(item);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flush);
    }
  }

  /** A new ask id, its answer meant for `target`. */
  protected track(target: F): number {
    const id = this.#nextId++;
    this.#inFlight.set(id, target);
    return id;
  }

  /** What the answer `id` is for, once (undefined for an unknown or repeated id). */
  protected landed(id: number): F | undefined {
    const target = this.#inFlight.get(id);
    if (target !== undefined) this.#inFlight.delete(id);
    return target;
  }

  /** How long a lease may be held, by what the primary's bucket (of `capacity`) held at the grant. */
  protected leaseTtl(primaryTokens: number, capacity: number): number {
    return primaryTokens * 2 >= capacity ? this.relaxedLeaseMs : this.maxLeaseMs;
  }

  /** Runs `sweep()` every half lease time until closed. */
  protected scheduleSweep(): void {
    if (this.#closed || this.#sweepTimer !== null) return;
    this.#sweepTimer = this.clock.setTimeout(() => {
      this.#sweepTimer = null;
      this.sweep();
      this.scheduleSweep();
    }, Math.max(10, Math.floor(this.maxLeaseMs / 2)));
    (this.#sweepTimer as { unref?: () => void }).unref?.();
  }

  /** Marks the store closed and stops the sweeps. */
  protected shut(): void {
    this.#closed = true;
    if (this.#sweepTimer !== null) this.clock.clearTimeout(this.#sweepTimer);
    this.#sweepTimer = null;
  }

  /** Lets `scheduleSweep()` run again after `shut()`. */
  protected reopen(): void {
    this.#closed = false;
  }

  protected trySend(msg: WorkerToPrimary): void {
    try {
      this.#send(msg);
    } catch {
      // The primary is gone; the worker is about to exit.
    }
  }

  #flushBatch(): void {
    this.#flushQueued = false;
    const batch = this.#queued;
    if (batch.length === 0) return;
    this.#queued = [];
    this.sendBatch(batch);
  }
}
