import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batchFromRecords, recordsOf } from '../../src/stream/batch.js';
import type { Rec } from '../../src/stream/protocol.js';

describe('record batches (array-backed)', () => {
  const recs: Rec[] = [
    { ts: 1000, key: 'a', value: { o: 'SFO', d: 5, x: 1 } },
    { ts: 2000, key: null, value: { o: 'LAX', d: 2.5 } },
    { ts: 3000, key: 'b', value: { o: 'SFO', d: null, y: { z: 1 } }, prov: { source: 'f', offset: 3 } },
  ];

  it('round-trips records, keeping prov only where given and values as objects', () => {
    const b = batchFromRecords(recs);
    assert.equal(b.length, 3);
    assert.deepEqual([...b.ts], [1000, 2000, 3000]);
    assert.deepEqual(recordsOf(b), recs);
  });

  it('infers column types from values, widening int64+float64 and mixing to json', () => {
    const b = batchFromRecords(recs);
    assert.deepEqual(b.fields, ['o', 'd', 'x', 'y']);
    assert.equal(b.column('o')?.type, 'string');
    assert.equal(b.column('d')?.type, 'float64');
    assert.equal(b.column('x')?.type, 'int64');
    assert.equal(b.column('y')?.type, 'json');
    assert.equal(b.column('nope'), undefined);
    assert.equal(b.column('x')?.isNull(1), true);
  });

  it('gives numeric columns as Float64Array (NaN for null) and strings as dictionary codes', () => {
    const b = batchFromRecords(recs);
    const d = b.column('d')!.float64()!;
    assert.deepEqual([d[0], d[1]], [5, 2.5]);
    assert.ok(Number.isNaN(d[2]));
    assert.equal(b.column('o')!.float64(), undefined);
    const dict = b.column('o')!.dictionary()!;
    assert.deepEqual([...dict.codes], [0, 1, 0]);
    assert.deepEqual(dict.values, ['SFO', 'LAX']);
    assert.deepEqual([...b.key.dictionary()!.codes], [0, -1, 1]);
  });

  it('takes declared types from the header schema, keeping the records’ field order', () => {
    const b = batchFromRecords(recs, { d: 'float64', o: 'string', x: 'float64' });
    // The records' order (o, d, x, y), not the schema's: a value read back has its fields in the
    // order the NDJSON encoding would keep.
    assert.deepEqual(b.fields, ['o', 'd', 'x', 'y']);
    assert.equal(b.column('x')?.type, 'float64');
  });
});
