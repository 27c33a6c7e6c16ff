/**
 * File formats by name and extension. Each format registers a reader (FORMAT_READERS) and, if
 * kappa can write it, a writer (FORMAT_WRITERS, src/formats/writers.ts) once, in
 * src/formats/index.ts; ingest and sink pick by `--format` or by the file's extension, never by
 * scattered ifs.
 */
import type { Location } from '../errors.js';
import type { ObjectStore } from '../storage/store.js';
import type { ValueColumns } from '../stream/batch.js';
import type { Provenance, Schema } from '../stream/protocol.js';

/** A batch of decoded rows from one file, in file order. */
export interface RowBatch {
  /** Decoded rows; `undefined` where a row could not be decoded (see `errors`). */
  rows: (Record<string, unknown> | undefined)[];
  /** Row index in this batch -> why it could not be decoded. */
  errors?: Map<number, string>;
  /** Where row i came from (file and line, or row group and row). */
  where(i: number): Location;
  /** The raw text of row i, as a dead-letter file should receive it. */
  raw(i: number): string;
  /**
   * True when `raw(i)` is the exact JSON text of the unmodified row i (NDJSON), so ingest can write
   * it as the record value without serialising again. Whoever modifies rows must clear it.
   */
  rawIsJson?: boolean;
  /**
   * Integer literals beyond ±(2^53 − 1) the reader kept as exact decimal strings in `rows`
   * (kappa-stream(5); src/formats/json-exact.ts). Lazy readers count while building `rows`: read
   * it (and `rawIsJson`) after `rows`.
   */
  bigIntegers?: number;
  /** Bytes of the file consumed after this batch (for progress), if known. */
  bytesDone?: number;
  /**
   * Where the next unread row of this file starts after this batch, for readers that can seek
   * (see `FileOffset`); undefined for readers that can only skip rows (JSON arrays). A reader
   * opened with `ReadOptions.startAt` reports offsets of the whole file (not of the resumed part).
   */
  next?: FileOffset;
  /**
   * The split (watermark unit) the batch belongs to, e.g. `kafka partition 3`. Ingest keeps one
   * watermark per split and emits the minimum. Files leave it undefined (one split for all).
   */
  split?: string;
  /**
   * An explicit watermark (epoch ms) of the batch's split after this batch: the source knows that
   * no later row of the split has an event time at or below it (replay: a partition's end − 1 ms).
   * A batch that sets it (even to -Infinity) does not move the split's watermark by the event
   * times of its rows: the split's watermark is only what the source states.
   */
  watermark?: number;
  /**
   * Files source, Parquet inputs: a lower bound of the `--ts-field` column's values (the reader's
   * stream values: epoch ms for timestamps, the integer for integer columns) over every row the
   * source has not delivered yet — the unread row groups of this file and every row group of every
   * later input — from the row groups' min statistics (`OpenedFile.groupMins`); `+Infinity` when
   * no such row is left. Undefined when unknown (a group without a usable statistic, a later input
   * whose footer is not known, or not asked for). The source runtime turns it into a watermark
   * only where event time is a monotonic function of the value (stream/source.ts).
   */
  unreadMin?: number;
  /** Native event time of row i in epoch ms (e.g. the Kafka record timestamp), used without --ts-field. */
  nativeTs?(i: number): number | undefined;
  /** Native key of row i (e.g. the Kafka message key), used without --key-field. */
  nativeKey?(i: number): string | null;
  /** Provenance of row i (source, partition, offset) written into the record. */
  prov?(i: number): Provenance;
  /** Headers of row i (Kafka headers). */
  headers?(i: number): Record<string, string> | undefined;
  /**
   * The same rows column-wise (a columnar reader: Parquet), when the reader has them. Reading
   * `rows` builds the row objects and clears this (a caller that changes rows gets the row path).
   * The source runtime writes these columns as they are when every row gets a valid event time.
   */
  columns?: ValueColumns;
}

/**
 * A seekable place inside one file: the start of its next unread row.
 * - line formats (NDJSON, CSV/TSV): `byte` is the offset in the (decompressed) bytes of the file
 *   where the row starts (after the previous row's line break) and `line` its 1-based line number;
 * - Parquet: `rowGroup` index and `row` within that group (`row` 0 of the group after the last
 *   row of the previous group).
 */
export interface FileOffset {
  byte?: number;
  line?: number;
  rowGroup?: number;
  row?: number;
}

/** Where to resume reading one file: rows already delivered and, for seekable readers, where. */
export interface FileStart extends FileOffset {
  /** Rows (bad rows included) of the file already delivered. */
  rows: number;
}

export interface ReadOptions {
  /**
   * Resume inside the file: deliver only the rows after this position (`FileStart`). Readers seek
   * with `byte`/`line` (NDJSON lines, CSV/TSV: the CSV header is still read from the file start)
   * or `rowGroup`/`row` (Parquet); when those are absent they skip `rows` rows from the start.
   */
  startAt?: FileStart;
  /**
   * Asked when reading starts: true when the consumer takes column batches (the binary stream,
   * a fused `kappa run`), so a reader that can may deliver `RowBatch.columns` (NDJSON parses its
   * lines straight into columns then; issue 14).
   */
  columnar?: () => boolean;
  /** CSV field delimiter (default `,`). */
  delimiter?: string;
  /** Line-based formats: longest line in bytes (`--max-line-bytes`; default 64 MiB); longer lines are bad rows. */
  maxLineBytes?: number;
}

export interface OpenedFile {
  /** Value schema if the format carries one (Parquet), else undefined (inferred downstream). */
  schema?: Schema;
  batches: AsyncIterable<RowBatch>;
  /**
   * Parquet: the min statistic of top-level column `column` per row group, as the reader's stream
   * value (epoch ms for timestamps, the integer for integer columns); `+Infinity` for a group with
   * no non-null value, `NaN` where unknown. Undefined when the column type has no usable order
   * (parquet/read.ts `rowGroupMins`). For event-time watermarks from statistics.
   */
  groupMins?(column: string): number[] | undefined;
}

export interface FormatReader {
  /** Format name as given to `--format`. */
  name: string;
  /** Lower-case extensions without the dot, e.g. `['ndjson', 'jsonl', 'json']`. */
  extensions: string[];
  /** Opens one input of `store` (stdin is the `-` of the stdin store; sequential stores have no random access). */
  open(store: ObjectStore, uri: string, opts: ReadOptions): Promise<OpenedFile>;
}

/**
 * Min, max and null count of one column of a written file, values in their stream forms (the
 * kappa-stream.5 encoding): numbers for int64/float64/decimal, epoch ms for timestamp and
 * timestamptz, `YYYY-MM-DD` for date, the string itself for string. No min/max for boolean, json
 * and binary, nor for a column that held only nulls.
 */
export interface ColumnStats {
  min?: number | string;
  max?: number | string;
  nullCount: number;
}

/** Statistics of one written file: row count and per-column stats, keyed by column name. */
export interface FileColumnStats {
  numRecords: number;
  columns: Record<string, ColumnStats>;
}
