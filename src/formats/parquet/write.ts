/**
 * Parquet output with hyparquet-writer: one file written row group by row group into a pending
 * object-store file (see store.ts), so memory holds one row group, not the file.
 *
 * Types (kappa FieldType -> Parquet):
 *   string -> BYTE_ARRAY UTF8/STRING; int64 -> INT64 (INT32 INT_8/16/32 for a table's Delta
 *   byte/short/integer column, see ParquetColumn); float64 and decimal -> DOUBLE; boolean -> BOOLEAN;
 *   timestamp -> INT64 TIMESTAMP(MILLIS, isAdjustedToUTC=false) (SQL TIMESTAMP);
 *   timestamptz -> INT64 TIMESTAMP(MILLIS, isAdjustedToUTC=true) (TIMESTAMP WITH TIME ZONE);
 *   date -> INT32 DATE; binary (base64 text in the stream) -> BYTE_ARRAY; json -> BYTE_ARRAY JSON.
 * Every column is OPTIONAL (nullable). Column statistics (min/max/null count) are written by
 * hyparquet-writer for every column chunk; `ParquetPartWriter.columnStats` aggregates them per file
 * (the table sink's Delta `add.stats`), so no second pass over the rows is needed.
 *
 * Codecs: snappy is built into hyparquet-writer; gzip and brotli use node:zlib; zstd uses
 * @bokuweb/zstd-wasm (Node 20 has no zstd in zlib). LZ4 is not offered: no maintained LZ4 block
 * compressor that produces Parquet's LZ4_RAW was worth a dependency.
 */
import { brotliCompressSync, gzipSync, constants as zlibConstants } from 'node:zlib';
import * as zstd from '@bokuweb/zstd-wasm';
import type { CompressionCodec, SchemaElement } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { UsageError } from '../../errors.js';
import type { PendingFile } from '../../storage/store.js';
import type { Column, RecordBatch } from '../../stream/batch.js';
import type { FieldType } from '../../stream/protocol.js';
import type { ColumnStats, FileColumnStats } from '../format.js';
import { type GroupColumn, writeGroup } from './write-columns.js';

/** Values of `--compression`. */
export const PARQUET_CODECS = ['zstd', 'snappy', 'gzip', 'brotli', 'none'] as const;
export type ParquetCodec = (typeof PARQUET_CODECS)[number];

type Compressor = (input: Uint8Array) => Uint8Array;

/** A codec ready for hyparquet-writer: its Parquet name and the compressor map. */
export interface CodecSetup {
  codec: CompressionCodec;
  compressors: Partial<Record<CompressionCodec, Compressor>>;
  /** File name infix such as `zstd` (Spark's `part-….zstd.parquet`), empty for none. */
  suffix: string;
}

let zstdReady: Promise<void> | undefined;

/** One zstd compression context for the process (created on first use, never freed). */
let zstdCtx: number | undefined;
const NO_DICT = new Uint8Array(0);

/**
 * zstd of `b` at `level` through one reused compression context (`ZSTD_compress_usingDict` with
 * no dictionary, which is what `ZSTD_compress` calls on a context of its own each time: the same
 * bytes). Reusing the context skips allocating and clearing its tables per call, which was most
 * of the cost of a small page (0.2 ms -> 0.06 ms for a 20-100 KB page; a dt= partition's pages
 * are that small). Call only after `zstd.init()`.
 */
export function zstdCompress(b: Uint8Array, level: number): Uint8Array {
  zstdCtx ??= zstd.createCCtx();
  return zstd.compressUsingDict(zstdCtx, b, NO_DICT, level);
}

/** Parses `--compression` and prepares its compressor (loads the zstd WebAssembly module once). */
export async function codecSetup(name: string): Promise<CodecSetup> {
  switch (name) {
    case 'zstd':
      zstdReady ??= zstd.init();
      await zstdReady;
      return { codec: 'ZSTD', compressors: { ZSTD: (b) => zstdCompress(b, 3) }, suffix: 'zstd' };
    case 'snappy':
      return { codec: 'SNAPPY', compressors: {}, suffix: 'snappy' };
    case 'gzip':
      return { codec: 'GZIP', compressors: { GZIP: (b) => gzipSync(b) }, suffix: 'gz' };
    case 'brotli':
      return {
        codec: 'BROTLI',
        compressors: {
          BROTLI: (b) => brotliCompressSync(b, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 4 } }),
        },
        suffix: 'br',
      };
    case 'none':
      return { codec: 'UNCOMPRESSED', compressors: {}, suffix: '' };
    default:
      throw new UsageError(`--compression: expected one of ${PARQUET_CODECS.join(', ')}, got '${name}'`);
  }
}

/**
 * A column to write: name, kappa type, and for an int64 column of a table whose Delta type is
 * `byte`/`short`/`integer`, its bit width (written as INT32 with the converted type INT_8/INT_16/
 * INT_32, which Spark and Delta readers map to those types; values are range-checked before they
 * get here).
 */
export interface ParquetColumn {
  name: string;
  type: FieldType;
  intBits?: 8 | 16 | 32;
}

/** The Parquet schema element of one kappa column. */
export function parquetElement(name: string, type: FieldType, intBits?: 8 | 16 | 32): SchemaElement {
  const e: SchemaElement = { name, repetition_type: 'OPTIONAL' };
  // Only the converted type (INT_8/16/32), not the INTEGER logical type: hyparquet-writer encodes
  // IntType.bitWidth with another Thrift type than parquet-format's i8, and parquet-mr (Spark,
  // Delta Kernel) then fails on the footer ("Required field 'bitWidth' was not found").
  if (type === 'int64' && intBits !== undefined)
    return {
      ...e,
      type: 'INT32',
      converted_type: intBits === 8 ? 'INT_8' : intBits === 16 ? 'INT_16' : 'INT_32',
    };
  switch (type) {
    case 'string':
      return { ...e, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } };
    case 'int64':
      return { ...e, type: 'INT64' };
    case 'float64':
    case 'decimal':
      return { ...e, type: 'DOUBLE' };
    case 'boolean':
      return { ...e, type: 'BOOLEAN' };
    case 'timestamp':
      return {
        ...e,
        type: 'INT64',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MILLIS' },
      };
    case 'timestamptz':
      return {
        ...e,
        type: 'INT64',
        converted_type: 'TIMESTAMP_MILLIS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
      };
    case 'date':
      return { ...e, type: 'INT32', converted_type: 'DATE', logical_type: { type: 'DATE' } };
    case 'binary':
      return { ...e, type: 'BYTE_ARRAY' };
    case 'json':
      return { ...e, type: 'BYTE_ARRAY', converted_type: 'JSON', logical_type: { type: 'JSON' } };
  }
}

const DAY_MS = 86_400_000;

/**
 * Converts stream values of one column to what hyparquet-writer expects for its element.
 * @param get value i as the stream carries it (undefined or null: null)
 */
function columnValues(type: FieldType, n: number, get: (i: number) => unknown, intBits?: number): unknown[] {
  const out = new Array<unknown>(n);
  if (type === 'int64' && intBits !== undefined) {
    for (let i = 0; i < n; i++) out[i] = get(i) ?? null;
    return out;
  }
  for (let i = 0; i < n; i++) {
    const v = get(i);
    if (v === null || v === undefined) {
      out[i] = null;
      continue;
    }
    switch (type) {
      case 'int64':
        out[i] = BigInt(v as number);
        break;
      case 'timestamp':
      case 'timestamptz':
        out[i] = BigInt(Math.floor(v as number));
        break;
      case 'date':
        out[i] = Math.floor(Date.parse(`${v as string}T00:00:00Z`) / DAY_MS);
        break;
      case 'binary':
        out[i] = new Uint8Array(Buffer.from(v as string, 'base64'));
        break;
      default:
        out[i] = v;
    }
  }
  return out;
}

const NUMERIC_TYPES: ReadonlySet<FieldType> = new Set([
  'int64',
  'float64',
  'decimal',
  'timestamp',
  'timestamptz',
]);

/**
 * The values of one batch column for hyparquet-writer, read from its typed arrays where it has
 * them (`float64()`: NaN is null; `dictionary()`: strings shared per code), else value by value;
 * the same values `columnValues` gives for the same records' rows.
 */
function batchColumnValues(c: ParquetColumn, col: Column | undefined, n: number): unknown[] {
  if (!col) return new Array(n).fill(null);
  // Typed arrays only for a numeric column: a json column keeps the values as they are.
  const f = col.typed && NUMERIC_TYPES.has(c.type) ? col.float64() : undefined;
  if (f) {
    const out = new Array<unknown>(n);
    const big = c.intBits === undefined && c.type !== 'float64' && c.type !== 'decimal';
    for (let i = 0; i < n; i++) {
      const v = f[i];
      out[i] = Number.isNaN(v) ? null : big ? BigInt(Math.floor(v)) : v;
    }
    return out;
  }
  const d = col.typed && c.type === 'string' ? col.dictionary() : undefined;
  if (d) {
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      const k = d.codes[i];
      out[i] = k < 0 ? null : d.values[k];
    }
    return out;
  }
  return columnValues(c.type, n, (i) => col.get(i), c.intBits);
}

/** hyparquet-writer Writer that hands each finished row group's bytes to a pending file. */
export class PendingFileWriter extends ByteWriter {
  constructor(private readonly out: PendingFile) {
    super(1 << 16);
  }
  /** Called by ParquetWriter after each row group; the promise is awaited before the next. */
  flush(): Promise<void> | undefined {
    const self = this as unknown as { index: number };
    if (self.index === 0) return undefined;
    const bytes = this.getBytes().slice();
    self.index = 0;
    return this.out.write(bytes);
  }
  override finish(): Promise<void> | undefined {
    return this.flush();
  }
}

/**
 * Writes one Parquet file into a pending object-store file. The column list is fixed at creation:
 * a writer that needs another schema rolls to a new file.
 */
export class ParquetPartWriter {
  private readonly writer: ParquetWriter;
  private readonly fileWriter: PendingFileWriter;
  private readonly columns: ParquetColumn[];
  rows = 0;

  constructor(
    readonly out: PendingFile,
    columns: ParquetColumn[],
    codec: CodecSetup,
    createdBy = 'kappa',
  ) {
    this.columns = columns.map((c) => ({ name: c.name, type: c.type, intBits: c.intBits }));
    this.fileWriter = new PendingFileWriter(out);
    this.writer = new ParquetWriter({
      writer: this.fileWriter,
      schema: [
        { name: 'root', num_children: this.columns.length },
        ...this.columns.map((c) => parquetElement(c.name, c.type, c.intBits)),
      ],
      codec: codec.codec,
      compressors: codec.compressors,
      statistics: true,
      createdBy,
    });
  }

  /** Bytes handed to the pending file so far (finished row groups). */
  get bytes(): number {
    return this.out.bytes;
  }

  /** Writes `rows` (values already checked against the column types) as one row group. */
  async writeRowGroup(rows: Record<string, unknown>[]): Promise<void> {
    if (rows.length === 0) return;
    const columnData = this.columns.map((c) => ({
      name: c.name,
      data: columnValues(c.type, rows.length, (i) => rows[i][c.name], c.intBits) as never[],
    }));
    await this.writer.write({ columnData, rowGroupSize: rows.length });
    this.rows += rows.length;
  }

  /**
   * Writes the records of a batch (values already checked against the column types) as one row
   * group, from its columns: no row objects (typed columns are read from their typed arrays, string
   * columns with dictionary codes are encoded from the codes, see write-columns.ts). The
   * file, its statistics and `columnStats()` are the same as `writeRowGroup` gives for the
   * batch's rows; a column the batch lacks is all null.
   */
  async writeColumns(b: Pick<RecordBatch, 'length' | 'column'>): Promise<void> {
    if (b.length === 0) return;
    const n = b.length;
    const cols: GroupColumn[] = this.columns.map((c) => {
      const col = b.column(c.name);
      const d = col?.typed && c.type === 'string' ? col.dictionary() : undefined;
      if (d)
        return {
          name: c.name,
          codes: d.codes,
          dict: d.values,
          firstUse: (d as { firstUse?: boolean }).firstUse === true,
        };
      const wide =
        c.intBits === undefined && (c.type === 'int64' || c.type === 'timestamp' || c.type === 'timestamptz');
      const f = wide && col?.typed ? col.float64() : undefined;
      if (f) return { name: c.name, int64: f };
      const double = (c.type === 'float64' || c.type === 'decimal') && col?.typed ? col.float64() : undefined;
      if (double) return { name: c.name, double };
      return { name: c.name, values: batchColumnValues(c, col, n) };
    });
    await writeGroup(this.writer, cols, n);
    this.rows += n;
  }

  /** Writes the footer into the pending file (does not commit it). */
  async finish(): Promise<void> {
    await this.writer.finish();
  }

  /**
   * Per-file statistics taken from the column-chunk statistics hyparquet-writer computed while
   * writing (`row_groups[].columns[].meta_data.statistics`, before footer truncation of long
   * strings), aggregated over the row groups written so far and converted back to stream forms
   * (see ColumnStats): INT64 bigint -> number (none for a column with a bound no number holds exactly), DATE
   * days -> `YYYY-MM-DD`, timestamps stay epoch ms. Strings are ordered by UTF-8 bytes, as Parquet
   * and Delta order them. No min/max for boolean, json and binary.
   */
  columnStats(): FileColumnStats {
    type Raw = number | bigint | string;
    const lo: (Raw | undefined)[] = this.columns.map(() => undefined);
    const hi: (Raw | undefined)[] = this.columns.map(() => undefined);
    const nulls: number[] = this.columns.map(() => 0);
    for (const rg of this.writer.row_groups) {
      for (let i = 0; i < this.columns.length; i++) {
        const c = this.columns[i];
        const st = rg.columns[i]?.meta_data?.statistics;
        if (!st) throw new Error(`parquet writer kept no statistics for column '${c.name}'`);
        nulls[i] += Number(st.null_count ?? 0n);
        if (c.type === 'boolean' || c.type === 'json' || c.type === 'binary') continue;
        const a = st.min_value as Raw | undefined;
        const b = st.max_value as Raw | undefined;
        if (a !== undefined && a !== null && (lo[i] === undefined || compareStat(a, lo[i]!) < 0)) lo[i] = a;
        if (b !== undefined && b !== null && (hi[i] === undefined || compareStat(b, hi[i]!) > 0)) hi[i] = b;
      }
    }
    const columns: Record<string, ColumnStats> = {};
    this.columns.forEach((c, i) => {
      const cs: ColumnStats = { nullCount: nulls[i] };
      // An INT64 bound that no JS number holds exactly (beyond ±2^53): no min/max (no data
      // skipping on the column) rather than a rounded bound that would skip files holding matches.
      if (!unsafeBound(lo[i]) && !unsafeBound(hi[i])) {
        if (lo[i] !== undefined) cs.min = streamForm(c.type, lo[i]!);
        if (hi[i] !== undefined) cs.max = streamForm(c.type, hi[i]!);
      }
      columns[c.name] = cs;
    });
    return { numRecords: this.rows, columns };
  }
}

/** True for an INT64 statistic that a JS number cannot hold exactly (e.g. 2^53 + 1; 2^53 + 2 can). */
function unsafeBound(v: number | bigint | string | undefined): boolean {
  return typeof v === 'bigint' && BigInt(Number(v)) !== v;
}

/** A column-chunk statistic as hyparquet-writer keeps it, in its stream form. */
function streamForm(type: FieldType, v: number | bigint | string): number | string {
  if (typeof v === 'bigint') return Number(v);
  if (type === 'date' && typeof v === 'number') return new Date(v * DAY_MS).toISOString().slice(0, 10);
  return v;
}

/** Orders numbers numerically and strings by UTF-8 bytes (code points), as Parquet does. */
function compareStat(a: number | bigint | string, b: number | bigint | string): number {
  if (typeof a === 'string' && typeof b === 'string') return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a < b ? -1 : a > b ? 1 : 0;
}
