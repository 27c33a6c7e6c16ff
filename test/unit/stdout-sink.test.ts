/**
 * `kappa sink -` from columns (issue 14): record values are written as NDJSON bytes straight from
 * a batch's columns (`encodeValueBytes`, stream/line-encoder.ts), and those bytes are exactly
 * `JSON.stringify(value)` and a newline for each record, on batches with nasty values (unicode,
 * escapes, lone surrogates, -0, integers beyond 2^53 as exact decimal strings, nested values,
 * nulls, missing fields, non-object values); end to end, `kappa sink -` of a version-2 stream
 * writes those lines and counts the rows it took by columns.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { type RecordBatch, recordsOf } from '../../src/stream/batch.js';
import { readStream } from '../../src/stream/input.js';
import { encodeValueBytes } from '../../src/stream/line-encoder.js';
import { LineWriter } from '../../src/stream/output.js';
import type { Header, Rec } from '../../src/stream/protocol.js';
import { openStreamWriter } from '../../src/stream/writer.js';
import { sh, tempDir } from '../helpers.js';

const tmp = tempDir('kappa-stdout-sink-');
after(() => tmp.cleanup());

/** The records as one version-2 (Arrow) stream. */
async function arrowStream(header: Header, recs: Rec[]): Promise<Buffer> {
  const pt = new PassThrough();
  const chunks: Buffer[] = [];
  pt.on('data', (c: Buffer) => chunks.push(c));
  const w = openStreamWriter(pt, 'arrow');
  w.header(header);
  for (const r of recs) w.record(r);
  w.endEvent();
  await w.close();
  return Buffer.concat(chunks);
}

/** The records through the binary stream, read back as kappa's Arrow batches. */
async function arrowBatches(header: Header, recs: Rec[]): Promise<RecordBatch[]> {
  const bytes = await arrowStream(header, recs);
  const batches: RecordBatch[] = [];
  await readStream(
    (async function* () {
      yield bytes;
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

/**
 * What `kappa sink -` writes for a batch: `encodeValueBytes` into a LineWriter whose first buffer
 * is tiny (lines cross chunk boundaries), or, when it declines, each value through JSON.stringify.
 */
function sinkBytes(b: RecordBatch): { text: string; columnar: boolean } {
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
  const columnar = encodeValueBytes(b, bytes);
  if (!columnar) for (const r of recordsOf(b)) w.line(JSON.stringify(r.value));
  w.line('last');
  void w.flush();
  sink.end();
  const text = Buffer.concat(chunks).toString('utf8');
  assert.ok(text.startsWith('first\n') && text.endsWith('last\n'));
  return { text: text.slice('first\n'.length, -'last\n'.length), columnar };
}

const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 4 }),
  fc.constantFrom('', '"', '\\', '\n\t', '\u2028', '\u0000', '\ud800', '😀', 'é', '</script>'),
);
const leaf = fc.oneof(
  fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
  fc.constantFrom(0, -0, 2 ** 31, -(2 ** 31), 1e9, 999_999_999, 1e21, 5e-324, 0.1, 2 ** 53 - 1),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  text,
  fc.boolean(),
  fc.constant(null),
);
const nested = fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }), fc.dictionary(text, leaf, { maxKeys: 3 }));
const NAMES = ['a', 'b"', '2', 'é', '10', 'x y', 'big'];
const BIG = ['9007199254740993', '-9223372036854775808', '9223372036854775807', '-12345678901234567'];

/** Records of one shape: per field one kind of value, some nulls, optionally missing fields. */
const records: fc.Arbitrary<Rec[]> = fc
  .record({
    kinds: fc.array(fc.constantFrom('int', 'float', 'string', 'bool', 'any'), {
      minLength: NAMES.length - 1,
      maxLength: NAMES.length - 1,
    }),
    rows: fc.array(
      fc.record({
        ts: fc.integer({ min: -8.64e15, max: 8.64e15 }),
        key: fc.option(text, { nil: null }),
        cells: fc.array(fc.tuple(fc.nat(9), nested), { minLength: NAMES.length, maxLength: NAMES.length }),
        odd: fc.nat(20),
      }),
      { minLength: 1, maxLength: 40 },
    ),
    missing: fc.boolean(),
  })
  .map(({ kinds, rows, missing }) =>
    rows.map((r, i) => {
      const v: Record<string, unknown> = {};
      NAMES.forEach((f, c) => {
        const [pick, x] = r.cells[c];
        if (missing && pick === 0) return;
        if (pick === 1) v[f] = null;
        else if (f === 'big') v[f] = BIG[pick % BIG.length];
        else if (kinds[c] === 'int') v[f] = typeof x === 'number' && Number.isInteger(x) ? x : i - 3;
        else if (kinds[c] === 'float') v[f] = typeof x === 'number' ? x : i + 0.25;
        else if (kinds[c] === 'string') v[f] = typeof x === 'string' ? x : `s${i}`;
        else if (kinds[c] === 'bool') v[f] = pick % 2 === 0;
        else v[f] = x;
      });
      return { ts: r.ts, key: r.key, value: missing && r.odd === 0 ? [1, 'x'] : v };
    }),
  );

/** `big` travels as an int64 column: values beyond 2^53 are exact decimal strings in the stream. */
const HEADER: Header = { kappa: 1, schema: { big: 'int64' } };

/** The oracle: Node's JSON.stringify of each original value (big integers as their strings). */
function expected(recs: Rec[]): string {
  return recs.map((r) => `${JSON.stringify(r.value)}\n`).join('');
}

/**
 * The row path of a batch: JSON.stringify of each of its records' values. (The binary stream
 * itself changes a few things against the original values: fields in the order of their first
 * appearance in the segment, lone surrogates as U+FFFD after UTF-8; the encoder must match it.)
 */
function rowPath(b: RecordBatch): string {
  return recordsOf(b)
    .map((r) => `${JSON.stringify(r.value)}\n`)
    .join('');
}

describe('kappa sink - from columns', () => {
  it('encodeValueBytes writes JSON.stringify(value) of every record (property)', async () => {
    let columnar = 0;
    await fc.assert(
      fc.asyncProperty(records, async (recs) => {
        for (const b of await arrowBatches(HEADER, recs)) {
          const r = sinkBytes(b);
          assert.equal(r.text, rowPath(b));
          if (r.columnar) columnar++;
          else assert.notEqual(b.complete, true, 'only batches that are not complete take the row path');
        }
      }),
      { numRuns: 150 },
    );
    assert.ok(columnar > 20, `only ${columnar} batches took the byte path`);
  });

  it('the fixed nasty values: -0, escapes, unicode, big integers, nested values, nulls', async () => {
    const recs: Rec[] = [
      {
        ts: 1,
        key: null,
        value: { s: 'é😀\u2028"\\\n', n: -0, big: '9007199254740993', o: { a: [1, null] } },
      },
      { ts: 2, key: 'k', value: { s: '\ud800', n: 1e21, big: '-9223372036854775808', o: null } },
      { ts: 3, key: null, value: { s: null, n: null, big: null, o: [] } },
      { ts: 4, key: null, value: { s: '', n: 5e-324, big: '-12345678901234567', o: 'x' } },
    ];
    const [b] = await arrowBatches({ kappa: 1, schema: { s: 'string', n: 'float64', big: 'int64' } }, recs);
    const r = sinkBytes(b);
    assert.equal(r.columnar, true);
    assert.equal(r.text, rowPath(b));
    assert.equal(
      r.text,
      '{"s":"é😀\u2028\\"\\\\\\n","n":0,"big":"9007199254740993","o":{"a":[1,null]}}\n' +
        '{"s":"\ufffd","n":1e+21,"big":"-9223372036854775808","o":null}\n' +
        '{"s":null,"n":null,"big":null,"o":[]}\n' +
        '{"s":"","n":5e-324,"big":"-12345678901234567","o":"x"}\n',
    );
  });

  it('end to end: kappa sink - of a version-2 stream writes the values from the columns', async () => {
    const recs: Rec[] = [];
    for (let i = 0; i < 5000; i++)
      recs.push({
        ts: 1_700_000_000_000 + i,
        key: i % 3 === 0 ? null : `k${i % 7}`,
        value: {
          id: i,
          x: i % 11 === 0 ? null : i / 7,
          s: i % 13 === 0 ? null : ['a', 'é', '"q"', '😀', '\t'][i % 5],
          big: String(9007199254740993n + BigInt(i)),
          nested: i % 4 === 0 ? { l: [i, 'x'] } : null,
          neg: -0,
        },
      });
    const file = join(tmp.dir, 'in.arrow');
    writeFileSync(file, await arrowStream({ kappa: 1, schema: { big: 'int64', s: 'string' } }, recs));
    const r = await sh(`kappa sink - < '${file}'`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, expected(recs));
    assert.match(r.stderr, /5,000 rows by columns/);
  });
});
