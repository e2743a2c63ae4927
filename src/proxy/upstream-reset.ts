/**
 * Tells a clean end of a close-delimited backend body from a reset. undici treats ECONNRESET on a
 * response without framing as its end (it completes the response from inside the socket's
 * 'error' event); a proxy must not, or a truncated body reaches the client looking complete.
 * Each undici socket gets a marker before and after undici's own 'error' listener; between the
 * two, {@link upstreamResetting} is true. Costs nothing per request.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

let resetting = false;

function markReset(): void {
  resetting = true;
}

function clearReset(): void {
  resetting = false;
}

function onConnected(message: unknown): void {
  const socket = (message as { socket?: Socket }).socket;
  if (socket === undefined || typeof socket.prependListener !== 'function') return;
  // undici attached its listeners before publishing: prepend runs before them, on() after them.
  socket.prependListener('error', markReset);
  socket.on('error', clearReset);
}

subscribe('undici:client:connected', onConnected);

/** True while an upstream socket's error is being handled: a response ending now was cut by it. */
export function upstreamResetting(): boolean {
  return resetting;
}
