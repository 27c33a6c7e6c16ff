/**
 * Ingest's per-batch costs (issue 14): the time cache that outlives a batch stays bounded and gives
 * what luxon gives (batches of zone-less texts in Europe/Berlin, repeated across batches), and the
 * one-pass dictionary encoding writes the IPC bytes flechette's own builder writes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { columnFromArray, dictionary, int32, Table, tableToIPC, utf8 } from '@uwdata/flechette';
import { DateTime } from 'luxon';
import { csvBatches } from '../../src/formats/csv.js';
import type { RowBatch } from '../../src/formats/format.js';
import { dictionaryValues } from '../../src/stream/arrow.js';
import { columnarAssigner, TimeCache } from '../../src/stream/source-columns.js';

async function* once(bytes: Buffer) {
  yield bytes;
}

async function batchOf(text: string): Promise<RowBatch> {
  const out: RowBatch[] = [];
  for await (const b of csvBatches(once(Buffer.from(text)), 'in.csv', ',')) out.push(b);
  assert.equal(out.length, 1);
  return out[0];
}

describe('time cache across batches', () => {
  it('is bounded at two generations and moves a hit in the old one to the current one', () => {
    const c = new TimeCache(4);
    for (let i = 0; i < 100; i++) c.set(`t${i}`, i);
    assert.ok(c.size <= 8, `size ${c.size}`);
    assert.equal(c.get('t99'), 99);
    assert.equal(c.get('t0'), undefined, 'the oldest texts are dropped');
    const d = new TimeCache(2);
    d.set('a', 1);
    d.set('b', 2);
    d.set('c', 3); // a, b: old generation
    assert.equal(d.get('a'), 1); // promoted: current = c, a
    d.set('e', 5); // current full: old = {c, a}, current = {e}
    d.set('f', 6);
    assert.equal(d.get('a'), 1, 'a promoted text survives the next rotation');
    assert.equal(d.get('b'), undefined);
  });

  it('gives luxon time of zone-less texts in --tz, batch after batch, and no value for a bad text', async () => {
    const assign = columnarAssigner({ tsField: 'date', tsFormat: 'auto', tz: 'Europe/Berlin' });
    assert.ok(assign);
    const texts = [
      '2024-03-31 01:30:00',
      '2024-03-31T03:30:00',
      '2024-10-27T02:30:00',
      '2001-01-01T00:00:00',
    ];
    const berlin = (s: string) => DateTime.fromISO(s.replace(' ', 'T'), { zone: 'Europe/Berlin' }).toMillis();
    for (let round = 0; round < 3; round++) {
      const rows = round === 1 ? [...texts].reverse() : texts;
      const rb = assign(await batchOf(`date,x\n${rows.map((t) => `${t},1`).join('\n')}\n`));
      assert.ok(rb);
      assert.deepEqual(Array.from(rb.ts), rows.map(berlin), `batch ${round}`);
    }
    assert.equal(assign(await batchOf(`date,x\n${texts[0]},1\n2024-02-30T00:00:00,1\n`)), undefined);
  });
});

describe('dictionary values in one pass', () => {
  it('writes the IPC bytes of flechette’s builder (ASCII, non-ASCII, empty strings, all sizes)', () => {
    const cases: string[][] = [[''], ['a'], ['ab', 'c', 'def'], ['ORD', 'LAX', 'é€', 'x']];
    for (let n = 1; n < 40; n++)
      cases.push(Array.from({ length: n }, (_, i) => 'x'.repeat((i * 7 + n) % 13)));
    for (const values of cases) {
      const type = dictionary(utf8(), int32());
      // The values column alone as an IPC stream: its buffers, with their lengths, byte for byte.
      const ipc = (col: ReturnType<typeof columnFromArray>) =>
        Buffer.from(
          tableToIPC(
            new Table(
              {
                fields: [{ name: 'd', type: col.type, nullable: true, metadata: new Map() }],
                metadata: new Map(),
              },
              [col],
            ),
            { format: 'stream' },
          ) as Uint8Array,
        );
      const mine = dictionaryValues(values, type.dictionary);
      const theirs = columnFromArray(values, type.dictionary);
      assert.deepEqual(mine.toArray(), theirs.toArray());
      assert.ok(ipc(mine).equals(ipc(theirs)), JSON.stringify(values));
    }
  });
});
