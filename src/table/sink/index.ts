/**
 * The table sink: a partitioned table directory (local or any object store, e.g. s3://) with a
 * Delta log. Modelled on Flink's FileSink: buckets (buckets.ts) hold one open part file each, a
 * rolling policy (rolling.ts) finishes files, and a committer (committer.ts) makes finished files
 * part of the table at end of input and at each checkpoint barrier, recoverably.
 *
 * Records go to Hive partitions (`--partition-by`), each partition to part files
 * `part-NNNNN-RUNID.zstd.parquet` (or .ndjson / .csv) written through `ObjectStore.create`, so they
 * stay invisible (in progress) until committed. A file rolls at `--roll-size` bytes or
 * `--roll-records` records, when older than `--roll-interval` (processing time), when its
 * partition's time range is closed by the watermark, or when the schema grows. After each commit
 * `_SUCCESS` is written in every time partition whose end the watermark has passed. On failure every
 * uncommitted file is aborted and no log version is written: nothing partial becomes visible.
 *
 * Appends: the table's format, partition spec and schema bind the run. The partition spec must be
 * the table's (`kappa.partitionBy`); a new column needs `--merge-schema`; a committed column's type
 * never changes (see schema.ts). Before writing, crashed runs' leftovers are repaired (committer.ts).
 *
 * Checkpointing pipelines (`open(header, ctx)`): one Delta version per barrier, written even for an
 * empty epoch, with `txn {appId: ctx.appId, version: barrier id, lastUpdated}` (PROTOCOL.md
 * "Transaction Identifiers"); files rolled between barriers wait for the barrier (Flink's
 * OnCheckpointRollingPolicy commit rule). An epoch whose id is at most the table's txn version for
 * the appId (read at open) is discarded at its barrier: an earlier run committed it. Every commit's
 * commitInfo carries `kappa.kafkaOffsets` for its Kafka records (KafkaOffsets).
 *
 * Records: each record's `value` (a JSON object) is one row; `ts` and `key` are not stored as extra
 * columns (re-derive them on ingest with `--ts-field` / `--key-field`). Field partition columns are
 * kept in the data files too, so ingest restores their original types.
 */
import { randomBytes } from 'node:crypto';
import type { SinkCheckpointContext } from '../../connectors/sink.js';
import type { JsonValue } from '../../connectors/source.js';
import { DataError, UsageError } from '../../errors.js';
import {
  createPartWriter,
  type OutputFormat,
  type PartWriterOptions,
  partExtension,
} from '../../formats/index.js';
import {
  IO_CONCURRENCY,
  isHiddenPath,
  joinUri,
  mapLimit,
  type ObjectStore,
  type PendingFile,
  type PendingRecord,
  relativeUri,
  storeFor,
} from '../../storage/store.js';
import type { Column as BatchColumn, RecordBatch } from '../../stream/batch.js';
import { formatBytes } from '../../stream/progress.js';
import type { Barrier, Header, Provenance, Rec } from '../../stream/protocol.js';
import { checkZone } from '../../time/timestamp.js';
import {
  checkWritable,
  columnsFromSchemaString,
  type DeltaAction,
  type DeltaMetaData,
  type DeltaProtocol,
  type DeltaSnapshot,
  type DeltaTxn,
  deltaSchemaString,
  FileStats,
  newMetaData,
  protocolFor,
  readDeltaLog,
  requiredProtocol,
  type WinnerCheck,
} from '../delta.js';
import {
  Partitioner,
  type PartitionOf,
  type PartitionSpec,
  parsePartitionSpec,
  partitionValueString,
} from '../partition.js';
import { type Column, TableSchema } from '../schema.js';
import { FileSinkBase, type FileSinkOptions, formatOf, partWriterOptions, ROW_GROUP_ROWS } from './base.js';
import { type Bucket, type FinishedFile, type OpenFile, PartitionFieldCheck } from './buckets.js';
import { bufferView, capturePiece, RowBuffer, rowsOnly, type Segment, segmentRows } from './columns.js';
import { Committer, crashPoint } from './committer.js';
import { RollingPolicy } from './rolling.js';

export { type FileSinkOptions, ROW_GROUP_ROWS } from './base.js';

/** A partition spec in canonical form (`{g}` and `g={g}` are the same spec). */
function specKey(spec: PartitionSpec): string {
  return spec.segments
    .map((g) => (g.kind === 'time' ? `${g.column}=${g.pattern}` : `${g.column}={${g.field}}`))
    .join('/');
}

/**
 * The appId of the end-of-input marker `txn` action of a checkpointing sink `appId`: its version is
 * the checkpoint id the last epoch followed (see TableSink.commit).
 */
export function endTxnAppId(appId: string): string {
  return `${appId}.end`;
}

/**
 * The topic of a Kafka record's provenance `source` (`kafka://HOST:PORT/topic`, optionally with a
 * `?query`), or the source text itself when it is not a kafka:// URI (a bare topic name).
 */
export function topicOf(source: string): string {
  const m = /^kafka:\/\/[^/]*\/([^?#]+)/i.exec(source);
  return m ? decodeURIComponent(m[1]) : source;
}

/**
 * Next offsets per topic partition of the Kafka records one commit holds (issue 11): for each
 * record whose provenance names a partition and an integer offset, keeps one past the highest
 * offset. `toJSON()` gives `{"<topic>": {"<partition>": "<next offset>"}}` (offsets as decimal
 * strings: int64), the value of the commitInfo key `kappa.kafkaOffsets` that `kappa replay --then`
 * starts the live topic from.
 */
export class KafkaOffsets {
  private readonly next = new Map<string, Map<number, bigint>>();

  /** Adds one record; ignores records without a Kafka-like provenance (partition + offset). */
  add(r: Rec): void {
    this.addProv(r.prov);
  }

  /** Adds one record's provenance (see `add`). */
  addProv(p: Provenance | undefined): void {
    if (!p || p.source === undefined || p.partition === undefined || p.offset === undefined) return;
    // File sources give line/row numbers as JS numbers; Kafka offsets travel as decimal strings.
    if (typeof p.offset !== 'string' || !/^\d+$/.test(p.offset)) return;
    const topic = topicOf(p.source);
    let parts = this.next.get(topic);
    if (!parts) {
      parts = new Map();
      this.next.set(topic, parts);
    }
    const n = BigInt(p.offset) + 1n;
    const cur = parts.get(p.partition);
    if (cur === undefined || n > cur) parts.set(p.partition, n);
  }

  get empty(): boolean {
    return this.next.size === 0;
  }

  clear(): void {
    this.next.clear();
  }

  /** `{"<topic>": {"<partition>": "<next offset>"}}`, topics and partitions in ascending order. */
  toJSON(): Record<string, Record<string, string>> {
    const out: Record<string, Record<string, string>> = {};
    for (const topic of [...this.next.keys()].sort()) {
      const parts = this.next.get(topic)!;
      const o: Record<string, string> = {};
      for (const p of [...parts.keys()].sort((a, b) => a - b)) o[String(p)] = String(parts.get(p));
      out[topic] = o;
    }
    return out;
  }
}

/**
 * A WinnerCheck (delta.ts) for a checkpointing sink: a concurrent commit that carries a `txn` of
 * the same appId was written by another run of the same pipeline sink, whose epochs this run's
 * would duplicate or contradict (Delta's ConflictChecker fails a transaction whose appId a winner
 * wrote: ConcurrentTransactionException).
 */
function sameAppCheck(appId: string): WinnerCheck {
  return (won) => {
    const t = won.find((a) => (a.txn as DeltaTxn | undefined)?.appId === appId)?.txn as DeltaTxn | undefined;
    return t
      ? `another run of the same pipeline sink (${appId}) committed its epoch ${t.version} meanwhile; run one sink per pipeline and table`
      : undefined;
  };
}

/** Rows buffered across all open partitions before the largest buffer is written out. */
export const SINK_LIMITS = {
  /** Rows buffered across all partitions before the largest buffer is written (tests lower it). */
  maxBufferedRows: 500_000,
};

/**
 * A field's partition value strings per row: `strings[ids[i]]` is `partitionValueString` of row
 * i's value (null for null or a missing column), from dictionary codes or one string per
 * distinct number where the column has them.
 */
function fieldKeys(col: BatchColumn | undefined, n: number): { ids: Int32Array; strings: (string | null)[] } {
  const ids = new Int32Array(n);
  const strings: (string | null)[] = [null];
  if (!col) return { ids, strings };
  const d = col.typed && col.type === 'string' ? col.dictionary() : undefined;
  if (d) {
    for (const v of d.values) strings.push(v);
    for (let i = 0; i < n; i++) ids[i] = d.codes[i] + 1;
    return { ids, strings };
  }
  const f = col.typed ? col.float64() : undefined;
  const index = new Map<unknown, number>();
  for (let i = 0; i < n; i++) {
    let v: unknown;
    if (f) {
      if (Number.isNaN(f[i])) continue;
      v = f[i];
    } else {
      v = partitionValueString(col.get(i));
      if (v === null) continue;
    }
    let id = index.get(v);
    if (id === undefined) {
      id = strings.length;
      strings.push(f ? String(v) : (v as string));
      index.set(v, id);
    }
    ids[i] = id;
  }
  return { ids, strings };
}

/**
 * Writes buffered segments as one row group: rows as rows, anything else from the columns (Parquet)
 * or as rows built from the pieces (text formats, which also gather their statistics row by row).
 */
async function writeSegments(f: OpenFile, segs: Segment[], columnar: boolean): Promise<void> {
  // Rows only, in a sink that took no batch: hyparquet-writer's own row group (the row path, which
  // table-batch.test.ts holds the batch path's files against); anything else from the columns (row
  // objects are read as typed columns where their values allow, see columns.ts SegmentsColumn).
  // A sink fed batches writes rows-only buffers (the rows of a first batch that added the
  // columns) from the columns too: the same bytes, at a fraction of the row path's cost.
  const rows = columnar && f.writer.writeColumns ? undefined : rowsOnly(segs);
  if (!rows && f.writer.writeColumns) {
    await f.writer.writeColumns(bufferView(segs, new Map(f.columns.map((c) => [c.name, c.type]))));
    return;
  }
  const all =
    rows ??
    segmentRows(
      segs,
      f.columns.map((c) => c.name),
    );
  await f.writer.writeRows(all);
  // Parquet computes its own column statistics (taken at roll); text formats need a pass.
  if (!f.writer.columnStats) for (const r of all) f.stats.add(r);
}

/** Runs async steps at most `limit` at a time, in the order they were asked for. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((res) => this.waiting.push(res));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/**
 * A part file that is made durable (`finish`: local fsync + close, S3 the last part) as soon as it
 * is rolled (`start`), behind the caller, instead of when the commit asks for it: the fsyncs of
 * the files rolled first overlap the encoding of the next ones. `finish` gives that same promise,
 * so the commit protocol is unchanged (every file durable before the pending record and the log);
 * at most IO_CONCURRENCY files finish at once (the limiter), as in the committer's own step.
 */
class EarlyFinish implements PendingFile {
  private finishing: Promise<PendingRecord> | undefined;
  constructor(
    private readonly inner: PendingFile,
    private readonly limiter: Limiter,
  ) {}
  get bytes(): number {
    return this.inner.bytes;
  }
  write(chunk: Uint8Array): Promise<void> {
    return this.inner.write(chunk);
  }
  /** Starts making the file durable (no write may follow); a failure surfaces at `finish`. */
  start(): void {
    this.finishing ??= this.limiter.run(() => this.inner.finish());
    this.finishing.catch(() => {});
  }
  finish(): Promise<PendingRecord> {
    this.finishing ??= this.limiter.run(() => this.inner.finish());
    return this.finishing;
  }
  async commit(): Promise<void> {
    await this.finish();
    await this.inner.commit();
  }
  async abort(): Promise<void> {
    // Let a finish in flight end (it closes the file) before the file is removed.
    await this.finishing?.catch(() => {});
    await this.inner.abort();
  }
}

/** A partitioned table directory with a Delta log. */
export class TableSink extends FileSinkBase {
  /** Bounds the part files being made durable at once (see EarlyFinish). */
  private readonly finishing = new Limiter(IO_CONCURRENCY);
  private readonly store: ObjectStore;
  private readonly format: OutputFormat;
  private spec: PartitionSpec | undefined;
  private partitioner: Partitioner | undefined;
  private writerOpts!: PartWriterOptions;
  private readonly runId = randomBytes(8).toString('hex');
  private readonly committer: Committer;
  private seq = 0;
  private readonly parts = new Map<string, Bucket>();
  private finished: FinishedFile[] = [];
  private buffered = 0;
  private wm = Number.NEGATIVE_INFINITY;
  private snapshot: DeltaSnapshot = { version: -1, files: new Map() };
  private readonly rolling: RollingPolicy;
  /** Partition path -> end of its time range, for `_SUCCESS`. */
  private readonly timePartitions = new Map<string, number>();
  private readonly successDone = new Set<string>();
  private committedSchemaString: string | undefined;
  private committedProtocol: string | undefined;
  /** The table's protocol as last committed (never lowered: see protocolFor). */
  private tableProtocol: DeltaProtocol | undefined;
  private metaData: DeltaMetaData | undefined;
  private filesCommitted = 0;
  private bytesCommitted = 0;
  private readonly partitionsWritten = new Set<string>();
  private lastVersion = -1;
  private fieldCheck = new PartitionFieldCheck(undefined);
  private recovered = '';
  /** The commit in progress, awaited by abort(). */
  private committing: Promise<number> | undefined;
  /** Set when the pipeline checkpoints: commits happen on barriers only, tagged with a `txn`. */
  private ctx: SinkCheckpointContext | undefined;
  /** The table's newest `txn` version for ctx.appId when opened: epochs up to it are skipped. */
  private committedTxn: number | null = null;
  /** The id of the last barrier seen (or the restored checkpoint's): the last epoch's predecessor. */
  private lastBarrier: number | null = null;
  private readonly skipped: number[] = [];
  /** Records taken by the batch path (summary: `rows by columns`). */
  private columnarRows = 0;
  /** Kafka next offsets of the records since the last commit (`kappa.kafkaOffsets`). */
  private readonly offsets = new KafkaOffsets();

  constructor(
    private readonly root: string,
    opts: FileSinkOptions,
  ) {
    super(opts);
    this.store = storeFor(root);
    this.committer = new Committer(this.store, root, this.runId);
    this.format = formatOf(opts.format, 'parquet');
    this.columnar = this.format === 'parquet';
    this.rolling = new RollingPolicy(opts);
    if (opts.partitionBy !== undefined) this.spec = parsePartitionSpec(opts.partitionBy);
  }

  /**
   * Repairs crashed runs' leftovers, reads the table (schema, partitioning, protocol, `txn`s) and
   * checks the stream header against it. With `ctx` (the pipeline checkpoints), each barrier
   * commits one Delta version with `txn {appId: ctx.appId, version: barrier id}`, and an epoch
   * whose id is at most the table's txn version for ctx.appId is skipped (already committed).
   * @throws UsageError / DataError when the stream cannot append to the table
   */
  async open(header: Header, ctx?: SinkCheckpointContext): Promise<void> {
    this.ctx = ctx;
    this.writerOpts = await partWriterOptions(this.format, this.opts.compression);
    const rec = await this.committer.recover();
    const did: string[] = [];
    if (rec.rolledForward) did.push(`rolled forward ${rec.rolledForward} commit(s)`);
    if (rec.discarded) did.push(`discarded ${rec.discarded} uncommitted commit(s)`);
    if (rec.inProgressRemoved) did.push(`removed ${rec.inProgressRemoved} in-progress file(s)`);
    if (did.length) this.recovered = `recovered from a crashed run: ${did.join(', ')}`;
    if (rec.foreignRuns.length)
      process.stderr.write(
        `kappa sink: warning: ${this.root}: runs on other hosts have files in progress (${rec.foreignRuns.join('; ')}); left alone\n`,
      );
    const snap = await readDeltaLog(this.store, this.root);
    if (ctx) {
      this.committedTxn = snap?.txns?.get(ctx.appId)?.version ?? null;
      this.lastBarrier = ctx.restoredCheckpoint;
    }
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
      const hint = tableSpec ? `omit --partition-by to use the table's '${tableSpec}'` : undefined;
      if (want.join('/') !== md.partitionColumns.join('/'))
        throw new UsageError(
          `${this.root}: the table is partitioned by [${md.partitionColumns.join(', ')}] but --partition-by gives [${want.join(', ')}]`,
          hint,
        );
      if (
        tableSpec !== undefined &&
        this.spec &&
        specKey(this.spec) !== specKey(parsePartitionSpec(tableSpec))
      )
        throw new UsageError(
          `${this.root}: the table is partitioned by '${tableSpec}' but --partition-by gives '${this.spec.text}': the same columns would hold different values`,
          hint,
        );
      const timeCols = (md.configuration['kappa.eventTimePartitionColumns'] ?? '').split(',').filter(Boolean);
      existing = columnsFromSchemaString(md.schemaString, timeCols);
      this.checkHeaderAgainst(existing, header);
      this.committedSchemaString = md.schemaString;
      checkWritable(this.root, snap.protocol, md.schemaString);
      this.committedProtocol = JSON.stringify(snap.protocol);
      this.tableProtocol = snap.protocol;
      this.lastVersion = snap.version;
    } else {
      if (snap) this.snapshot = snap;
      await this.refuseNonTable();
    }
    this.schema = new TableSchema(header.schema, existing);
    if (existing) this.schema.allowNew = this.opts.mergeSchema === true;
    this.fieldCheck = new PartitionFieldCheck(this.spec);
    if (this.spec) this.partitioner = new Partitioner(this.spec, checkZone(this.opts.tz ?? 'UTC'));
    await this.committer.start();
  }

  /** Refuses a stream header that declares types the table's columns cannot take. */
  private checkHeaderAgainst(existing: Column[], header: Header): void {
    for (const [name, type] of Object.entries(header.schema ?? {})) {
      const c = existing.find((x) => x.name === name);
      if (!c) {
        if (this.opts.mergeSchema !== true)
          throw new DataError(
            `${this.root}: the stream declares column '${name}' (${type}) that the table does not have`,
            'add --merge-schema to add columns to the table',
          );
        continue;
      }
      if (c.type !== type)
        throw new DataError(
          `${this.root}: the stream declares '${name}' as ${type} but the table's column is ${c.type}; a committed column's type does not change`,
          'write to a new table, or cast the field upstream (kappa transform --map)',
        );
    }
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

  protected accept(r: Rec, value: Record<string, unknown>): void | Promise<void> {
    this.offsets.add(r);
    this.fieldCheck.add(value);
    const partition = this.partitioner ? this.partitioner.partitionOf(r.ts, value) : { path: '', values: {} };
    let st = this.parts.get(partition.path);
    if (!st) {
      st = { partition, buffer: new RowBuffer() };
      this.parts.set(partition.path, st);
      if (partition.end !== undefined) this.timePartitions.set(partition.path, partition.end);
    }
    if (this.rolling.interval !== undefined) {
      const now = Date.now();
      // Flink's rollover on an element: a file older than --roll-interval does not take the record.
      if ((st.file || st.buffer.length > 0) && this.rolling.expired(st.since ?? now, now))
        return this.rollThenAdd(st, value);
      if (st.buffer.length === 0 && !st.file) st.since = now;
    }
    return this.add(st, value);
  }

  private add(st: Bucket, value: Record<string, unknown>): void | Promise<void> {
    st.buffer.pushRow(value);
    this.buffered++;
    const fileRows = (st.file?.rows ?? 0) + st.buffer.length;
    if (st.buffer.length >= ROW_GROUP_ROWS || fileRows >= this.rolling.records)
      return this.flushPart(st, true);
    if (this.buffered >= SINK_LIMITS.maxBufferedRows) return this.flushLargest();
  }

  /**
   * The batch path (a batch that fits the schema as it is, see columns.ts `batchFits`): each row's
   * partition is computed from the columns (time buckets by identity, field values per dictionary
   * code or distinct value), and each partition's rows go into its buffer as one gathered piece.
   * Row groups start and files roll after exactly the same rows as on the row path: the rows are
   * walked in order with counters only, and a buffer is written where the row path's `add` would
   * write it (ROW_GROUP_ROWS, --roll-records, SINK_LIMITS.maxBufferedRows: the largest buffer, as
   * `flushLargest`), so both paths give the same files (test/unit/table-batch.test.ts).
   * `--roll-interval` is checked once per partition and batch, with one clock reading.
   */
  protected override async acceptBatch(b: RecordBatch, _first: number): Promise<void> {
    const n = b.length;
    this.columnarRows += n;
    if (b.prov) for (let i = 0; i < n; i++) this.offsets.addProv(b.prov(i));
    this.fieldCheck.addBatch(b.fields, n);
    const { ids, parts } = this.partitionRows(b);
    const k = parts.length;
    const sts: Bucket[] = new Array(k);
    const nulls: (Set<string> | undefined)[] = new Array(k);
    for (let p = 0; p < k; p++) {
      const partition = parts[p];
      let st = this.parts.get(partition.path);
      if (!st) {
        st = { partition, buffer: new RowBuffer() };
        this.parts.set(partition.path, st);
        if (partition.end !== undefined) this.timePartitions.set(partition.path, partition.end);
      }
      sts[p] = st;
      // A field partition whose value is null holds null, missing or '' values: written as null.
      for (const s of this.spec?.segments ?? [])
        if (s.kind === 'field' && partition.values[s.column] === null) {
          const set = nulls[p] ?? new Set<string>();
          set.add(s.field);
          nulls[p] = set;
        }
    }
    // Each partition's rows in order (a counting sort by partition).
    const start = new Int32Array(k + 1);
    for (let i = 0; i < n; i++) start[ids[i] + 1]++;
    for (let p = 0; p < k; p++) start[p + 1] += start[p];
    const order = new Int32Array(n);
    const fill = start.slice(0, k);
    for (let i = 0; i < n; i++) order[fill[ids[i]]++] = i;
    // Rows of partition p walked but not yet in its buffer: order[taken[p] .. taken[p] + pending[p]).
    const taken = start.slice(0, k);
    const pending = new Int32Array(k);
    let pendingAll = 0;
    const names = this.schema.columns.map((c) => c.name);
    const move = (p: number): void => {
      const m = pending[p];
      if (m === 0) return;
      const idx = order.subarray(taken[p], taken[p] + m);
      sts[p].buffer.pushPiece(capturePiece(b, idx, names, nulls[p]));
      taken[p] += m;
      pending[p] = 0;
      pendingAll -= m;
      this.buffered += m;
    };
    const interval = this.rolling.interval !== undefined;
    const seen = interval ? new Uint8Array(k) : undefined;
    const now = interval ? Date.now() : 0;
    // Runs of rows of one partition are taken at once: the rows up to the next one at which the
    // row path would write a buffer (a row group full, --roll-records, the buffered-rows limit)
    // are counted in one step, and that row is handled as the row path handles it.
    let i = 0;
    while (i < n) {
      const p = ids[i];
      let end = i + 1;
      while (end < n && ids[end] === p) end++;
      const st = sts[p];
      if (seen && seen[p] === 0) {
        seen[p] = 1;
        // Flink's rollover on an element: a file older than --roll-interval does not take the row.
        if ((st.file || st.buffer.length > 0) && this.rolling.expired(st.since ?? now, now)) {
          await this.flushPart(st, false);
          await this.roll(st);
          st.since = now;
        } else if (st.buffer.length === 0 && !st.file) st.since = now;
      }
      while (i < end) {
        // The row path adds a row, then writes this buffer when it holds ROW_GROUP_ROWS rows or
        // its file reaches --roll-records (a), else the largest buffer when all buffers together
        // hold SINK_LIMITS.maxBufferedRows (b): the first row of the run at which each holds.
        const buffered = st.buffer.length + pending[p];
        const toA = Math.max(
          1,
          Math.min(ROW_GROUP_ROWS - buffered, this.rolling.records - (st.file?.rows ?? 0) - buffered),
        );
        const toB = Math.max(1, SINK_LIMITS.maxBufferedRows - (this.buffered + pendingAll));
        const take = Math.min(end - i, toA, toB);
        pending[p] += take;
        pendingAll += take;
        i += take;
        if (take === toA) {
          move(p);
          await this.flushPart(st, true);
        } else if (take === toB) {
          for (let q = 0; q < k; q++) move(q);
          await this.flushLargest();
        }
      }
    }
    for (let p = 0; p < k; p++) move(p);
  }

  /**
   * The partition of every row of a batch: `ids[i]` indexes `parts`, which are in the order of
   * their first row (the order in which the row path would create their buckets). The same
   * partitions as `Partitioner.partitionOf` gives for the batch's rows.
   */
  private partitionRows(b: RecordBatch): { ids: Int32Array; parts: PartitionOf[] } {
    const n = b.length;
    const ids = new Int32Array(n);
    const pt = this.partitioner;
    if (!pt) return { ids, parts: n > 0 ? [{ path: '', values: {} }] : [] };
    const segs = pt.spec.segments.filter((s) => s.kind === 'field');
    const fields = segs.map((s) => fieldKeys(b.column(s.field), n));
    const hasTime = pt.spec.unit !== undefined;
    // A number per distinct (time bucket, field values): mixed radix while it stays exact.
    let radix = 1;
    for (const f of fields) radix *= f.strings.length;
    const numeric = radix * n < 2 ** 52;
    const local = new Map<number | string, number>();
    const parts: PartitionOf[] = [];
    const byPath = new Map<string, number>();
    // Each row's time bucket in one pass over the time column.
    const buckets = hasTime ? pt.timeBucketIds(b.ts, n) : undefined;
    const timeIds = buckets?.ids;
    if (timeIds && fields.length === 0) {
      // Time partitions only: a bucket is a partition (its first row names it).
      const partOf = new Int32Array(buckets.buckets.length).fill(-1);
      for (let i = 0; i < n; i++) {
        const t = timeIds[i];
        let p = partOf[t];
        if (p < 0) {
          const part = pt.partitionOf(b.ts[i], {});
          p = byPath.get(part.path) ?? -1;
          if (p < 0) {
            p = parts.length;
            parts.push(part);
            byPath.set(part.path, p);
          }
          partOf[t] = p;
        }
        ids[i] = p;
      }
      return { ids, parts };
    }
    // Rows of one partition usually come in runs: the last key's partition without a Map lookup.
    let lastKey: number | string | undefined;
    let lastP: number | undefined;
    for (let i = 0; i < n; i++) {
      const t = timeIds ? timeIds[i] : 0;
      let key: number | string;
      if (numeric) {
        key = t;
        for (const f of fields) key = key * f.strings.length + f.ids[i];
      } else {
        key = String(t);
        for (const f of fields) key += `|${f.ids[i]}`;
      }
      let p = key === lastKey ? lastP : local.get(key);
      if (p === undefined) {
        const value: Record<string, unknown> = {};
        segs.forEach((s, j) => {
          value[s.field] = fields[j].strings[fields[j].ids[i]];
        });
        const part = pt.partitionOf(b.ts[i], value);
        // Different values can share a partition (null and '' are both the default partition).
        p = byPath.get(part.path);
        if (p === undefined) {
          p = parts.length;
          parts.push(part);
          byPath.set(part.path, p);
        }
        local.set(key, p);
      }
      lastKey = key;
      lastP = p;
      ids[i] = p;
    }
    return { ids, parts };
  }

  private async rollThenAdd(st: Bucket, value: Record<string, unknown>): Promise<void> {
    await this.flushPart(st, false);
    await this.roll(st);
    st.since = Date.now();
    await this.add(st, value);
  }

  private async flushLargest(): Promise<void> {
    let big: Bucket | undefined;
    for (const st of this.parts.values()) if (!big || st.buffer.length > big.buffer.length) big = st;
    if (big) await this.flushPart(big, true);
  }

  /** Writes a partition's buffered rows; rolls its file first if the schema grew, after if full. */
  private async flushPart(st: Bucket, checkRoll: boolean): Promise<void> {
    if (st.buffer.length > 0) {
      if (st.file?.writer.fixedColumns && st.file.schemaVersion !== this.schema.version) await this.roll(st);
      if (!st.file) st.file = await this.openFile(st.partition);
      const f = st.file;
      const n = st.buffer.length;
      const segs = st.buffer.drain();
      this.buffered -= n;
      await writeSegments(f, segs, this.columnarRows > 0);
      f.rows += n;
    }
    if (checkRoll && st.file && this.rolling.full(st.file.writer.bytes, st.file.rows)) await this.roll(st);
  }

  private async openFile(partition: PartitionOf): Promise<OpenFile> {
    const name = `part-${String(this.seq++).padStart(5, '0')}-${this.runId}.${partExtension(this.writerOpts)}`;
    const rel = partition.path ? `${partition.path}/${name}` : name;
    const pending = new EarlyFinish(await this.store.create(joinUri(this.root, rel)), this.finishing);
    // A Parquet file fixes each column's physical type: no int64 -> float64 widening after this.
    if (this.writerOpts.format === 'parquet') this.schema.markWritten();
    const columns = this.schema.columns.map((c) => ({ ...c }));
    return {
      rel,
      pending,
      columns,
      writer: createPartWriter(pending, columns, this.writerOpts),
      stats: new FileStats(columns),
      schemaVersion: this.schema.version,
      rows: 0,
      openedAt: this.parts.get(partition.path)?.since ?? Date.now(),
    };
  }

  /** Finishes a partition's open file; it stays pending (invisible) until the next commit. */
  private async roll(st: Bucket): Promise<void> {
    const f = st.file;
    if (!f) return;
    st.file = undefined;
    await f.writer.finish();
    if (f.pending instanceof EarlyFinish) f.pending.start();
    if (f.writer.columnStats) f.stats.setFrom(f.writer.columnStats());
    this.finished.push({ rel: f.rel, pending: f.pending, partition: st.partition, stats: f.stats });
  }

  /**
   * Writes and rolls every partition with buffered rows or an open file. The files still to be
   * created are created first, IO_CONCURRENCY at a time (named in partition order, as one by one);
   * the row groups are then encoded one partition after another, their bytes written behind (see
   * storage/local.ts), and made durable by the commit (committer.ts step 1).
   */
  private async rollAll(): Promise<void> {
    const unopened = [...this.parts.values()].filter((st) => !st.file && st.buffer.length > 0);
    await mapLimit(unopened, IO_CONCURRENCY, async (st) => {
      st.file = await this.openFile(st.partition);
    });
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
    const closed = [...this.parts].filter(
      ([, st]) => st.partition.end !== undefined && st.partition.end <= wm,
    );
    // Their files opened concurrently first, as rollAll does (one at a time cost ~15 ms of waiting
    // per watermark of scenario 3t, whose watermarks close ~17 daily partitions each).
    const unopened = closed.filter(([, st]) => !st.file && st.buffer.length > 0);
    await mapLimit(unopened, IO_CONCURRENCY, async ([, st]) => {
      st.file = await this.openFile(st.partition);
    });
    for (const [path, st] of closed) {
      await this.flushPart(st, false);
      await this.roll(st);
      this.parts.delete(path);
    }
  }

  async afterBatch(): Promise<void> {
    this.fieldCheck.firstBatchDone();
    if (this.rolling.interval === undefined) return;
    const now = Date.now();
    for (const st of this.parts.values())
      if (
        (st.file || st.buffer.length > 0) &&
        this.rolling.expired(st.file?.openedAt ?? st.since ?? now, now)
      ) {
        await this.flushPart(st, false);
        await this.roll(st);
      }
  }

  /**
   * Checkpoint barrier: finishes every open file and commits the epoch's files in one Delta
   * version. With a checkpoint context, the version is written even without files and carries
   * `txn {appId, version: b.id, lastUpdated}`; an epoch with `b.id` at most the table's txn version
   * for appId (committed by an earlier run) is discarded instead (its files deleted) and reported
   * in the summary as skipped.
   */
  async barrier(b: Barrier): Promise<void> {
    this.fieldCheck.firstBatchDone();
    await this.rollAll();
    if (this.ctx) {
      this.lastBarrier = b.id;
      if (this.committedTxn !== null && b.id <= this.committedTxn) {
        await this.discardEpoch();
        this.skipped.push(b.id);
        process.stderr.write(
          `kappa sink: ${this.root}: skipped epoch ${b.id}: already committed (the table's txn version for ${this.ctx.appId} is ${this.committedTxn})\n`,
        );
        return;
      }
    }
    await this.commitPending({ checkpointId: b.id });
  }

  /** Drops the finished files of the epoch (never committed) and its offsets. */
  private async discardEpoch(): Promise<void> {
    const files = this.finished;
    this.finished = [];
    this.offsets.clear();
    await Promise.all(files.map((f) => f.pending.abort().catch(() => {})));
  }

  /**
   * End of input: commits everything not yet committed in one last Delta version. With a
   * checkpoint context and records after the last barrier K, that version carries
   * `txn {appId: "<appId>.end", version: K}` and commitInfo `kappa.endOfInput: true`,
   * `kappa.afterCheckpoint: K`: recognisable as "the epoch after checkpoint K, up to the end", but
   * not an epoch id, so the appId's own txn version (and the skipping of epochs by it) is
   * unchanged, and a later run whose barrier K+1 sits elsewhere is never mistaken for it. That
   * last epoch is at-least-once. A checkpointing source's end line carries its final checkpoint
   * (`final`): then the last version is the final epoch, `txn {appId, version: final.id}`, exactly
   * once like every other.
   * @returns where the output went, for the summary
   */
  async commit(final?: Barrier): Promise<string> {
    this.fieldCheck.firstBatchDone();
    this.wm = Number.POSITIVE_INFINITY;
    crashPoint('before-commit');
    await this.rollAll();
    if (this.ctx && final) {
      // The source's final checkpoint: the last epoch is an epoch like the others (exactly once).
      this.lastBarrier = final.id;
      if (this.committedTxn !== null && final.id <= this.committedTxn) {
        await this.discardEpoch();
        this.skipped.push(final.id);
      } else await this.commitPending({ checkpointId: final.id, end: true });
    } else await this.commitPending({ end: true });
    await this.committer.close();
    for (const w of this.fieldCheck.warnings()) process.stderr.write(`kappa sink: warning: ${w}\n`);
    if (this.recovered) process.stderr.write(`kappa sink: ${this.root}: ${this.recovered}\n`);
    const parts = this.partitionsWritten.size;
    return `${this.filesCommitted} file${this.filesCommitted === 1 ? '' : 's'}${this.spec ? ` in ${parts} partition${parts === 1 ? '' : 's'}` : ''} to ${this.root} (table version ${this.lastVersion})`;
  }

  /** Commits finished files in one Delta log version (committer.ts), then writes `_SUCCESS` files. */
  private async commitPending(info: { checkpointId?: number; end?: boolean }): Promise<void> {
    const files = this.finished;
    const txns: DeltaAction[] = [];
    const now = Date.now();
    if (this.ctx && info.checkpointId !== undefined)
      txns.push({ txn: { appId: this.ctx.appId, version: info.checkpointId, lastUpdated: now } });
    // End of input after at least one checkpoint: record which checkpoint the last epoch followed.
    if (
      this.ctx &&
      info.end &&
      info.checkpointId === undefined &&
      this.lastBarrier !== null &&
      files.length > 0
    )
      txns.push({ txn: { appId: endTxnAppId(this.ctx.appId), version: this.lastBarrier, lastUpdated: now } });
    const offsets = this.offsets.empty ? undefined : this.offsets.toJSON();
    const isNew = this.lastVersion < 0;
    const timeCols = this.spec?.timeColumns ?? [];
    const schemaString = deltaSchemaString(this.schema.columns, timeCols);
    const protocol = protocolFor(this.tableProtocol, requiredProtocol(this.schema.columns));
    const protocolChanged = JSON.stringify(protocol) !== this.committedProtocol;
    const schemaChanged = schemaString !== this.committedSchemaString;
    if (files.length === 0 && !isNew && !schemaChanged && txns.length === 0) {
      await this.writeSuccessFiles();
      return;
    }
    const provider = this.format === 'ndjson' ? 'json' : this.format;
    let metaData = this.metaData;
    if (isNew || schemaChanged) {
      const configuration: Record<string, string> = { ...(this.metaData?.configuration ?? {}) };
      if (this.spec) {
        configuration['kappa.partitionBy'] = this.spec.text;
        configuration['kappa.eventTimePartitionColumns'] = timeCols.join(',');
      }
      metaData = this.metaData
        ? { ...this.metaData, schemaString, configuration }
        : newMetaData(this.schema.columns, this.spec?.columns ?? [], timeCols, provider, configuration);
    }
    const committing = this.committer.commit(
      { ...this.snapshot, version: this.lastVersion },
      files.map((f) => ({
        rel: f.rel,
        pending: f.pending,
        partitionValues: f.partition.values,
        stats: f.stats.toJSON(),
      })),
      (adds) => {
        const actions: DeltaAction[] = [];
        if (isNew || protocolChanged) actions.push({ protocol });
        if (metaData !== this.metaData || isNew) actions.push({ metaData: metaData! });
        for (const add of adds) actions.push({ add });
        actions.push(...txns);
        actions.push({
          commitInfo: {
            timestamp: Date.now(),
            operation: 'WRITE',
            operationParameters: { mode: 'Append', partitionBy: JSON.stringify(this.spec?.columns ?? []) },
            isBlindAppend: !(isNew || schemaChanged || protocolChanged),
            engineInfo: 'kappa/0.1.0',
            ...(info.checkpointId !== undefined ? { 'kappa.checkpointId': info.checkpointId } : {}),
            ...(this.ctx && info.end
              ? { 'kappa.endOfInput': true, 'kappa.afterCheckpoint': this.lastBarrier }
              : {}),
            ...(offsets ? { 'kappa.kafkaOffsets': offsets } : {}),
          },
        });
        return actions;
      },
      this.ctx ? sameAppCheck(this.ctx.appId) : undefined,
    );
    this.committing = committing;
    try {
      this.lastVersion = await committing;
    } finally {
      this.committing = undefined;
    }
    this.finished = [];
    this.offsets.clear();
    this.metaData = metaData;
    this.committedSchemaString = schemaString;
    this.committedProtocol = JSON.stringify(protocol);
    this.tableProtocol = protocol;
    this.schema.markCommitted();
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
    const due: string[] = [];
    for (const [path, end] of this.timePartitions) {
      if (end > this.wm || this.successDone.has(path) || !this.partitionsWritten.has(path)) continue;
      if (this.parts.has(path)) continue;
      due.push(path);
    }
    // IO_CONCURRENCY at a time: each put is a few file system round trips (write, fsync, rename).
    await mapLimit(due, IO_CONCURRENCY, async (path) => {
      await this.store.put(joinUri(this.root, path, '_SUCCESS'), '');
      this.successDone.add(path);
    });
  }

  /**
   * Discards every uncommitted file (local in-progress files, open S3 multipart uploads); a commit
   * whose log version was already written is finished instead (it is committed). Then removes the
   * run marker. Never throws for a file that is already gone.
   */
  async abort(): Promise<void> {
    // A signal may arrive while a commit is in flight: let it reach its commit point or fail first,
    // so that a log version never names a file this abort discarded.
    await this.committing?.catch(() => {});
    // Finished files of a commit whose log version exists are committed: close() publishes them.
    const all = this.committer.logged ? [] : this.finished.map((f) => f.pending);
    for (const st of this.parts.values()) if (st.file) all.push(st.file.pending);
    this.finished = [];
    this.parts.clear();
    await Promise.all(all.map((p) => p.abort().catch(() => {})));
    await this.committer.close().catch(() => {});
  }

  counters(): Record<string, number | string> {
    return {
      files: this.filesCommitted,
      ...(this.spec ? { partitions: this.partitionsWritten.size } : {}),
      written: formatBytes(this.bytesCommitted),
      ...(this.skipped.length ? { 'epochs skipped (already committed)': this.skipped.length } : {}),
      ...(this.columnarRows ? { 'rows by columns': this.columnarRows } : {}),
    };
  }

  /** Ids (barrier ids) of the epochs skipped as already committed. */
  get skippedEpochs(): readonly number[] {
    return this.skipped;
  }

  /** `{kind: 'table', table: <root URI>, appId}` for `tableSink.committedEpoch`; null without ctx. */
  commitDescriptor(): JsonValue {
    if (!this.ctx) return null;
    return { kind: 'table', table: this.root, appId: this.ctx.appId };
  }
}
