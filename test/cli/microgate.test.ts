/**
 * `bin/microgate` as a real child process: `check`, flags, MICROGATE_CONFIG, refusing a bad
 * config before listening, and a clean SIGTERM shutdown that leaves no managed process behind.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { before, describe, test, type TestContext } from 'node:test';
import {
  assertBuilt,
  childrenOf,
  cleanEnv,
  freePort,
  isAlive,
  MICROGATE,
  ROOT,
  run,
  Running,
  sleep,
  startTestBackend,
  tempDir,
  waitUntil,
} from './helpers.js';

before(assertBuilt);

const LISTENING = /MicroGate listening on http:\/\/[^:\s]+:(\d+)/;

/** A small valid config listening on 127.0.0.1 at `port`. */
function gatewayConfig(port: number, extra = ''): string {
  return `server:\n  port: ${port}\n  host: 127.0.0.1\nlogging:\n  level: warn\n${extra}`;
}

async function startGateway(t: TestContext, args: string[], env?: NodeJS.ProcessEnv, cwd?: string): Promise<{ gw: Running; port: number }> {
  const gw = new Running(t, MICROGATE, args, { env, cwd });
  const m = await gw.waitForStdout(LISTENING, 15_000);
  return { gw, port: Number(m[1]) };
}

async function health(port: number): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  return { status: res.status, body: await res.json() };
}

async function refused(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) });
    return false;
  } catch (err) {
    return ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
  }
}

describe('microgate check', () => {
  test("exits 0 and prints a summary for the repo's config.yml", async () => {
    const r = await run(MICROGATE, ['check', 'config.yml']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'config.yml: OK');
    assert.ok(lines.includes('listen 0.0.0.0:8080 (body limit 52428800 bytes, upstream timeout 30000ms)'), r.stdout);
    assert.ok(lines.includes('route /api/v1 -> http://localhost:9001, http://localhost:9002, http://localhost:9003 (round-robin)'), r.stdout);
    assert.ok(lines.includes('route /api/v2 -> http://localhost:9004 (round-robin)'), r.stdout);
    assert.ok(lines.some((l) => l.startsWith('process backend-9001: ./bin/microgate-testbackend --port 9001 (auto start)')));
    assert.doesNotMatch(r.stdout, /demo-secret-change-me|key-abc123/, 'no secret in the summary');
  });

  test("exits 0 for the reference README config and notes the adaptive features that are not wired yet", async () => {
    const r = await run(MICROGATE, ['check', 'test/config/fixtures/seed-config.yml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^test\/config\/fixtures\/seed-config\.yml: OK\n/);
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('note: ')).length, 2);
  });

  test('exits non-zero on a bad file, listing every problem as file:line:col, and prints nothing on stdout', async (t) => {
    const { write } = await tempDir(t);
    const file = await write(
      'bad.yml',
      ['server:', '  prot: 8080', 'routes:', '  - path: "/health"', '    backend: "ftp://x"', 'healthcheck:', '  interval: 0', 'ratelimit:', '  max_tokens: 0', '  refill_rate: 1', ''].join('\n'),
    );
    const r = await run(MICROGATE, ['check', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    const problems = lines.filter((l) => /^[^:]+:\d+:\d+ /.test(l) && l.startsWith(`${file}:`));
    assert.deepEqual(
      problems.map((l) => /^[^:]+:(\d+):(\d+) (\S+):/.exec(l)?.slice(1)),
      [
        ['2', '3', 'server.prot'],
        ['4', '11', 'routes[0].path'],
        ['5', '14', 'routes[0].backend'],
        ['7', '13', 'healthcheck.interval'],
        ['9', '15', 'ratelimit.max_tokens'],
      ],
    );
    assert.equal(lines.at(-1), `${file}: 5 problem(s)`);
  });

  test('reports a YAML syntax error with its line', async (t) => {
    const { write } = await tempDir(t);
    const file = await write('syntax.yml', 'server:\n  port: 8080\n routes: [\n');
    const r = await run(MICROGATE, ['check', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^${file}:[1-9]\\d*:\\d+ `, 'm'));
  });

  test('reports a missing file', async () => {
    const r = await run(MICROGATE, ['check', '/nonexistent/microgate.yml']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\/nonexistent\/microgate\.yml:0:0 .*file not found/);
  });

  test('reports a missing environment variable with the key and line', async (t) => {
    const { write } = await tempDir(t);
    const file = await write('env.yml', 'auth:\n  jwt_secret: "${MG_CLI_TEST_UNSET_SECRET}"\n');
    const r = await run(MICROGATE, ['check', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}:2:15 auth\\.jwt_secret: environment variable MG_CLI_TEST_UNSET_SECRET is not set`));
  });

  test('accepts the file as --config too', async (t) => {
    const { write } = await tempDir(t);
    const file = await write('flag.yml', gatewayConfig(9998));
    const r = await run(MICROGATE, ['check', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /listen 127\.0\.0\.1:9998 /);
  });

  test('checks the file named by MICROGATE_CONFIG when no file is given', async (t) => {
    const { write } = await tempDir(t);
    const file = await write('from-env.yml', gatewayConfig(9999));
    const r = await run(MICROGATE, ['check'], { env: cleanEnv({ MICROGATE_CONFIG: file }) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${file}: OK\\nlisten 127\\.0\\.0\\.1:9999 `));
  });
});

describe('microgate flags', () => {
  test('--help prints the usage on stdout and exits 0', async () => {
    const r = await run(MICROGATE, ['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage:\n {2}microgate \[--config FILE\] \[--port N\]/);
    assert.match(r.stdout, /microgate check FILE/);
    assert.equal(r.stderr, '');
  });

  test('--version prints the package version', async () => {
    const r = await run(MICROGATE, ['--version']);
    assert.equal(r.code, 0);
    const pkg = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string };
    assert.equal(r.stdout, `${pkg.version}\n`);
  });

  for (const [label, args] of [
    ['an unknown flag', ['--bogus']],
    ['an unknown command', ['serve']],
    ['a --port that is not a number', ['--port', 'abc']],
    ['a --port out of range', ['--port', '70000']],
  ] as const) {
    test(`exits 2 with the usage on ${label}`, async () => {
      const r = await run(MICROGATE, [...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^microgate: /);
      assert.equal(r.stdout, '');
    });
  }
});

describe('microgate (running)', () => {
  test('exits non-zero before listening when the config is bad', async (t) => {
    const { write } = await tempDir(t);
    const port = await freePort();
    const file = await write('bad.yml', `${gatewayConfig(port)}healthcheck:\n  interval: 0\nbogus: 1\n`);
    const gw = new Running(t, MICROGATE, ['--config', file]);
    const { code } = await gw.waitForExit(10_000);
    assert.equal(code, 1);
    assert.doesNotMatch(gw.stdout, /listening/i);
    assert.match(gw.stderr, new RegExp(`${file}:\\d+:\\d+ healthcheck\\.interval: `));
    assert.match(gw.stderr, new RegExp(`${file}:\\d+:\\d+ bogus: `));
    assert.match(gw.stderr, /2 problem\(s\); not starting/);
    assert.ok(await refused(port));
  });

  test('exits non-zero when no config exists at ./config.yml and none is given', async (t) => {
    const { dir } = await tempDir(t);
    const r = await run(MICROGATE, [], { cwd: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\.\/config\.yml:0:0 .*file not found/);
  });

  test('--port overrides server.port', async (t) => {
    const { write } = await tempDir(t);
    const configured = await freePort();
    const override = await freePort();
    const file = await write('gw.yml', gatewayConfig(configured));
    const { gw, port } = await startGateway(t, ['--config', file, '--port', String(override)]);
    assert.equal(port, override);
    assert.equal((await health(override)).status, 200);
    assert.ok(await refused(configured), 'nothing listens on the configured port');
    gw.child.kill('SIGTERM');
    assert.equal((await gw.waitForExit()).code, 0);
  });

  test('honours MICROGATE_CONFIG, and --config wins over it', async (t) => {
    const { write } = await tempDir(t);
    const fromEnv = await write('env.yml', gatewayConfig(0, 'routes:\n  - path: "/env"\n    backend: "http://127.0.0.1:1"\n'));
    const fromFlag = await write('flag.yml', gatewayConfig(0, 'routes:\n  - path: "/flag"\n    backend: "http://127.0.0.1:2"\n'));
    const env = cleanEnv({ MICROGATE_CONFIG: fromEnv });

    const a = await startGateway(t, ['--port', '0'], env);
    assert.deepEqual(Object.keys((await health(a.port)).body.backends), ['http://127.0.0.1:1']);
    a.gw.child.kill('SIGTERM');
    assert.equal((await a.gw.waitForExit()).code, 0);

    const b = await startGateway(t, ['--port', '0', '--config', fromFlag], env);
    assert.deepEqual(Object.keys((await health(b.port)).body.backends), ['http://127.0.0.1:2']);
    b.gw.child.kill('SIGTERM');
    assert.equal((await b.gw.waitForExit()).code, 0);
  });

  test('proxies to a backend and exits 0 on SIGINT', async (t) => {
    const backend = await startTestBackend(t);
    const { write } = await tempDir(t);
    const file = await write('gw.yml', gatewayConfig(0, `routes:\n  - path: "/api"\n    backend: "${backend.url}"\n`));
    const { gw, port } = await startGateway(t, ['--config', file]);
    const res = await fetch(`http://127.0.0.1:${port}/api/hello?x=1`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { message: 'Hello from backend', path: '/api/hello', port: backend.port });
    gw.child.kill('SIGINT');
    assert.equal((await gw.waitForExit()).code, 0);
  });

  test('exits non-zero when the port is taken, and stops the processes it auto-started', { timeout: 30_000 }, async (t) => {
    const taken = await startTestBackend(t);
    const p1 = await freePort();
    const { write } = await tempDir(t);
    const file = await write(
      'gw.yml',
      gatewayConfig(
        taken.port,
        `routes:\n  - path: "/api"\n    backend: "http://127.0.0.1:${p1}"\nprocesses:\n  - id: b1\n    command: ./bin/microgate-testbackend\n    args: ["--port", "${p1}", "--quiet"]\n    port: ${p1}\n    route: /api\n    auto_start: true\n`,
      ),
    );
    const gw = new Running(t, MICROGATE, ['--config', file]);
    // Catch the auto-started backend's pid while the gateway is still alive.
    let childPids: number[] = [];
    const exited = gw.waitForExit(20_000);
    while (gw.child.exitCode === null) {
      const kids = childrenOf(gw.pid).filter((c) => c.cmdline.includes(`--port ${p1}`));
      if (kids.length > 0) childPids = kids.map((k) => k.pid);
      await sleep(20);
    }
    const { code } = await exited;
    assert.equal(code, 1);
    assert.doesNotMatch(gw.stdout, LISTENING);
    for (const pid of childPids) assert.equal(isAlive(pid), false, `auto-started backend ${pid} outlived the gateway`);
    assert.deepEqual(pgrep(`microgate-testbackend --port ${p1} `), []);
  });

  test('SIGTERM with auto-started processes exits 0 and leaves no child process behind', { timeout: 60_000 }, async (t) => {
    const [p1, p2] = [await freePort(), await freePort()];
    const { write } = await tempDir(t);
    const file = await write(
      'gw.yml',
      gatewayConfig(
        0,
        `routes:
  - path: "/api/v1"
    backends: ["http://127.0.0.1:${p1}", "http://127.0.0.1:${p2}"]
healthcheck:
  interval: 1s
processes:
  - id: b1
    command: ./bin/microgate-testbackend
    args: ["--port", "${p1}", "--quiet"]
    port: ${p1}
    route: /api/v1
    auto_start: true
  - id: b2
    command: ./bin/microgate-testbackend
    args: ["--port", "${p2}", "--quiet"]
    port: ${p2}
    route: /api/v1
    auto_start: true
`,
      ),
    );
    const { gw, port } = await startGateway(t, ['--config', file]);
    // Safety net: whatever happens, do not leave the backends running after the test.
    t.after(() => {
      for (const pid of [...pgrep(`microgate-testbackend --port ${p1} `), ...pgrep(`microgate-testbackend --port ${p2} `)]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    });

    // Both managed backends answer through the gateway.
    const seen = new Set<number>();
    await waitUntil(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/api/v1/x`);
        if (res.status === 200) seen.add(((await res.json()) as { port: number }).port);
        else await res.arrayBuffer();
        return seen.size === 2;
      },
      15_000,
      'both auto-started backends serving through the gateway',
    );
    assert.deepEqual([...seen].sort(), [p1, p2].sort());

    const kids = childrenOf(gw.pid);
    const backendPids = kids.filter((k) => /microgate-testbackend --port \d+/.test(k.cmdline)).map((k) => k.pid);
    assert.equal(backendPids.length, 2, `children: ${JSON.stringify(kids)}`);
    assert.deepEqual(new Set([...pgrep(`microgate-testbackend --port ${p1} `), ...pgrep(`microgate-testbackend --port ${p2} `)]), new Set(backendPids));

    gw.child.kill('SIGTERM');
    const { code, signal } = await gw.waitForExit(20_000);
    assert.equal(signal, null);
    assert.equal(code, 0, gw.stderr);
    for (const pid of backendPids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `backend ${pid} outlived the gateway`);
    assert.deepEqual(pgrep(`microgate-testbackend --port ${p1} `), []);
    assert.deepEqual(pgrep(`microgate-testbackend --port ${p2} `), []);
    assert.ok(await refused(port));
  });
});

/** Pids whose full command line contains `pattern` (fixed string), excluding pgrep itself. */
function pgrep(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', '--', pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch (err) {
    if ((err as { status?: number }).status === 1) return []; // nothing matched
    throw err;
  }
}
