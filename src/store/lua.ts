/**
 * Loads the Redis bucket scripts: Redis scripts cannot load one another, so the refill they share
 * (refill.lua, next to this module; the build copies the .lua files from src/ into dist/) is put in
 * front of each script's own text.
 */
import { readFileSync } from 'node:fs';

let refillSource: string | undefined;

/** The source to run for the bucket script at `url`: refill.lua, then the script. Reads files: callers keep the result. */
export function bucketScript(url: URL): string {
  refillSource ??= readFileSync(new URL('./refill.lua', import.meta.url), 'utf8');
  return refillSource + '\n' + readFileSync(url, 'utf8');
}
