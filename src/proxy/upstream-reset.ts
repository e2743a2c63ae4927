/**
 * Watches undici's sockets for two things a handler cannot see. (1) A clean end of a close-delimited
 * backend body versus a reset. undici treats ECONNRESET on a
 * response without framing as its end (it completes the response from inside the socket's
 * 'error' event); a proxy must not, or a truncated body reaches the client looking complete.
 * Each undici socket gets a marker before and after undici's own 'error' listener; between the
 * two, {@link upstreamResetting} is true. (2) Bytes after a 204/304: undici completes the response
 * and then fails the socket on the bytes that follow, in the same read. Markers around undici's
 * 'readable' listener let a handler hold its 204/304 until that read is over
 * ({@link deferUntilParsed}). Two function calls per socket read, no allocation.
 */
import { subscribe } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

let resetting = false;
/** True while undici parses bytes it read from one of its sockets. */
let parsing = false;

/** Something waiting for the end of the current read: told whether the socket failed on what followed. */
export interface ParseWaiter {
  verdict(broken: boolean): void;
}
let waiter: ParseWaiter | null = null;

function beforeRead(): void {
  parsing = true;
}

function afterRead(this: Socket): void {
  parsing = false;
  const w = waiter;
  if (w === null) return;
  waiter = null;
  // undici destroys the socket at once on a parse error; 'UND_ERR_INFO' is its own orderly close.
  const err = this.errored as (Error & { code?: string }) | null;
  w.verdict(err !== null && err.code !== 'UND_ERR_INFO');
}

/**
 * Called while a response completes: when that happens inside an undici read, `w` hears after the
 * read whether the socket broke on the bytes that followed, and true is returned. Otherwise false.
 */
export function deferUntilParsed(w: ParseWaiter): boolean {
  if (!parsing) return false;
  waiter?.verdict(false);
  waiter = w;
  return true;
}

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
  // Plain EventEmitter methods: a Readable's own on('readable') would also change its flow state.
  EventEmitter.prototype.prependListener.call(socket, 'readable', beforeRead);
  EventEmitter.prototype.on.call(socket, 'readable', afterRead);
}

subscribe('undici:client:connected', onConnected);

/** True while an upstream socket's error is being handled: a response ending now was cut by it. */
export function upstreamResetting(): boolean {
  return resetting;
}
