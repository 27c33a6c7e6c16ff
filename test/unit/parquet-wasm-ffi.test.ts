/**
 * Columns taken out of parquet-wasm's WebAssembly memory through the Arrow C Data Interface
 * (`formats/parquet/wasm-ffi.ts`) against the same row group decoded through parquet-wasm's IPC
 * output and flechette's IPC reader (the path it replaces): every type of the columnar path, with
 * nulls, written by DuckDB; and slices at offsets that are not a multiple of 8 (a resumed read)
 * keep their int64 buffers and validity bits.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { tableFromIPC } from '@uwdata/flechette';
import * as pw from 'parquet-wasm';
import { type ArrowData, DecodedColumn } from '../../src/formats/parquet/columns.js';
import { readFfiBatch } from '../../src/formats/parquet/wasm-ffi.js';
import type { FieldType } from '../../src/stream/protocol.js';
import { tempDir } from '../helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

const ROWS = 3001;

/** Columns and the stream type kappa gives each (read.ts `fieldTypeOf`). */
const COLUMNS: [string, string, FieldType][] = [
  ['i8', '(i % 5)::TINYINT', 'int64'],
  ['i16', 'CASE WHEN i % 9 = 0 THEN NULL ELSE (i * 3)::SMALLINT END', 'int64'],
  ['i32', '(i * 7 % 1000)::INTEGER', 'int64'],
  ['u32', '(i * 100000)::UINTEGER', 'int64'],
  [
    'big',
    'CASE WHEN i % 17 = 0 THEN 9007199254740993 + i WHEN i % 6 = 0 THEN NULL ELSE -i * 1000003 END',
    'int64',
  ],
  ['dbl', "CASE WHEN i % 10 = 0 THEN NULL WHEN i % 23 = 0 THEN 'NaN'::DOUBLE ELSE i * 1.25 END", 'float64'],
  ['flt', '(i / 8.0)::FLOAT', 'float64'],
  ['flag', 'CASE WHEN i % 11 = 0 THEN NULL ELSE i % 3 = 0 END', 'boolean'],
  ['s', "'name-' || (i % 50)", 'string'],
  ['s_null', "CASE WHEN i % 7 = 0 THEN NULL WHEN i % 13 = 0 THEN '' ELSE 'x' || i || '-é€😀' END", 'string'],
  [
    'ts_us',
    "TIMESTAMP '1969-12-31 23:59:00' + INTERVAL (i * 37) SECOND + INTERVAL (i * 1001) MICROSECOND",
    'timestamp',
  ],
  ['ts_ms', "(TIMESTAMP '2024-01-01' + INTERVAL (i) MINUTE)::TIMESTAMP_MS", 'timestamp'],
  [
    'ts_ns',
    "(TIMESTAMP_NS '1969-12-31 23:00:00' + INTERVAL (i * 1000003) MICROSECOND)::TIMESTAMP_NS",
    'timestamp',
  ],
  // Beyond ±2^53 in ns (BigInt path), before 1970 with sub-ms digits (floored), with nulls.
  [
    'ts_ns_big',
    "CASE WHEN i % 5 = 0 THEN NULL WHEN i % 2 = 0 THEN (TIMESTAMP_NS '2024-06-01 00:00:00' + INTERVAL (i * 1000003) MICROSECOND)::TIMESTAMP_NS ELSE (TIMESTAMP_NS '1900-01-01 00:00:00.000000' - INTERVAL (i * 1000003) MICROSECOND)::TIMESTAMP_NS END",
    'timestamp',
  ],
  [
    'ts_tz',
    "CASE WHEN i % 13 = 0 THEN NULL ELSE TIMESTAMPTZ '2024-06-01 00:00:00+00' + INTERVAL (i * 61) SECOND END",
    'timestamptz',
  ],
];

async function writeFile(): Promise<string> {
  const file = join(tmp.dir, 'types.parquet');
  const con = await (await DuckDBInstance.create(':memory:')).connect();
  const select = COLUMNS.map(([n, e]) => `${e} AS ${n}`).join(', ');
  await con.run(`COPY (SELECT ${select} FROM range(0, ${ROWS}) r(i)) TO '${file}' (FORMAT parquet)`);
  return file;
}

/** Every view of a column: values, nulls, float64(), dictionary(), int64(). */
function views(c: DecodedColumn): unknown[] {
  const out: unknown[] = [];
  const f = c.float64();
  const d = c.dictionary();
  const b = c.int64();
  for (let i = 0; i < c.length; i++) {
    // (the int64 buffer's value under a null row is unspecified)
    const valid = b && (b.validity === undefined || ((b.validity[i >> 3] >> (i & 7)) & 1) === 1);
    out.push([
      c.get(i),
      c.isNull(i),
      f?.[i],
      d ? (d.codes[i] < 0 ? null : d.values[d.codes[i]]) : undefined,
      b ? [valid, valid ? b.values[i] : null] : undefined,
    ]);
  }
  if (b) out.push(['nulls', b.nulls]);
  return out;
}

describe('Parquet columns out of WebAssembly memory (C Data Interface)', () => {
  it('give what the IPC route gives, for every type of the columnar path, also sliced at odd rows', async () => {
    const file = await writeFile();
    const bytes = new Uint8Array(readFileSync(file));
    const viaIpc = tableFromIPC(pw.readParquet(bytes).intoIPCStream(), { useBigInt: true });
    const t = pw.readParquet(bytes, { batchSize: ROWS });
    assert.equal(t.numBatches, 1);
    const ffi = t.intoFFI();
    let got: ReturnType<typeof readFfiBatch>;
    try {
      got = readFfiBatch(pw.wasmMemory().buffer as ArrayBuffer, ffi.schemaAddr(), ffi.arrayAddr(0));
    } finally {
      ffi.free();
    }
    assert.ok(got);
    assert.equal(got.rows, ROWS);
    for (const [name, , type] of COLUMNS) {
      const d = got.columns.get(name);
      assert.ok(d, `${name}: read from the C structs`);
      const fromFfi = DecodedColumn.of(type, d.data, d.offset, ROWS);
      const ipc = viaIpc.getChild(name);
      const parts = ipc.data as unknown as ArrowData[];
      assert.ok(fromFfi, `${name}: a columnar type`);
      if ((type === 'timestamp' || type === 'timestamptz') && name !== 'ts_ms') {
        // Not ms: converted to epoch ms straight out of WebAssembly memory, the raw values not copied.
        assert.ok(d.data.ms instanceof Float64Array, `${name}: epoch ms computed by wasm-ffi`);
        assert.equal(d.data.values.length, 0, `${name}: raw values not copied`);
      }
      if (type === 'string') {
        // Coded straight out of WebAssembly memory for the whole group, offsets and bytes not copied.
        assert.ok(d.data.codes, `${name}: dictionary codes computed by wasm-ffi`);
        assert.equal(d.data.values.length, 0, `${name}: bytes not copied`);
      }
      // The IPC table may come in several batches: compare batch by batch.
      let at = 0;
      for (const part of parts) {
        const fromIpc = DecodedColumn.of(type, part, 0, part.length);
        assert.ok(fromIpc);
        assert.deepEqual(views(fromFfi.slice(at, part.length)), views(fromIpc), name);
        // A slice's dictionary is the one its rows alone give (codes in order of first appearance
        // within the slice, only the strings it holds), however the group was coded.
        if (type === 'string')
          for (const [from, n] of [
            [0, part.length],
            [7, 100],
            [part.length - 50, 50],
          ])
            assert.deepEqual(
              fromFfi.slice(at + from, n).dictionary(),
              fromIpc.slice(from, n).dictionary(),
              `${name} dictionary of rows ${from}+${n}`,
            );
        // A slice that starts at a row that is not a multiple of 8 (validity bits shifted).
        if (part.length > 20)
          assert.deepEqual(views(fromFfi.slice(at + 5, 13)), views(fromIpc.slice(5, 13)), `${name} at +5`);
        at += part.length;
      }
      assert.equal(at, ROWS);
    }
  });
});
