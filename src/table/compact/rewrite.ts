/**
 * Rewrites one bin: reads its Parquet files through the object store (src/formats/parquet/read.ts),
 * orders the rows by event time (stable, so rows of equal time keep file order; row-group min/max
 * of the event-time column then prune well), optionally keeps only the latest row per key, and
 * writes them as one new part file with the table's columns and the inputs' codec
 * (src/formats/parquet/write.ts). The file stays pending (invisible) until the compaction commit.
 *
 * Memory: the rows of one bin (at most `--target-size` bytes of compressed input) are held at once.
 */
import { DataError, UsageError } from '../../errors.js';
import { partExtension } from '../../formats/index.js';
import { parquetBatches, readParquetFooter, storeAsyncBuffer } from '../../formats/parquet/read.js';
import { codecSetup, type ParquetCodec, ParquetPartWriter } from '../../formats/parquet/write.js';
import { joinUri, type ObjectStore, type PendingFile } from '../../storage/store.js';
import { decodeDeltaPath, FileStats } from '../delta.js';
import type { Column } from '../schema.js';
import { ROW_GROUP_ROWS } from '../sink/base.js';
import type { Bin } from './plan.js';

/** How rows are ordered and which are kept. */
export interface RewriteOptions {
  /** Event-time column: rows are sorted by it ascending (nulls first); undefined keeps file order. */
  tsField?: string;
  /** `--keep-latest-by`: key columns; only the latest row per key is kept. */
  keepLatestBy?: string[];
  /** `--order-by`: breaks ties of event time (the larger value is the later row). */
  orderBy?: string;
}

/** A rewritten bin: the pending output file and what the commit needs. */
export interface Rewritten {
  rel: string;
  pending: PendingFile;
  stats: FileStats;
  rowsIn: number;
  rowsOut: number;
}

const CODECS: Record<string, ParquetCodec> = {
  ZSTD: 'zstd',
  SNAPPY: 'snappy',
  GZIP: 'gzip',
  BROTLI: 'brotli',
  UNCOMPRESSED: 'none',
};

/** Orders two values of one column (numbers, strings, booleans); null/undefined sort first. */
function cmpValue(a: unknown, b: unknown): number {
  const an = a === null || a === undefined;
  const bn = b === null || b === undefined;
  if (an || bn) return an === bn ? 0 : an ? -1 : 1;
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/**
 * Reads every row of the bin's files.
 * @returns rows and the codec name of the first file (kappa's `--compression` name)
 * @throws DataError when a file is not Parquet or has an undecodable row group
 */
async function readBin(
  store: ObjectStore,
  root: string,
  bin: Bin,
): Promise<{ rows: Record<string, unknown>[]; codec: ParquetCodec }> {
  const rows: Record<string, unknown>[] = [];
  let codec: ParquetCodec | undefined;
  for (const f of bin.files) {
    const uri = joinUri(root, decodeDeltaPath(f.path));
    const st = await store.stat(uri);
    if (!st)
      throw new DataError(
        `${uri}: a live file of the table is missing (deleted outside the log?); nothing was compacted`,
      );
    const file = storeAsyncBuffer(store, uri, st.size);
    const info = await readParquetFooter(file, uri);
    const c = info.metadata.row_groups[0]?.columns[0]?.meta_data?.codec;
    if (codec === undefined && c !== undefined) codec = CODECS[c] ?? 'zstd';
    for await (const b of parquetBatches(file, uri, info)) {
      for (let i = 0; i < b.rows.length; i++) {
        const r = b.rows[i];
        if (r === undefined)
          throw new DataError(`${uri}: ${b.errors?.get(i) ?? 'unreadable row'}; nothing was compacted`);
        rows.push(r);
      }
    }
  }
  return { rows, codec: codec ?? 'zstd' };
}

/**
 * Orders rows by event time (then `orderBy`) and, with `keepLatestBy`, keeps the last row of each
 * key in that order (the latest by event time, ties by `orderBy`; equal on both: the row read last).
 * Pure: returns a new array.
 */
export function orderRows(rows: Record<string, unknown>[], o: RewriteOptions): Record<string, unknown>[] {
  const idx = rows.map((_, i) => i);
  const ts = o.tsField;
  const ob = o.orderBy;
  if (ts !== undefined || ob !== undefined)
    idx.sort(
      (a, b) =>
        (ts ? cmpValue(rows[a][ts], rows[b][ts]) : 0) ||
        (ob ? cmpValue(rows[a][ob], rows[b][ob]) : 0) ||
        a - b,
    );
  let out = idx.map((i) => rows[i]);
  if (o.keepLatestBy) {
    const keys = o.keepLatestBy;
    const last = new Map<string, number>();
    for (let i = 0; i < out.length; i++) last.set(JSON.stringify(keys.map((k) => out[i][k] ?? null)), i);
    const keep = new Set(last.values());
    out = out.filter((_, i) => keep.has(i));
  }
  return out;
}

/**
 * Rewrites one bin into a new pending part file `DIR/part-NNNNN-RUNID.<codec>.parquet`.
 * @param columns the table's data-file columns (kappa types)
 * @throws DataError on unreadable input; UsageError when a named column is not in the table
 */
export async function rewriteBin(
  store: ObjectStore,
  root: string,
  dir: string,
  name: (ext: string) => string,
  bin: Bin,
  columns: Column[],
  o: RewriteOptions,
): Promise<Rewritten> {
  for (const c of [...(o.keepLatestBy ?? []), ...(o.orderBy ? [o.orderBy] : [])])
    if (!columns.some((x) => x.name === c))
      throw new UsageError(
        `column '${c}' is not a column of the table's data files (${columns.map((x) => x.name).join(', ')})`,
      );
  const { rows, codec } = await readBin(store, root, bin);
  const ordered = orderRows(rows, o);
  const setup = await codecSetup(codec);
  const rel = joinUri(dir, name(partExtension({ format: 'parquet', codec: setup })));
  const pending = await store.create(joinUri(root, rel));
  const stats = new FileStats(columns);
  try {
    const w = new ParquetPartWriter(pending, columns, setup, 'kappa version 0.1.0');
    for (let i = 0; i < ordered.length; i += ROW_GROUP_ROWS) {
      const group = ordered.slice(i, i + ROW_GROUP_ROWS);
      await w.writeRowGroup(group);
    }
    await w.finish();
    stats.setFrom(w.columnStats());
  } catch (e) {
    await pending.abort().catch(() => {});
    throw e;
  }
  return { rel, pending, stats, rowsIn: rows.length, rowsOut: ordered.length };
}
