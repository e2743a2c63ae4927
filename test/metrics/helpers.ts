/** Shared helpers for the metrics tests: completion records and reading series back. */
import type { TestContext } from 'node:test';
import type { Metrics } from '../../src/metrics/index.js';
import { Backend } from '../../src/balancer/index.js';

export { completionRecord as record } from '../helpers/records.js';

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
