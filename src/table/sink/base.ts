/**
 * What the table sink and the single-file sink share: their options, the part-writer setup, and
 * record handling (bad-record policy, schema checks) before a record reaches a file.
 */

import type { RecordSink, SinkCheckpointContext, SinkOptions } from '../../connectors/sink.js';
import { DataError, UsageError } from '../../errors.js';
import { type OutputFormat, type PartWriterOptions, writerByName } from '../../formats/index.js';
import { codecSetup } from '../../formats/parquet/write.js';
import type { BadRecords } from '../../stream/badrecords.js';
import { type RecordBatch, recordsOf } from '../../stream/batch.js';
import type { Header, Rec } from '../../stream/protocol.js';
import { TableSchema } from '../schema.js';
import { batchFits } from './columns.js';

/** Rows per Parquet row group (and per write to a text file). */
export const ROW_GROUP_ROWS = 128 * 1024;

/** Flags of `kappa sink` understood by the file sinks. */
export interface FileSinkOptions extends SinkOptions {
  partitionBy?: string;
  tz?: string;
  /** Bytes. */
  rollSize?: number;
  rollRecords?: number;
  /** Duration text, e.g. `15m`. */
  rollInterval?: string;
  compression?: string;
  /** Allow an append to add columns to an existing table (Delta's `mergeSchema`). */
  mergeSchema?: boolean;
  bad?: BadRecords;
}

/**
 * Part-file writer options for a format and `--compression` (Parquet codecs only; default zstd).
 * @throws UsageError when a codec is given for a text format
 */
export async function partWriterOptions(
  format: PartWriterOptions['format'],
  compression: string | undefined,
): Promise<PartWriterOptions> {
  if (format !== 'parquet' && compression !== undefined)
    throw new UsageError('--compression applies to --format parquet only');
  return { format, codec: format === 'parquet' ? await codecSetup(compression ?? 'zstd') : undefined };
}

/** The output format named by `--format`, or `fallback`. @throws UsageError for an unknown name */
export function formatOf(name: string | undefined, fallback: OutputFormat): OutputFormat {
  if (name === undefined) return fallback;
  return writerByName(name).name;
}

export { extensionFormat } from './extension.js';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Common record handling: bad-record policy, schema checks, row buffering. */
export abstract class FileSinkBase implements RecordSink {
  protected schema = new TableSchema();
  protected readonly bad: BadRecords | undefined;
  protected written = 0;
  protected badCount = 0;
  /**
   * True when the sink writes Parquet, whose row groups can be written from columns: then batches
   * that fit the schema take `acceptBatch`. Text formats write the records as they are (field
   * order, nulls), so they take rows.
   */
  protected columnar = false;

  constructor(protected readonly opts: FileSinkOptions) {
    this.bad = opts.bad;
  }

  abstract open(header: Header, ctx?: SinkCheckpointContext): Promise<void>;
  abstract watermark(wm: number): void | Promise<void>;
  abstract commit(): Promise<string>;
  abstract abort(): Promise<void>;
  protected abstract accept(r: Rec, value: Record<string, unknown>): void | Promise<void>;
  /**
   * The batch path: takes a batch that `batchFits` the schema, from its columns (no row objects).
   * Undefined where the sink writes rows only (text formats).
   * @param first the input line of the batch's first record (bad-record locations)
   */
  protected acceptBatch?(b: RecordBatch, first: number): void | Promise<void>;

  /** Reports a bad record (throws under `--on-error fail`). */
  protected reject(r: Rec, line: number | undefined, reason: string, hint?: string): void {
    this.badCount++;
    if (!this.bad) throw new DataError(`bad record at stdin line ${line ?? '?'}: ${reason}`, hint);
    this.bad.report({ source: 'stdin', line }, reason, JSON.stringify(r));
  }

  /**
   * Records of a version-2 stream (or of a fused upstream stage), a batch at a time: from the
   * columns when the sink has a batch path and every record fits the schema as it is
   * (`batchFits`), else record by record through `write` (bad records, schema growth), with the
   * same result.
   * @param first the input line of the batch's first record
   */
  writeBatch(b: RecordBatch, first: number): void | Promise<void> {
    if (this.columnar && this.acceptBatch && b.length > 0 && batchFits(this.schema, b))
      return this.acceptBatch(b, first);
    return this.writeEach(b, first);
  }

  private async writeEach(b: RecordBatch, first: number): Promise<void> {
    const recs = recordsOf(b);
    for (let i = 0; i < recs.length; i++) {
      const p = this.write(recs[i], first + i);
      if (p) await p;
    }
  }

  write(r: Rec, line?: number): void | Promise<void> {
    const value = r.value;
    if (!isPlainObject(value)) {
      this.reject(r, line, 'the record value is not a JSON object; files need one column per field');
      return;
    }
    const res = this.schema.check(value);
    if (!res.ok) {
      this.reject(r, line, `schema conflict: ${res.reason}`);
      return;
    }
    return this.accept(r, value);
  }
}
