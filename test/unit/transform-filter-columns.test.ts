/**
 * transform's columnar filter for `r.F OP number` joined by && and || (ops/transform-columns.ts
 * `simplePredicate`, issue 14): on random rows — numbers, -0, null, missing fields, strings,
 * booleans, nested values — in typed numeric columns (as the NDJSON scanner builds them) and in
 * plain JS columns, the rows kept equal what plain JavaScript gives for the same expression text
 * over the same row objects; and on numeric columns the expression itself is never called.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ByteLineSplitter, ByteLines, scanColumns } from '../../src/formats/ndjson-scan.js';
import type { CompiledExpr } from '../../src/ops/expr.js';
import { compileExpr, fieldsRead } from '../../src/ops/expr.js';
import { columnarChain, simplePredicate } from '../../src/ops/transform-columns.js';
import { ArrayColumn, batchFromRecords, type RecordBatch } from '../../src/stream/batch.js';
import type { Rec } from '../../src/stream/protocol.js';

describe('simplePredicate', () => {
  it('takes r.F OP number joined by && and ||, and nothing else', () => {
    assert.deepEqual(simplePredicate('r.delay > 60'), [[{ field: 'delay', op: '>', lit: 60 }]]);
    assert.deepEqual(simplePredicate(' r.a>=-1.5e2 && r.b !== 0 || r.c == 3 '), [
      [
        { field: 'a', op: '>=', lit: -150 },
        { field: 'b', op: '!==', lit: 0 },
      ],
      [{ field: 'c', op: '==', lit: 3 }],
    ]);
    for (const no of [
      'r.a > b',
      'r.a > 010',
      'r.a > 0x10',
      'r.a > 1_000',
      'r.a > .5',
      'r.a > 1.',
      '(r.a > 1)',
      'r.a > 1 & r.b < 2',
      'r.a.b > 1',
      'r.toString > 1',
      'r["a"] > 1',
      'r.a + 1 > 2',
      '60 < r.a',
      'r.a > - 5',
      'r.a > 1 ||',
      'rr.a > 1',
      'r.a > Infinity',
      'r.a > 1 // x',
    ])
      assert.equal(simplePredicate(no), undefined, no);
  });
});

const FIELDS = ['a', 'b', 'c'] as const;
const OPS = ['>', '>=', '<', '<=', '===', '!==', '==', '!='] as const;
const LITS = ['0', '-0', '60', '-5', '0.5', '1e400', '-1e400', '2.5e-3', '7'];

const term = fc
  .tuple(fc.constantFrom(...FIELDS), fc.constantFrom(...OPS), fc.constantFrom(...LITS))
  .map(([f, op, lit]) => `r.${f} ${op} ${lit}`);
const predicate = fc
  .array(fc.array(term, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 3 })
  .map((ors) => ors.map((ands) => ands.join(' && ')).join(' || '));

/** Plain JavaScript's answer for a row object (fields it lacks are absent). */
function plainJs(expr: string): (r: Record<string, unknown>) => boolean {
  return new Function('r', `return Boolean(${expr});`) as (r: Record<string, unknown>) => boolean;
}

/** A counting stand-in for the compiled expression (the fallback path calls it). */
function counted(expr: string): { fn: CompiledExpr; calls: () => number } {
  const inner = compileExpr(expr);
  let n = 0;
  const f = (r: unknown, key: string | null | undefined, ts: number, rec: Rec) => {
    n++;
    return inner(r, key, ts, rec);
  };
  return { fn: Object.assign(f, { fields: fieldsRead(expr) }), calls: () => n };
}

/** A batch of the rows, its values as `scanColumns` gives them from NDJSON (typed columns). */
function scannedBatch(rows: Record<string, unknown>[]): RecordBatch | undefined {
  const sp = new ByteLineSplitter();
  const lines = new ByteLines();
  sp.push(Buffer.from(`${rows.map((r) => JSON.stringify(r)).join('\n')}\n`), lines);
  sp.end(lines);
  const cols = scanColumns(lines);
  if (!cols) return undefined;
  const n = rows.length;
  return { ...cols, ts: new Float64Array(n), key: new ArrayColumn('string', new Array(n).fill(null)) };
}

/** The rows kept by the one-step chain `--filter expr`. */
function kept(b: RecordBatch, expr: string, fn: CompiledExpr): number[] {
  const chain = columnarChain([{ kind: 'filter', expr }], [fn]);
  assert.ok(chain);
  const { rows } = chain.apply(
    b,
    undefined,
    () => assert.fail('no row is bad'),
    () => {},
  );
  return rows ? [...rows] : Array.from({ length: b.length }, (_, i) => i);
}

describe('columnar filter', () => {
  it('keeps the rows plain JavaScript keeps, without calling the expression on numbers (property)', () => {
    let typedRuns = 0;
    fc.assert(
      fc.property(
        predicate,
        fc.array(
          fc.record({
            a: fc.oneof(fc.integer({ min: -10, max: 80 }), fc.constant(null), fc.constant(undefined)),
            b: fc.oneof(fc.double({ min: -100, max: 100, noNaN: true }), fc.constantFrom(-0, 0, 60, null)),
            c: fc.oneof(
              fc.integer({ min: -10, max: 80 }),
              fc.constantFrom(null, undefined, '60', 'x', '', true, false, '7'),
            ),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        fc.constantFrom(undefined, ...FIELDS),
        (expr, raw, absent) => {
          // Missing (undefined) values are absent fields; `c` holds mixed kinds.
          const rows = raw.map((r) => {
            const o: Record<string, unknown> = {};
            for (const f of FIELDS) if (r[f] !== undefined) o[f] = r[f];
            return o;
          });
          const js = plainJs(expr);
          const want = rows.flatMap((r, i) => (js(r) ? [i] : []));
          // Plain JS columns (batchFromRecords: absent fields are null cells of a complete-less batch).
          const full = rows.map((r) => ({ a: null, b: null, c: null, ...r }));
          const fullWant = full.flatMap((r, i) => (js(r) ? [i] : []));
          const arr = batchFromRecords(full.map((value, i) => ({ ts: i, key: null, value })));
          const c1 = counted(expr);
          assert.deepEqual(kept(arr, expr, c1.fn), fullWant, `${expr} over JS columns`);
          // Typed columns from NDJSON: every row has the same fields (null for a missing value, `c`'s
          // strings and booleans as null), and one field may be absent from the whole batch.
          const numeric = rows.map((r) => {
            const o: Record<string, unknown> = {};
            for (const f of FIELDS) {
              if (f === absent) continue;
              const v = r[f];
              o[f] = typeof v === 'number' ? v : null;
            }
            return o;
          });
          const b = scannedBatch(numeric);
          assert.ok(b?.complete);
          const nWant = numeric.flatMap((r, i) => (js(r) ? [i] : []));
          const c2 = counted(expr);
          assert.deepEqual(kept(b, expr, c2.fn), nWant, `${expr} over typed columns`);
          assert.equal(c2.calls(), 0, 'numeric columns need no call into the expression');
          typedRuns++;
          assert.ok(want.length >= 0);
        },
      ),
      { numRuns: 1500 },
    );
    assert.equal(typedRuns, 1500);
  });

  it('runs the expression for a batch where a compared value is an object', () => {
    const rows = [{ a: 70 }, { a: { valueOf: 1 } }, { a: 50 }];
    const b = batchFromRecords(rows.map((value, i) => ({ ts: i, key: null, value })));
    const c = counted('r.a > 60');
    assert.deepEqual(kept(b, 'r.a > 60', c.fn), [0]);
    assert.equal(c.calls(), 3);
  });
});
