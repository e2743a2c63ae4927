/**
 * The bench's rules for which runs count (bench/lib/stats.mjs): a disturbed run never makes a
 * median, and no ratio is printed from a row that has only disturbed runs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { disturbance, floorOf, ratio, settled, usedRuns } from '../../bench/lib/stats.mjs';

const LIMITS = { disturbPct: 20, disturbCorePct: 15 };
const quiet = { loadgen: 100, target: 100 };

describe('bench: disturbed runs', () => {
  it('a run whose calibration loop stayed put, near the quietest, with its core to itself, is clean', () => {
    const d = disturbance({ calBefore: { loadgen: 101, target: 103 }, calAfter: { loadgen: 104, target: 100 }, quietest: quiet, otherLoadPct: 2 }, LIMITS);
    assert.deepEqual(d.reasons, []);
  });

  it('is disturbed when the loop moved by more than the limit between before and after', () => {
    const d = disturbance({ calBefore: { loadgen: 100, target: 100 }, calAfter: { loadgen: 100, target: 130 }, quietest: quiet, otherLoadPct: 0 }, LIMITS);
    assert.equal(Math.round(d.calMovedPct), 30);
    assert.match(d.reasons.join(), /moved 30%/);
  });

  it('is disturbed when the loop was slow both before and after (a neighbour present throughout)', () => {
    const d = disturbance({ calBefore: { loadgen: 125, target: 100 }, calAfter: { loadgen: 126, target: 100 }, quietest: quiet, otherLoadPct: 0 }, LIMITS);
    assert.equal(Math.round(d.calMovedPct), 1);
    assert.match(d.reasons.join(), /26% slower than the quietest/);
  });

  it('is disturbed when other processes took more than the limit of the target core', () => {
    const d = disturbance({ calBefore: quiet, calAfter: quiet, quietest: quiet, otherLoadPct: 16 }, LIMITS);
    assert.match(d.reasons.join(), /other processes used 16%/);
  });

  it('an unpinned run (no target loop) is judged on the load generator loop alone', () => {
    const d = disturbance({ calBefore: { loadgen: 100, target: NaN }, calAfter: { loadgen: 100, target: NaN }, quietest: { loadgen: 100, target: Infinity }, otherLoadPct: NaN }, LIMITS);
    assert.deepEqual(d.reasons, []);
  });
});

describe('bench: medians and ratios', () => {
  const runs = [{ disturbed: false, cpu: 30 }, { disturbed: true, cpu: 90 }, { disturbed: false, cpu: 32 }];

  it('medians come from the undisturbed runs only', () => {
    const { used, disturbedOnly } = usedRuns(runs);
    assert.deepEqual(
      used.map((r) => r.cpu),
      [30, 32],
    );
    assert.equal(disturbedOnly, false);
  });

  it('a row with only disturbed runs keeps its numbers but is marked, and gets no ratio either way', () => {
    const { used, disturbedOnly } = usedRuns([{ disturbed: true, cpu: 90 }]);
    assert.equal(used.length, 1);
    assert.equal(disturbedOnly, true);
    const clean = { disturbedOnly: false, cpuUsPerReq: 30 };
    const dirty = { disturbedOnly: true, cpuUsPerReq: 90 };
    assert.ok(Number.isNaN(ratio(dirty, clean, 'cpuUsPerReq')));
    assert.ok(Number.isNaN(ratio(clean, dirty, 'cpuUsPerReq')));
    assert.equal(ratio({ disturbedOnly: false, cpuUsPerReq: 33 }, clean, 'cpuUsPerReq'), 1.1);
  });

  it('the floor is the cheapest floor variant that has an undisturbed run', () => {
    const row = (id: string, floor: boolean, cpu: number, disturbedOnly = false) => ({ target: { id, floor }, median: { cpuUsPerReq: cpu, disturbedOnly } });
    const states = [row('forwarder', true, 30), row('fwd-stream', true, 25, true), row('fwd-object', true, 28), row('mg-proxy', false, 10)];
    assert.equal(floorOf(states)?.target.id, 'fwd-object');
    assert.equal(floorOf([row('forwarder', true, 30, true)]), null);
  });
});

describe('bench: instructions per request settle', () => {
  it('a process has settled once two windows in a row agree within the limit; its figure is their mean', () => {
    assert.deepEqual(settled([266_000, 158_000, 135_000, 133_000], 3), { settled: true, figure: 134_000 });
  });

  it('has not settled while it keeps getting cheaper, and one window alone never settles', () => {
    assert.equal(settled([255_000, 310_000, 202_000], 3).settled, false);
    assert.deepEqual(settled([180_000], 3), { settled: false, figure: 180_000 });
    assert.ok(Number.isNaN(settled([], 3).figure));
  });

  it('a rise counts as much as a fall', () => {
    assert.equal(settled([100_000, 103_000], 3).settled, true);
    assert.equal(settled([100_000, 103_500], 3).settled, false);
  });
});
