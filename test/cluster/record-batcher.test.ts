import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { RecordBatcher, type WorkerToPrimary } from '../../src/cluster/index.js';
import { completionRecord } from '../helpers/records.js';

function batcher(opts: { maxBatch?: number; withHeaders?: boolean; maxUnsent?: number } = {}) {
  const clock = new ManualClock(0);
  const sent: WorkerToPrimary[] = [];
  const acks: (() => void)[] = [];
  const b = new RecordBatcher({
    send: (m, ack) => {
      sent.push(m);
      acks.push(ack);
    },
    clock,
    intervalMs: 100,
    ...opts,
  });
  return { clock, sent, b, ackAll: () => acks.splice(0).forEach((a) => a()) };
}

test('records are dropped and counted, not queued without bound, while the primary does not keep up', () => {
  const { sent, b, ackAll } = batcher({ maxBatch: 10, maxUnsent: 2 });
  for (let i = 0; i < 50; i++) b.onCompletion(completionRecord());
  assert.equal(sent.length, 2, 'two batches in the channel, the rest dropped');
  assert.equal(b.dropped, 30);
  ackAll();
  for (let i = 0; i < 10; i++) b.onCompletion(completionRecord());
  assert.equal(sent.length, 3);
  const last = sent[2]!;
  assert.equal(last.t === 'records' && last.dropped, 30, 'the drop count rides on the next batch');
});

test('records reach the primary in one message per interval, not one per request', () => {
  const { clock, sent, b } = batcher();
  for (let i = 0; i < 50; i++) b.onCompletion(completionRecord({ id: `r${i}` }));
  assert.equal(sent.length, 0);
  clock.advance(100);
  assert.equal(sent.length, 1);
  const msg = sent[0]!;
  assert.equal(msg.t, 'records');
  assert.deepEqual(msg.t === 'records' && msg.records.map((r) => r.id), Array.from({ length: 50 }, (_, i) => `r${i}`));
  clock.advance(1_000);
  assert.equal(sent.length, 1, 'nothing to send, nothing sent');
});

test('a full batch goes at once', () => {
  const { sent, b } = batcher({ maxBatch: 10 });
  for (let i = 0; i < 25; i++) b.onCompletion(completionRecord());
  assert.deepEqual(sent.map((m) => (m.t === 'records' ? m.records.length : -1)), [10, 10]);
  b.flush();
  assert.equal(sent.length, 3);
});

test('without the dashboard the headers stay in the worker, and the record itself is not changed', () => {
  const { clock, sent, b } = batcher({ withHeaders: false });
  const r = completionRecord({ requestHeaders: { 'user-agent': 'x' } });
  b.onCompletion(r);
  clock.advance(100);
  const out = sent[0]!.t === 'records' ? sent[0]!.records[0]! : null;
  assert.deepEqual(out?.requestHeaders, {});
  assert.equal(out?.responseHeaders, undefined);
  assert.equal(out?.status, r.status);
  assert.deepEqual(r.requestHeaders, { 'user-agent': 'x' });
});
