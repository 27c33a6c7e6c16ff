/**
 * Source kinds for `kappa ingest`: files (local paths, globs, directories, s3://) and Kafka
 * topics (kafka://). Each kind registers once with a predicate on the SOURCE argument; ingest asks
 * the registry, never checks schemes itself.
 */

import { UsageError } from '../errors.js';
import type { RowBatch } from '../formats/format.js';
import type { Schema } from '../stream/protocol.js';

/** Flags of `kappa ingest`, as parsed by commander (camelCase). Kinds read the ones they understand. */
export interface SourceOptions {
  format?: string;
  delimiter?: string;
  maxLineBytes?: number;
  /** `--ts-field`: a source with a schema (Parquet) checks that the column exists before reading. */
  tsField?: string;
  /**
   * Restore: start reading right after this position (what `RecordSource.position()` returned at a
   * checkpoint barrier), so the rows delivered are exactly those after it. Kafka: seek each
   * partition to its next offset; files: skip the files before `file` and the rows of `file`
   * before `rows` (seeking by byte offset / row group where the position carries one).
   * @throws DataError when the position does not match the inputs (another file list, a file that
   *   changed size) — never silently start elsewhere
   */
  startAt?: SourcePosition;
  [flag: string]: unknown;
}

/** A JSON value: what a source position may hold (it goes into checkpoint barriers as is). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Where a source stands after the batches delivered so far, as a JSON-serialisable object (no
 * bigint, no Map): reading again from this position delivers exactly the rows after them.
 * Shapes (the `kind` field tells them apart):
 * - files: `{ kind: 'files', file, uri, rows, count, listing, size?, mtime?, byte?, line?, rowGroup?, row? }`:
 *   files `0 … file-1` (in listing order) were read completely; of file `file` (named `uri`), the
 *   first `rows` rows were delivered (bad rows included). Flink's FileSource
 *   `CheckpointedPosition` with records-to-skip. After the last file, `file` equals the number of
 *   files and `uri` is null. `count` is the number of input files and `listing` a digest of the
 *   listing (sha256 over each file's URI and size, 16 hex digits), `size` the bytes of file `file`
 *   and `mtime` its modification time (epoch ms, local files only): a resume against other inputs
 *   is a DataError. Where the next unread row of file `file` starts,
 *   so a resume seeks instead of re-reading:
 *   - NDJSON lines, CSV/TSV: `byte`, the offset in the file's (decompressed) bytes, and `line`,
 *     its 1-based line number (line numbers in messages stay the file's own);
 *   - Parquet: `rowGroup` and `row` within it (whole groups before it are not read);
 *   - JSON array files: none (`rows` are skipped). stdin and pipes cannot be resumed (UsageError).
 *   A position without them (e.g. before the first batch of a file) resumes by skipping `rows`.
 * - kafka: `{ kind: 'kafka', topic, next: { "<partition>": "<offset>" } }`: the next offset to read
 *   per partition (decimal strings: Kafka offsets are int64), as Kafka commits them. On resume
 *   each listed partition starts there (overriding `--from`), partitions not listed (added since)
 *   at their earliest offset; a listed partition that no longer exists, or an offset below the log
 *   start (deleted by retention), is a DataError (the latter only a warning with `--on-error skip`,
 *   which says how many records were lost).
 */
export interface SourcePosition {
  kind: string;
  [field: string]: JsonValue;
}

export interface RecordSource {
  /**
   * The out-of-orderness bound (ms) used when `--max-out-of-orderness` is not given; undefined
   * means none: no watermark before the end of this source (batch semantics for bounded files,
   * where nothing can then be late). Kafka sets 0 (Flink's forMonotonousTimestamps).
   */
  defaultMaxOutOfOrdernessMs?: number;
  /** The position after the last batch handed out (see `SourcePosition`), if the source tracks one. */
  position?(): SourcePosition;
  /** Value schema, if the source knows it before the first batch (Parquet). */
  schema?: Schema;
  /** What the progress bar counts, and the total when known. */
  progressUnit: 'bytes' | 'rows';
  total?: number;
  /** Batches of rows in source order. Ends when a bounded source is exhausted. */
  batches(): AsyncIterable<RowBatch>;
  /** Free text for the progress display (e.g. per-partition lag), refreshed by the caller. */
  detail?(): string;
  /**
   * Feedback from ingest after each batch: the current watermark of each split. Kafka uses it for
   * watermark alignment (pausing partitions that run ahead).
   */
  onWatermarks?(perSplit: ReadonlyMap<string, number>, emitted: number): void;
  /** Splits known before the first record (Kafka partitions): they hold the watermark back from the start. */
  splits?(): string[];
  /**
   * Splits to leave out of the combined watermark right now: idle (no data for `--idle-timeout`)
   * or finished (a bounded read reached its stop position). Asked after each batch.
   */
  idleSplits?(): ReadonlySet<string>;
  /**
   * Called once after the end-of-stream line was written and flushed (a clean end, never after a
   * failure): commit source positions (Kafka `--group` offsets).
   */
  commit?(): Promise<void>;
  /**
   * Called by the source runtime before the first batch when its output takes column batches
   * (the binary stream, a fused `kappa run`): readers that can then deliver `RowBatch.columns`.
   */
  preferColumns?(): void;
  /** Releases connections; also called after a failure. */
  close(): Promise<void>;
}

export interface SourceKind {
  name: string;
  claims(source: string): boolean;
  /**
   * The `kappa ingest` options this kind reads (commander attribute names, e.g. `maxDrift`): a user
   * option that no chosen kind reads is a usage error (commands/applicable.ts).
   */
  options: readonly string[];
  /** Opens all the SOURCE arguments this kind claimed, as one source. */
  open(sources: string[], opts: SourceOptions): Promise<RecordSource>;
}

/**
 * Groups SOURCE arguments by kind (the first kind of `kinds` that claims an argument wins), keeping
 * argument order within each kind. `kinds` is the explicit list in connectors/index.ts.
 * @throws UsageError when no kind claims an argument
 */
export function groupSources(
  sources: string[],
  kinds: readonly SourceKind[],
): { kind: SourceKind; sources: string[] }[] {
  const groups: { kind: SourceKind; sources: string[] }[] = [];
  for (const s of sources) {
    const k = kinds.find((x) => x.claims(s));
    if (!k)
      throw new UsageError(
        `cannot read '${s}': no source handles it (known: ${kinds.map((x) => x.name).join(', ')})`,
      );
    const g = groups.find((x) => x.kind === k);
    if (g) g.sources.push(s);
    else groups.push({ kind: k, sources: [s] });
  }
  return groups;
}
