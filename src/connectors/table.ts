/**
 * File sink targets of `kappa sink`: a table directory (the table sink lives in src/table/sink/;
 * this file only registers it) and a single file (`out.parquet`, `out.ndjson`, `out.csv`).
 *
 * Single file: one pending file committed at end of input; its columns are fixed by the first row
 * group (128k rows), so a later new field or a widening is a bad record (use a table directory for
 * schema evolution).
 */
import { UsageError } from '../errors.js';
import { hasStore, type ObjectStore, type PendingFile, schemeOf, storeFor } from '../storage/store.js';
import { formatBytes } from '../stream/progress.js';
import type { Header, Rec } from '../stream/protocol.js';
import {
  createPartWriter,
  type OutputFormat,
  type PartWriter,
  type PartWriterOptions,
} from '../table/parts.js';
import { TableSchema } from '../table/schema.js';
import {
  extensionFormat,
  FileSinkBase,
  type FileSinkOptions,
  formatOf,
  partWriterOptions,
  ROW_GROUP_ROWS,
} from '../table/sink/base.js';
import { TableSink } from '../table/sink/index.js';
import type { SinkTarget } from './sink.js';

export { type FileSinkOptions, ROW_GROUP_ROWS } from '../table/sink/base.js';

/** One output file, committed at end of input. */
class SingleFileSink extends FileSinkBase {
  private readonly store: ObjectStore;
  private readonly format: OutputFormat;
  private writerOpts!: PartWriterOptions;
  private buffer: Record<string, unknown>[] = [];
  private file: { pending: PendingFile; writer: PartWriter; schemaVersion: number } | undefined;
  private bytes = 0;

  constructor(
    private readonly target: string,
    opts: FileSinkOptions,
  ) {
    super(opts);
    this.store = storeFor(target);
    this.format = formatOf(opts.format, extensionFormat(target) ?? 'parquet');
    for (const f of ['partitionBy', 'rollSize', 'rollRecords', 'rollInterval', 'mergeSchema'] as const)
      if (opts[f] !== undefined)
        throw new UsageError(
          `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to table directories, not to a single file '${target}'`,
        );
  }

  async open(header: Header): Promise<void> {
    this.writerOpts = await partWriterOptions(this.format, this.opts.compression);
    this.schema = new TableSchema(header.schema);
  }

  protected accept(_r: Rec, value: Record<string, unknown>): void | Promise<void> {
    this.buffer.push(value);
    if (this.buffer.length >= ROW_GROUP_ROWS) return this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.file) {
      const pending = await this.store.create(this.target);
      this.file = {
        pending,
        writer: createPartWriter(
          pending,
          this.schema.columns.map((c) => ({ ...c })),
          this.writerOpts,
        ),
        schemaVersion: this.schema.version,
      };
      // The file's columns are fixed now: later new fields or widenings are conflicts.
      this.schema.frozen = this.file.writer.fixedColumns;
    }
    const rows = this.buffer;
    this.buffer = [];
    await this.file.writer.writeRows(rows);
    this.written += rows.length;
  }

  watermark(): void {}

  async commit(): Promise<string> {
    await this.flush();
    const f = this.file!;
    await f.writer.finish();
    await f.pending.commit();
    this.bytes = f.pending.bytes;
    return this.target;
  }

  async abort(): Promise<void> {
    await this.file?.pending.abort().catch(() => {});
    this.file = undefined;
  }

  counters(): Record<string, number | string> {
    return { written: formatBytes(this.bytes) };
  }
}

/** One file (`out.parquet`, `out.ndjson`, `out.csv`), local or s3://. */
export const singleFileSink: SinkTarget = {
  name: 'file (out.parquet, out.ndjson, out.csv)',
  options: ['format', 'compression', 's3Endpoint'],
  claims: (t) => t !== '-' && hasStore(schemeOf(t)) && extensionFormat(t) !== undefined,
  create: async (t, o) => new SingleFileSink(t, o as FileSinkOptions),
};

/** A table directory with a Delta log, local or s3:// (src/table/sink). */
export const tableSink: SinkTarget = {
  name: 'table directory (local or s3://)',
  options: [
    'format',
    'partitionBy',
    'tz',
    'rollSize',
    'rollRecords',
    'rollInterval',
    'compression',
    'mergeSchema',
    's3Endpoint',
  ],
  claims: (t) => t !== '-' && hasStore(schemeOf(t)),
  create: async (t, o) => new TableSink(t.replace(/\/+$/, ''), o as FileSinkOptions),
};
