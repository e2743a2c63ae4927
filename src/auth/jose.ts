/**
 * jose, loaded on first need. A gateway without JWT auth never loads it (about 7 MB of RSS at
 * start); one with JWT auth loads it in the authenticator's `start()`, before it listens, so no
 * request waits for the import.
 */
type Jose = typeof import('jose');

let loaded: Jose | undefined;
let loading: Promise<Jose> | undefined;

/** jose, importing it the first time. */
export function loadJose(): Promise<Jose> {
  return (loading ??= import('jose').then((m) => (loaded = m)));
}

/** jose if it has been loaded, else undefined (an error that came out of jose implies it is). */
export function joseIfLoaded(): Jose | undefined {
  return loaded;
}
