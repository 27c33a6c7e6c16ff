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
import { fieldsRead } from '../../src/ops/expr.js';
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
  // Expressions that read named fields only: evaluated on rows built lazily from the columns.
  fc.record({
    kind: fc.constant('filter' as const),
    expr: fc.constantFrom(
      'r.a > 0',
      'r.b === null',
      "typeof r.c === 'string' || r.zz === undefined",
      'r.a > 0 && key !== null',
      'ts % 2 === 0',
      'r.e.n.length > 1',
    ),
  }),
  fc.record({
    kind: fc.constantFrom('key' as const, 'ts' as const),
    expr: fc.constantFrom('String(r.a) + r.b', 'r.a * 1000 + ts', 'new Date(r.c)', 'r.e.n[0]'),
  }),
);

/** Any step, also those without a columnar form (they run on the rows after the columnar prefix). */
const anyStep: fc.Arbitrary<TransformStep> = fc.oneof(
  step,
  fc.record({
    kind: fc.constant('map' as const),
    expr: fc.constantFrom('({x: r.a, y: key, t: ts})', '({...r, z: 1})', 'r.b'),
  }),
  fc.record({ kind: fc.constant('flat-map' as const), expr: fc.constantFrom('[r.a, r.c]', 'r.e.n') }),
  fc.record({
    kind: fc.constant('filter' as const),
    expr: fc.constantFrom('Object.keys(r).length > 2', "'d' in r"),
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
      fc.asyncProperty(records, step, fc.array(anyStep, { maxLength: 3 }), async (recs, first, more) => {
        const steps = [first, ...more];
        const { header, batches } = await batchesOf(recs);
        const colOp = new TransformOperator({ steps });
        const rowOp = new TransformOperator({ steps });
        assert.ok(
          colOp.batch,
          'a chain starting with a built-in or a named-field expression has a batch path',
        );
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

  it('a chain starting with a map, an expression over the whole value, or with a dedupe has no batch path', () => {
    for (const steps of [
      [{ kind: 'map', expr: '({...r})' }],
      [{ kind: 'filter', expr: 'Object.keys(r).length > 1' }],
      [{ kind: 'filter', expr: 'r[k] > 1' }],
      [{ kind: 'filter', expr: 'rec.value.a > 1' }],
      [{ kind: 'key', expr: 'r.constructor' }],
      [{ kind: 'select', fields: ['a.b'] }],
      [
        { kind: 'select', fields: ['a'] },
        { kind: 'dedupe', expr: 'r.a' },
      ],
    ] as TransformStep[][])
      assert.equal(new TransformOperator({ steps, within: 1000 }).batch, undefined, JSON.stringify(steps));
    for (const steps of [
      [{ kind: 'filter', expr: 'r.a > 1' }],
      [
        { kind: 'select', fields: ['a'] },
        { kind: 'map', expr: 'r' },
      ],
      [{ kind: 'key', expr: 'r.a + 1' }],
    ] as TransformStep[][])
      assert.ok(new TransformOperator({ steps }).batch, JSON.stringify(steps));
  });

  it('fieldsRead: the fields an expression can read, or undefined when it may see the whole value', () => {
    assert.deepEqual(fieldsRead('r.delay > 60'), ['delay']);
    assert.deepEqual(fieldsRead('r.a + r.b * r.a > x.r'), ['a', 'b']);
    assert.deepEqual(fieldsRead('key === null && ts > 0'), []);
    assert.deepEqual(fieldsRead('r.s.startsWith("r")'), undefined); // a bare r inside a string: conservative
    for (const src of [
      '({...r, x: 1})',
      'r[k]',
      'f(r)',
      'r?.a',
      'Object.keys(r)',
      'r.hasOwnProperty("a")',
      'r.__proto__',
      'rec.value.a',
      'arguments[0].a',
      '\\u0072.a',
      '[1].map(r => r)',
    ])
      assert.equal(fieldsRead(src), undefined, src);
  });
});
