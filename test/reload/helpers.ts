/** Reload test helpers: a real gateway started from a config file in a temp dir, and that file rewritten. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Agent, request } from 'undici';
import { loadConfig } from '../../src/config/index.js';
import { createGateway, type Gateway } from '../../src/gateway.js';
import { silentLogger } from '../helpers/gateway.js';

export interface FileGateway {
  gw: Gateway;
  file: string;
  /** Rewrites the config file (the gateway reads it on the next reload). */
  write(yaml: string): Promise<void>;
}

/** A gateway started from `yaml` written to a file it can reload; closed after the test. */
export async function startFromFile(t: TestContext, yaml: string): Promise<FileGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-reload-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'cfg.yml');
  await writeFile(file, yaml);
  const gw = createGateway(await loadConfig(file), { logger: silentLogger, defaultMetrics: false, configFile: file, baseDir: dir });
  t.after(() => gw.close());
  await gw.start({ port: 0, host: '127.0.0.1' });
  return { gw, file, write: (text) => writeFile(file, text) };
}

const agent = new Agent({ keepAliveTimeout: 10_000, connections: 16 });

export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await request(url, { headers, dispatcher: agent });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.statusCode, body };
}

/** POST /dashboard/api/reload as the dashboard does (JSON, same origin, from loopback). */
export async function postReload(base: string): Promise<{ status: number; body: any }> {
  const res = await request(`${base}/dashboard/api/reload`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', dispatcher: agent });
  return { status: res.statusCode, body: await res.body.json() };
}

/** The value of a Prometheus sample line, or undefined. */
export function sample(metricsText: string, line: string): number | undefined {
  for (const l of metricsText.split('\n')) if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  return undefined;
}
