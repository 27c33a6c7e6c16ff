/**
 * File sink targets of `kappa sink`: a table directory (the table sink lives in src/table/sink/;
 * this file only registers it) and a single file (`out.parquet`, `out.ndjson`, `out.csv`).
 *
 * Single file: one pending file committed at end of input; its columns are fixed by the first row
 * group (128k rows), so a later new field or a widening is a bad record (use a table directory for
 * schema evolution).
 *
 * Crash recovery of a single file: before writing, a run writes the hidden marker
 * `.NAME.kappa-run.json` beside the target (host, pid, process start time; renewed every minute) and
 * deletes it when it ends. The next run into the same file removes the in-progress copies of the
 * target (local `.NAME.inprogress-HEX`, an open S3 multipart upload of the key) unless the marker
 * names a live run (this host: its process exists; another host: renewed within
 * `KAPPA_RUN_LEASE`), in which case they are left alone with a warning. The in-progress copies are
 * listed before the marker is read, so a run starting meanwhile is never mistaken for a dead one.
 */
import { randomBytes } from 'node:crypto';
import { DataError, UsageError } from '../errors.js';
import {
  createPartWriter,
  type OutputFormat,
  type PartWriter,
  type PartWriterOptions,
} from '../formats/index.js';
import type { ParquetColumn } from '../formats/parquet/write.js';
import {
  hasStore,
  type InProgressFile,
  type ObjectStore,
  type PendingFile,
  schemeOf,
  storeFor,
} from '../storage/store.js';
import type { RecordBatch } from '../stream/batch.js';
import { formatBytes } from '../stream/progress.js';
import type { Header, Rec } from '../stream/protocol.js';
import { txnVersion } from '../table/delta.js';
import { TableSchema } from '../table/schema.js';
import {
  extensionFormat,
  FileSinkBase,
  type FileSinkOptions,
  formatOf,
  partWriterOptions,
  ROW_GROUP_ROWS,
} from '../table/sink/base.js';
import { bufferView, capturePiece, RowBuffer, rowsOnly, segmentRows } from '../table/sink/columns.js';
import { crashPoint, type RunMarker, RunMarkerFile, readJson, runIsLive } from '../table/sink/committer.js';
import { TableSink } from '../table/sink/index.js';
import type { SinkCheckpointContext, SinkTarget } from './sink.js';
import type { JsonValue } from './source.js';

/** The hidden run marker of a single-file target: `.NAME.kappa-run.json` beside it. */
function singleFileMarkerUri(target: string): string {
  const slash = target.lastIndexOf('/');
  return `${target.slice(0, slash + 1)}.${target.slice(slash + 1)}.kappa-run.json`;
}

export { type FileSinkOptions, ROW_GROUP_ROWS } from '../table/sink/base.js';

/** One output file, committed at end of input. */
class SingleFileSink extends FileSinkBase {
  private readonly store: ObjectStore;
  private readonly format: OutputFormat;
  private writerOpts!: PartWriterOptions;
  private readonly buffer = new RowBuffer();
  /** Records taken by the batch path (summary: `rows by columns`). */
  private columnarRows = 0;
  private file:
    | { pending: PendingFile; columns: ParquetColumn[]; writer: PartWriter; schemaVersion: number }
    | undefined;
  private bytes = 0;
  /** This run's marker; undefined while another live run holds the target's marker. */
  private marker: RunMarkerFile | undefined;
  private recovered = '';

  constructor(
    private readonly target: string,
    opts: FileSinkOptions,
  ) {
    super(opts);
    this.store = storeFor(target);
    this.format = formatOf(opts.format, extensionFormat(target) ?? 'parquet');
    this.columnar = this.format === 'parquet';
    for (const f of ['partitionBy', 'rollSize', 'rollRecords', 'rollInterval', 'mergeSchema'] as const)
      if (opts[f] !== undefined)
        throw new UsageError(
          `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies to table directories, not to a single file '${target}'`,
        );
  }

  /**
   * @throws UsageError with a checkpoint context: one file can only be committed at the end of
   *   input, so a barrier cannot commit an epoch (use a table directory)
   */
  async open(header: Header, ctx?: SinkCheckpointContext): Promise<void> {
    if (ctx)
      throw new UsageError(
        `${this.target}: a single file cannot be committed per checkpoint (it becomes visible only at the end of input), so it cannot take part in a checkpointing pipeline (${ctx.appId})`,
        `write to a table directory instead (e.g. '${this.target.replace(/\.[a-z]+$/i, '')}/'), whose Delta log commits one version per checkpoint`,
      );
    this.writerOpts = await partWriterOptions(this.format, this.opts.compression);
    this.schema = new TableSchema(header.schema);
    await this.recover();
  }

  /**
   * Removes what a crashed run into the same file left (see the module comment), then writes this
   * run's marker. A live run's files and marker are left alone, with a warning.
   */
  private async recover(): Promise<void> {
    // Listed before the marker is read: see the module comment.
    const inProgress: InProgressFile[] = [];
    const bare = (u: string) => u.replace(/^file:\/\//i, '');
    for await (const f of this.store.listInProgress(this.target))
      if (bare(f.uri) === bare(this.target)) inProgress.push(f);
    const uri = singleFileMarkerUri(this.target);
    const other = await readJson<RunMarker>(this.store, uri);
    if (other && runIsLive(other)) {
      process.stderr.write(
        `kappa sink: warning: another kappa sink (pid ${other.pid} on ${other.host}, run ${other.runId}) is writing ${this.target}; its in-progress file is left alone, and the run that commits last wins\n`,
      );
      return;
    }
    for (const f of inProgress) await f.discard();
    if (inProgress.length > 0)
      this.recovered = `removed ${inProgress.length} in-progress file${inProgress.length === 1 ? '' : 's'} of a crashed run`;
    this.marker = new RunMarkerFile(this.store, uri, randomBytes(8).toString('hex'));
    await this.marker.start();
  }

  protected accept(_r: Rec, value: Record<string, unknown>): void | Promise<void> {
    this.buffer.pushRow(value);
    if (this.buffer.length >= ROW_GROUP_ROWS) return this.flush();
  }

  /**
   * The batch path (Parquet, a batch that fits the schema): the batch's rows go into the buffer as
   * gathered column pieces, cut where the row path's buffer would be written (ROW_GROUP_ROWS), so
   * the row groups are the same.
   */
  protected override async acceptBatch(b: RecordBatch, _first: number): Promise<void> {
    this.columnarRows += b.length;
    const names = this.schema.columns.map((c) => c.name);
    for (let at = 0; at < b.length; ) {
      const m = Math.min(b.length - at, ROW_GROUP_ROWS - this.buffer.length);
      const idx = new Int32Array(m);
      for (let i = 0; i < m; i++) idx[i] = at + i;
      this.buffer.pushPiece(capturePiece(b, idx, names));
      at += m;
      if (this.buffer.length >= ROW_GROUP_ROWS) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    if (!this.file) {
      const pending = await this.store.create(this.target);
      const columns = this.schema.columns.map((c) => ({ ...c }));
      this.file = {
        pending,
        columns,
        writer: createPartWriter(pending, columns, this.writerOpts),
        schemaVersion: this.schema.version,
      };
      // The file's columns are fixed now: later new fields or widenings are conflicts.
      this.schema.frozen = this.file.writer.fixedColumns;
    }
    const f = this.file;
    const n = this.buffer.length;
    const segs = this.buffer.drain();
    const rows = rowsOnly(segs);
    if (!rows && f.writer.writeColumns)
      await f.writer.writeColumns(bufferView(segs, new Map(f.columns.map((c) => [c.name, c.type]))));
    else
      await f.writer.writeRows(
        rows ??
          segmentRows(
            segs,
            f.columns.map((c) => c.name),
          ),
      );
    this.written += n;
  }

  watermark(): void {}

  async commit(): Promise<string> {
    await this.flush();
    const f = this.file!;
    await f.writer.finish();
    crashPoint('before-commit');
    await f.pending.commit();
    this.bytes = f.pending.bytes;
    await this.marker?.stop();
    if (this.recovered) process.stderr.write(`kappa sink: ${this.target}: ${this.recovered}\n`);
    return this.target;
  }

  async abort(): Promise<void> {
    await this.file?.pending.abort().catch(() => {});
    this.file = undefined;
    await this.marker?.stop().catch(() => {});
  }

  counters(): Record<string, number | string> {
    return {
      written: formatBytes(this.bytes),
      ...(this.columnarRows ? { 'rows by columns': this.columnarRows } : {}),
    };
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
  committedEpoch: tableCommittedEpoch,
};

/**
 * The newest epoch a checkpointing table sink committed: the version of the `txn` action of the
 * descriptor's appId in the table's Delta log (local or s3://, read from its newest log
 * checkpoint), or null when there is none (or no table yet).
 * @param d `{kind: 'table', table: <root URI>, appId}` (TableSink.commitDescriptor)
 * @throws DataError for a descriptor of another shape or an unreadable log
 */
export async function tableCommittedEpoch(d: JsonValue): Promise<number | null> {
  if (
    d === null ||
    typeof d !== 'object' ||
    Array.isArray(d) ||
    d.kind !== 'table' ||
    typeof d.table !== 'string' ||
    typeof d.appId !== 'string'
  )
    throw new DataError(
      `not a table sink commit descriptor: ${JSON.stringify(d)}`,
      'the checkpoint directory holds a descriptor written by another sink kind or version',
    );
  return txnVersion(storeFor(d.table), d.table, d.appId);
}
