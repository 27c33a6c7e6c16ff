/**
 * File sinks: a table directory (local or any object store, e.g. s3://) and a single file.
 *
 * Table: records go to Hive partitions (`--partition-by`), each partition to part files
 * `part-NNNNN-RUNID.zstd.parquet` (or .ndjson / .csv) written through `ObjectStore.create`, so they
 * stay invisible (in-progress) until committed. A file rolls (is finished, still pending) when it
 * reaches `--roll-size` bytes or `--roll-records` records, is older than `--roll-interval`
 * (processing time), when its partition's time range is closed by the watermark, or when the schema
 * grows. Pending files are committed — made visible, then added to the Delta log in one new
 * version — at end of input and at each checkpoint barrier; after that `_SUCCESS` is written in
 * every time partition whose end the watermark has passed. On failure every uncommitted file is
 * aborted and no log version is written: nothing partial becomes visible.
 *
 * Records: each record's `value` (a JSON object) is one row; `ts` and `key` are not stored as extra
 * columns (re-derive them on ingest with `--ts-field` / `--key-field`). Field partition columns are
 * kept in the data files too, so ingest restores their original types.
 *
 * Single file (`out.parquet`, `out.ndjson`, `out.csv`): one pending file committed at end of input;
 * its columns are fixed by the first row group (128k rows), so a later new field or a widening is a
 * bad record (use a table directory for schema evolution).
 */
import { randomBytes } from 'node:crypto';
import { DataError, UsageError } from '../errors.js';
import type { BadRecords } from '../stream/badrecords.js';
import { formatBytes } from '../stream/progress.js';
import type { Barrier, Header, Rec } from '../stream/protocol.js';
import {
  columnsFromSchemaString,
  commitActions,
  type DeltaAction,
  type DeltaAdd,
  type DeltaMetaData,
  type DeltaSnapshot,
  deltaSchemaString,
  encodeDeltaPath,
  FileStats,
  newMetaData,
  readDeltaLog,
  requiredProtocol,
} from '../table/delta.js';
import { Partitioner, type PartitionOf, type PartitionSpec, parsePartitionSpec } from '../table/partition.js';
import {
  createPartWriter,
  OUTPUT_FORMATS,
  type OutputFormat,
  type PartWriter,
  type PartWriterOptions,
  partExtension,
} from '../table/parts.js';
import { type Column, TableSchema } from '../table/schema.js';
import { parseDuration } from '../time/duration.js';
import { checkZone } from '../time/timestamp.js';
import { codecSetup } from './parquet/write.js';
import { type RecordSink, registerSinkTarget, type SinkOptions } from './sink.js';
import {
  hasStore,
  isHiddenPath,
  joinUri,
  type ObjectStore,
  type PendingFile,
  relativeUri,
  schemeOf,
  storeFor,
} from './store.js';

/**
 * Part-file writer options for a format and `--compression` (Parquet codecs only; default zstd).
 * @throws UsageError when a codec is given for a text format
 */
async function partWriterOptions(
  format: PartWriterOptions['format'],
  compression: string | undefined,
): Promise<PartWriterOptions> {
  if (format !== 'parquet' && compression !== undefined)
    throw new UsageError('--compression applies to --format parquet only');
  return { format, codec: format === 'parquet' ? await codecSetup(compression ?? 'zstd') : undefined };
}

/** Rows per Parquet row group (and per write to a text file). */
export const ROW_GROUP_ROWS = 128 * 1024;
/** Rows buffered across all open partitions before the largest buffer is written out. */
const MAX_BUFFERED_ROWS = 500_000;
const DEFAULT_ROLL_SIZE = 128 * 1024 * 1024;

/** Flags of `kappa sink` understood by the file sinks. */
export interface FileSinkOptions extends SinkOptions {
  partitionBy?: string;
  tz?: string;
  rollSize?: number;
  rollRecords?: number;
  rollInterval?: string;
  compression?: string;
  bad?: BadRecords;
}

interface OpenFile {
  rel: string;
  pending: PendingFile;
  writer: PartWriter;
  stats: FileStats;
  schemaVersion: number;
  rows: number;
  openedAt: number;
}

interface PartState {
  partition: PartitionOf;
  buffer: Record<string, unknown>[];
  file?: OpenFile;
}

interface FinishedFile {
  rel: string;
  pending: PendingFile;
  partition: PartitionOf;
  stats: FileStats;
}

const EXT_FORMAT: Record<string, OutputFormat> = {
  parquet: 'parquet',
  ndjson: 'ndjson',
  jsonl: 'ndjson',
  json: 'ndjson',
  csv: 'csv',
};

function formatOf(name: string | undefined, fallback: OutputFormat): OutputFormat {
  if (name === undefined) return fallback;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(name))
    throw new UsageError(`--format: expected one of ${OUTPUT_FORMATS.join(', ')}, got '${name}'`);
  return name as OutputFormat;
}

function extensionFormat(target: string): OutputFormat | undefined {
  const m = /\.([a-z]+)$/i.exec(target.replace(/\/+$/, ''));
  return m && !target.endsWith('/') ? EXT_FORMAT[m[1].toLowerCase()] : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Common record handling: bad-record policy, schema checks, row buffering. */
abstract class FileSinkBase implements RecordSink {
  protected schema = new TableSchema();
  protected readonly bad: BadRecords | undefined;
  protected written = 0;
  protected badCount = 0;

  constructor(protected readonly opts: FileSinkOptions) {
    this.bad = opts.bad;
  }

  abstract open(header: Header): Promise<void>;
  abstract watermark(wm: number): void | Promise<void>;
  abstract commit(): Promise<string>;
  abstract abort(): Promise<void>;
  protected abstract accept(r: Rec, value: Record<string, unknown>): void | Promise<void>;

  /** Reports a bad record (throws under `--on-error fail`). */
  protected reject(r: Rec, line: number | undefined, reason: string): void {
    this.badCount++;
    if (!this.bad) throw new DataError(`bad record at stdin line ${line ?? '?'}: ${reason}`);
    this.bad.report({ source: 'stdin', line }, reason, JSON.stringify(r));
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

/** A partitioned table directory with a Delta log. */
class TableSink extends FileSinkBase {
  private readonly store: ObjectStore;
  private readonly format: OutputFormat;
  private spec: PartitionSpec | undefined;
  private partitioner: Partitioner | undefined;
  private writerOpts!: PartWriterOptions;
  private readonly runId = randomBytes(8).toString('hex');
  private seq = 0;
  private readonly parts = new Map<string, PartState>();
  private finished: FinishedFile[] = [];
  private buffered = 0;
  private wm = Number.NEGATIVE_INFINITY;
  private snapshot: DeltaSnapshot = { version: -1, files: new Map() };
  private readonly rollSize: number;
  private readonly rollRecords: number;
  private readonly rollInterval: number | undefined;
  /** Partition path -> end of its time range, for `_SUCCESS`. */
  private readonly timePartitions = new Map<string, number>();
  private readonly successDone = new Set<string>();
  private committedSchemaString: string | undefined;
  private committedProtocol: string | undefined;
  private metaData: DeltaMetaData | undefined;
  private filesCommitted = 0;
  private bytesCommitted = 0;
  private readonly partitionsWritten = new Set<string>();
  private lastVersion = -1;

  constructor(
    private readonly root: string,
    opts: FileSinkOptions,
  ) {
    super(opts);
    this.store = storeFor(root);
    this.format = formatOf(opts.format, 'parquet');
    this.rollSize = opts.rollSize ?? DEFAULT_ROLL_SIZE;
    this.rollRecords = opts.rollRecords ?? Number.POSITIVE_INFINITY;
    this.rollInterval =
      opts.rollInterval !== undefined ? parseDuration(opts.rollInterval, '--roll-interval') : undefined;
    if (opts.partitionBy !== undefined) this.spec = parsePartitionSpec(opts.partitionBy);
    if (this.rollRecords <= 0) throw new UsageError('--roll-records: must be at least 1');
    if (this.rollSize <= 0) throw new UsageError('--roll-size: must be positive');
  }

  async open(header: Header): Promise<void> {
    this.writerOpts = await partWriterOptions(this.format, this.opts.compression);
    const snap = await readDeltaLog(this.store, this.root);
    let existing: Column[] | undefined;
    if (snap?.metaData) {
      const md = snap.metaData;
      this.snapshot = snap;
      this.metaData = md;
      const provider = this.format === 'ndjson' ? 'json' : this.format;
      if (md.format.provider !== provider)
        throw new UsageError(
          `${this.root}: the table holds ${md.format.provider} files; --format ${this.format} cannot append to it`,
        );
      const tableSpec = md.configuration['kappa.partitionBy'];
      if (!this.spec && tableSpec) this.spec = parsePartitionSpec(tableSpec);
      const want = this.spec?.columns ?? [];
      if (want.join('/') !== md.partitionColumns.join('/'))
        throw new UsageError(
          `${this.root}: the table is partitioned by [${md.partitionColumns.join(', ')}] but --partition-by gives [${want.join(', ')}]`,
          tableSpec ? `omit --partition-by to use the table's '${tableSpec}'` : undefined,
        );
      const timeCols = (md.configuration['kappa.eventTimePartitionColumns'] ?? '').split(',').filter(Boolean);
      existing = columnsFromSchemaString(md.schemaString, timeCols);
      this.committedSchemaString = md.schemaString;
      this.committedProtocol = JSON.stringify(snap.protocol);
      this.lastVersion = snap.version;
    } else {
      if (snap) this.snapshot = snap;
      await this.refuseNonTable();
    }
    this.schema = new TableSchema(header.schema, existing);
    if (this.spec) this.partitioner = new Partitioner(this.spec, checkZone(this.opts.tz ?? 'UTC'));
  }

  /** Refuses to turn a directory of other files into a table (its files would vanish from the log). */
  private async refuseNonTable(): Promise<void> {
    try {
      for await (const e of this.store.list(this.root)) {
        const rel = relativeUri(this.root, e.uri);
        if (!isHiddenPath(rel))
          throw new UsageError(
            `${this.root} already holds files (${rel}) but no _delta_log: it is not a kappa table`,
            'write to a new or empty directory, or to an existing kappa table',
          );
      }
    } catch (e) {
      if (e instanceof UsageError) throw e;
      // Missing directory: a new table.
    }
  }

  protected accept(_r: Rec, value: Record<string, unknown>): void | Promise<void> {
    const partition = this.partitioner
      ? this.partitioner.partitionOf(_r.ts, value)
      : { path: '', values: {} };
    let st = this.parts.get(partition.path);
    if (!st) {
      st = { partition, buffer: [] };
      this.parts.set(partition.path, st);
      if (partition.end !== undefined) this.timePartitions.set(partition.path, partition.end);
    }
    st.buffer.push(value);
    this.buffered++;
    const fileRows = (st.file?.rows ?? 0) + st.buffer.length;
    if (st.buffer.length >= ROW_GROUP_ROWS || fileRows >= this.rollRecords) return this.flushPart(st, true);
    if (this.buffered >= MAX_BUFFERED_ROWS) return this.flushLargest();
  }

  private async flushLargest(): Promise<void> {
    let big: PartState | undefined;
    for (const st of this.parts.values()) if (!big || st.buffer.length > big.buffer.length) big = st;
    if (big) await this.flushPart(big, true);
  }

  /** Writes a partition's buffered rows; rolls its file first if the schema grew, after if full. */
  private async flushPart(st: PartState, checkRoll: boolean): Promise<void> {
    if (st.buffer.length > 0) {
      if (st.file && st.file.writer.fixedColumns && st.file.schemaVersion !== this.schema.version)
        await this.roll(st);
      if (!st.file) st.file = await this.openFile(st.partition);
      const f = st.file;
      const rows = st.buffer;
      st.buffer = [];
      this.buffered -= rows.length;
      await f.writer.writeRows(rows);
      for (const r of rows) f.stats.add(r);
      f.rows += rows.length;
    }
    if (checkRoll && st.file && (st.file.writer.bytes >= this.rollSize || st.file.rows >= this.rollRecords))
      await this.roll(st);
  }

  private async openFile(partition: PartitionOf): Promise<OpenFile> {
    const name = `part-${String(this.seq++).padStart(5, '0')}-${this.runId}.${partExtension(this.writerOpts)}`;
    const rel = partition.path ? `${partition.path}/${name}` : name;
    const pending = await this.store.create(joinUri(this.root, rel));
    const columns = this.schema.columns.map((c) => ({ ...c }));
    return {
      rel,
      pending,
      writer: createPartWriter(pending, columns, this.writerOpts),
      stats: new FileStats(columns),
      schemaVersion: this.schema.version,
      rows: 0,
      openedAt: Date.now(),
    };
  }

  /** Finishes a partition's open file; it stays pending (invisible) until the next commit. */
  private async roll(st: PartState): Promise<void> {
    const f = st.file;
    if (!f) return;
    st.file = undefined;
    await f.writer.finish();
    this.finished.push({ rel: f.rel, pending: f.pending, partition: st.partition, stats: f.stats });
  }

  /** Writes and rolls every partition with buffered rows or an open file. */
  private async rollAll(): Promise<void> {
    for (const st of this.parts.values()) {
      await this.flushPart(st, false);
      await this.roll(st);
    }
    this.parts.clear();
  }

  async watermark(wm: number): Promise<void> {
    if (wm <= this.wm) return;
    this.wm = wm;
    // A partition whose time range the watermark has passed gets no more on-time records: roll it.
    for (const [path, st] of this.parts) {
      if (st.partition.end !== undefined && st.partition.end <= wm) {
        await this.flushPart(st, false);
        await this.roll(st);
        this.parts.delete(path);
      }
    }
  }

  async afterBatch(): Promise<void> {
    if (this.rollInterval === undefined) return;
    const now = Date.now();
    for (const st of this.parts.values())
      if (st.file && now - st.file.openedAt >= this.rollInterval) {
        await this.flushPart(st, false);
        await this.roll(st);
      }
  }

  async barrier(b: Barrier): Promise<void> {
    await this.rollAll();
    await this.commitPending({ checkpointId: b.id });
  }

  async commit(): Promise<string> {
    this.wm = Number.POSITIVE_INFINITY;
    await this.rollAll();
    await this.commitPending({});
    const parts = this.partitionsWritten.size;
    return `${this.filesCommitted} file${this.filesCommitted === 1 ? '' : 's'}${this.spec ? ` in ${parts} partition${parts === 1 ? '' : 's'}` : ''} to ${this.root} (table version ${this.lastVersion})`;
  }

  /** Makes finished files visible, then writes one Delta log version adding them, then `_SUCCESS` files. */
  private async commitPending(info: { checkpointId?: number }): Promise<void> {
    const files = this.finished;
    const isNew = this.lastVersion < 0;
    const timeCols = this.spec?.timeColumns ?? [];
    const schemaString = deltaSchemaString(this.schema.columns, timeCols);
    const protocol = requiredProtocol(this.schema.columns);
    const protocolChanged = JSON.stringify(protocol) !== this.committedProtocol;
    const schemaChanged = schemaString !== this.committedSchemaString;
    if (files.length === 0 && !isNew && !schemaChanged) {
      await this.writeSuccessFiles();
      return;
    }
    const adds: DeltaAdd[] = [];
    for (const f of files) {
      await f.pending.commit();
      adds.push({
        path: encodeDeltaPath(f.rel),
        partitionValues: f.partition.values,
        size: f.pending.bytes,
        modificationTime: Date.now(),
        dataChange: true,
        stats: f.stats.toJSON(),
      });
    }
    this.finished = [];
    const actions: DeltaAction[] = [];
    if (isNew || protocolChanged) actions.push({ protocol });
    if (isNew || schemaChanged) {
      const configuration: Record<string, string> = { ...(this.metaData?.configuration ?? {}) };
      if (this.spec) {
        configuration['kappa.partitionBy'] = this.spec.text;
        configuration['kappa.eventTimePartitionColumns'] = timeCols.join(',');
      }
      const provider = this.format === 'ndjson' ? 'json' : this.format;
      this.metaData = this.metaData
        ? { ...this.metaData, schemaString, configuration }
        : newMetaData(this.schema.columns, this.spec?.columns ?? [], timeCols, provider, configuration);
      actions.push({ metaData: this.metaData });
    }
    for (const add of adds) actions.push({ add });
    actions.push({
      commitInfo: {
        timestamp: Date.now(),
        operation: 'WRITE',
        operationParameters: { mode: 'Append', partitionBy: JSON.stringify(this.spec?.columns ?? []) },
        isBlindAppend: true,
        engineInfo: 'kappa/0.1.0',
        ...(info.checkpointId !== undefined ? { 'kappa.checkpointId': info.checkpointId } : {}),
      },
    });
    this.lastVersion = await commitActions(
      this.store,
      this.root,
      { ...this.snapshot, version: this.lastVersion },
      actions,
    );
    this.committedSchemaString = schemaString;
    this.committedProtocol = JSON.stringify(protocol);
    this.filesCommitted += files.length;
    for (const f of files) {
      this.bytesCommitted += f.pending.bytes;
      this.partitionsWritten.add(f.partition.path);
    }
    this.written += files.reduce((n, f) => n + f.stats.numRecords, 0);
    await this.writeSuccessFiles();
  }

  /** `_SUCCESS` in each time partition (with committed data) whose end the watermark has passed. */
  private async writeSuccessFiles(): Promise<void> {
    for (const [path, end] of this.timePartitions) {
      if (end > this.wm || this.successDone.has(path) || !this.partitionsWritten.has(path)) continue;
      if (this.parts.has(path)) continue;
      await this.store.put(joinUri(this.root, path, '_SUCCESS'), '');
      this.successDone.add(path);
    }
  }

  async abort(): Promise<void> {
    const all: PendingFile[] = this.finished.map((f) => f.pending);
    for (const st of this.parts.values()) if (st.file) all.push(st.file.pending);
    this.finished = [];
    this.parts.clear();
    await Promise.all(all.map((p) => p.abort().catch(() => {})));
  }

  counters(): Record<string, number | string> {
    return {
      files: this.filesCommitted,
      ...(this.spec ? { partitions: this.partitionsWritten.size } : {}),
      written: formatBytes(this.bytesCommitted),
    };
  }
}

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
    for (const f of ['partitionBy', 'rollSize', 'rollRecords', 'rollInterval'] as const)
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

registerSinkTarget({
  name: 'file (out.parquet, out.ndjson, out.csv)',
  claims: (t) => t !== '-' && hasStore(schemeOf(t)) && extensionFormat(t) !== undefined,
  create: async (t, o) => new SingleFileSink(t, o as FileSinkOptions),
});

registerSinkTarget({
  name: 'table directory (local or s3://)',
  claims: (t) => t !== '-' && hasStore(schemeOf(t)),
  create: async (t, o) => new TableSink(t.replace(/\/+$/, ''), o as FileSinkOptions),
});
