/** The analytics section: new keys (window, z_threshold) with defaults, and bad durations or windows reported at file:line:col. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { load, onlyProblem } from './helpers.js';

describe('analytics config', () => {
  it('defaults window to 1h and z_threshold to 3, alongside the reference keys', () => {
    const a = load('analytics:\n  enabled: true\n').analytics;
    assert.equal(a.bucket_interval, 60_000);
    assert.equal(a.retention, 48 * 3_600_000);
    assert.equal(a.analyzer_interval, 300_000);
    assert.equal(a.window, 3_600_000);
    assert.equal(a.z_threshold, 3);
  });

  it('honours any duration of at least one second', () => {
    const a = load('analytics:\n  bucket_interval: 1s\n  analyzer_interval: 1s\n  window: 3s\n  retention: 10m\n').analytics;
    assert.deepEqual([a.bucket_interval, a.analyzer_interval, a.window, a.retention], [1000, 1000, 3000, 600_000]);
  });

  for (const key of ['bucket_interval', 'retention', 'analyzer_interval', 'window']) {
    it(`refuses ${key} below one second, naming the key and its position`, () => {
      const p = onlyProblem(`analytics:\n  enabled: true\n  ${key}: 500ms\n`);
      assert.equal(p.key, `analytics.${key}`);
      assert.deepEqual([p.line, p.col], [3, 5 + key.length]);
      assert.match(p.message, /at least 1000ms/);
    });
  }

  it('refuses a window shorter than three buckets, at the window key', () => {
    const p = onlyProblem('analytics:\n  bucket_interval: 1m\n  window: 2m\n');
    assert.equal(p.key, 'analytics.window');
    assert.deepEqual([p.line, p.col], [3, 11]);
    assert.match(p.message, /at least 3 buckets/);
  });

  it('refuses a window longer than the retention', () => {
    const p = onlyProblem('analytics:\n  retention: 1h\n  window: 2h\n');
    assert.equal(p.key, 'analytics.window');
    assert.equal(p.line, 3);
    assert.match(p.message, /retention/);
  });

  it('refuses a retention that would need more than 10080 buckets per series', () => {
    const p = onlyProblem('analytics:\n  bucket_interval: 1s\n  retention: 48h\n  window: 1m\n');
    assert.equal(p.key, 'analytics.retention');
    assert.equal(p.line, 3);
    assert.match(p.message, /10080/);
  });

  it('refuses a z_threshold that is not a positive number', () => {
    const p = onlyProblem('analytics:\n  z_threshold: 0\n');
    assert.equal(p.key, 'analytics.z_threshold');
    assert.deepEqual([p.line, p.col], [2, 16]);
  });

  it('reports the window error at the analytics section when window is left to its default', () => {
    const p = onlyProblem('analytics:\n  retention: 30m\n');
    assert.equal(p.key, 'analytics.window');
    assert.equal(p.line, 2, 'the section\'s first key: the window key itself is not in the file');
  });
});
