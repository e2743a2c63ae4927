/**
 * The young generation during start-up. Loading the modules and building the gateway keep nearly
 * everything they allocate, and V8 answers a high survival rate by doubling the young generation
 * up to its maximum (16 MB of semi-spaces on 64-bit Node 20) before the first request arrives:
 * about 6 MB of RSS that an idle gateway never uses. `bin/microgate` holds the growth factor at 1
 * while it starts; `Gateway.start()` puts V8's default (2) back once it listens, so under traffic
 * the young generation grows exactly as it would have (docs/decisions.md, "Speed").
 *
 * Nothing happens when the operator sets any semi-space flag of their own (NODE_OPTIONS or
 * node's own arguments): theirs stands.
 */
import { setFlagsFromString } from 'node:v8';

/** V8's default growth factor of the young generation. */
const DEFAULT_GROWTH_FACTOR = 2;

let held = false;

function operatorChoseSemiSpace(): boolean {
  const args = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].join(' ');
  return /semi[-_]space/.test(args);
}

/** Keeps the young generation at its initial size until `releaseYoungGeneration()`. */
export function holdYoungGeneration(): void {
  if (held || operatorChoseSemiSpace()) return;
  setFlagsFromString('--semi-space-growth-factor=1');
  held = true;
}

/**
 * Holds it again after a worker thread started. Starting a Worker undoes the hold for the whole
 * process (measured on Node 20: after the config reader's worker came online, importing node-redis's
 * client grew the young generation from 2 to 32 MB in a held start-up; setting the flag again once
 * the worker is online keeps it at 2), so whoever starts a worker during start-up calls this then.
 */
export function reassertYoungGenerationHold(): void {
  if (held) setFlagsFromString('--semi-space-growth-factor=1');
}

/** Lets the young generation grow again (a no-op unless `holdYoungGeneration()` held it). */
export function releaseYoungGeneration(): void {
  if (!held) return;
  held = false;
  setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
}

/** Whether start-up is holding the young generation (for tests). */
export function youngGenerationHeld(): boolean {
  return held;
}
