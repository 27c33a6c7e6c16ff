/**
 * Source kinds for `kappa ingest`: files (local paths, globs, directories, s3://) and Kafka
 * topics (kafka://). Each kind registers once with a predicate on the SOURCE argument; ingest asks
 * the registry, never checks schemes itself.
 */

import { UsageError } from '../errors.js';
import type { Schema } from '../stream/protocol.js';
import type { RowBatch } from './format.js';

/** Flags of `kappa ingest`, as parsed by commander (camelCase). Kinds read the ones they understand. */
export interface SourceOptions {
  format?: string;
  delimiter?: string;
  /** `--ts-field`: a source with a schema (Parquet) checks that the column exists before reading. */
  tsField?: string;
  [flag: string]: unknown;
}

export interface RecordSource {
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
  /** Releases connections; also called after a failure. */
  close(): Promise<void>;
}

export interface SourceKind {
  name: string;
  claims(source: string): boolean;
  /** Opens all the SOURCE arguments this kind claimed, as one source. */
  open(sources: string[], opts: SourceOptions): Promise<RecordSource>;
}

const kinds: SourceKind[] = [];

/** Registers a source kind; earlier registrations win. */
export function registerSourceKind(k: SourceKind): void {
  kinds.push(k);
}

/**
 * Groups SOURCE arguments by kind, keeping argument order within each kind. Throws UsageError when
 * no kind claims an argument.
 */
export function groupSources(sources: string[]): { kind: SourceKind; sources: string[] }[] {
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
