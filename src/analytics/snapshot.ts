/**
 * Snapshots of the traffic store and the analyzer's state in `data_dir`: a small binary file
 * (magic, version, JSON header, sparse buckets, SHA-256 trailer) written to a temp file, fsynced
 * and renamed over the old one, so a crash leaves the old snapshot or the new one, never half.
 * Reading checks everything before anything is used: a missing, truncated, corrupt or foreign
 * snapshot is refused as a whole.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Anomaly } from './analyzer.js';
import type { Interval } from './coverage.js';
import { HIST_BINS, HIST_MIN_MS, HIST_RATIO } from './histogram.js';
import { FIELDS, TrafficStore } from './store.js';

export const SNAPSHOT_VERSION = 1;
const MAGIC = 'MGAS';
const DIGEST_BYTES = 32;
/** A snapshot larger than this is not ours (MAX_SLOTS × a few hundred series fits well below). */
const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024;

export interface AnalyzerState {
  lastTested: number | null;
  anomalies: Anomaly[];
  episodes: { key: string; buckets: number[]; index: number }[];
}

export interface SnapshotHeader {
  version: number;
  widthMs: number;
  histBins: number;
  histMinMs: number;
  histRatio: number;
  savedAt: number;
  coverage: Interval[];
  analyzer: AnalyzerState;
  /** Last bucket this instance published to Redis (cluster mode), or null. */
  lastPublished: number | null;
  /** This instance's name in the shared Redis hashes. */
  instanceId?: string;
  series: { name: string; buckets: number }[];
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

/** Encodes the buckets of `store` not older than `minBucket`, with the header fields given. */
export function encodeSnapshot(store: TrafficStore, minBucket: number, meta: Omit<SnapshotHeader, 'version' | 'widthMs' | 'histBins' | 'histMinMs' | 'histRatio' | 'series'>): Buffer {
  const series: { name: string; buckets: number }[] = [];
  const bodies: Buffer[] = [];
  for (let s = 0; s < store.names.length; s++) {
    const stamps = store.stamps[s]!;
    const cells = store.cells[s]!;
    const hist = store.hists[s]!;
    const slots: number[] = [];
    for (let slot = 0; slot < store.slots; slot++) if (stamps[slot]! >= minBucket) slots.push(slot);
    slots.sort((a, b) => stamps[a]! - stamps[b]!);
    let size = 0;
    const nonZero: number[] = [];
    for (const slot of slots) {
      let nz = 0;
      for (let i = 0; i < HIST_BINS; i++) if (hist[slot * HIST_BINS + i] !== 0) nz++;
      nonZero.push(nz);
      size += 8 + FIELDS * 8 + 2 + nz * 6;
    }
    const buf = Buffer.alloc(size);
    let o = 0;
    slots.forEach((slot, k) => {
      o = buf.writeDoubleLE(stamps[slot]!, o);
      for (let f = 0; f < FIELDS; f++) o = buf.writeDoubleLE(cells[slot * FIELDS + f]!, o);
      o = buf.writeUInt16LE(nonZero[k]!, o);
      for (let i = 0; i < HIST_BINS; i++) {
        const v = hist[slot * HIST_BINS + i]!;
        if (v === 0) continue;
        o = buf.writeUInt16LE(i, o);
        o = buf.writeUInt32LE(v, o);
      }
    });
    series.push({ name: store.names[s]!, buckets: slots.length });
    bodies.push(buf);
  }
  const header: SnapshotHeader = { version: SNAPSHOT_VERSION, widthMs: store.widthMs, histBins: HIST_BINS, histMinMs: HIST_MIN_MS, histRatio: HIST_RATIO, series, ...meta };
  const headerBuf = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(12);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(SNAPSHOT_VERSION, 4);
  pre.writeUInt32LE(headerBuf.length, 8);
  const content = Buffer.concat([pre, headerBuf, ...bodies]);
  const digest = createHash('sha256').update(content).digest();
  return Buffer.concat([content, digest]);
}

/**
 * Decodes a snapshot into a new store of `slots` slots, keeping only series `accept` says yes to.
 * Throws SnapshotError (and builds nothing the caller sees) on any inconsistency.
 */
export function decodeSnapshot(buf: Buffer, slots: number, widthMs: number, accept: (name: string) => boolean): { store: TrafficStore; header: SnapshotHeader } {
  if (buf.length < 12 + DIGEST_BYTES) throw new SnapshotError(`truncated (${buf.length} bytes)`);
  if (buf.toString('latin1', 0, 4) !== MAGIC) throw new SnapshotError('not a MicroGate analytics snapshot (bad magic)');
  const version = buf.readUInt32LE(4);
  if (version !== SNAPSHOT_VERSION) throw new SnapshotError(`unsupported snapshot version ${version} (this build reads ${SNAPSHOT_VERSION})`);
  const content = buf.subarray(0, buf.length - DIGEST_BYTES);
  const digest = createHash('sha256').update(content).digest();
  if (!digest.equals(buf.subarray(buf.length - DIGEST_BYTES))) throw new SnapshotError('checksum mismatch (truncated or corrupt)');
  const headerLen = buf.readUInt32LE(8);
  if (12 + headerLen > content.length) throw new SnapshotError('header runs past the end');
  let header: SnapshotHeader;
  try {
    header = JSON.parse(content.toString('utf8', 12, 12 + headerLen)) as SnapshotHeader;
  } catch (err) {
    throw new SnapshotError(`header is not JSON: ${(err as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || !Array.isArray(header.series) || !Array.isArray(header.coverage) || typeof header.analyzer !== 'object' || header.analyzer === null) {
    throw new SnapshotError('header lacks series, coverage or analyzer state');
  }
  if (header.histBins !== HIST_BINS || header.histMinMs !== HIST_MIN_MS || header.histRatio !== HIST_RATIO) throw new SnapshotError('histogram layout differs from this build');
  if (header.widthMs !== widthMs) throw new SnapshotError(`taken with bucket_interval ${header.widthMs}ms, now ${widthMs}ms`);
  if (!Array.isArray(header.analyzer.anomalies) || !Array.isArray(header.analyzer.episodes)) throw new SnapshotError('analyzer state is malformed');
  const store = new TrafficStore(widthMs, slots);
  const cells = new Float64Array(FIELDS);
  const hist = new Uint32Array(HIST_BINS);
  let o = 12 + headerLen;
  for (const entry of header.series) {
    if (typeof entry?.name !== 'string' || !Number.isSafeInteger(entry.buckets) || entry.buckets < 0) throw new SnapshotError('bad series entry');
    const keep = accept(entry.name);
    const s = keep ? store.addSeries(entry.name) : -1;
    for (let k = 0; k < entry.buckets; k++) {
      if (o + 8 + FIELDS * 8 + 2 > content.length) throw new SnapshotError('series data runs past the end');
      const bucket = content.readDoubleLE(o);
      o += 8;
      if (!Number.isSafeInteger(bucket) || bucket < 0) throw new SnapshotError('bad bucket index');
      for (let f = 0; f < FIELDS; f++, o += 8) {
        const v = content.readDoubleLE(o);
        if (!Number.isFinite(v) || v < 0) throw new SnapshotError('bad counter value');
        cells[f] = v;
      }
      const nz = content.readUInt16LE(o);
      o += 2;
      if (o + nz * 6 > content.length) throw new SnapshotError('histogram runs past the end');
      hist.fill(0);
      for (let j = 0; j < nz; j++, o += 6) {
        const bin = content.readUInt16LE(o);
        if (bin >= HIST_BINS) throw new SnapshotError('bad histogram bin');
        hist[bin] = content.readUInt32LE(o + 2);
      }
      if (s !== -1) store.setBucket(s, bucket, cells, hist);
    }
  }
  if (o !== content.length) throw new SnapshotError('trailing bytes after the last series');
  return { store, header };
}

/** Writes atomically: temp file in the same directory, fsync, rename, fsync of the directory. */
export async function writeSnapshotFile(file: string, data: Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  try {
    const dir = await open(dirname(file), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Directory fsync is best effort (not supported everywhere); the rename itself is atomic.
  }
}

/**
 * Reads a snapshot file; null when there is none. What is there is judged before it is read: only
 * a regular file of at most MAX_SNAPSHOT_BYTES is (a pipe would hold start-up until someone wrote
 * to it, and a file of gigabytes was read whole before being refused).
 */
export async function readSnapshotFile(file: string): Promise<Buffer | null> {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw new SnapshotError('not a regular file');
    if (info.size > MAX_SNAPSHOT_BYTES) throw new SnapshotError(`larger than ${MAX_SNAPSHOT_BYTES} bytes (${info.size})`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

/** Makes sure `dir` exists and a file can be written in it; throws an Error naming the path if not. */
/**
 * `mkdir -p` one level at a time. Node 20's `mkdir(dir, { recursive: true })` never settles for a
 * path in a file system that answers ENOENT to a new directory (e.g. under /proc): it reads that
 * as "parent missing" and loops. Here each missing level is created once, and the first refusal
 * is the error.
 */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    try {
      await stat(at);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(at);
      const parent = dirname(at);
      if (parent === at) break;
      at = parent;
    }
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      await mkdir(missing[i]!);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

export async function ensureWritableDir(dir: string): Promise<void> {
  const probe = `${dir}/.microgate-write-test-${process.pid}`;
  try {
    await makeDirs(dir);
    const fh = await open(probe, 'w', 0o600);
    await fh.close();
    await unlink(probe);
  } catch (err) {
    throw new Error(`analytics: data_dir "${dir}" is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): snapshots of learned traffic are kept there; fix its permissions or set data_dir`, { cause: err });
  }
}
