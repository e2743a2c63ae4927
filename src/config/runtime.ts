/**
 * What the running gateway needs from the config module besides the config itself: route prefix
 * rules and defaults. Kept apart from the schema so that importing them does not load the
 * validator (zod) into the gateway's heap: config files are read in a worker (load-isolated.ts).
 */

/** Default of processes[].start_timeout. */
export const DEFAULT_START_TIMEOUT_MS = 15_000;

/** Route prefixes are compared without a trailing slash ("/api/v1/" is "/api/v1"). */
export function normalizePrefix(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.replace(/\/+$/, '') || '/' : path;
}

/** Paths the gateway answers itself, before any route. */
export function isAdminPath(path: string): boolean {
  return (
    path === '/health' ||
    path === '/health/live' ||
    path === '/health/ready' ||
    path === '/metrics' ||
    path === '/analytics' ||
    path.startsWith('/analytics/') ||
    path === '/dashboard' ||
    path.startsWith('/dashboard/')
  );
}

/** Freezes a config snapshot and everything in it: no module can change what others read. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
