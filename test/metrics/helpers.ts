/** Shared helpers for the metrics tests: completion records and reading series back. */
import type { TestContext } from 'node:test';
import type { CompletionRecord } from '../../src/events/index.js';
import type { Metrics } from '../../src/metrics/index.js';
import { Backend } from '../../src/balancer/index.js';

let seq = 0;

export function record(overrides: Partial<CompletionRecord> = {}): CompletionRecord {
  seq++;
  return {
    id: `req-${seq}`,
    time: 1_700_000_000_000,
    method: 'GET',
    path: '/api/users',
    query: '',
    route: '/api',
    backend: 'http://127.0.0.1:9001',
    status: 200,
    latencyMs: 12,
    bytesIn: 0,
    bytesOut: 42,
    clientIp: '127.0.0.1',
    consumer: undefined,
    decision: undefined,
    detail: undefined,
    errorCode: undefined,
    requestHeaders: {},
    responseHeaders: undefined,
    ...overrides,
  };
}

export interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** The samples of one metric family, as the registry would export them. */
export async function samples(metrics: Metrics, name: string): Promise<Sample[]> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const data = (await metric.get()) as unknown as { values: Sample[] };
  return data.values;
}

/** The value of the one sample matching all given labels (and metricName when given), or undefined. */
export async function valueOf(metrics: Metrics, name: string, labels: Record<string, string | number>, metricName?: string): Promise<number | undefined> {
  const matches = (await samples(metrics, name)).filter(
    (s) => (metricName === undefined || s.metricName === metricName) && Object.entries(labels).every(([k, v]) => String(s.labels[k]) === String(v)),
  );
  if (matches.length > 1) throw new Error(`${name}: ${matches.length} samples match ${JSON.stringify(labels)}`);
  return matches[0]?.value;
}

/** A Backend that never connects anywhere; its pool is destroyed after the test. */
export function backend(t: TestContext, url: string): Backend {
  const b = new Backend(url, { connectTimeoutMs: 100, connections: 1, healthPath: '/' });
  t.after(() => b.destroy());
  return b;
}
