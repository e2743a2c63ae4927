/**
 * The bench's ports: the targets are restarted on the same ports every round, so the ports must not
 * come from the kernel's ephemeral range, where an outgoing connection can take one meanwhile (a
 * target that cannot listen again dies and loses its round).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
// @ts-expect-error: a plain .mjs module of the bench, without types
import { ephemeralPortRange, freePorts } from '../../bench/lib/system.mjs';

describe('bench ports', () => {
  it('are distinct, free, and below the ephemeral range', async () => {
    const range = ephemeralPortRange() as { low: number; high: number } | null;
    assert.ok(range !== null, 'this machine has /proc/sys/net/ipv4/ip_local_port_range');
    const ports = (await freePorts(6)) as number[];
    assert.equal(new Set(ports).size, 6);
    for (const port of ports) {
      assert.ok(port >= 10_000 && port < range.low, `${port} is not below ${range.low}`);
      // Free: it can be listened on again now that freePorts let it go.
      const s = createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', resolve);
      });
      await new Promise((r) => s.close(r));
    }
  });
});
