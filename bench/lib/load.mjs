/**
 * The load generator: autocannon's programmatic API, run in this (pinned) process. Latency
 * percentiles are taken from autocannon's per-response times at microsecond resolution (its own
 * histogram keeps whole milliseconds, too coarse for loopback latencies).
 */
import { createHistogram } from 'node:perf_hooks';
import autocannon from 'autocannon';

/**
 * Runs one load test and returns what the report needs.
 * @param {{url: string, connections: number, duration: number, headers?: Record<string,string>, rate?: number}} opts
 */
export async function runLoad({ url, connections, duration, headers = {}, rate = 0 }) {
  const hist = createHistogram();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // rate > 0: a fixed offered load (requests/s over all connections), so CPU per request is compared at equal load.
  const instance = autocannon({ url, connections, pipelining: 1, duration, headers, timeout: 10, ...(rate > 0 ? { overallRate: rate } : {}) });
  instance.on('response', (_client, statusCode, _bytes, ms) => {
    if (statusCode >= 200 && statusCode < 300) hist.record(Math.max(1, Math.round(ms * 1000)));
  });
  const r = await instance;
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const requests = r.requests.total;
  const seconds = r.duration > 0 ? r.duration : wallMs / 1000;
  const ok2xx = hist.count;
  return {
    requests,
    seconds,
    rps: requests / seconds,
    p50: ok2xx > 0 ? hist.percentile(50) / 1000 : NaN,
    p99: ok2xx > 0 ? hist.percentile(99) / 1000 : NaN,
    errors: r.errors,
    timeouts: r.timeouts,
    resets: r.resets ?? 0,
    non2xx: r.non2xx,
    statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count])),
    wallMs,
    /** Load-generator CPU as % of one core over the run (≥ ~95% means the generator, not the target, is the limit). */
    loadgenCpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
  };
}
