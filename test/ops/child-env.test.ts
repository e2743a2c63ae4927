/**
 * Secrets stay in the gateway: a managed process started by a real gateway sees only PATH, HOME,
 * LANG, LC_*, TZ, NODE_ENV, PORT and its own env, read back from /proc/<pid>/environ.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deadPort, startGateway } from '../helpers/gateway.js';
import { environOf, TESTBACKEND } from './helpers.js';

const SECRET = 'ops-test-admin-token-do-not-leak-4f9c2';
const JWT = 'ops-test-jwt-secret-do-not-leak-81ab0';

async function gatewayWithChild(t: Parameters<typeof startGateway>[0], extra = '') {
  process.env.MG_OPS_ADMIN_TOKEN = SECRET;
  process.env.MG_OPS_JWT_SECRET = JWT;
  t.after(() => {
    delete process.env.MG_OPS_ADMIN_TOKEN;
    delete process.env.MG_OPS_JWT_SECRET;
  });
  const port = await deadPort();
  const gw = await startGateway(
    t,
    `admin:\n  token: \${MG_OPS_ADMIN_TOKEN}\nauth:\n  jwt_secret: \${MG_OPS_JWT_SECRET}\nroutes:\n  - path: /api\n    backend: http://127.0.0.1:${port}\nprocesses:\n  - id: be\n    command: ${TESTBACKEND}\n    args: ["--port", "${port}", "--quiet"]\n    port: ${port}\n    auto_start: true\n    env:\n      BACKEND_MODE: demo\n${extra}`,
  );
  const pid = gw.processes.get('be')!.pid!;
  assert.ok(pid > 0);
  return { gw, pid, port, env: environOf(pid) };
}

test("a managed process never sees the secrets ${ENV} put into the gateway's config", async (t) => {
  const { env, port } = await gatewayWithChild(t);
  const all = Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n');
  assert.ok(!all.includes(SECRET), 'the admin token reached the child');
  assert.ok(!all.includes(JWT), 'the JWT secret reached the child');
  assert.equal(env.MG_OPS_ADMIN_TOKEN, undefined);
  assert.equal(env.PORT, String(port));
  assert.equal(env.BACKEND_MODE, 'demo');
  const allowed = new Set(['PATH', 'HOME', 'LANG', 'TZ', 'NODE_ENV', 'PORT', 'BACKEND_MODE']);
  const extra = Object.keys(env).filter((k) => !allowed.has(k) && !k.startsWith('LC_'));
  assert.deepEqual(extra, [], 'only the allowed variables and its own env');
  if (process.env.PATH !== undefined) assert.equal(env.PATH, process.env.PATH);
});

test('inherit_env: true hands the whole environment to the child, as configured', async (t) => {
  const { env } = await gatewayWithChild(t, '    inherit_env: true\n');
  assert.equal(env.MG_OPS_ADMIN_TOKEN, SECRET);
});
