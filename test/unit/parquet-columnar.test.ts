/**
 * The columnar Parquet path (issue 14): property tests that parquet-wasm's columns give exactly the
 * rows of the hyparquet row reader (itself checked against DuckDB in e2e/parquet-duckdb), and that
 * `kappa ingest`'s source runtime writes the same binary stream from columns as from rows, without
 * building row objects.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import type { RecordSource } from '../../src/connectors/source.js';
import type { RowBatch } from '../../src/formats/format.js';
import { codecSetup, ParquetPartWriter } from '../../src/formats/parquet/write.js';
import '../../src/storage/local.js';
import type { PendingFile } from '../../src/storage/store.js';
import { BadRecords } from '../../src/stream/badrecords.js';
import { type RecordBatch, recordsOf } from '../../src/stream/batch.js';
import { readStream } from '../../src/stream/input.js';
import { Progress } from '../../src/stream/progress.js';
import type { Rec } from '../../src/stream/protocol.js';
import { runSource } from '../../src/stream/source.js';
import { tempDir } from '../helpers.js';
import { readAll, type Table, writeTable } from '../parquet-table.js';

const tmp = tempDir();
after(() => tmp.cleanup());

const table: fc.Arbitrary<Table> = fc.integer({ min: 1, max: 200 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    rowGroupSize: fc.integer({ min: 1, max: 250 }),
    i32: fc.array(fc.option(fc.integer(), { nil: null }), { minLength: n, maxLength: n }),
    i64: fc.array(
      fc.option(
        fc.oneof(
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
          fc.bigInt({ min: -(2n ** 53n) - 3n, max: 2n ** 53n + 3n }),
        ),
        { nil: null },
      ),
      { minLength: n, maxLength: n },
    ),
    dbl: fc.array(fc.option(fc.double(), { nil: null }), { minLength: n, maxLength: n }),
    flag: fc.array(fc.option(fc.boolean(), { nil: null }), { minLength: n, maxLength: n }),
    str: fc.array(
      fc.option(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 6 }), fc.constantFrom('a', 'b', '')), {
        nil: null,
      }),
      { minLength: n, maxLength: n },
    ),
    ts: fc.array(
      fc.option(
        fc.integer({ min: -4e12, max: 4e12 }).map((t) => new Date(t)),
        { nil: null },
      ),
      { minLength: n, maxLength: n },
    ),
  }),
);

function fileSource(batches: RowBatch[]): RecordSource {
  return {
    progressUnit: 'rows',
    schema: { i32: 'int64', i64: 'int64', dbl: 'float64', flag: 'boolean', str: 'string', ts: 'timestamptz' },
    async *batches() {
      yield* batches;
    },
    async close() {},
  };
}

/** Runs the source runtime into the binary stream and reads the records back (kappa's reader). */
async function ingestArrow(batches: RowBatch[], keyField?: string): Promise<Rec[]> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const prev = process.env.KAPPA_STREAM_FORMAT;
  process.env.KAPPA_STREAM_FORMAT = 'arrow';
  try {
    await runSource({
      sources: [fileSource(batches)],
      tsField: 'ts',
      tsFormat: 'auto',
      tz: 'UTC',
      keyField,
      bad: new BadRecords(),
      progress: new Progress('ingest', true, 'rows'),
      output: out,
      warn: () => {},
    });
  } finally {
    if (prev === undefined) delete process.env.KAPPA_STREAM_FORMAT;
    else process.env.KAPPA_STREAM_FORMAT = prev;
  }
  out.end();
  const bytes = Buffer.concat(chunks);
  assert.equal(bytes[0], 0xff, 'the output is the binary stream');
  const recs: Rec[] = [];
  await readStream(
    (async function* () {
      yield bytes;
    })(),
    {
      header() {},
      record(r: Rec) {
        recs.push(r);
      },
      batch(b: RecordBatch) {
        recs.push(...recordsOf(b));
      },
      watermark() {},
      barrier() {},
      end() {},
    } as unknown as Parameters<typeof readStream>[1],
  );
  return recs;
}

describe('columnar Parquet path', () => {
  it('parquet-wasm columns give the rows of the hyparquet reader (property)', async () => {
    await fc.assert(
      fc.asyncProperty(table, async (t) => {
        const path = writeTable(tmp.dir, t);
        const cols = await readAll(path, 'wasm');
        const rows = await readAll(path, 'hyparquet');
        assert.ok(
          cols.every((b) => b.columns !== undefined),
          'every batch of an all-flat-typed file is columnar',
        );
        // Per column: get(i), isNull(i), float64() and dictionary() agree with the row values.
        const colRows: Record<string, unknown>[] = [];
        for (const b of cols) {
          const c = b.columns as NonNullable<RowBatch['columns']>;
          for (let i = 0; i < c.length; i++) {
            const o: Record<string, unknown> = {};
            for (const f of c.fields) {
              const col = c.column(f);
              assert.ok(col);
              const v = col.get(i);
              o[f] = v;
              assert.equal(col.isNull(i), v === null);
              const f64 = col.float64();
              if (f64) assert.ok(v === null ? Number.isNaN(f64[i]) : f64[i] === v, `${f}[${i}] float64`);
              const d = col.dictionary();
              if (d) assert.equal(d.codes[i] < 0 ? null : d.values[d.codes[i]], v);
              // int64 and timestamps: Arrow's int64 buffer, exact (also beyond 2^53), epoch ms.
              if (f === 'i64' || f === 'ts') {
                const b = col.int64?.();
                assert.ok(b, `${f}: int64()`);
                const valid = b.validity === undefined || ((b.validity[i >> 3] >> (i & 7)) & 1) === 1;
                assert.equal(valid, v !== null, `${f}[${i}] validity`);
                if (v !== null) assert.equal(b.values[i], BigInt(v as number | string), `${f}[${i}] int64`);
              }
            }
            assert.deepEqual(c.value(i), o);
            colRows.push(o);
          }
          for (const f of ['i64', 'ts']) {
            const col = c.column(f);
            let nulls = 0;
            for (let i = 0; i < c.length; i++) if (col?.isNull(i)) nulls++;
            assert.equal(col?.int64?.()?.nulls, nulls, `${f}: null count of the int64 buffer`);
          }
        }
        const want = rows.flatMap((b) => b.rows);
        assert.deepEqual(colRows, want);
        assert.deepEqual(
          cols.flatMap((b) => b.rows),
          want,
        );
      }),
      { numRuns: 60 },
    );
  });

  it('the binary stream from columns equals the one from rows, and no row object is built (property)', async () => {
    await fc.assert(
      fc.asyncProperty(table, fc.constantFrom(undefined, 'str', 'i64', 'flag'), async (t, keyField) => {
        // Event time must be valid on every row for the columnar branch: fill the null ones.
        const tt = { ...t, ts: t.ts.map((d, i) => d ?? new Date(i * 1000)) };
        const path = writeTable(tmp.dir, tt);
        const colBatches = await readAll(path, 'wasm');
        const fromCols = await ingestArrow(colBatches, keyField);
        // The runtime wrote the columns: reading `rows` would have dropped them.
        assert.ok(colBatches.every((b) => b.columns !== undefined));
        const fromRows = await ingestArrow(await readAll(path, 'hyparquet'), keyField);
        assert.deepEqual(fromCols, fromRows);
        assert.equal(fromCols.length, t.n);
      }),
      { numRuns: 40 },
    );
  });

  it('the Parquet writer gives the same file and statistics from columns as from rows (property)', async () => {
    const codec = await codecSetup('zstd');
    const sink = () => {
      const parts: Uint8Array[] = [];
      let bytes = 0;
      const out = {
        async write(b: Uint8Array) {
          parts.push(b);
          bytes += b.length;
        },
        get bytes() {
          return bytes;
        },
      } as unknown as PendingFile;
      return { out, data: () => Buffer.concat(parts) };
    };
    const columns = [
      { name: 'i32', type: 'int64' as const, intBits: 32 as const },
      { name: 'i64', type: 'int64' as const },
      { name: 'dbl', type: 'float64' as const },
      { name: 'flag', type: 'boolean' as const },
      { name: 'str', type: 'string' as const },
      { name: 'ts', type: 'timestamptz' as const },
      { name: 'absent', type: 'json' as const },
    ];
    await fc.assert(
      fc.asyncProperty(table, async (t) => {
        // int64 within ±2^53 (the stream's numbers) and INT32 within 32 bits, as the sink checks.
        const tt = { ...t, i64: t.i64.map((v) => (v === null ? null : BigInt.asIntN(53, v) / 2n)) };
        const batches = await readAll(writeTable(tmp.dir, tt), 'wasm');
        const a = sink();
        const b = sink();
        const wa = new ParquetPartWriter(a.out, columns, codec);
        const wb = new ParquetPartWriter(b.out, columns, codec);
        for (const batch of batches) {
          const cols = batch.columns;
          assert.ok(cols);
          await wb.writeColumns(cols);
          await wa.writeRowGroup(batch.rows as Record<string, unknown>[]);
        }
        await wa.finish();
        await wb.finish();
        assert.deepEqual(wb.columnStats(), wa.columnStats());
        assert.ok(b.data().equals(a.data()), 'same Parquet bytes');
      }),
      { numRuns: 40 },
    );
  });

  it('a batch with a row without event time takes the row path (the bad row is reported)', async () => {
    const path = writeTable(tmp.dir, {
      n: 3,
      rowGroupSize: 3,
      i32: [1, 2, 3],
      i64: [1n, 2n, 3n],
      dbl: [1, 2, 3],
      flag: [true, false, null],
      str: ['a', 'b', 'c'],
      ts: [new Date(0), null, new Date(2)],
    });
    await assert.rejects(
      ingestArrow(await readAll(path, 'wasm')),
      /row group 0 row 1: event-time field 'ts' is missing/,
    );
  });
});
