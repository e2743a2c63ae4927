/** Gateway-made errors of the admin surface carry the same request id in the body as in the header. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { send, startBackend, startGateway } from '../helpers/gateway.js';

test('a /metrics error through the gateway names the X-Request-Id of its response, never null', async (t) => {
  const be = await startBackend(t);
  const gw = await startGateway(t, `routes:\n  - path: /\n    backend: ${be.url}\n`);
  const r = await send(`${gw.url}/metrics`, { method: 'POST', headers: { 'x-request-id': 'ops-trace-1' } });
  assert.equal(r.status, 405);
  assert.equal(r.headers['x-request-id'], 'ops-trace-1');
  assert.equal(r.headers.allow, 'GET, HEAD');
  assert.deepEqual(r.json(), { error: { code: 'method_not_allowed', message: 'Method Not Allowed', request_id: 'ops-trace-1' } });
  const generated = await send(`${gw.url}/metrics`, { method: 'DELETE' });
  assert.equal(generated.json().error.request_id, generated.headers['x-request-id']);
  assert.ok(generated.json().error.request_id);
});
