/**
 * The admin relay: a worker hands admin requests to the primary's private listener, which serves
 * relayed admin paths only, and judges them by the client's address, not the relay's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { adminRelay, relayAdmission, RELAY_PEER_HEADER, RELAY_SECRET_HEADER } from '../../src/cluster/admin-relay.js';
import { startGateway } from '../helpers/gateway.js';

const TOKEN = 'an-admin-token-of-enough-length';
const SECRET = 'relay-secret-for-this-test-0123456789';

function yaml(extra = ''): string {
  return `server:\n  port: 0\n  host: 127.0.0.1\nroutes:\n  - path: /\n    backend: "http://127.0.0.1:9"\nadmin:\n  token: "${TOKEN}"\n  public_metrics: false\n${extra}`;
}

async function pair(t: Parameters<typeof startGateway>[0], adminExtra = '') {
  const primary = await startGateway(t, yaml(adminExtra), { defaultMetrics: false, cluster: { role: 'primary', admit: relayAdmission(SECRET) } });
  let draining = false;
  const relay = adminRelay({ port: primary.port, secret: SECRET, draining: () => draining });
  const worker = await startGateway(t, yaml(adminExtra), { defaultMetrics: false, cluster: { role: 'worker', relayAdmin: relay.handler } });
  return { primary, worker, setDraining: (v: boolean) => (draining = v) };
}

test('a worker answers admin paths with the primary\'s answer', async (t) => {
  const { worker } = await pair(t);
  const res = await request(`${worker.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.statusCode, 200);
  assert.match(await res.body.text(), /gateway_http_requests_total/);
});

test('the primary judges the client\'s address, not the relay\'s loopback one', async (t) => {
  const { primary } = await pair(t);
  const direct = (peer: string, auth?: string) =>
    request(`${primary.url}/metrics`, { headers: { [RELAY_SECRET_HEADER]: SECRET, [RELAY_PEER_HEADER]: peer, host: 'localhost', ...(auth ? { authorization: `Bearer ${auth}` } : {}) } });
  const remote = await direct('203.0.113.9');
  assert.equal(remote.statusCode, 401, 'a remote client gets no loopback trust through the relay');
  await remote.body.dump();
  const withToken = await direct('203.0.113.9', TOKEN);
  assert.equal(withToken.statusCode, 200);
  await withToken.body.dump();
  const local = await direct('127.0.0.1');
  assert.equal(local.statusCode, 200, 'a loopback client keeps the loopback rule');
  await local.body.dump();
});

test('the primary\'s private listener refuses requests without the relay secret, and proxy paths', async (t) => {
  const { primary } = await pair(t);
  const noSecret = await request(`${primary.url}/metrics`);
  assert.equal(noSecret.statusCode, 403);
  assert.equal(((await noSecret.body.json()) as { error: { code: string } }).error.code, 'forbidden');
  const wrong = await request(`${primary.url}/metrics`, { headers: { [RELAY_SECRET_HEADER]: SECRET.replace('0', '1') } });
  assert.equal(wrong.statusCode, 403);
  await wrong.body.dump();
  const proxyPath = await request(`${primary.url}/api/x`, { headers: { [RELAY_SECRET_HEADER]: SECRET } });
  assert.equal(proxyPath.statusCode, 403, 'the primary never serves proxy traffic');
  await proxyPath.body.dump();
});

test('a draining worker answers /health/ready 503 itself', async (t) => {
  const { worker, setDraining } = await pair(t);
  const ready = await request(`${worker.url}/health/ready`);
  assert.equal(ready.statusCode, 200);
  await ready.body.dump();
  setDraining(true);
  const draining = await request(`${worker.url}/health/ready`);
  assert.equal(draining.statusCode, 503);
  assert.deepEqual(await draining.body.json(), { status: 'draining' });
});
