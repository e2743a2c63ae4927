import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { SseBroker } from '../../src/dashboard/sse.js';
import { createLogger } from '../../src/logging/index.js';

/** The request and response a stream is answered on, as far as the broker uses them; `text` is what was written. */
function stream(lastEventId?: string) {
  const written: (string | Buffer)[] = [];
  const req = { headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId }, socket: { setTimeout() {} } } as unknown as IncomingMessage;
  const res = {
    writeHead() {},
    write(s: string | Buffer) {
      written.push(s);
      return true;
    },
    on() {},
    end() {},
  } as unknown as ServerResponse;
  return { req, res, written, text: () => written.map((w) => (typeof w === 'string' ? w : w.toString('utf8'))).join('') };
}

/** Each event's id, name and data in SSE text. */
function events(text: string): { id: number; event: string; data: string }[] {
  return text
    .split('\n\n')
    .filter((b) => b.includes('event: '))
    .map((b) => ({
      id: Number(/^id: (\d+)$/m.exec(b)![1]),
      event: /^event: (.*)$/m.exec(b)![1]!,
      data: /^data: (.*)$/m.exec(b)![1]!,
    }));
}

function broker(history: number, json: (seq: number) => string | undefined): SseBroker {
  return new SseBroker({ history, buffer: 16, heartbeatMs: 60_000, retryMs: 3_000, maxClients: 4, logger: createLogger({ level: 'silent' }), entries: { event: 'request', json } });
}

describe('SSE broker history', () => {
  it('replays request entries and other events in order, across the ring wrapping, with each entry read from its log', () => {
    const log2 = new Map<number, string>();
    const b2 = broker(5, (s: number) => log2.get(s));
    let s2 = 0;
    const pub = () => {
      log2.set(s2, JSON.stringify({ n: s2 }));
      b2.publishEntry(s2++);
    };
    const startId = b2.stats().lastEventId;
    // 8 events: entries 0-5 with two process events among them; the ring keeps the last 5.
    pub();
    pub();
    b2.publish('process', { id: 'p', state: 'running' });
    pub();
    pub();
    b2.publish('process', { id: 'p', state: 'stopped' });
    pub();
    pub();
    // The client saw everything up to the third event; events 4-8 are still in the history.
    const late = stream(String(startId + 3));
    b2.connect(late.req, late.res, () => assert.fail('refused'));
    const got = events(late.text());
    assert.deepEqual(got[0], { id: startId + 3, event: 'connected', data: JSON.stringify({ resumed: true, replayed: 5, complete: true }) });
    assert.deepEqual(
      got.slice(1).map((e) => [e.id - startId, e.event, e.data]),
      [
        [4, 'request', '{"n":2}'],
        [5, 'request', '{"n":3}'],
        [6, 'process', '{"id":"p","state":"stopped"}'],
        [7, 'request', '{"n":4}'],
        [8, 'request', '{"n":5}'],
      ],
    );
    // One behind the history: the first kept event was already replayed, but event 3 fell out.
    const older = stream(String(startId + 2));
    b2.connect(older.req, older.res, () => assert.fail('refused'));
    assert.deepEqual(JSON.parse(events(older.text())[0]!.data), { resumed: true, replayed: 5, complete: false });
    // An entry gone from the log (evicted there first) is skipped, not sent empty.
    log2.delete(3);
    const again = stream(String(startId + 3));
    b2.connect(again.req, again.res, () => assert.fail('refused'));
    assert.deepEqual(
      events(again.text())
        .slice(1)
        .map((e) => e.id - startId),
      [4, 6, 7, 8],
    );
    b2.close();
  });
});

describe('SSE broker live batches', () => {
  /** A log whose entries the broker reads as text only, or as bytes too. */
  function logged(withBytes: boolean) {
    const log = new Map<number, string>();
    const json = (seq: number) => log.get(seq);
    const bytes = {
      length: (seq: number) => (log.has(seq) ? Buffer.byteLength(log.get(seq)!) : -1),
      copy: (seq: number, target: Buffer, at: number) => void target.write(log.get(seq)!, at, 'utf8'),
    };
    const b = new SseBroker({ history: 8, buffer: 16, heartbeatMs: 60_000, retryMs: 3_000, maxClients: 4, logger: createLogger({ level: 'silent' }), entries: withBytes ? { event: 'request', json, bytes } : { event: 'request', json } });
    return { log, b };
  }
  const flushed = () => new Promise((r) => setImmediate(r));
  /** Each event after `connected` as [id after the connected one, name, data]. */
  const after = (text: string) => {
    const all = events(text);
    return all.slice(1).map((e) => [e.id - all[0]!.id, e.event, e.data]);
  };

  it('writes a batch of request entries as one buffer holding the bytes the text would have, entries gone before it skipped', async () => {
    const texts = ['{"n":0}', '{"path":"/caf\u00e9/\u20ac"}', '{"n":2}', '{"s":"\ud83d\ude00 \\"q\\""}', '{"n":4}'];
    const out: { text: string; written: (string | Buffer)[] }[] = [];
    for (const withBytes of [false, true]) {
      const { log, b } = logged(withBytes);
      const client = stream();
      b.connect(client.req, client.res, () => assert.fail('refused'));
      texts.forEach((t, i) => {
        log.set(i, t);
        b.publishEntry(i);
      });
      log.delete(2); // evicted from the log before the flush
      await flushed();
      out.push({ text: client.text(), written: client.written });
      b.close();
    }
    const [plain, fast] = out as [(typeof out)[0], (typeof out)[0]];
    assert.deepEqual(after(fast.text), after(plain.text));
    assert.deepEqual(after(fast.text).map((e) => e[0]), [1, 2, 4, 5]);
    assert.deepEqual(after(fast.text).map((e) => e[2]), [texts[0], texts[1], texts[3], texts[4]]);
    // The connection's head is text; the batch is one buffer.
    assert.equal(fast.written.length, 2);
    assert.ok(Buffer.isBuffer(fast.written[1]));
    // Byte for byte the text path's form, but for the ids (each broker numbers from its own start).
    const numbered = (t: string) => t.replace(/^id: \d+$/gm, 'id: N');
    assert.equal(numbered(fast.written[1]!.toString()), numbered(plain.text.slice(String(plain.written[0]!).length)));
  });

  it('writes text when the batch holds another event, and for a client still blocked', async () => {
    const { log, b } = logged(true);
    const client = stream();
    b.connect(client.req, client.res, () => assert.fail('refused'));
    log.set(0, '{"n":0}');
    b.publishEntry(0);
    b.publish('process', { id: 'p', state: 'running' });
    await flushed();
    assert.deepEqual(after(client.text()), [
      [1, 'request', '{"n":0}'],
      [2, 'process', '{"id":"p","state":"running"}'],
    ]);
    assert.equal(typeof client.written[1], 'string');
    b.close();
  });
});
