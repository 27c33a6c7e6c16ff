/**
 * transform's columnar path (src/ops/transform-columns.ts; issue 14): for random records carried
 * in the binary stream and random chains of select / drop / rename / `--key r.F` / `--ts r.F`, the
 * batch path gives exactly the records, bad rows and watermarks of the row steps (property test),
 * and a chain with another step has no batch path.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BadRecordError, type Collector } from '../../src/ops/operator.js';
import { TransformOperator, type TransformStep } from '../../src/ops/transform.js';
import { type RecordBatch, recordsOf } from '../../src/stream/batch.js';
import { readStream } from '../../src/stream/input.js';
import type { Header, Rec } from '../../src/stream/protocol.js';
import { openStreamWriter } from '../../src/stream/writer.js';

const NAMES = ['a', 'b', 'c', 'd', 'e'];

const value: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -1e6, max: 1e6 }),
  fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 }),
  fc.constantFrom('x', 'y', 'zz', ''),
  fc.boolean(),
  fc.constant(null),
  fc.constant({ n: [1, 2] }),
);

/** Records whose fields have one type each (as a typed source gives), some records lacking fields. */
const records: fc.Arbitrary<Rec[]> = fc
  .record({
    types: fc.array(fc.constantFrom('int', 'float', 'string', 'bool', 'json'), {
      minLength: 5,
      maxLength: 5,
    }),
    rows: fc.array(
      fc.record({
        ts: fc.integer({ min: 0, max: 1e9 }),
        key: fc.option(fc.constantFrom('k1', 'k2'), { nil: null }),
        cells: fc.array(fc.oneof(value, fc.constant(undefined)), { minLength: 5, maxLength: 5 }),
      }),
      { minLength: 1, maxLength: 60 },
    ),
    complete: fc.boolean(),
  })
  .map(({ types, rows, complete }) =>
    rows.map((r, i) => {
      const v: Record<string, unknown> = {};
      NAMES.forEach((f, c) => {
        const x = r.cells[c];
        if (x === undefined && !complete) return;
        const t = types[c];
        if (x === null || x === undefined) v[f] = null;
        else if (t === 'int') v[f] = i * 7 - 20;
        else if (t === 'float') v[f] = i + 0.5;
        else if (t === 'string') v[f] = `s${i % 3}`;
        else if (t === 'bool') v[f] = i % 2 === 0;
        else v[f] = { i };
      });
      return { ts: r.ts, key: r.key, value: v };
    }),
  );

const step: fc.Arbitrary<TransformStep> = fc.oneof(
  fc.record({
    kind: fc.constant('select' as const),
    fields: fc.subarray([...NAMES, 'zz'], { minLength: 1 }),
  }),
  fc.record({ kind: fc.constant('drop' as const), fields: fc.subarray(NAMES) }),
  fc.record({
    kind: fc.constant('rename' as const),
    pairs: fc.array(fc.tuple(fc.constantFrom(...NAMES), fc.constantFrom(...NAMES, 'r1', 'r2')), {
      minLength: 1,
      maxLength: 3,
    }),
  }),
  fc.record({
    kind: fc.constantFrom('key' as const, 'ts' as const),
    expr: fc.constantFrom(...NAMES, 'zz').map((f) => `r.${f}`),
  }),
);

async function batchesOf(recs: Rec[]): Promise<{ header: Header; batches: RecordBatch[] }> {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  const w = openStreamWriter(pt, 'arrow');
  w.header({ kappa: 1 });
  for (const r of recs) w.record(r);
  w.endEvent();
  await w.close();
  const bytes = Buffer.concat(chunks);
  let header: Header = { kappa: 1 };
  const batches: RecordBatch[] = [];
  await readStream(
    (async function* () {
      yield bytes;
    })(),
    {
      header: (h) => {
        header = h;
      },
      record: () => assert.fail('version-2 records come in batches'),
      batch: (b) => void batches.push(b),
      watermark: () => {},
      barrier: () => {},
      end: () => {},
      stop: () => {},
    },
  );
  return { header, batches };
}

function collector(): Collector & { out: Rec[]; wms: number[]; batches: RecordBatch[] } {
  const out: Rec[] = [];
  const wms: number[] = [];
  const batches: RecordBatch[] = [];
  return {
    out,
    wms,
    batches,
    record: (r) => void out.push(r),
    batch: (b) => {
      batches.push(b);
      out.push(...recordsOf(b));
    },
    watermark: (wm) => void wms.push(wm),
  };
}

describe('transform columnar path', () => {
  it('gives the records, bad rows and watermarks of the row steps (property)', async () => {
    await fc.assert(
      fc.asyncProperty(records, fc.array(step, { minLength: 1, maxLength: 4 }), async (recs, steps) => {
        const { header, batches } = await batchesOf(recs);
        const colOp = new TransformOperator({ steps });
        const rowOp = new TransformOperator({ steps });
        assert.ok(colOp.batch, 'a chain of built-ins has a batch path');
        await colOp.open(header);
        await rowOp.open(header);
        const a = collector();
        const b = collector();
        const badA: [number, string][] = [];
        const badB: [number, string][] = [];
        let base = 0;
        for (const batch of batches) {
          const off = base;
          colOp.batch?.(batch, a, (row, reason) => void badA.push([off + row, reason]));
          recordsOf(batch).forEach((r, i) => {
            try {
              void rowOp.record(r, b);
            } catch (e) {
              if (!(e instanceof BadRecordError)) throw e;
              badB.push([off + i, e.message]);
            }
          });
          base += batch.length;
        }
        await colOp.watermark(5, a);
        await rowOp.watermark(5, b);
        assert.deepEqual(a.out, b.out);
        assert.deepEqual(badA, badB);
        assert.deepEqual(a.wms, b.wms);
        // The batches the columnar path emits encode into the binary stream as the same records.
        const pt = new PassThrough();
        const chunks: Buffer[] = [];
        pt.on('data', (c: Buffer) => chunks.push(c));
        const w = openStreamWriter(pt, 'arrow');
        w.header({ kappa: 1 });
        for (const x of a.batches) w.batch(x);
        w.endEvent();
        await w.close();
        const back: Rec[] = [];
        await readStream(
          (async function* () {
            yield Buffer.concat(chunks);
          })(),
          {
            header: () => {},
            record: () => assert.fail('version-2 records come in batches'),
            batch: (x) => void back.push(...recordsOf(x)),
            watermark: () => {},
            barrier: () => {},
            end: () => {},
            stop: () => {},
          },
        );
        assert.deepEqual(back, a.batches.flatMap(recordsOf));
      }),
      { numRuns: 150 },
    );
  });

  it('a chain with a filter, a map or an expression has no batch path', () => {
    for (const steps of [
      [{ kind: 'filter', expr: 'r.a > 1' }],
      [
        { kind: 'select', fields: ['a'] },
        { kind: 'map', expr: 'r' },
      ],
      [{ kind: 'key', expr: 'r.a + 1' }],
      [{ kind: 'select', fields: ['a.b'] }],
      [{ kind: 'key', expr: 'r.constructor' }],
    ] as TransformStep[][])
      assert.equal(new TransformOperator({ steps }).batch, undefined, JSON.stringify(steps));
  });
});
