/** Turns the per-target medians into the one report: a markdown table (stdout and latest.md) plus notes. */

const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—');
/** Text for a table cell: a "|" would start a new column. */
const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const ratio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—');

/** The markdown table of all rows. */
export function table(rows) {
  const head = ['target', 'req/s', 'p50 ms', 'p99 ms', 'p99 ÷ floor', 'p50 ms @1 conn', 'CPU µs/req', 'CPU/req ÷ floor', 'RSS start MB', 'RSS after MB', 'clean runs', 'errors', 'non-2xx', 'notes'];
  const out = [`| ${head.join(' | ')} |`, `|${head.map((h, i) => (i === 0 || i === head.length - 1 ? ':--' : '--:')).join('|')}|`];
  for (const r of rows) {
    const m = r.median;
    const flagged = r.flags.length > 0;
    const name = `${flagged ? '⚠ ' : ''}${r.label}`;
    const notes = cell(r.flags.concat(r.notes).join('; '));
    if (!m) {
      out.push(`| ${name} |${' — |'.repeat(head.length - 2)} ${notes} |`);
      continue;
    }
    out.push(
      `| ${name} | ${fmt(m.rps)} | ${fmt(m.p50, 2)} | ${fmt(m.p99, 2)} | ${ratio(m.p99VsForwarder)} | ${fmt(m.p50Single, 3)} | ${fmt(m.cpuUsPerReq, 1)} | ${ratio(m.cpuVsForwarder)} | ${fmt(m.rssStartMb)} | ${fmt(m.rssAfterMb)} | ${m.runsClean}/${m.runsTotal} | ${m.errors} | ${m.non2xx} | ${notes} |`,
    );
  }
  return out.join('\n');
}

/** The whole report as markdown. */
export function markdown({ meta, rows, summary }) {
  const lines = [
    '# MicroGate benchmark',
    '',
    `- date: ${meta.date}`,
    `- node: ${meta.node}; CPU: ${meta.cpuModel}; cores: ${meta.cores} (load average at start ${meta.loadavgStart}, at end ${meta.loadavgEnd})`,
    `- pinning: ${meta.pinning}`,
    `- environment of every target process: ${meta.mallocArenaMax ? `MALLOC_ARENA_MAX=${meta.mallocArenaMax} (docs/configuration.md, "Memory")` : "glibc's default malloc arenas"}`,
    `- load: autocannon ${meta.connections} connections${meta.rate > 0 ? ` at a fixed ${meta.rate} req/s` : ''}, pipelining 1, ${meta.seconds} s per run after ${meta.warmup} s warm-up, ${meta.rounds} interleaved round(s)${meta.fresh ? ' (new backend and target processes each round)' : ''}, medians shown; ${meta.latencySeconds > 0 ? `p50 @1 conn from a ${meta.latencySeconds} s run with one connection` : 'no one-connection latency run'}`,
    `- backend: bin/microgate-testbackend --quiet (JSON "Hello from backend"); CPU = utime+stime of the target process from /proc/<pid>/stat (the backend's for "direct"), ÷ responses completed; RSS = VmRSS before the warm-up and after the runs`,
    `- disturbance check: a fixed CPU loop timed before and after each run on the target's and the load generator's core; a run where it moved by more than ${meta.disturbPct}%, or ran more than ${meta.disturbPct}% slower than the quietest loop seen, or where other processes took more than ${meta.disturbCorePct}% of the target's core, is rerun and left out of medians and ratios ("clean runs" = runs in the medians / runs measured); other work on the load generator's core is reported in the notes, not filtered`,
    '',
    table(rows),
    '',
    ...summary.map((s) => `- ${s}`),
    '',
  ];
  return lines.join('\n');
}
