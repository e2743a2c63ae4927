/**
 * Machine facts and per-process CPU accounting for the benchmark: /proc/<pid>/stat ticks,
 * per-core busy ticks from /proc/stat, CPU pinning with taskset, free loopback ports.
 * Linux only; everything degrades to "unknown" (NaN / null) elsewhere instead of throwing.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';

/** Clock ticks per second of /proc CPU counters (`getconf CLK_TCK`, 100 on nearly every Linux). */
export function clockTicks() {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(String(r.stdout ?? '').trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
}

/** utime + stime of a process (all its threads), in clock ticks; NaN if it is gone. */
export function procCpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after it start at "state" (field 3).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // fields 14 (utime) and 15 (stime)
  } catch {
    return NaN;
  }
}

/** user + nice + system ticks of one core from /proc/stat (irq/softirq excluded); NaN if unknown. */
export function coreBusyTicks(cpu) {
  if (cpu === null || cpu === undefined) return NaN;
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${cpu} `));
    if (!line) return NaN;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    return f[0] + f[1] + f[2];
  } catch {
    return NaN;
  }
}

export function cpuModel() {
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.+)$/m);
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** CPUs this process may run on (Cpus_allowed_list), e.g. [0, 1]. */
export function allowedCpus() {
  try {
    const m = readFileSync('/proc/self/status', 'utf8').match(/^Cpus_allowed_list:\s*(.+)$/m);
    if (m) {
      const out = [];
      for (const part of m[1].trim().split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let c = a; c <= (b ?? a); c++) out.push(c);
      }
      return out;
    }
  } catch {
    // fall through
  }
  return Array.from({ length: os.availableParallelism() }, (_, i) => i);
}

let tasksetOk;
/** Is `taskset` installed and working? */
export function hasTaskset() {
  if (tasksetOk === undefined) {
    const r = spawnSync('taskset', ['-p', String(process.pid)], { encoding: 'utf8' });
    tasksetOk = r.status === 0;
  }
  return tasksetOk;
}

/** Moves every thread of a running process onto one CPU. Returns false if that failed. */
export function pinPid(pid, cpu) {
  const r = spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { encoding: 'utf8' });
  return r.status === 0;
}

/**
 * The kernel's range of ephemeral ports (outgoing connections take their local port from it), or
 * null when it cannot be read.
 */
export function ephemeralPortRange() {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && Number.isInteger(high) && low <= high ? { low, high } : null;
  } catch {
    return null;
  }
}

/** Listens on `port` (0: any) of 127.0.0.1; resolves with the server, or null when the port is taken. */
function tryListen(port) {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (err) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(null) : reject(err)));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/**
 * n distinct free TCP ports on 127.0.0.1 (held open together so they differ, then released). They
 * are taken below the kernel's ephemeral range: the targets are restarted on the same ports every
 * round, and a port from that range can meanwhile become the local port of some outgoing
 * connection (the load generator's, the bench's dashboard stream, a gateway's to its backend),
 * after which the target cannot listen on it again. Falls back to ports the kernel picks.
 */
export async function freePorts(n) {
  const servers = [];
  try {
    const range = ephemeralPortRange();
    const low = 10_000;
    const high = range !== null && range.low > low + 1_000 ? range.low - 1 : 0;
    for (let tries = 0; servers.length < n && high > 0 && tries < 50 * n; tries++) {
      const port = low + Math.floor(Math.random() * (high - low + 1));
      if (servers.some((s) => s.address().port === port)) continue;
      const s = await tryListen(port);
      if (s !== null) servers.push(s);
    }
    while (servers.length < n) {
      const s = await tryListen(0);
      if (s === null) throw new Error('no free port on 127.0.0.1');
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r()))));
  }
}

/** Median of the finite numbers in a list (NaN if none). */
export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Resident set size of a process in MB (VmRSS), NaN if it is gone. */
export function rssMb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s*(\d+)\s*kB/m);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** pid and every descendant of it (a `server.workers` gateway's workers), from /proc/<pid>/stat ppid fields. */
export function processTree(pid) {
  const parentOf = new Map();
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        parentOf.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    return [pid];
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of parentOf) if (parent === out[i]) out.push(child);
  return out;
}

/** Sum of f(pid) over a process tree (NaN when the root is gone). */
export function treeSum(pid, f) {
  const pids = processTree(pid);
  let sum = 0;
  for (const p of pids) {
    const v = f(p);
    if (Number.isFinite(v)) sum += v;
    else if (p === pid) return NaN;
  }
  return sum;
}
