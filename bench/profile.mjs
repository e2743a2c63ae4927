#!/usr/bin/env node
/**
 * Where does a target spend its CPU? Starts the test backend and one target under
 * `node --cpu-prof`, loads it with autocannon like bench/run.mjs does (same pinning), stops it
 * gracefully so V8 writes the profile, and prints the top functions by self time, with
 * MicroGate's own frames mapped back to src/*.ts through the dist source maps.
 *
 *   node bench/profile.mjs                 # MicroGate proxy only
 *   PROFILE_TARGET=mg-full node bench/profile.mjs
 *
 * Environment: PROFILE_TARGET (a bench/lib/targets.mjs id without Redis or workers), BENCH_SECONDS (8),
 * BENCH_CONNECTIONS (32), PROFILE_TOP (25), PROFILE_INTERVAL_US (250), BENCH_NO_PIN=1.
 * The .cpuprofile is kept in bench/results/profiles/ (open it in Chrome DevTools or speedscope).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import os from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { scriptScope } from './lib/children.mjs';
import { runLoad } from './lib/load.mjs';
import { httpGet, waitUntil } from './lib/net.mjs';
import { freePorts, hasTaskset, pinPid } from './lib/system.mjs';
import { makeJwt, microgateConfig, requestHeaders, TARGETS } from './lib/targets.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const targetId = process.env.PROFILE_TARGET ?? 'mg-proxy';
const target = TARGETS.find((t) => t.id === targetId && t.kind !== 'direct' && !t.redis && !t.workers);
if (!target) {
  process.stderr.write(`profile: PROFILE_TARGET must be one of ${TARGETS.filter((t) => t.kind !== 'direct' && !t.redis).map((t) => t.id).join(', ')}\n`);
  process.exit(2);
}
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const top = Number(process.env.PROFILE_TOP ?? 25);
const intervalUs = Number(process.env.PROFILE_INTERVAL_US ?? 250);
const pin = process.env.BENCH_NO_PIN !== '1' && hasTaskset() && os.cpus().length >= 2;

const { children, tmpDir, cleanup } = scriptScope('profile');
process.stdout.on('error', () => {}); // e.g. piped into head: still clean up

async function main() {
  if (pin) pinPid(process.pid, 0);
  const [backendPort, port] = await freePorts(2);
  const backend = children.spawn('backend', process.execPath, [join(ROOT, 'bin/microgate-testbackend'), '--port', String(backendPort), '--quiet'], { cpu: pin ? 0 : null });
  const backendUrl = `http://127.0.0.1:${backendPort}`;
  let why = await waitUntil(() => httpGet(`${backendUrl}/`), backend, 15_000);
  if (why) throw new Error(why);

  const jwt = await makeJwt();
  const profDir = join(tmpDir, 'prof');
  const nodeFlags = ['--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-interval=${intervalUs}`];
  let child;
  if (target.kind === 'script') {
    child = children.spawn(target.id, process.execPath, [...nodeFlags, join(ROOT, target.script), '--port', String(port), '--backend', backendUrl, ...(target.args ?? [])], { cpu: pin ? 1 : null });
  } else {
    const file = join(tmpDir, 'config.yml');
    writeFileSync(file, microgateConfig(target, { port, backendUrl, jwtSecret: jwt.secret }));
    child = children.spawn(target.id, process.execPath, [...nodeFlags, join(ROOT, 'bin/microgate'), '--config', file], { cpu: pin ? 1 : null, cwd: tmpDir });
  }
  const url = `http://127.0.0.1:${port}/`;
  const headers = requestHeaders(target, jwt);
  why = await waitUntil(() => httpGet(url, headers), child, 15_000);
  if (why) throw new Error(`${why}\n${child.tail()}`);

  process.stderr.write(`profiling ${target.label}: 1 s warm-up, ${seconds} s at ${connections} connections (sampling every ${intervalUs} µs)\n`);
  await runLoad({ url, connections, duration: 1, headers });
  // V8 profile timestamps and process.hrtime are both CLOCK_MONOTONIC µs: keep only the measured window.
  const from = Number(process.hrtime.bigint() / 1000n);
  const r = await runLoad({ url, connections, duration: seconds, headers });
  const to = Number(process.hrtime.bigint() / 1000n);
  process.stderr.write(`${Math.round(r.rps)} req/s, ${r.errors + r.timeouts} errors, ${r.non2xx} non-2xx\n`);
  await children.stop(child, 10_000); // SIGTERM: a graceful exit is what makes V8 write the profile
  const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (files.length === 0) throw new Error(`no .cpuprofile written (the target ${child.describeExit()})`);
  const outDir = join(ROOT, 'bench', 'results', 'profiles');
  mkdirSync(outDir, { recursive: true });
  const kept = join(outDir, `${target.id}.cpuprofile`);
  renameSync(join(profDir, files[0]), kept);
  // The measured window and its request count, for comparing two profiles per request.
  writeFileSync(kept.replace(/\.cpuprofile$/, '.window.json'), JSON.stringify({ from, to, requests: r.requests }) + '\n');
  process.stdout.write(summarizeProfile(JSON.parse(readFileSync(kept, 'utf8')), r.requests, from, to));
  process.stdout.write(`\nprofile kept in ${relative(ROOT, kept)}\n`);
}

// ---- profile analysis ------------------------------------------------------------------------------
const distUrl = pathToFileURL(join(ROOT, 'dist')).href;
const maps = new Map();

/** dist/x.js:line → src/x.ts:line through the emitted source map (lines 0-based in, 1-based out). */
function original(url, line, column) {
  if (!url.startsWith(distUrl)) return null;
  let map = maps.get(url);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(fileURLToPath(url) + '.map', 'utf8')));
    } catch {
      map = null;
    }
    maps.set(url, map);
  }
  const e = map?.findEntry(line, column);
  if (!e || e.originalSource === undefined) return null;
  const src = e.originalSource.startsWith('file:') ? fileURLToPath(e.originalSource) : join(fileURLToPath(url), '..', e.originalSource);
  return `${relative(ROOT, src)}:${e.originalLine + 1}`;
}

function category(url, name) {
  if (name.startsWith('(')) return name; // (garbage collector), (program), (idle)
  if (url.startsWith(distUrl)) return 'MicroGate (dist/)';
  if (url.includes('/node_modules/')) return url.split('/node_modules/').pop().split('/').slice(0, url.includes('/node_modules/@') ? 2 : 1).join('/');
  if (url.startsWith('node:') || url === '') return 'node core / V8 builtins';
  if (url.includes('/bench/')) return 'bench script';
  return 'other';
}

function summarizeProfile(profile, requests, from, to) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let windowed = 0;
  for (let pass = 0; pass < 2 && windowed === 0; pass++) {
    // Second pass (whole profile) only if the clocks did not line up.
    let t = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas[i];
      if (pass === 0 && (t < from || t > to)) continue;
      const dt = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
      self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
      windowed++;
    }
    if (pass === 0 && windowed === 0) process.stderr.write('profile: sample clock does not match; using the whole profile\n');
  }
  // Inclusive time per function key (a function counted once per stack, so recursion is not double counted).
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const keyOf = (n) => {
    const f = n.callFrame;
    return `${f.functionName || '(anonymous)'}\u0000${f.url}\u0000${f.lineNumber}\u0000${f.columnNumber}`;
  };
  const fns = new Map();
  const entry = (n) => {
    const k = keyOf(n);
    let e = fns.get(k);
    if (!e) {
      const f = n.callFrame;
      e = { name: f.functionName || '(anonymous)', url: f.url, line: f.lineNumber, col: f.columnNumber, self: 0, total: 0 };
      fns.set(k, e);
    }
    return e;
  };
  let busy = 0;
  let idle = 0;
  for (const [id, t] of self) {
    const n = byId.get(id);
    if (n.callFrame.functionName === '(idle)') {
      idle += t;
      continue;
    }
    busy += t;
    entry(n).self += t;
    const seen = new Set();
    for (let cur = n; cur; cur = byId.get(parent.get(cur.id))) {
      const e = entry(cur);
      if (!seen.has(e)) {
        seen.add(e);
        e.total += t;
      }
    }
  }
  const cats = new Map();
  for (const e of fns.values()) cats.set(category(e.url, e.name), (cats.get(category(e.url, e.name)) ?? 0) + e.self);
  const pct = (t) => `${((t / busy) * 100).toFixed(1).padStart(5)}%`;
  const usPerReq = (t) => (requests > 0 ? `${(t / requests).toFixed(2).padStart(6)} µs/req` : '');
  const where = (e) => original(e.url, e.line, e.col) ?? (e.url ? `${e.url.replace(pathToFileURL(ROOT).href + '/', '')}:${e.line + 1}` : '');
  const lines = [];
  lines.push(`\nmeasured run only: busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms, ${requests} requests → ${(busy / requests).toFixed(1)} µs of sampled CPU per request (main thread only)\n`);
  lines.push('self time by component:');
  for (const [c, t] of [...cats].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`  ${pct(t)}  ${c}`);
  lines.push(`\ntop ${top} functions by self time:`);
  for (const e of [...fns.values()].sort((a, b) => b.self - a.self).slice(0, top)) lines.push(`  ${pct(e.self)}  ${usPerReq(e.self)}  ${e.name}  ${where(e)}`);
  const own = [...fns.values()].filter((e) => e.url.startsWith(distUrl));
  lines.push(`\nMicroGate's own functions (dist/ → src/), by self time:`);
  for (const e of own.sort((a, b) => b.self - a.self).slice(0, top)) lines.push(`  ${pct(e.self)} self ${pct(e.total)} total  ${e.name}  ${where(e)}`);
  lines.push(`\nMicroGate's own functions by total (inclusive) time:`);
  for (const e of own.sort((a, b) => b.total - a.total).slice(0, 15)) lines.push(`  ${pct(e.total)} total ${pct(e.self)} self  ${e.name}  ${where(e)}`);
  return lines.join('\n') + '\n';
}

main().then(
  () => cleanup(0),
  (err) => {
    process.stderr.write(`profile: ${err.stack ?? err}\n`);
    return cleanup(1);
  },
);
