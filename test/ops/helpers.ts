/** Helpers of the operations tests: a log sink, /proc readers, the built test backend. */
import { readdirSync, readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/logging/index.js';

export const root = new URL('../../', import.meta.url).pathname;
/** The demo/test backend (needs `npx tsc -p tsconfig.build.json` first). */
export const TESTBACKEND = `${root}bin/microgate-testbackend`;

/** A logger whose JSON lines are kept in `lines` (parsed), for asserting what the gateway logged. */
export function captureLogger(level: 'info' | 'warn' = 'info'): { logger: Logger; lines: Record<string, any>[] } {
  const lines: Record<string, any>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: createLogger({ level, pretty: false }, sink), lines };
}

/** The process's environment as the kernel has it. */
export function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

/** Open file descriptors of this process. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Pids of this process's children (from /proc). */
export function childPids(): number[] {
  const out: number[] = [];
  for (const pid of allPids()) if (statOf(pid)?.[1] === String(process.pid)) out.push(pid);
  return out;
}

/** Pids of this test process's descendants (children, their children, …), read from /proc. */
export function descendantPids(): number[] {
  return allPids().filter((pid) => {
    for (let at = pid, hops = 0; at > 1 && hops < 64; hops++) {
      const ppid = Number(statOf(at)?.[1] ?? 0);
      if (ppid === process.pid) return true;
      at = ppid;
    }
    return false;
  });
}

/** A process's state letter (R, S, Z, …), or null when it is gone. */
export function stateOf(pid: number): string | null {
  return statOf(pid)?.[0] ?? null;
}

/** The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, …), or null when it is gone. */
function statOf(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: read after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // gone meanwhile
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}
