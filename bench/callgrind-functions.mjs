#!/usr/bin/env node
/**
 * Instructions per request by function, from the callgrind dumps `npm run bench:instructions`
 * keeps (INSTR_KEEP), with JIT-compiled JavaScript named: run the targets with node's
 * `--perf-basic-prof` (INSTR_NODE_ARGS) so each process writes /tmp/perf-<pid>.map, which maps
 * the code addresses callgrind reports as `0x…` to the JS functions V8 compiled there.
 *
 *   INSTR_KEEP=/tmp/cg INSTR_NODE_ARGS='--no-concurrent-recompilation --perf-basic-prof' \
 *     INSTR_TARGETS=forwarder,mg-proxy npm run bench:instructions
 *   node bench/callgrind-functions.mjs /tmp/cg/mg-proxy.r1.<pid>.out.5            # one target
 *   node bench/callgrind-functions.mjs /tmp/cg/mg-proxy.r1.<pid>.out.5 /tmp/cg/forwarder.r1.<pid>.out.4   # against another
 *
 * A dump's process id (the name's third part) finds its map. Counts are self instructions (what a
 * function executes itself, not its callees) divided by the requests of a counted window
 * (INSTR_REQUESTS, 2000). Options: --requests N, --top N (40), --inclusive (self plus callees:
 * recursion is counted more than once), --callers TEXT (who calls the functions whose name holds TEXT:
 * per caller, calls and inclusive instructions per request; for a builtin such as
 * Builtins_LoadIC_Megamorphic, which JS function pays for it), --callees TEXT (what the functions
 * whose name holds TEXT call: per callee, calls and inclusive instructions per request).
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { requests: { type: 'string', default: '2000' }, top: { type: 'string', default: '40' }, inclusive: { type: 'boolean', default: false }, callers: { type: 'string' }, callees: { type: 'string' } },
});
if (positionals.length < 1 || positionals.length > 2) {
  process.stderr.write('usage: callgrind-functions.mjs <dump> [baseline dump] [--requests N] [--top N] [--inclusive] [--callers TEXT | --callees TEXT]\n');
  process.exit(2);
}
const perRequest = Number(values.requests);

/** The JIT map of the process that wrote `dump`: sorted [start, end, name] entries. */
function jitMap(dump) {
  const pid = basename(dump).split('.')[2];
  const file = `/tmp/perf-${pid}.map`;
  if (!existsSync(file)) return [];
  const entries = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) entries.push([parseInt(m[1], 16), parseInt(m[1], 16) + parseInt(m[2], 16), m[3]]);
  }
  return entries.sort((a, b) => a[0] - b[0]);
}

function nameAt(map, addr) {
  let lo = 0;
  let hi = map.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (map[mid][0] <= addr) lo = mid + 1;
    else hi = mid - 1;
  }
  return hi >= 0 && addr < map[hi][1] ? `JS ${map[hi][2]}` : 'JIT code (unmapped)';
}

/** Instructions by function name in a callgrind dump (name compression and `calls=` lines handled). */
function costs(dump) {
  const map = jitMap(dump);
  const names = new Map();
  const byFn = new Map();
  const resolve = (spec) => {
    const m = /^(\(\d+\))?\s*(.*)$/.exec(spec);
    let name = m[2];
    if (m[1] !== undefined) {
      if (name === '') name = names.get(m[1]);
      else names.set(m[1], name);
    }
    return name.startsWith('0x') ? nameAt(map, parseInt(name.split("'")[0], 16)) : name;
  };
  let fn = '';
  let callee = '';
  let call = false;
  let calls = 0;
  for (const line of readFileSync(dump, 'utf8').split('\n')) {
    if (line.startsWith('fn=')) fn = resolve(line.slice(3));
    else if (line.startsWith('cfn=')) callee = resolve(line.slice(4));
    else if (line.startsWith('calls=')) {
      call = true;
      calls = Number(line.slice(6).split(' ')[0]);
    } else if (/^[0-9+*-]/.test(line)) {
      const n = Number(line.split(' ')[1] ?? 0);
      if (call) {
        call = false;
        const edgeOf = values.callers ?? values.callees;
        if (edgeOf !== undefined) {
          if ((values.callers !== undefined ? callee : fn).includes(edgeOf) && callee !== fn) {
            const row = callers.get(`${fn} → ${callee}`) ?? [0, 0];
            row[0] += calls;
            row[1] += n;
            callers.set(`${fn} → ${callee}`, row);
          }
        } else if (values.inclusive && callee !== fn) byFn.set(fn, (byFn.get(fn) ?? 0) + n);
      } else byFn.set(fn, (byFn.get(fn) ?? 0) + n);
    }
  }
  return byFn;
}

/** Per `caller → callee` of the functions --callers (or --callees) names: [calls, inclusive instructions]. */
const callers = new Map();

const target = costs(positionals[0]);
if (values.callers !== undefined || values.callees !== undefined) {
  console.log('    calls  instructions  caller → callee (per request)');
  for (const [edge, [c, n]] of [...callers].sort((a, b) => b[1][1] - a[1][1]).slice(0, Number(values.top))) {
    console.log(`${(c / perRequest).toFixed(1).padStart(9)} ${Math.round(n / perRequest).toLocaleString('en-US').padStart(13)}  ${edge}`);
  }
  process.exit(0);
}
const base = positionals[1] === undefined ? null : costs(positionals[1]);
const total = (m) => [...m.values()].reduce((a, b) => a + b, 0) / perRequest;
const fmt = (n) => Math.round(n).toLocaleString('en-US').padStart(9);
const top = Number(values.top);
if (base === null) {
  if (!values.inclusive) console.log(`${fmt(total(target))}  total instructions per request`);
  for (const [name, n] of [...target].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(n / perRequest)}  ${name}`);
} else {
  if (!values.inclusive) console.log(`${fmt(total(target) - total(base))}  total difference per request (${fmt(total(target))} against ${fmt(total(base))})`);
  const rows = [...new Set([...target.keys(), ...base.keys()])].map((name) => [name, ((target.get(name) ?? 0) - (base.get(name) ?? 0)) / perRequest, (target.get(name) ?? 0) / perRequest, (base.get(name) ?? 0) / perRequest]);
  console.log('     more      this  baseline  function');
  for (const [name, d, t, b] of rows.sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${fmt(d)} ${fmt(t)} ${fmt(b)}  ${name}`);
}
