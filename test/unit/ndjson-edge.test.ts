/**
 * The NDJSON edge from columns (src/stream/line-encoder.ts; issue 14): on random batches (Arrow
 * batches of the binary stream with nulls, nested values, unicode and escapes, missing fields and
 * non-object values; Parquet columns with int64 beyond 2^53) `encodeBatchLines` gives the bytes
 * `encodeRecord` gives for the batch's records, and `kappa ingest` of a Parquet file to NDJSON
 * writes the same bytes from columns as from rows, without building a row object.
 */
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import type { RecordSource } from '../../src/connectors/source.js';
import type { RowBatch } from '../../src/formats/format.js';
import '../../src/storage/local.js';
import { parse as losslessParse } from 'lossless-json';
import { BadRecords } from '../../src/stream/badrecords.js';
import { ArrayColumn, type RecordBatch, recordsOf, takeRows } from '../../src/stream/batch.js';
import { parseRecordLine, readStream } from '../../src/stream/input.js';
import { encodeBatchBytes, encodeBatchLines } from '../../src/stream/line-encoder.js';
import { LineWriter } from '../../src/stream/output.js';
import { Progress } from '../../src/stream/progress.js';
import { encodeRecord, type Rec } from '../../src/stream/protocol.js';
import { runSource } from '../../src/stream/source.js';
import { withTimeAndKey } from '../../src/stream/source-columns.js';
import { openStreamWriter } from '../../src/stream/writer.js';
import { tempDir } from '../helpers.js';
import { readAll, type Table, writeTable } from '../parquet-table.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * The lines of `encodeBatchLines`; when the batch takes the byte path (`encodeBatchBytes`, into a
 * LineWriter with a tiny first buffer so lines cross chunk boundaries), its bytes must be exactly
 * those lines, each followed by `\n`.
 */
function linesOf(b: RecordBatch): string[] {
  const out: string[] = [];
  encodeBatchLines(b, (l) => out.push(l));
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(c: Buffer, _enc, cb) {
      chunks.push(c);
      cb();
    },
  });
  const w = new LineWriter(sink);
  w.line('first');
  const bytes = w.bytes();
  bytes.grow(7);
  if (encodeBatchBytes(b, bytes)) {
    assert.equal(w.lines, out.length + 1);
    w.line('last');
    void w.flush();
    sink.end();
    assert.equal(Buffer.concat(chunks).toString('utf8'), ['first', ...out, 'last', ''].join('\n'));
  } else assert.notEqual(b.complete, true, 'only batches that are not complete take the row path');
  return out;
}

/** Strings that need escaping, unicode beyond the BMP, lone surrogates, integer-like names. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 4 }),
  fc.constantFrom('', '"', '\\', '\n\t', '\u2028', '\u0000', '\ud800', '😀', 'é'),
);
const leaf = fc.oneof(
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
  fc.constantFrom(0, -0, 2 ** 53 - 1, -(2 ** 53 - 1), 1e21, 5e-324, 0.1),
  // Digit-writer boundaries: 2^31 (two halves), 1e9 (leading zeros of the low half), 100.
  fc.constantFrom(
    2 ** 31 - 1,
    2 ** 31,
    -(2 ** 31),
    1e9,
    999_999_999,
    1e12 + 7,
    9_007_198_999_999_999,
    100,
    99,
    10,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  text,
  fc.boolean(),
  fc.constant(null),
);
const anyValue = fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }), fc.dictionary(text, leaf, { maxKeys: 3 }));
const NAMES = ['a', 'b"', '2', 'é', '10', 'x y'];

/** Records of one shape: per field one kind of value (as a typed source), some fields missing. */
const records: fc.Arbitrary<Rec[]> = fc
  .record({
    kinds: fc.array(fc.constantFrom('int', 'float', 'string', 'bool', 'any'), {
      minLength: NAMES.length,
      maxLength: NAMES.length,
    }),
    rows: fc.array(
      fc.record({
        ts: fc.integer({ min: -8.64e15, max: 8.64e15 }),
        key: fc.option(text, { nil: null }),
        cells: fc.array(fc.tuple(fc.nat(9), anyValue), { minLength: NAMES.length, maxLength: NAMES.length }),
        odd: fc.nat(20),
        prov: fc.option(fc.record({ source: text, offset: fc.nat() }), { nil: undefined }),
      }),
      { minLength: 1, maxLength: 40 },
    ),
    missing: fc.boolean(),
    provs: fc.boolean(),
  })
  .map(({ kinds, rows, missing, provs }) =>
    rows.map((r, i) => {
      const v: Record<string, unknown> = {};
      NAMES.forEach((f, c) => {
        const [pick, x] = r.cells[c];
        if (missing && pick === 0) return;
        if (pick === 1) v[f] = null;
        else if (kinds[c] === 'int') v[f] = typeof x === 'number' && Number.isInteger(x) ? x : i - 3;
        else if (kinds[c] === 'float') v[f] = typeof x === 'number' ? x : i + 0.25;
        else if (kinds[c] === 'string') v[f] = typeof x === 'string' ? x : `s${i}`;
        else if (kinds[c] === 'bool') v[f] = pick % 2 === 0;
        else v[f] = x;
      });
      const rec: Rec = { ts: r.ts, key: r.key, value: missing && r.odd === 0 ? [1, 'x'] : v };
      if (provs && r.prov) rec.prov = r.prov;
      return rec;
    }),
  );

/** The records through the binary stream, read back as kappa's Arrow batches. */
async function arrowBatches(recs: Rec[]): Promise<RecordBatch[]> {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  const w = openStreamWriter(pt, 'arrow');
  w.header({ kappa: 1 });
  for (const r of recs) w.record(r);
  w.endEvent();
  await w.close();
  const batches: RecordBatch[] = [];
  await readStream(
    (async function* () {
      yield Buffer.concat(chunks);
    })(),
    {
      header: () => {},
      record: () => assert.fail('version-2 records come in batches'),
      batch: (b) => void batches.push(b),
      watermark: () => {},
      barrier: () => {},
      end: () => {},
      stop: () => {},
    },
  );
  return batches;
}

const table: fc.Arbitrary<Table> = fc.integer({ min: 1, max: 150 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    rowGroupSize: fc.integer({ min: 1, max: 200 }),
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
    str: fc.array(fc.option(text, { nil: null }), { minLength: n, maxLength: n }),
    ts: fc.array(
      fc.integer({ min: -4e12, max: 4e12 }).map((t) => new Date(t)),
      { minLength: n, maxLength: n },
    ),
  }),
);

/** `kappa ingest`'s source runtime over the batches, to NDJSON; the bytes it wrote. */
async function ingestNdjson(batches: RowBatch[], keyField?: string): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const source: RecordSource = {
    progressUnit: 'rows',
    schema: { i32: 'int64', i64: 'int64', dbl: 'float64', flag: 'boolean', str: 'string', ts: 'timestamptz' },
    async *batches() {
      yield* batches;
    },
    async close() {},
  };
  const prev = process.env.KAPPA_STREAM_FORMAT;
  process.env.KAPPA_STREAM_FORMAT = 'ndjson';
  try {
    await runSource({
      sources: [source],
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
  return Buffer.concat(chunks).toString('utf8');
}

describe('NDJSON lines from columns', () => {
  it('Arrow batches: the lines of encodeRecord over recordsOf (property)', async () => {
    await fc.assert(
      fc.asyncProperty(records, async (recs) => {
        const batches = await arrowBatches(recs);
        for (const b of batches) {
          assert.deepEqual(
            linesOf(b),
            recordsOf(b).map((r) => encodeRecord(r)),
          );
          // A view of some rows (a filter's output) encodes as those rows.
          const idx = Int32Array.from({ length: b.length }, (_, i) => i).filter((i) => i % 3 !== 1);
          const v = takeRows(b, idx);
          assert.deepEqual(
            linesOf(v),
            recordsOf(v).map((r) => encodeRecord(r)),
          );
        }
        assert.equal(batches.flatMap(linesOf).length, recs.length);
      }),
      { numRuns: 150 },
    );
  });

  it('Parquet columns (int64 beyond 2^53, NaN, unicode): the lines of the rows (property)', async () => {
    await fc.assert(
      fc.asyncProperty(table, async (t) => {
        const batches = await readAll(writeTable(tmp.dir, t), 'wasm');
        for (const rb of batches) {
          const cols = rb.columns;
          assert.ok(cols, 'the wasm decoder gives columns');
          const n = cols.length;
          const ts = Float64Array.from({ length: n }, (_, i) => i * 1000);
          const keys = new ArrayColumn(
            'string',
            Array.from({ length: n }, (_, i) => (i % 4 === 0 ? null : `k${i % 3}`)),
          );
          const b = withTimeAndKey(cols, ts, keys);
          assert.equal(b.complete, true);
          const want = (rb.rows as Record<string, unknown>[]).map((value, i) =>
            encodeRecord({ ts: ts[i], key: (keys.get(i) as string | null) ?? null, value }),
          );
          assert.deepEqual(linesOf(b), want);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('ingest of Parquet to NDJSON: the same bytes from columns as from rows, no row built (property)', async () => {
    await fc.assert(
      fc.asyncProperty(table, fc.constantFrom(undefined, 'str', 'i64'), async (t, keyField) => {
        const path = writeTable(tmp.dir, t);
        const colBatches = await readAll(path, 'wasm');
        const fromCols = await ingestNdjson(colBatches, keyField);
        // The runtime encoded the columns: reading `rows` would have dropped them.
        assert.ok(colBatches.every((b) => b.columns !== undefined));
        const fromRows = await ingestNdjson(await readAll(path, 'hyparquet'), keyField);
        assert.equal(fromCols, fromRows);
        assert.equal(fromCols.split('\n').length, t.n + 3);
      }),
      { numRuns: 40 },
    );
  });

  it('parseRecordLine gives the whole-line parse (JSON.parse, big integers exact) or leaves the line to it (property)', () => {
    const ts = fc.oneof(
      fc.integer({ min: -8.64e15, max: 8.64e15 }).map(String),
      fc.constantFrom('0', '-0', '007', '-', '1e3', '1.5', '', '12345678901234567', ' 5', '9007199254740993'),
    );
    const key = fc.oneof(
      fc.constant('null'),
      text.map((k) => JSON.stringify(k)),
      fc.constantFrom('"a\\"b"', '"\t"', 'nul', '"x', '5', '"a"b"'),
    );
    const value = fc.oneof(
      anyValue.map((v) => JSON.stringify(v)),
      fc.constantFrom(
        '',
        '{',
        '{"a":1} ',
        '1,"prov":{}',
        '{"a":1}}',
        '"x" ',
        ' [1]',
        '{"a":1},"headers":{"h":"v"}',
      ),
    );
    const line = fc
      .tuple(ts, key, value, fc.constantFrom('', ' ', '}', ',"prov":{"source":"f"}'))
      .map(([t, k, v, tail]) => `{"ts":${t},"key":${k},"value":${v}${tail}}`);
    fc.assert(
      fc.property(line, (l) => {
        // The oracle: JSON.parse, except an integer literal JSON.parse rounds (its text is not the
        // double's exact value) stays its decimal string (kappa-stream(5)); lossless-json sees the
        // literal's text.
        let want: unknown;
        try {
          JSON.parse(l);
          want = losslessParse(l, null, {
            parseNumber: (s: string) =>
              /^-?\d+$/.test(s) && Number.isFinite(Number(s)) && BigInt(s) !== BigInt(Number(s))
                ? s
                : Number(s),
            onDuplicateKey: ({ newValue }) => newValue,
          });
        } catch {
          want = undefined;
        }
        const got = parseRecordLine(l);
        // A ts beyond 2^53 is out of range either way (recordProblem rejects both forms).
        if (typeof (want as { ts?: unknown } | undefined)?.ts === 'string')
          assert.ok(got === undefined || Math.abs(got.ts) > 8.64e15, l);
        else if (got !== undefined) assert.deepStrictEqual(got, want, l);
      }),
      { numRuns: 3000 },
    );
    // The shape kappa writes takes the fast path.
    const r = { ts: 5, key: 'k', value: { a: [1, 'é'], b: null } };
    assert.deepStrictEqual(parseRecordLine(encodeRecord(r)), r);
    assert.deepStrictEqual(parseRecordLine('{"ts":-0,"key":null,"value":-0}'), {
      ts: -0,
      key: null,
      value: -0,
    });
  });
});

describe('binary stream writer linger', () => {
  it('a lingering write keeps back-pressure: one drain waiter, flushIfFull waits for it', async () => {
    // A destination that never drains (a stalled reader): every write beyond 1 byte is over its mark.
    const out = new PassThrough({ highWaterMark: 1 });
    const w = openStreamWriter(out, 'arrow');
    w.header({ kappa: 1 });
    for (let i = 0; i < 8; i++) {
      w.record({ ts: i, key: null, value: { a: i } });
      await new Promise((r) => setTimeout(r, 130)); // past ARROW_LINGER_MS: the rows go out
    }
    assert.ok(out.listenerCount('drain') <= 1, `${out.listenerCount('drain')} drain waiters`);
    const waited = await Promise.race([
      w.flushIfFull().then(() => 'returned'),
      new Promise((r) => setTimeout(() => r('waits'), 50)),
    ]);
    assert.equal(waited, 'waits', 'flushIfFull returns only once the destination drained');
    out.resume();
    await w.flushIfFull();
    out.destroy();
  });
});
