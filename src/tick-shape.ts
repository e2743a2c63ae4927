/**
 * Keeps one of node's `process.nextTick` entries alive for the life of the process, so the hidden
 * class (V8 map) every tick entry is built with stays the same.
 *
 * Why: `process.nextTick` builds each entry with an object literal whose first two keys are computed
 * (node's async-id symbols). V8 remembers, per such key, the one map the literal had there; when it
 * later sees another map, it gives up on that key for good, and every later tick defines it through
 * the runtime (~7,000 instructions a tick instead of a few stores; a proxied request makes about
 * four ticks). The entries' chain of maps starts at a root map V8 caches weakly, and only live
 * entries hold it: at a moment when no tick is queued, a full garbage collection can free it, and
 * the next tick builds a new chain from a new root.
 * Whether that happens depends on when the collections fall during start-up, so it hit some
 * gateway processes and not others: in one bench run, four of eight processes of the same build
 * rebuilt the chain and ran ~10% more CPU per request (32.6-33.7 µs against 29.4-29.9).
 * A held entry keeps the first chain alive, so the literal never sees a second map.
 * docs/decisions.md (Speed, "Ninth session") has the evidence.
 *
 * The entry is taken inside a tick's own callback with `executionAsyncResource()`, which is the
 * entry while its callback runs; it holds only its callback (a small closure) and its async ids.
 */
import { executionAsyncResource } from 'node:async_hooks';

let held: object | null = null;

/** Holds a tick entry (once); resolves when it is held. Call as early in start-up as possible. */
export function holdTickShape(): Promise<void> {
  if (held !== null) return Promise.resolve();
  return new Promise((resolve) => {
    process.nextTick(function holdThisTick() {
      held = executionAsyncResource();
      resolve();
    });
  });
}

/** The held entry (for tests). */
export function heldTickEntry(): object | null {
  return held;
}
