/**
 * The CSV reader's columns (issue 14): a chunk without bad rows comes with `RowBatch.columns`,
 * and the records they give (value by value, typed accessors, the NDJSON lines of the line
 * encoder) are the records of the row path, checked on random CSV against the values the test
 * put into the text (csvValue's documented rule applied to each generated field).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { csvBatches, csvValue } from '../../src/formats/csv.js';
import type { RowBatch } from '../../src/formats/format.js';
import { ArrayColumn, type Column } from '../../src/stream/batch.js';
import { encodeBatchLines } from '../../src/stream/line-encoder.js';
import { encodeRecord } from '../../src/stream/protocol.js';
import { columnarAssigner, withTimeAndKey } from '../../src/stream/source-columns.js';

async function* chunked(bytes: Buffer, cuts: number[]) {
  let last = 0;
  for (const c of [...cuts, bytes.length]) {
    yield bytes.subarray(last, c);
    last = c;
  }
}

async function batchesOf(text: string, cuts: number[] = [], bytes = Buffer.from(text)): Promise<RowBatch[]> {
  const out: RowBatch[] = [];
  for await (const b of csvBatches(chunked(bytes, cuts), 'in.csv', ',')) out.push(b);
  return out;
}

/** One generated field: its text in the file and whether it is quoted. */
interface Field {
  text: string;
  quoted: boolean;
}

const plain = fc.oneof(
  fc.constantFrom(
    '',
    '0',
    '-0',
    '007',
    '1.50',
    '1e3',
    '2.5',
    '-17',
    '9007199254740993',
    '1152921504606846976',
  ),
  fc.integer({ min: -1e15, max: 1e15 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.stringMatching(/^[a-zA-Z0-9 .:-]{0,8}$/),
  // Repeated values (the string dictionary's hits) and non-ASCII text (bytes, not characters).
  fc.constantFrom('LAS', 'LAS', 'ATL', 'é', 'ü€', '😀x', 'a\u2028'),
);
const field: fc.Arbitrary<Field> = fc.oneof(
  plain.map((text) => ({ text, quoted: false })),
  fc.oneof(plain, fc.string({ maxLength: 6 }), fc.constantFrom('a,b', 'x"y', 'l1\nl2', 'é€')).map((text) => ({
    text,
    quoted: true,
  })),
);

function fieldText(f: Field): string {
  return f.quoted ? `"${f.text.replaceAll('"', '""')}"` : f.text;
}

describe('CSV reader: columns', () => {
  it('gives the row path’s records from columns on random CSV, cut anywhere', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 4 })
          .chain((w) =>
            fc.tuple(
              fc.constant(w),
              fc.array(fc.array(field, { minLength: w, maxLength: w }), { minLength: 1, maxLength: 40 }),
              fc.array(fc.nat(), { maxLength: 3 }),
              fc.boolean(),
            ),
          ),
        async ([w, table, cutSeeds, crlf]) => {
          const names = Array.from({ length: w }, (_, j) => (j === 1 ? '2' : `f${j}`));
          // A row of only one empty unquoted field would be an empty line (skipped): quote it.
          const rows = table.map((r) =>
            w === 1 && !r[0].quoted && r[0].text === '' ? [{ text: '', quoted: true }] : r,
          );
          const eol = crlf ? '\r\n' : '\n';
          const text = `${names.join(',')}${eol}${rows.map((r) => r.map(fieldText).join(',')).join(eol)}${eol}`;
          const expected = rows.map((r) => {
            const o: Record<string, unknown> = {};
            r.forEach((f, j) => {
              o[names[j]] = csvValue(f.text, f.quoted);
            });
            return o;
          });
          const len = Buffer.byteLength(text);
          const cuts = [...new Set(cutSeeds.map((s) => 1 + (s % (len - 1))))].sort((a, b) => a - b);

          // Row path.
          const viaRows = (await batchesOf(text, cuts)).flatMap((b) => b.rows);
          assert.deepEqual(viaRows, expected);

          // Column path: values, typed accessors, and the NDJSON lines.
          let at = 0;
          for (const b of await batchesOf(text, cuts)) {
            const cols = b.columns;
            assert.ok(cols, 'a chunk without bad rows has columns');
            assert.equal(cols.complete, true);
            assert.deepEqual(cols.fields, names);
            const n = cols.length;
            for (let i = 0; i < n; i++) assert.deepEqual(cols.value(i), expected[at + i]);
            for (const name of names) {
              const c: Column | undefined = cols.column(name);
              assert.ok(c);
              const f: Float64Array | undefined = c.typed ? c.float64() : undefined;
              const d: { codes: Int32Array; values: readonly string[] } | undefined = c.typed
                ? c.dictionary()
                : undefined;
              for (let i = 0; i < n; i++) {
                const want = expected[at + i][name];
                assert.deepEqual(c.get(i), want);
                assert.equal(c.isNull(i), want === null);
                if (f) assert.equal(Number.isNaN(f[i]) ? null : f[i], want);
                if (d) assert.equal(d.codes[i] < 0 ? null : d.values[d.codes[i]], want);
              }
              if (c.type === 'int64')
                for (let i = 0; i < n; i++)
                  assert.ok(f && (Number.isNaN(f[i]) || Number.isSafeInteger(f[i])));
            }
            const ts = Float64Array.from({ length: n }, (_, i) => 1000 + at + i);
            const lines: string[] = [];
            encodeBatchLines(
              withTimeAndKey(cols, ts, new ArrayColumn('string', new Array(n).fill(null))),
              (l) => lines.push(l),
            );
            assert.deepEqual(
              lines,
              expected.slice(at, at + n).map((value, i) => encodeRecord({ ts: ts[i], key: null, value })),
            );
            at += n;
          }
          assert.equal(at, expected.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('types each column from its values: numbers, strings, mixed, nulls', async () => {
    const [b] = await batchesOf('i,f,s,m,z\n1,1.5,a,1,\n2,,b,x,\n,2,a,,\n');
    const cols = b.columns;
    assert.ok(cols);
    const type = (n: string) => [cols.column(n)?.type, cols.column(n)?.typed === true];
    assert.deepEqual(type('i'), ['int64', true]);
    assert.deepEqual(type('f'), ['float64', true]);
    assert.deepEqual(type('s'), ['string', true]);
    assert.deepEqual(type('m'), ['json', false]);
    assert.deepEqual(type('z'), ['json', false]);
    assert.deepEqual(cols.column('s')?.dictionary(), {
      codes: Int32Array.from([0, 1, 0]),
      values: ['a', 'b'],
    });
    assert.deepEqual(Array.from(cols.column('i')?.float64() ?? []), [1, 2, Number.NaN]);
  });

  it('has no columns for a chunk with a bad row; its rows keep the bad row’s place, line and raw text', async () => {
    const [b] = await batchesOf('a,b\n1,x\n2\n3,y"z\n');
    assert.equal(b.columns, undefined);
    assert.deepEqual(b.rows, [{ a: 1, b: 'x' }, undefined, undefined]);
    assert.deepEqual(
      [b.where(1), b.where(2)],
      [
        { source: 'in.csv', line: 3 },
        { source: 'in.csv', line: 4 },
      ],
    );
    assert.equal(b.raw(1), '2\n');
    assert.match(b.errors?.get(1) ?? '', /expected 2 fields/);
  });

  it('drops the columns once rows are read (a caller that changes rows is not bypassed)', async () => {
    const [b] = await batchesOf('a\n1\n');
    assert.ok(b.columns);
    const rows = b.rows as Record<string, unknown>[];
    rows[0].extra = true;
    assert.equal(b.columns, undefined);
    assert.deepEqual(b.rows, [{ a: 1, extra: true }]);
  });
});

describe('CSV reader: bytes', () => {
  it('a delimiter of several UTF-8 bytes, non-ASCII fields and a BOM cut across chunks', async () => {
    const text = '\uFEFFa§b§c\nLAS§é€§1\n"x§""y"§LAS§2.5\nLAS§é€§\n';
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const rows: unknown[] = [];
      for await (const b of csvBatches(chunked(bytes, [cut]), 'in.csv', '§')) rows.push(...b.rows);
      assert.deepEqual(
        rows,
        [
          { a: 'LAS', b: 'é€', c: 1 },
          { a: 'x§"y', b: 'LAS', c: 2.5 },
          { a: 'LAS', b: 'é€', c: null },
        ],
        `cut at byte ${cut}`,
      );
    }
  });

  it('invalid UTF-8: cells decoding to the same text share one dictionary value', async () => {
    // 0xff and 0xfe are each one U+FFFD; "\uFFFD" written as UTF-8 is the same text.
    const bytes = Buffer.concat([
      Buffer.from('s,n\n'),
      Buffer.from([0xff, 0x2c, 0x31, 0x0a]),
      Buffer.from([0xfe, 0x2c, 0x32, 0x0a]),
      Buffer.from('\uFFFD,3\nok,4\n'),
    ]);
    const [b] = await batchesOf(bytes.toString('latin1'), [], bytes);
    const d = b.columns?.column('s')?.dictionary();
    assert.deepEqual(d?.values, ['\uFFFD', 'ok']);
    assert.deepEqual(Array.from(d?.codes ?? []), [0, 0, 0, 1]);
  });

  it('locates bad rows by line after multi-line quoted fields, with their raw text', async () => {
    const [b] = await batchesOf('a,b\n"é\n€",1\n2,"x"y\n3,"z"\n4\n');
    assert.deepEqual(b.rows, [{ a: 'é\n€', b: 1 }, undefined, { a: 3, b: 'z' }, undefined]);
    assert.deepEqual([b.where(1).line, b.where(3).line], [4, 6]);
    assert.equal(b.raw(0), '"é\n€",1\n');
    assert.equal(b.raw(1), '2,"x"y\n');
    assert.match(b.errors?.get(1) ?? '', /text after a closing quote \("y"\)/);
  });
});

describe('CSV reader: columnar event time and key', () => {
  it('assigns event time per distinct text and falls back to rows for a bad time', async () => {
    const assign = columnarAssigner({ tsField: 'date', tsFormat: 'auto', tz: 'UTC', keyField: 'o' });
    assert.ok(assign);
    const [b] = await batchesOf(
      'date,o\n2001-01-01T00:01:00Z,LAS\n2001-01-01T00:01:00Z,\n2001-01-02T00:00:00Z,ATL\n',
    );
    const rb = assign(b);
    assert.ok(rb);
    assert.deepEqual(Array.from(rb.ts), [978307260000, 978307260000, 978393600000]);
    assert.deepEqual([rb.key.get(0), rb.key.get(1), rb.key.get(2)], ['LAS', null, 'ATL']);
    const [bad] = await batchesOf('date,o\n2001-01-01T00:01:00Z,LAS\nnot a time,ATL\n');
    assert.equal(assign(bad), undefined, 'a batch with a bad event time takes the row path');
    const [nul] = await batchesOf('date,o\n2001-01-01T00:01:00Z,LAS\n,ATL\n');
    assert.equal(assign(nul), undefined, 'a null event time takes the row path');
  });
});
