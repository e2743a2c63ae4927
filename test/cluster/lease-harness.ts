/**
 * A simulated cluster for the lease tests: one ledger (the primary's buckets) and several stores
 * (one per worker) joined by an asynchronous in-process channel that delivers like IPC does (later,
 * in order). Time is a ManualClock. A killed worker's messages are dropped and the ledger forgets it.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { ManualClock } from '../../src/clock.js';
import type { PrimaryToWorker, WorkerToPrimary } from '../../src/cluster/index.js';

export interface LeaseCluster<L, S> {
  clock: ManualClock;
  ledger: L;
  stores: S[];
  /** Messages each worker sent. */
  sent: WorkerToPrimary[][];
  /** Worker i is dead: its messages are dropped and the ledger forgets it. */
  kill(i: number): void;
}

export interface LeaseClusterParts<L, S> {
  /** The primary's ledger, shared by `holders()` live workers. */
  ledger: (clock: ManualClock, holders: () => number) => L;
  /** Worker i's store, sending with `send`. */
  store: (clock: ManualClock, send: (msg: WorkerToPrimary) => void) => S;
  /** The primary's handling of one message of worker i: the reply, or null. */
  serve: (ledger: L, i: number, msg: WorkerToPrimary) => PrimaryToWorker | null;
}

export function makeLeaseCluster<L extends { forget(holder: number): void }, S extends { receive(msg: PrimaryToWorker): boolean }>(
  workers: number,
  parts: LeaseClusterParts<L, S>,
): LeaseCluster<L, S> {
  const clock = new ManualClock(1_000_000);
  const dead = new Set<number>();
  const ledger = parts.ledger(clock, () => workers - dead.size);
  const stores: S[] = [];
  const sent: WorkerToPrimary[][] = [];
  for (let i = 0; i < workers; i++) {
    sent.push([]);
    const store: S = parts.store(clock, (msg) => {
      sent[i]!.push(msg);
      // Delivered later, like IPC.
      setImmediate(() => {
        if (dead.has(i)) return;
        const reply = parts.serve(ledger, i, msg);
        if (reply !== null) setImmediate(() => !dead.has(i) && store.receive(reply));
      });
    });
    stores.push(store);
  }
  return {
    clock,
    ledger,
    stores,
    sent,
    kill(i) {
      dead.add(i);
      ledger.forget(i);
    },
  };
}

/** Lets the messages in flight (and their answers) be delivered. */
export async function settleAll(): Promise<void> {
  for (let i = 0; i < 10; i++) await tick();
}
