/**
 * Parquet reader (format `parquet`), built on hyparquet + hyparquet-compressors (every codec:
 * uncompressed, snappy, gzip, brotli, zstd, lz4, lz4_raw; dictionary and v2 data pages).
 *
 * Reads only through the `ObjectStore` interface: an hyparquet `AsyncBuffer` whose `slice` is
 * `store.readRange`, so the footer is fetched first and each row group's column chunks with one
 * coalesced ranged read (ranged GETs on S3). Exactly one row group is decoded at a time, so memory
 * is bounded by the largest row group, not the file size.
 *
 * Decoding is columnar: a row group's columns are decoded and converted to JSON-ready values
 * column by column (no per-value closures), then rows are built slice by slice with a generated
 * object-literal builder (one hidden class for all rows of a file).
 *
 * Files whose top-level columns are all flat integers, floats, booleans, strings or timestamps
 * (`columnarField`) are decoded by parquet-wasm instead (columns.ts; measured on flights-3m: 1.0 s
 * CPU for 3M rows to typed columns and dictionary codes, 1.7 s to rows, against 3.3 s for rows
 * through hyparquet): each batch then carries `columns` (Arrow-backed, no per-cell values) and
 * builds `rows` only when asked. A row group parquet-wasm cannot decode, or whose Arrow types are
 * not the expected ones, is read by hyparquet as before (same values, same error locations).
 * `KAPPA_PARQUET_DECODER=hyparquet` forces hyparquet for every file.
 *
 * Column projection: under `kappa run`, when the next stage's reads are known exactly
 * (commands/run.ts `sourceProjection`), only the columns it reads are decoded (`projectedColumns`).
 *
 * Type mapping (Parquet -> header `Schema` type, value as it travels in the stream):
 * - INT32/INT64 (any INTEGER annotation)      -> `int64`, JSON number (decimal string beyond 2^53)
 * - FLOAT/DOUBLE/FLOAT16                      -> `float64`
 * - BOOLEAN                                   -> `boolean`
 * - STRING/UTF8/ENUM/UUID                     -> `string`
 * - TIMESTAMP(MILLIS|MICROS|NANOS)            -> `timestamp` (isAdjustedToUTC=false) or `timestamptz`
 *   (true), epoch ms (floored); legacy INT96  -> `timestamp`
 * - DATE                                      -> `date`, `YYYY-MM-DD`
 * - DECIMAL                                   -> `decimal`, JSON number
 * - JSON                                      -> `json`
 * - BYTE_ARRAY/FIXED_LEN_BYTE_ARRAY unannotated -> `binary`, base64 string (as DuckDB reads BLOB)
 * - nested group (struct, list, map)          -> `json` (maps as objects, nested values converted alike)
 * - TIME                                      -> `int64` in the column's unit
 */

import { tableFromIPC } from '@uwdata/flechette/dist/flechette.mjs';
import type {
  ColumnData,
  DecodedArray,
  ParquetParsers,
  ParquetReadOptions,
  SchemaElement,
  SchemaTree,
} from 'hyparquet';
import {
  type AsyncBuffer,
  type FileMetaData,
  parquetMetadataAsync,
  parquetRead,
  parquetSchema,
} from 'hyparquet';
import { DataError, RuntimeError, UsageError } from '../../errors.js';
import { LocalStore } from '../../storage/local.js';
import type { ObjectStore } from '../../storage/store.js';
import type { ValueColumns } from '../../stream/batch.js';
import { stageReadColumns } from '../../stream/direct.js';
import type { FieldType, Schema } from '../../stream/protocol.js';
import type { FileOffset, FileStart, FormatReader, OpenedFile, ReadOptions, RowBatch } from '../format.js';
import { columnarField, DecodedColumn } from './columns.js';
import {
  closeInWorker,
  fromWire,
  type PendingRead,
  requestGroup,
  startDecodeWorker,
} from './decode-worker.js';
import { type FfiColumns, guardWasm, loadParquetWasm, type ParquetWasm, readFfiBatch } from './wasm-ffi.js';

/** Rows per yielded batch: small enough that ingest flushes often, large enough to amortise the call. */
const SLICE_ROWS = 8192;

/**
 * hyparquet value parsers producing stream values directly: timestamps as epoch ms numbers
 * (floored, so an instant before 1970 lands in the millisecond that contains it), dates as
 * `YYYY-MM-DD`.
 */
export const KAPPA_PARSERS: Partial<ParquetParsers> = {
  timestampFromMilliseconds: (v: bigint) => Number(v),
  timestampFromMicroseconds(v: bigint) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? Math.floor(n / 1000) : floorDiv(v, 1000n);
  },
  timestampFromNanoseconds: (v: bigint) => floorDiv(v, 1_000_000n),
  dateFromDays: (days: number) => new Date(days * 86_400_000).toISOString().slice(0, 10),
};

function floorDiv(a: bigint, b: bigint): number {
  const q = a / b;
  return Number(a < 0n && q * b !== a ? q - 1n : q);
}

/**
 * An hyparquet AsyncBuffer over an object store: `slice(start, end)` is one `readRange` call.
 * @param size the object's size in bytes
 */
export function storeAsyncBuffer(store: ObjectStore, uri: string, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const u8 = await store.readRange(uri, start, end ?? size);
      if (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength && u8.buffer instanceof ArrayBuffer)
        return u8.buffer;
      // A pooled or offset view (node Buffer): copy exactly the bytes (ArrayBuffer#slice copies).
      const copy = new Uint8Array(u8.byteLength);
      copy.set(u8);
      return copy.buffer;
    },
  };
}

/** The header type of one top-level Parquet column (see the module comment for the mapping). */
export function fieldTypeOf(node: SchemaTree): FieldType {
  if (node.children.length > 0) return 'json';
  const e: SchemaElement = node.element;
  if (e.repetition_type === 'REPEATED') return 'json';
  const lt = e.logical_type;
  const ct = e.converted_type;
  if (lt?.type === 'TIMESTAMP') return lt.isAdjustedToUTC ? 'timestamptz' : 'timestamp';
  // Legacy converted types: Parquet defines TIMESTAMP_MILLIS/MICROS as adjusted to UTC.
  if (ct === 'TIMESTAMP_MILLIS' || ct === 'TIMESTAMP_MICROS') return 'timestamptz';
  if (e.type === 'INT96') return 'timestamp';
  if (lt?.type === 'DATE' || ct === 'DATE') return 'date';
  if (lt?.type === 'DECIMAL' || ct === 'DECIMAL') return 'decimal';
  if (lt?.type === 'JSON' || ct === 'JSON') return 'json';
  if (lt?.type === 'STRING' || lt?.type === 'ENUM' || lt?.type === 'UUID' || ct === 'UTF8' || ct === 'ENUM')
    return 'string';
  if (lt?.type === 'FLOAT16') return 'float64';
  if (lt?.type === 'GEOMETRY' || lt?.type === 'GEOGRAPHY' || lt?.type === 'VARIANT') return 'json';
  switch (e.type) {
    case 'BOOLEAN':
      return 'boolean';
    case 'INT32':
    case 'INT64':
      return 'int64';
    case 'FLOAT':
    case 'DOUBLE':
      return 'float64';
    default:
      return 'binary';
  }
}

/** Maps a Parquet schema (hyparquet's tree) to the stream header schema, top-level fields only. */
export function parquetToSchema(tree: SchemaTree): Schema {
  const out: Schema = {};
  for (const c of tree.children) out[c.element.name] = fieldTypeOf(c);
  return out;
}

function base64(v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

/** int64 as a JSON-safe value: a number when exact, else its decimal string. */
function int64Value(v: bigint): number | string {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v.toString();
}

/** Deep conversion of nested values (structs, lists, maps) to JSON-serialisable values. */
export function jsonValue(v: unknown): unknown {
  if (v === undefined || v === null) return null;
  switch (typeof v) {
    case 'bigint':
      return int64Value(v);
    case 'number':
      return Number.isFinite(v) ? v : null;
    case 'object': {
      if (v instanceof Uint8Array) return base64(v);
      if (v instanceof Date) return v.getTime();
      if (Array.isArray(v) || ArrayBuffer.isView(v)) {
        const a = v as ArrayLike<unknown>;
        const out = new Array(a.length);
        for (let i = 0; i < a.length; i++) out[i] = jsonValue(a[i]);
        return out;
      }
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v)) out[k] = jsonValue((v as Record<string, unknown>)[k]);
      return out;
    }
    default:
      return v;
  }
}

/**
 * Converts one decoded column (as hyparquet returns it) to stream values, in place of a new array.
 * `null`/`undefined` become `null`; NaN and infinities become `null` (JSON has no such numbers).
 */
export function convertColumn(data: ArrayLike<unknown>, type: FieldType, scale: number): unknown[] {
  const n = data.length;
  const out = new Array<unknown>(n);
  switch (type) {
    case 'int64':
      for (let i = 0; i < n; i++) {
        const v = data[i];
        out[i] = typeof v === 'bigint' ? int64Value(v) : v === undefined ? null : v;
      }
      return out;
    case 'float64':
      for (let i = 0; i < n; i++) {
        const v = data[i] as number | null | undefined;
        out[i] = v === undefined || v === null || !Number.isFinite(v) ? null : v;
      }
      return out;
    case 'decimal': {
      // hyparquet multiplies the unscaled integer by 10^-scale; round back to the nearest value
      // with `scale` digits so 0.30000000000000004 reads as 0.3, as DuckDB's double cast does.
      const f = 10 ** scale;
      for (let i = 0; i < n; i++) {
        const v = data[i] as number | null | undefined;
        out[i] = v === undefined || v === null ? null : scale > 0 ? Math.round(v * f) / f : v;
      }
      return out;
    }
    case 'binary':
      for (let i = 0; i < n; i++) {
        const v = data[i];
        out[i] = v instanceof Uint8Array ? base64(v) : v === undefined ? null : v;
      }
      return out;
    case 'json':
      for (let i = 0; i < n; i++) out[i] = jsonValue(data[i]);
      return out;
    default:
      for (let i = 0; i < n; i++) {
        const v = data[i];
        out[i] = v === undefined ? null : typeof v === 'bigint' ? int64Value(v) : v;
      }
      return out;
  }
}

type RowBuilder = (cols: unknown[][], i: number) => Record<string, unknown>;

/**
 * A function building one row object from column arrays. Generated as a single object literal so
 * every row shares one hidden class (the fastest shape for JSON.stringify downstream); falls back
 * to a loop for names an object literal cannot carry (`__proto__`).
 */
export function rowBuilder(names: string[]): RowBuilder {
  if (names.includes('__proto__')) {
    return (cols, i) => {
      const o: Record<string, unknown> = {};
      for (let c = 0; c < names.length; c++)
        Object.defineProperty(o, names[c], { value: cols[c][i], enumerable: true, writable: true });
      return o;
    };
  }
  const body = `return {${names.map((n, c) => `${JSON.stringify(n)}: cols[${c}][i]`).join(',')}};`;
  return new Function('cols', 'i', body) as RowBuilder;
}

/** What `openParquet` needs to know about a file before reading rows. */
export interface ParquetFileInfo {
  metadata: FileMetaData;
  schema: Schema;
  numRows: number;
}

/** Reads the footer (one ranged read of the tail, more only for a very large footer). */
export async function readParquetFooter(file: AsyncBuffer, uri: string): Promise<ParquetFileInfo> {
  if (file.byteLength === 0)
    throw new DataError(`${uri}: the file is empty (0 bytes), so it is not a Parquet file`);
  // The smallest Parquet file: magic, footer length, magic (12 bytes) plus a footer.
  if (file.byteLength < 12)
    throw new DataError(`${uri}: ${file.byteLength} bytes is too short for a Parquet file (no PAR1 footer)`);
  let metadata: FileMetaData;
  try {
    // KAPPA_PARSERS: min/max statistics of timestamp columns in epoch ms floored, exactly as the
    // reader converts the values (`rowGroupMins` relies on it).
    metadata = await parquetMetadataAsync(file, { parsers: KAPPA_PARSERS });
  } catch (e) {
    if (e instanceof RuntimeError) throw e;
    throw new DataError(`${uri}: not a readable Parquet file: ${(e as Error).message}`);
  }
  return {
    metadata,
    schema: parquetToSchema(parquetSchema(metadata)),
    numRows: Number(metadata.num_rows),
  };
}

/**
 * The min statistic of top-level column `column` in each row group, as the stream value the
 * reader gives for that column (timestamps: epoch ms floored, the conversion of `KAPPA_PARSERS`
 * and `epochMs`; integers: the number), for event-time watermarks from statistics (the files
 * source, kappa-ingest(1)). Entry g is `+Infinity` for a row group with no non-null value
 * (no rows, or only nulls: those rows carry no event time), `NaN` where the min is unknown or
 * unusable. Returns undefined when the column is not a flat INT32/INT64 column annotated as a
 * TIMESTAMP (any unit) or a plain/INTEGER integer (INT96, DATE, DECIMAL, TIME, strings, floats:
 * not supported).
 *
 * Which statistic (Parquet format, `Statistics` in parquet.thrift): `min_value` (field 6) is in
 * the column's sort order; the deprecated `min` (field 2) was written with signed comparison,
 * so it is used for signed types only (signed integers and timestamps, where both orders agree),
 * never for an unsigned INTEGER/UINT_* column. hyparquet does not expose `column_orders`; for
 * signed INT32/INT64 the only defined order is the signed one. A value beyond ±(2^53 − 1) is
 * unusable (a rounded lower bound could be too high).
 */
export function rowGroupMins(metadata: FileMetaData, column: string): number[] | undefined {
  const tree = parquetSchema(metadata);
  const node = tree.children.find((c) => c.element.name === column);
  if (!node || node.children.length > 0) return undefined;
  const e = node.element;
  if (e.repetition_type === 'REPEATED' || (e.type !== 'INT32' && e.type !== 'INT64')) return undefined;
  const lt = e.logical_type;
  const ct = e.converted_type;
  const timestamp = lt?.type === 'TIMESTAMP' || ct === 'TIMESTAMP_MILLIS' || ct === 'TIMESTAMP_MICROS';
  const integer = lt === undefined ? ct === undefined || /^U?INT_/.test(ct) : lt.type === 'INTEGER';
  if (!timestamp && !integer) return undefined;
  const unsigned = (ct?.startsWith('UINT_') ?? false) || (lt?.type === 'INTEGER' && !lt.isSigned);
  return metadata.row_groups.map((rg) => {
    const rows = Number(rg.num_rows);
    if (rows === 0) return Number.POSITIVE_INFINITY;
    const chunk = rg.columns.find(
      (c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === column,
    );
    const st = chunk?.meta_data?.statistics;
    if (!st) return Number.NaN;
    if (st.null_count !== undefined && Number(st.null_count) === rows) return Number.POSITIVE_INFINITY;
    const v = st.min_value ?? (unsigned ? undefined : st.min);
    const n = typeof v === 'bigint' ? Number(v) : v;
    return typeof n === 'number' && Number.isSafeInteger(n) ? n : Number.NaN;
  });
}

/**
 * Iterates the rows of a Parquet file as RowBatches, one row group decoded at a time, in slices of
 * at most `SLICE_ROWS` rows. `where(i)` gives `{source, rowGroup, row}` (row within its group).
 *
 * A row group that cannot be decoded (corrupt page, unsupported encoding) yields its rows as bad
 * rows (`rows[i]` undefined, the reason in `errors`, located by row group and row), so the
 * `--on-error` policy applies: `fail` stops at its first row naming the group; `skip` and
 * `dead-letter` count every row of the group as bad and go on with the next group. The raw text of
 * such a row is a JSON object naming file, row group, row and reason (the bytes are unreadable).
 *
 * Each batch carries `next` (`rowGroup`, `row`: where the next unread row is). With `start`, the
 * row groups before `start.rowGroup` are skipped without reading them, and the rows of that group
 * before `start.row` are not delivered.
 *
 * With `only` (column projection, see `projectedColumns`), only the top-level columns of the file
 * named in it are decoded (parquet-wasm's and hyparquet's `columns` option), and the rows hold only
 * those fields; a file with none of them keeps its first column, so that rows are still counted.
 * @throws DataError when `start` lies beyond the file's row groups (the file changed)
 */
export async function* parquetBatches(
  file: AsyncBuffer,
  uri: string,
  info: ParquetFileInfo,
  start?: { rowGroup: number; row: number },
  only?: ReadonlySet<string>,
  localPath?: string,
): AsyncGenerator<RowBatch> {
  const { metadata } = info;
  const tree = parquetSchema(metadata);
  const leaves = projectedColumns(tree, only);
  const projected = leaves.length < tree.children.length;
  const names = leaves.map((c) => c.element.name);
  const types = leaves.map((c) => fieldTypeOf(c));
  const scales = leaves.map((c) => c.element.scale ?? 0);
  const build = rowBuilder(names);
  const index = new Map(names.map((n, i) => [n, i]));
  const groups = metadata.row_groups.length;
  const g0 = start?.rowGroup ?? 0;
  if (
    g0 > groups ||
    (g0 === groups && (start?.row ?? 0) > 0) ||
    (g0 < groups && (start?.row ?? 0) > Number(metadata.row_groups[g0].num_rows))
  )
    throw new DataError(
      `${uri}: cannot resume at row group ${g0} row ${start?.row}: the file has ${groups} row groups${g0 < groups ? ` and group ${g0} has ${metadata.row_groups[g0].num_rows} rows` : ''} (it changed since the checkpoint)`,
      'restore the input as it was, or start without --resume',
    );
  const columnar =
    process.env.KAPPA_PARQUET_DECODER !== 'hyparquet' &&
    names.length > 0 &&
    leaves.every((c, i) => columnarField(c, types[i]));
  const rowsOf = (g: number) => Number(metadata.row_groups[g].num_rows);
  // The groups to decode: from g0, those with rows left to deliver.
  const todo: number[] = [];
  for (let g = g0; g < groups; g++) if (rowsOf(g) > (g === g0 ? (start?.row ?? 0) : 0)) todo.push(g);
  // The decode thread (decode-worker.ts) for a local file with enough groups, else this thread.
  let remotePath =
    columnar && localPath !== undefined && useDecodeWorker(todo.length) ? localPath : undefined;
  if (remotePath !== undefined && !startDecodeWorker()) remotePath = undefined;
  let wasm = columnar && remotePath === undefined ? await openWasmFile(file) : undefined;
  const ahead = new Map<number, PendingRead>();
  const ask = (g: number) => {
    if (remotePath !== undefined && !ahead.has(g)) {
      const first = g === g0 ? (start?.row ?? 0) : 0;
      const cols = projected ? [...names] : undefined;
      ahead.set(g, requestGroup(remotePath, g, rowsOf(g), cols, first, COLUMNAR_SLICE_ROWS));
    }
  };
  try {
    let groupStart = 0;
    for (let g = 0; g < g0; g++) groupStart += Number(metadata.row_groups[g].num_rows);
    for (let g = g0; g < groups; g++) {
      const groupRows = Number(metadata.row_groups[g].num_rows);
      const skip = g === g0 ? (start?.row ?? 0) : 0;
      if (groupRows === 0 || skip >= groupRows) {
        groupStart += groupRows;
        continue;
      }
      const bytesAt = (row: number) => Math.round((file.byteLength * row) / Math.max(1, info.numRows));
      let cols: DecodedColumn[] | undefined;
      let viaRows = false; // parquet-wasm cannot decode the group: straight to hyparquet
      if (remotePath !== undefined) {
        // This group (asked ahead while the previous one was consumed), and the next one ahead.
        ask(g);
        const mine = ahead.get(g) as PendingRead;
        ahead.delete(g);
        const k = todo.indexOf(g);
        for (let a = 1; a <= DECODE_AHEAD && k + a < todo.length; a++) ask(todo[k + a]);
        const r = await mine.reply;
        if (r.ok) {
          const byName: FfiColumns = new Map(
            r.columns.map(([n, c]) => [n, c ? { data: fromWire(c.data), offset: c.offset } : undefined]),
          );
          cols = ffiColumns(r.rows, byName, names, types, groupRows);
        } else viaRows = !r.retry;
        if (!cols && !viaRows) {
          // Not decodable in the thread (cannot open the file there, unexpected batch shape, the
          // thread died): this thread decodes the rest as it does without the decode thread.
          for (const p of ahead.values()) p.cancel();
          ahead.clear();
          closeInWorker(remotePath);
          remotePath = undefined;
          wasm = await openWasmFile(file);
        }
      }
      if (!cols && !viaRows && wasm) cols = await wasmGroup(wasm, g, groupRows, names, types, projected);
      if (cols) {
        for (let s = skip; s < groupRows; s += COLUMNAR_SLICE_ROWS) {
          const e = Math.min(groupRows, s + COLUMNAR_SLICE_ROWS);
          yield new ColumnarRowBatch(
            names,
            cols.map((c) => c.slice(s, e - s)),
            build,
            uri,
            g,
            s,
            bytesAt(groupStart + e),
            nextRow(g, e, groupRows),
          );
        }
        groupStart += groupRows;
        continue;
      }
      const chunks: ColumnData[][] = names.map(() => []);
      const compressors = await rowCodecs();
      try {
        await parquetRead({
          file,
          metadata,
          rowStart: groupStart,
          rowEnd: groupStart + groupRows,
          columns: projected ? names : undefined,
          compressors,
          parsers: KAPPA_PARSERS,
          utf8: false,
          onChunk(chunk) {
            const c = index.get(chunk.columnName);
            if (c !== undefined) chunks[c].push(chunk);
          },
        });
      } catch (e) {
        if (e instanceof RuntimeError) throw e;
        yield* corruptGroup(
          uri,
          g,
          groupRows,
          (e as Error).message,
          file.byteLength,
          groupStart,
          info.numRows,
          skip,
        );
        groupStart += groupRows;
        continue;
      }
      const values = chunks.map((cs, c) =>
        convertColumn(gather(cs, groupStart, groupRows), types[c], scales[c]),
      );
      for (let s = skip; s < groupRows; s += SLICE_ROWS) {
        const e = Math.min(groupRows, s + SLICE_ROWS);
        const rows: Record<string, unknown>[] = new Array(e - s);
        for (let i = s; i < e; i++) rows[i - s] = build(values, i);
        const group = g;
        const first = s;
        yield {
          rows,
          where: (i) => ({ source: uri, rowGroup: group, row: first + i }),
          raw: (i) => JSON.stringify(rows[i]),
          bytesDone: bytesAt(groupStart + e),
          next: nextRow(g, e, groupRows),
        };
      }
      groupStart += groupRows;
    }
  } finally {
    for (const p of ahead.values()) p.cancel();
    if (remotePath !== undefined) closeInWorker(remotePath);
    // Also when the consumer stops early; after a trap the instance may still hold the file.
    try {
      if (!wasmBroken) wasm?.free();
    } catch {
      // a file still borrowed by a trapped read: left to the (unused) instance
    }
  }
}

let codecs: Promise<ParquetReadOptions['compressors']> | undefined;

/**
 * hyparquet-compressors' codecs (gzip, brotli, zstd, lz4; hyparquet has snappy built in), loaded
 * on the first row group read by hyparquet: the columnar path (parquet-wasm) never needs them.
 */
function rowCodecs(): Promise<ParquetReadOptions['compressors']> {
  codecs ??= import('hyparquet-compressors').then((m) => m.compressors);
  return codecs;
}

/**
 * The top-level columns of `tree` to decode: all of them without `only`, else those named in
 * `only` in file order, or the first column when none is (rows must still be counted).
 */
export function projectedColumns(tree: SchemaTree, only: ReadonlySet<string> | undefined): SchemaTree[] {
  if (!only) return tree.children;
  const kept = tree.children.filter((c) => only.has(c.element.name));
  return kept.length > 0 ? kept : tree.children.slice(0, 1);
}

/**
 * Row groups the decode thread decodes ahead of the one being consumed: with 1, at most two
 * decoded groups are alive in this thread (the one being consumed, the next one) plus the one the
 * thread is decoding, so memory stays bounded by about three row groups' columns.
 */
const DECODE_AHEAD = 1;

/**
 * Whether a local file whose columns all take the columnar path is decoded in the decode thread
 * (decode-worker.ts): `KAPPA_PARQUET_WORKER=1` forces it on, `0` off; by default it is used when
 * at least 2 row groups are left to read (with one group, nothing overlaps: the main thread would
 * only wait for the thread and pay the copy).
 * @param groups the number of row groups with rows left to read
 */
export function useDecodeWorker(groups: number): boolean {
  const env = process.env.KAPPA_PARQUET_WORKER;
  if (env === '0') return false;
  if (env === '1') return groups > 0;
  return groups >= 2;
}

/** Rows per yielded batch on the columnar path (one Arrow batch of the version-2 stream each). */
const COLUMNAR_SLICE_ROWS = 65_536;

type WasmFile = Awaited<ReturnType<ParquetWasm['ParquetFile']['fromFile']>>;
let wasmModule: Promise<ParquetWasm | undefined> | undefined;

/** parquet-wasm in this thread, loaded on first use (`loadParquetWasm`). */
function loadWasm(): Promise<ParquetWasm | undefined> {
  wasmModule ??= loadParquetWasm();
  return wasmModule;
}

/**
 * Opens `file` with parquet-wasm over the same ranged reads as hyparquet (a Blob-like object whose
 * `slice(a, b).arrayBuffer()` is `file.slice(a, b)`), or undefined when parquet-wasm cannot read
 * its footer (the row reader then reads the whole file, with its own error messages).
 */
async function openWasmFile(file: AsyncBuffer): Promise<WasmFile | undefined> {
  const pw = await loadWasm();
  if (!pw) return undefined;
  const blob = {
    size: file.byteLength,
    slice: (a: number, b?: number) => ({ arrayBuffer: async () => file.slice(a, b) }),
  };
  try {
    return await pw.ParquetFile.fromFile(blob as unknown as Blob);
  } catch {
    return undefined;
  }
}

/** Set once parquet-wasm trapped (a Rust panic on corrupt data): its instance is not used again. */
let wasmBroken = false;

/**
 * Decodes row group `g` with parquet-wasm into one Arrow batch per column, or undefined when it
 * cannot (corrupt data, an Arrow type `DecodedColumn.of` does not take): the caller then decodes
 * the group with hyparquet, which gives the row path's values and error locations.
 */
async function wasmGroup(
  pf: WasmFile,
  g: number,
  groupRows: number,
  names: readonly string[],
  types: readonly FieldType[],
  projected: boolean,
): Promise<DecodedColumn[] | undefined> {
  if (wasmBroken) return undefined;
  let t: Awaited<ReturnType<WasmFile['read']>>;
  try {
    t = await guardWasm(
      pf.read({ rowGroups: [g], batchSize: groupRows, columns: projected ? [...names] : undefined }),
    );
  } catch (e) {
    if (e instanceof RuntimeError) throw e;
    if (e instanceof WebAssembly.RuntimeError) wasmBroken = true;
    return undefined;
  }
  // The columns straight out of WebAssembly memory (wasm-ffi.ts); the IPC round trip where that
  // does not apply (a batch that is not one struct array).
  const pw = (await loadWasm()) as ParquetWasm;
  if (t.numBatches === 1) {
    const ffi = t.intoFFI();
    let got: ReturnType<typeof readFfiBatch>;
    try {
      got = readFfiBatch(pw.wasmMemory().buffer as ArrayBuffer, ffi.schemaAddr(), ffi.arrayAddr(0));
    } catch {
      got = undefined; // structs not as expected: the row reader decodes the group
    } finally {
      ffi.free();
    }
    return got ? ffiColumns(got.rows, got.columns, names, types, groupRows) : undefined;
  }
  const table = tableFromIPC(t.intoIPCStream(), { useBigInt: true });
  if (table.numRows !== groupRows) return undefined;
  const out: DecodedColumn[] = [];
  for (let c = 0; c < names.length; c++) {
    const col = table.getChild(names[c]);
    if (col?.data.length !== 1) return undefined;
    const pc = DecodedColumn.of(
      types[c],
      col.data[0] as unknown as Parameters<typeof DecodedColumn.of>[1],
      0,
      groupRows,
    );
    if (!pc) return undefined;
    out.push(pc);
  }
  return out;
}

/**
 * The `DecodedColumn`s of `names` from one decoded batch's columns (`readFfiBatch`, or the decode
 * thread's reply), or undefined when the row count differs from `groupRows` or a column is missing
 * or of an Arrow type `DecodedColumn.of` does not take (the caller then reads the group otherwise).
 */
function ffiColumns(
  rows: number,
  columns: FfiColumns,
  names: readonly string[],
  types: readonly FieldType[],
  groupRows: number,
): DecodedColumn[] | undefined {
  if (rows !== groupRows) return undefined;
  const out: DecodedColumn[] = [];
  for (let c = 0; c < names.length; c++) {
    const d = columns.get(names[c]);
    const pc = d ? DecodedColumn.of(types[c], d.data, d.offset, groupRows) : undefined;
    if (!pc) return undefined;
    out.push(pc);
  }
  return out;
}

/**
 * A slice of a row group decoded column-wise: `columns` carries the Arrow-backed columns; `rows`
 * builds the row objects on first use (and then drops `columns`, so a caller that changes rows,
 * e.g. adding Hive partition fields, is never bypassed by the columnar path).
 */
class ColumnarRowBatch implements RowBatch {
  columns: ValueColumns | undefined;
  private built: Record<string, unknown>[] | undefined;
  readonly bytesDone: number;

  constructor(
    names: readonly string[],
    private readonly cols: readonly DecodedColumn[],
    private readonly build: RowBuilder,
    private readonly uri: string,
    private readonly group: number,
    private readonly first: number,
    bytesDone: number,
    /** Where the next unread row is (row group, row): the files source's resume position. */
    readonly next?: FileOffset,
  ) {
    this.bytesDone = bytesDone;
    const byName = new Map(names.map((n, i) => [n, cols[i]]));
    const n = cols[0]?.length ?? 0;
    this.columns = {
      length: n,
      fields: names,
      complete: true,
      column: (name) => byName.get(name),
      value: (i) =>
        this.build(
          this.cols.map((c) => c.values()),
          i,
        ),
    };
  }

  get rows(): Record<string, unknown>[] {
    if (!this.built) {
      const values = this.cols.map((c) => c.values());
      const n = this.cols[0]?.length ?? 0;
      const rows: Record<string, unknown>[] = new Array(n);
      for (let i = 0; i < n; i++) rows[i] = this.build(values, i);
      this.built = rows;
      this.columns = undefined;
    }
    return this.built;
  }

  where(i: number): { source: string; rowGroup: number; row: number } {
    return { source: this.uri, rowGroup: this.group, row: this.first + i };
  }

  raw(i: number): string {
    return JSON.stringify(this.rows[i]);
  }
}

/** The rows of an undecodable row group as bad rows, in slices of `SLICE_ROWS`. */
function* corruptGroup(
  uri: string,
  group: number,
  groupRows: number,
  message: string,
  fileBytes: number,
  groupStart: number,
  numRows: number,
  skip: number,
): Generator<RowBatch> {
  const reason = `row group ${group} cannot be decoded (corrupt or unsupported data): ${message}`;
  for (let s = skip; s < groupRows; s += SLICE_ROWS) {
    const e = Math.min(groupRows, s + SLICE_ROWS);
    const rows = new Array<undefined>(e - s).fill(undefined);
    const errors = new Map<number, string>();
    for (let i = 0; i < rows.length; i++) errors.set(i, reason);
    const first = s;
    yield {
      rows,
      errors,
      where: (i) => ({ source: uri, rowGroup: group, row: first + i }),
      raw: (i) => JSON.stringify({ source: uri, rowGroup: group, row: first + i, error: reason }),
      bytesDone: Math.round((fileBytes * (groupStart + e)) / Math.max(1, numRows)),
      next: nextRow(group, e, groupRows),
    };
  }
}

/** The position after row `end` (exclusive) of row group `g`: the next group's start after its last row. */
function nextRow(g: number, end: number, groupRows: number): { rowGroup: number; row: number } {
  return end >= groupRows ? { rowGroup: g + 1, row: 0 } : { rowGroup: g, row: end };
}

/** Puts the decoded chunks of one column into row-group order, as one array of `groupRows` values. */
function gather(chunks: ColumnData[], groupStart: number, groupRows: number): ArrayLike<unknown> {
  if (chunks.length === 1 && chunks[0].rowStart === groupStart && chunks[0].columnData.length === groupRows)
    return chunks[0].columnData as ArrayLike<unknown>;
  const out = new Array<unknown>(groupRows).fill(null);
  for (const ch of chunks) {
    const data: DecodedArray = ch.columnData;
    for (let i = 0; i < data.length; i++) {
      const r = ch.rowStart - groupStart + i;
      if (r >= 0 && r < groupRows) out[r] = data[i];
    }
  }
  return out;
}

/**
 * Opens a Parquet object: stats it, reads the footer, and returns its schema and row batches.
 * @throws RuntimeError when the object cannot be read; DataError when it is not Parquet
 */
export async function openParquet(
  store: ObjectStore,
  uri: string,
  startAt?: FileStart,
  only?: ReadonlySet<string>,
): Promise<OpenedFile> {
  const st = await store.stat(uri);
  if (!st)
    throw new RuntimeError(
      `cannot read ${uri}: no such file, or not a regular file (Parquet needs random access, so it cannot be read from a pipe)`,
    );
  const file = storeAsyncBuffer(store, uri, st.size);
  const info = await readParquetFooter(file, uri);
  const localPath =
    store instanceof LocalStore ? (uri.startsWith('file://') ? uri.slice('file://'.length) : uri) : undefined;
  const leaves = projectedColumns(parquetSchema(info.metadata), only);
  const schema: Schema = {};
  for (const c of leaves) schema[c.element.name] = info.schema[c.element.name];
  // The decode thread, if this file will use it, starts now: it loads parquet-wasm while this
  // thread sets up the rest of the stage (the tests of parquetBatches, by the file's row groups).
  if (
    localPath !== undefined &&
    process.env.KAPPA_PARQUET_DECODER !== 'hyparquet' &&
    useDecodeWorker(info.metadata.row_groups.length) &&
    leaves.every((c) => columnarField(c, schema[c.element.name]))
  )
    startDecodeWorker();
  return {
    schema,
    batches: parquetBatches(file, uri, info, resumeRow(info, startAt), only, localPath),
    groupMins: (column) => rowGroupMins(info.metadata, column),
  };
}

/**
 * The row group and row where a resumed read starts: from the position's `rowGroup`/`row`, or
 * else from its `rows` count by the row counts of the groups.
 */
function resumeRow(
  info: ParquetFileInfo,
  at: FileStart | undefined,
): { rowGroup: number; row: number } | undefined {
  if (!at) return undefined;
  if (at.rowGroup !== undefined) return { rowGroup: at.rowGroup, row: at.row ?? 0 };
  let left = at.rows;
  const groups = info.metadata.row_groups;
  for (let g = 0; g < groups.length; g++) {
    const n = Number(groups[g].num_rows);
    if (left < n) return { rowGroup: g, row: left };
    left -= n;
  }
  return { rowGroup: groups.length, row: left };
}

/** Parquet files (random access: local or s3://, never stdin or a pipe). */
export const parquetReader: FormatReader = {
  name: 'parquet',
  extensions: ['parquet', 'parq', 'pq'],
  async open(store: ObjectStore, uri: string, opts: ReadOptions): Promise<OpenedFile> {
    if (store.sequential)
      throw new UsageError('Parquet cannot be read from stdin (it needs random access); pass a file path');
    // Inside `kappa run`, the fields the next stage reads (commands/run.ts `sourceProjection`).
    const only = stageReadColumns();
    return openParquet(store, uri, opts.startAt, only ? new Set(only) : undefined);
  },
};
