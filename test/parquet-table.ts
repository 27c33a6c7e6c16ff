/**
 * Shared fixture of the Parquet decoder tests: a six-column table (INT32, INT64, DOUBLE, BOOLEAN,
 * STRING, TIMESTAMP, nullable) written by hyparquet-writer, and a reader that uses one decoder.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { RowBatch } from '../src/formats/format.js';
import { openParquet } from '../src/formats/parquet/read.js';
import '../src/storage/local.js';
import { storeFor } from '../src/storage/store.js';

/** Column values of a generated table (`n` rows each), written in row groups of `rowGroupSize`. */
export interface Table {
  n: number;
  rowGroupSize: number;
  i32: (number | null)[];
  i64: (bigint | null)[];
  dbl: (number | null)[];
  flag: (boolean | null)[];
  str: (string | null)[];
  ts: (Date | null)[];
}

let fileNo = 0;

/** Writes `t` as a new Parquet file in `dir`; returns its path. */
export function writeTable(dir: string, t: Table): string {
  const buf = parquetWriteBuffer({
    columnData: [
      { name: 'i32', data: t.i32, type: 'INT32' },
      { name: 'i64', data: t.i64, type: 'INT64' },
      { name: 'dbl', data: t.dbl, type: 'DOUBLE' },
      { name: 'flag', data: t.flag, type: 'BOOLEAN' },
      { name: 'str', data: t.str, type: 'STRING' },
      { name: 'ts', data: t.ts, type: 'TIMESTAMP' },
    ],
    rowGroupSize: t.rowGroupSize,
  });
  const path = join(dir, `t${fileNo++}.parquet`);
  writeFileSync(path, new Uint8Array(buf));
  return path;
}

/** Reads every batch of a file with one decoder (`KAPPA_PARQUET_DECODER`). */
export async function readAll(path: string, decoder: 'wasm' | 'hyparquet'): Promise<RowBatch[]> {
  const prev = process.env.KAPPA_PARQUET_DECODER;
  process.env.KAPPA_PARQUET_DECODER = decoder;
  try {
    const opened = await openParquet(storeFor(path), path);
    const out: RowBatch[] = [];
    for await (const b of opened.batches) out.push(b);
    return out;
  } finally {
    if (prev === undefined) delete process.env.KAPPA_PARQUET_DECODER;
    else process.env.KAPPA_PARQUET_DECODER = prev;
  }
}
