/**
 * Buckets of the table sink (Flink FileSink's buckets): one per partition directory, each with a
 * row buffer and at most one open (in-progress) part file; finished files wait for the committer.
 * Also the check that the fields named by `--partition-by` exist in the records.
 */
import { UsageError } from '../../errors.js';
import type { PartWriter } from '../../formats/index.js';
import type { ParquetColumn } from '../../formats/parquet/write.js';
import type { PendingFile } from '../../storage/store.js';
import type { FileStats } from '../delta.js';
import type { PartitionOf, PartitionSpec } from '../partition.js';
import type { RowBuffer } from './columns.js';

/** A part file being written. */
export interface OpenFile {
  /** Path relative to the table root. */
  rel: string;
  pending: PendingFile;
  /** The file's columns (fixed when it was opened). */
  columns: ParquetColumn[];
  writer: PartWriter;
  stats: FileStats;
  /** TableSchema.version the file's columns were fixed at. */
  schemaVersion: number;
  rows: number;
  /** Epoch ms (processing time). */
  openedAt: number;
}

/** One partition directory's buffer and open file. */
export interface Bucket {
  partition: PartitionOf;
  /** Rows (objects or batch pieces) waiting for the next row group. */
  buffer: RowBuffer;
  file?: OpenFile;
  /** Epoch ms when the first row of the current file (open or still buffered) arrived. */
  since?: number;
}

/** A rolled part file: complete, invisible, waiting for the next commit. */
export interface FinishedFile {
  rel: string;
  pending: PendingFile;
  partition: PartitionOf;
  stats: FileStats;
}

/**
 * Counts records that lack a `{field}` of the partition spec. A field that no record of the first
 * input batch has is a usage error (a typo would put every row under __HIVE_DEFAULT_PARTITION__);
 * a field that only some records lack gets one warning with the count at the end of the run.
 */
export class PartitionFieldCheck {
  private readonly fields: string[];
  private readonly columnOf = new Map<string, string>();
  private readonly missing = new Map<string, number>();
  private readonly seen = new Set<string>();
  private records = 0;
  private checked = false;

  constructor(spec: PartitionSpec | undefined) {
    this.fields = [];
    for (const s of spec?.segments ?? [])
      if (s.kind === 'field') {
        this.fields.push(s.field);
        this.columnOf.set(s.field, s.column);
      }
  }

  /** Counts one record's value. */
  add(value: Record<string, unknown>): void {
    if (this.fields.length === 0) return;
    this.records++;
    if (this.seen.size < 50) for (const k in value) this.seen.add(k);
    for (const f of this.fields)
      if (value[f] === undefined) this.missing.set(f, (this.missing.get(f) ?? 0) + 1);
  }

  /**
   * Counts the records of a `complete` batch (every record has every field of `fields`): a
   * partition field is missing from all of them or from none.
   */
  addBatch(fields: readonly string[], n: number): void {
    if (this.fields.length === 0 || n === 0) return;
    this.records += n;
    if (this.seen.size < 50) for (const k of fields) this.seen.add(k);
    for (const f of this.fields) if (!fields.includes(f)) this.missing.set(f, (this.missing.get(f) ?? 0) + n);
  }

  /**
   * Call at the end of the first input batch (later calls do nothing).
   * @throws UsageError when a partition field was in none of the batch's records
   */
  firstBatchDone(): void {
    if (this.checked || this.records === 0) return;
    this.checked = true;
    for (const f of this.fields)
      if ((this.missing.get(f) ?? 0) === this.records)
        throw new UsageError(
          `--partition-by: field '${f}' is in none of the first ${this.records} record${this.records === 1 ? '' : 's'}; fields seen: ${[...this.seen].join(', ') || '(none)'}`,
          'name a top-level field of the record values, e.g. {origin}',
        );
  }

  /** One warning line per partially missing field, or none. */
  warnings(): string[] {
    return this.fields
      .filter((f) => (this.missing.get(f) ?? 0) > 0)
      .map(
        (f) =>
          `${this.missing.get(f)} of ${this.records} records lack partition field '${f}': they went to ${this.columnOf.get(f)}=__HIVE_DEFAULT_PARTITION__`,
      );
  }
}
