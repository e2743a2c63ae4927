import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestId } from '../../src/pipeline/request-id.js';
import type { RequestContext } from '../../src/pipeline/context.js';
import { generatedId } from '../helpers/records.js';

/** The text of the 32 bytes at word `at` of a generated id's batch. */
function textAt(words: Float64Array, at: number): string {
  return Buffer.from(words.buffer, words.byteOffset + at * 8, 32).toString('latin1');
}

describe('request ids', () => {
  it("a generated id's bytes are its text, in every batch (3,000 ids: three batches of 1,024)", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const g = generatedId();
      assert.match(g.id, /^[0-9a-f]{32}$/);
      assert.ok(g.idBytes, 'a generated id carries its bytes');
      assert.equal(textAt(g.idBytes.words, g.idWord!), g.id);
      seen.add(g.id);
    }
    assert.equal(seen.size, 3000, 'no id repeats');
  });

  it("a client's valid X-Request-Id is kept and carries no bytes; an invalid one is replaced by a generated id", () => {
    const run = (header: string | undefined): RequestContext => {
      const ctx = { req: { headers: header === undefined ? {} : { 'x-request-id': header } }, id: '', idBytes: null, idWord: 0 } as unknown as RequestContext;
      requestId()(ctx, () => {});
      return ctx;
    };
    const kept = run('client-id_1.2:3');
    assert.equal(kept.id, 'client-id_1.2:3');
    assert.equal(kept.idBytes, null);
    const replaced = run('bad id "with" quotes');
    assert.match(replaced.id, /^[0-9a-f]{32}$/);
    assert.equal(textAt(replaced.idBytes!.words, replaced.idWord), replaced.id);
  });

  it('a record sent to the cluster primary as JSON carries no batch: its id bytes arrive as null', () => {
    const g = generatedId();
    const sent = JSON.parse(JSON.stringify({ ...g })) as Record<string, unknown>;
    assert.deepEqual(sent, { id: g.id, idBytes: null, idWord: g.idWord });
  });
});
