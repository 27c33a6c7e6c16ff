/**
 * The table commit log, in the Delta Lake transaction-log format (delta-io/delta PROTOCOL.md):
 * `_delta_log/NNNNNNNNNNNNNNNNNNNN.json` files (version zero-padded to 20 digits), each a list of
 * newline-delimited actions. kappa writes `protocol`, `metaData`, `add`, `txn` and `commitInfo`; it
 * reads `add` and `remove` to find the live files (action reconciliation: adds minus removes, by
 * path) and `txn` for the newest version per appId (PROTOCOL.md, "Transaction Identifiers": the
 * table sink tags each checkpoint's commit with `{appId, version: checkpoint id}`).
 *
 * - Commits are created with put-if-absent (the protocol's mutual exclusion requirement), with the
 *   protocol's conflict checks on a lost race (`commitActions`). The data files they add are
 *   durable but still hidden when the version is written and get their final names right after
 *   (the table sink's commit protocol: src/table/sink/committer.ts).
 * - `add.path` is relative to the table root and URI-encoded (so a Hive-escaped `%3A` is stored as
 *   `%253A`); `partitionValues` hold the unescaped strings (null for a null value).
 * - `stats` is the JSON string `{"numRecords":…,"minValues":{…},"maxValues":{…},"nullCount":{…}}`.
 * - Types: string->string, int64->long, float64 and decimal->double, boolean->boolean, date->date,
 *   binary->binary, json->string, timestamptz->timestamp, timestamp->timestamp_ntz. A table with a
 *   timestamp_ntz column needs the `timestampNtz` table feature (reader 3 / writer 7); other tables
 *   use minReaderVersion 1 / minWriterVersion 2. An append keeps an existing table's protocol
 *   (`protocolFor`) and refuses writer features kappa does not implement (`checkWritable`). Each
 *   field's kappa type is kept in its metadata (`kappa.type`) so appends restore it exactly. Appends to a table keep every existing field as the
 *   table declares it (another engine's `integer` stays `integer`, written as INT32; see schema.ts).
 * - `metaData.configuration` records the kappa partition spec (`kappa.partitionBy`) and which
 *   partition columns derive from event time (`kappa.eventTimePartitionColumns`): readers of a
 *   kappa table do not add those back into record values.
 * Checkpoints (`NNN.checkpoint.parquet`, delta-checkpoint.ts) are written every 10th version by the
 * committers (`checkpointIfDue`); the reader starts from the newest one.
 */
import { randomUUID } from 'node:crypto';
import { DataError, RuntimeError, UsageError } from '../errors.js';
import type { FileColumnStats } from '../formats/format.js';
import type { ObjectStore } from '../storage/store.js';
import { joinUri } from '../storage/store.js';
import type { FieldType } from '../stream/protocol.js';
import {
  applyActions,
  type CheckpointState,
  checkpointVersionOf,
  DEFAULT_CHECKPOINT_INTERVAL,
  readCheckpoint,
  writeCheckpoint,
} from './delta-checkpoint.js';
import type { Column, DeltaField } from './schema.js';

export const DELTA_LOG_DIR = '_delta_log';

export interface DeltaProtocol {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export interface DeltaMetaData {
  id: string;
  name?: string;
  format: { provider: string; options: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  createdTime?: number;
  configuration: Record<string, string>;
}

export interface DeltaAdd {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string;
}

export interface DeltaRemove {
  path: string;
  /** Epoch ms. */
  deletionTimestamp?: number;
  dataChange: boolean;
  /** True when partitionValues and size are given (PROTOCOL.md "Add File and Remove File"). */
  extendedFileMetadata?: boolean;
  partitionValues?: Record<string, string | null>;
  /** Bytes. */
  size?: number;
}

/**
 * A conflict check on one winning commit (the actions of a version another writer wrote first):
 * returns why this commit must not land after it, or undefined when it may be retried after it.
 */
export type WinnerCheck = (won: Record<string, unknown>[], version: number) => string | undefined;

/** A commit refused because a winning commit conflicts with it (see `WinnerCheck`); nothing of it was written. */
export class CommitConflictError extends RuntimeError {}

export type DeltaAction =
  | { protocol: DeltaProtocol }
  | { metaData: DeltaMetaData }
  | { add: DeltaAdd }
  | { remove: DeltaRemove }
  | { commitInfo: Record<string, unknown> }
  | { txn: { appId: string; version: number; lastUpdated?: number } };

/** The table state at the latest version. */
export interface DeltaSnapshot {
  version: number;
  protocol?: DeltaProtocol;
  metaData?: DeltaMetaData;
  /** Live files by (encoded) path. */
  files: Map<string, DeltaAdd>;
  /**
   * Newest `txn` action per appId (PROTOCOL.md "Transaction Identifiers": the latest version of
   * each application wins). Absent when not read.
   */
  txns?: Map<string, DeltaTxn>;
}

/** A `txn` action: the newest committed `version` of application `appId`; lastUpdated in epoch ms. */
export interface DeltaTxn {
  appId: string;
  version: number;
  lastUpdated?: number;
}

const TO_DELTA: Record<FieldType, string> = {
  string: 'string',
  int64: 'long',
  float64: 'double',
  decimal: 'double',
  boolean: 'boolean',
  date: 'date',
  binary: 'binary',
  json: 'string',
  timestamptz: 'timestamp',
  timestamp: 'timestamp_ntz',
};

const FROM_DELTA: Record<string, FieldType> = {
  string: 'string',
  long: 'int64',
  integer: 'int64',
  short: 'int64',
  byte: 'int64',
  double: 'float64',
  float: 'float64',
  boolean: 'boolean',
  date: 'date',
  binary: 'binary',
  timestamp: 'timestamptz',
  timestamp_ntz: 'timestamp',
};

/**
 * The Delta `schemaString` for the table columns plus string time-partition columns. A column read
 * from an existing table (`delta`) is written back exactly as the table declared it (type,
 * nullability, metadata), whichever engine wrote it.
 */
export function deltaSchemaString(columns: Column[], timePartitionColumns: string[]): string {
  const fields: DeltaField[] = columns.map(
    (c) =>
      c.delta ?? {
        name: c.name,
        type: TO_DELTA[c.type],
        nullable: true,
        metadata: { 'kappa.type': c.type },
      },
  );
  for (const p of timePartitionColumns)
    if (!columns.some((c) => c.name === p))
      fields.push({ name: p, type: 'string', nullable: true, metadata: {} });
  return JSON.stringify({ type: 'struct', fields });
}

/** Delta integer types kappa writes as Parquet INT32 with a range check, by bit width. */
const INT_BITS: Record<string, 8 | 16 | 32> = { byte: 8, short: 16, integer: 32 };
/** Delta primitive types whose values kappa writes exactly as the table declares them. */
const WRITABLE = new Set([...Object.values(TO_DELTA), 'byte', 'short', 'integer']);

/**
 * Table columns (kappa types) from a Delta schemaString, leaving out the given columns. Each keeps
 * its Delta field (`delta`) so that appends write the schema back unchanged; `byte`/`short`/
 * `integer` columns get `intBits`, types kappa does not write (`float`, `decimal(p,s)`, nested)
 * get `unwritable`, non-nullable ones `required` (see schema.ts).
 */
export function columnsFromSchemaString(schemaString: string, exclude: string[] = []): Column[] {
  const s = JSON.parse(schemaString) as { fields: DeltaField[] };
  const out: Column[] = [];
  for (const f of s.fields) {
    if (exclude.includes(f.name)) continue;
    const k = f.metadata?.['kappa.type'];
    const type: FieldType =
      typeof k === 'string'
        ? (k as FieldType)
        : typeof f.type === 'string'
          ? (FROM_DELTA[f.type] ?? (f.type.startsWith('decimal') ? 'decimal' : 'json'))
          : 'json';
    const c: Column = { name: f.name, type, declared: false, delta: f };
    if (typeof f.type === 'string' && INT_BITS[f.type]) c.intBits = INT_BITS[f.type];
    if (typeof f.type !== 'string' || !WRITABLE.has(f.type))
      c.unwritable = typeof f.type === 'string' ? f.type : String(f.type.type ?? 'a nested type');
    if (f.nullable === false) c.required = true;
    out.push(c);
  }
  return out;
}

/** The protocol a table with these columns needs. */
export function requiredProtocol(columns: Column[]): DeltaProtocol {
  if (columns.some((c) => c.type === 'timestamp'))
    return {
      minReaderVersion: 3,
      minWriterVersion: 7,
      readerFeatures: ['timestampNtz'],
      writerFeatures: ['timestampNtz'],
    };
  return { minReaderVersion: 1, minWriterVersion: 2 };
}

/** Writer features whose rules a blind append by kappa keeps (PROTOCOL.md, "Table Features"). */
const KNOWN_WRITER_FEATURES = new Set(['appendOnly', 'invariants', 'timestampNtz']);
/** Column metadata keys of writer features kappa does not implement (values it would have to compute or check). */
const UNSUPPORTED_COLUMN_METADATA = [
  'delta.invariants',
  'delta.generationExpression',
  'delta.identity.start',
];

/**
 * Refuses to append to a table whose protocol needs writer features kappa does not implement
 * (legacy writer versions 3-6: check constraints, generated columns, change data feed, column
 * mapping, identity columns; writer version 7 with features outside appendOnly, invariants,
 * timestampNtz) or whose columns carry invariants, generation expressions or identity settings:
 * a writer must not write to a table whose writer features it does not support (PROTOCOL.md,
 * "Protocol Evolution").
 * @throws UsageError naming the table and the feature
 */
export function checkWritable(root: string, protocol: DeltaProtocol | undefined, schemaString: string): void {
  const refuse = (what: string) =>
    new UsageError(
      `${root}: the table needs ${what}, which kappa does not implement; kappa appends only to tables it can write correctly`,
      'write to a new table',
    );
  if (protocol) {
    const w = protocol.minWriterVersion;
    if (w > 7 || protocol.minReaderVersion > 3) throw refuse(`protocol ${protocol.minReaderVersion}/${w}`);
    if (w >= 3 && w <= 6)
      throw refuse(
        `writer version ${w} (check constraints, change data feed, generated columns, column mapping or identity columns)`,
      );
    const other = (w === 7 ? (protocol.writerFeatures ?? []) : []).filter(
      (f) => !KNOWN_WRITER_FEATURES.has(f),
    );
    if (other.length) throw refuse(`the writer feature${other.length === 1 ? '' : 's'} ${other.join(', ')}`);
  }
  const fields = (JSON.parse(schemaString) as { fields: DeltaField[] }).fields;
  for (const f of fields)
    for (const k of UNSUPPORTED_COLUMN_METADATA)
      if (f.metadata && k in f.metadata) throw refuse(`'${k}' on column '${f.name}'`);
}

/**
 * The protocol to commit: the table's own when it already allows what `required` needs (a protocol
 * is never lowered or rewritten), else an upgrade that keeps the table's features and adds the
 * required ones (legacy writer version 2 lists its appendOnly and invariants as features at 7).
 */
export function protocolFor(table: DeltaProtocol | undefined, required: DeltaProtocol): DeltaProtocol {
  if (!table) return required;
  // A table feature is supported only when listed (features exist at reader 3 / writer 7 only).
  const readerOk =
    table.minReaderVersion >= required.minReaderVersion &&
    (required.readerFeatures ?? []).every((f) => (table.readerFeatures ?? []).includes(f));
  const writerOk =
    table.minWriterVersion >= required.minWriterVersion &&
    (required.writerFeatures ?? []).every((f) => (table.writerFeatures ?? []).includes(f));
  if (readerOk && writerOk) return table;
  const union = (a: string[], b: string[] | undefined) => [...new Set([...a, ...(b ?? [])])];
  const legacyWriter =
    table.minWriterVersion >= 2 && table.minWriterVersion < 7 ? ['appendOnly', 'invariants'] : [];
  return {
    minReaderVersion: Math.max(table.minReaderVersion, required.minReaderVersion),
    minWriterVersion: Math.max(table.minWriterVersion, required.minWriterVersion),
    readerFeatures: union(table.readerFeatures ?? [], required.readerFeatures),
    writerFeatures: union(table.writerFeatures ?? legacyWriter, required.writerFeatures),
  };
}

/** `_delta_log/<version zero-padded to 20>.json` under `root`. */
export function commitUri(root: string, version: number): string {
  return joinUri(root, DELTA_LOG_DIR, `${String(version).padStart(20, '0')}.json`);
}

/** URI-encodes a relative data file path for `add.path` (each segment, keeping `=`). */
export function encodeDeltaPath(rel: string): string {
  return rel
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/%3D/g, '='))
    .join('/');
}

/** Decodes an `add.path` to a path relative to the table root. */
export function decodeDeltaPath(p: string): string {
  return decodeURIComponent(p);
}

const COMMIT_RE = /\/(\d{20})\.json$/;

/**
 * Reads the log under `root`. Returns undefined when the table has no `_delta_log`.
 * Starts from the newest checkpoint (`NNN.checkpoint.parquet`, delta-checkpoint.ts) when there is
 * one, then applies the JSON versions after it.
 * @throws DataError when a log file is not valid JSON lines or versions are missing
 */
export async function readDeltaLog(store: ObjectStore, root: string): Promise<DeltaSnapshot | undefined> {
  const s = await readDeltaState(store, root);
  if (!s) return undefined;
  const snap: DeltaSnapshot = { version: s.version, files: s.files, txns: s.txns };
  if (s.protocol) snap.protocol = s.protocol;
  if (s.metaData) snap.metaData = s.metaData;
  return snap;
}

/**
 * The full table state (live files, tombstones, txns) at the latest version, or at `upTo`; starts
 * from the newest checkpoint at or below it. Undefined when the table has no `_delta_log`.
 * @throws DataError when a log file is not valid JSON lines, versions are missing, or the log
 *   starts after version 0 without a checkpoint
 */
export async function readDeltaState(
  store: ObjectStore,
  root: string,
  upTo = Number.POSITIVE_INFINITY,
): Promise<CheckpointState | undefined> {
  const logDir = joinUri(root, DELTA_LOG_DIR);
  const versions: { version: number; uri: string }[] = [];
  const checkpoints: number[] = [];
  let any = false;
  try {
    for await (const e of store.list(logDir)) {
      any = true;
      const m = COMMIT_RE.exec(e.uri);
      if (m) {
        if (Number(m[1]) <= upTo) versions.push({ version: Number(m[1]), uri: e.uri });
        continue;
      }
      const cp = checkpointVersionOf(e.uri);
      if (cp !== undefined && cp <= upTo) checkpoints.push(cp);
    }
  } catch {
    return undefined;
  }
  if (!any) return undefined;
  versions.sort((a, b) => a.version - b.version);
  checkpoints.sort((a, b) => b - a);
  let snap: CheckpointState = { version: -1, files: new Map(), removes: new Map(), txns: new Map() };
  // The newest readable checkpoint; an unreadable one (a torn write by another tool) is skipped.
  for (const cp of checkpoints) {
    try {
      snap = await readCheckpoint(store, root, cp);
      break;
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
    }
  }
  const todo = versions.filter((v) => v.version > snap.version);
  if (todo.length === 0) return snap;
  if (todo[0].version !== snap.version + 1)
    throw new DataError(
      snap.version < 0
        ? `${logDir}: the log starts at version ${todo[0].version} and has no checkpoint before it (earlier versions were cleaned up)`
        : `${logDir}: version ${snap.version + 1} after checkpoint ${snap.version} is missing (found ${todo[0].version})`,
    );
  for (const { version, uri } of todo) {
    if (version !== snap.version + 1)
      throw new DataError(`${logDir}: version ${snap.version + 1} is missing (found ${version})`);
    const text = new TextDecoder().decode(await store.read(uri));
    const actions: Record<string, unknown>[] = [];
    let lineNo = 0;
    for (const line of text.split('\n')) {
      lineNo++;
      if (line.trim() === '') continue;
      try {
        actions.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        throw new DataError(`${uri} line ${lineNo}: not valid JSON`);
      }
    }
    applyActions(snap, actions, version);
  }
  return snap;
}

/**
 * Writes a log checkpoint of `version` when it is a positive multiple of `interval` (Spark's
 * rule; default 10). Call after the version's commit succeeded. A failure to write it does not
 * touch the table (a checkpoint is an optimisation): it is reported on stderr, not thrown.
 * @returns true when a checkpoint was written
 */
export async function checkpointIfDue(
  store: ObjectStore,
  root: string,
  version: number,
  interval = DEFAULT_CHECKPOINT_INTERVAL,
): Promise<boolean> {
  if (interval <= 0 || version <= 0 || version % interval !== 0) return false;
  try {
    const state = await readDeltaState(store, root, version);
    if (!state || state.version !== version) return false;
    await writeCheckpoint(store, root, state);
    return true;
  } catch (e) {
    process.stderr.write(
      `kappa: warning: ${root}: could not write the log checkpoint of version ${version}: ${(e as Error).message}\n`,
    );
    return false;
  }
}

/**
 * The newest `txn` version that application `appId` committed to the Delta table at `root` (local
 * or any object store), or null when the table has none for it or does not exist. Reads the log
 * from its newest checkpoint (readDeltaState).
 * @throws DataError when the log is unreadable (see readDeltaState)
 */
export async function txnVersion(store: ObjectStore, root: string, appId: string): Promise<number | null> {
  const s = await readDeltaState(store, root);
  return s?.txns.get(appId)?.version ?? null;
}

/** A new table's metaData action. */
export function newMetaData(
  columns: Column[],
  partitionColumns: string[],
  timePartitionColumns: string[],
  provider: string,
  configuration: Record<string, string>,
): DeltaMetaData {
  return {
    id: randomUUID(),
    format: { provider, options: {} },
    schemaString: deltaSchemaString(columns, timePartitionColumns),
    partitionColumns,
    createdTime: Date.now(),
    configuration,
  };
}

/** The actions of one log version, or undefined when that version does not exist. */
export async function readCommit(
  store: ObjectStore,
  root: string,
  version: number,
): Promise<Record<string, unknown>[] | undefined> {
  const uri = commitUri(root, version);
  if (!(await store.stat(uri))) return undefined;
  const text = new TextDecoder().decode(await store.read(uri));
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new DataError(`${uri} line ${i + 1}: not valid JSON`);
      }
    });
}

/** The `kappa.commitId` in a version's commitInfo, or undefined. */
export function commitIdOf(actions: Record<string, unknown>[]): string | undefined {
  const info = actions.find((a) => a.commitInfo)?.commitInfo as Record<string, unknown> | undefined;
  const id = info?.['kappa.commitId'];
  return typeof id === 'string' ? id : undefined;
}

/** Attempts at put-if-absent before `commitActions` gives up (each lost race reads the winners). */
export const MAX_COMMIT_ATTEMPTS = 20;

/**
 * Writes `actions` as the next version after `snapshot.version`, with the Delta protocol's
 * optimistic concurrency control for appends (PROTOCOL.md, "Commit Protocol"; Delta's
 * ConflictChecker): the version file is created with put-if-absent; when another writer created it
 * first, every winning version up to the latest is read, and
 * - a winner that changed `metaData` (schema, partition columns, configuration) or `protocol` is a
 *   conflict: this commit's actions were computed against a table that no longer exists, so the
 *   commit fails (two concurrent first writers: the second sees the first's metaData and fails);
 * - a winner that only added or removed files does not touch what a blind append read, so the same
 *   actions are retried at the version after the last winner.
 * - a winner that `check` (optional) objects to aborts the commit with CommitConflictError (compaction:
 *   a winner that removed one of its input files);
 * - a winner that carries this commit's own `commitId` (`kappa.commitId` in commitInfo) is this
 *   commit, written by an earlier attempt whose response was lost: its version is returned.
 * Bounded to MAX_COMMIT_ATTEMPTS attempts.
 * @param commitId identifies this commit among the winners (optional)
 * @returns the version written
 * @throws RuntimeError on a metaData/protocol conflict (exit 1; nothing of this commit is
 *   visible), on storage failure, or after too many lost races
 */
export async function commitActions(
  store: ObjectStore,
  root: string,
  snapshot: DeltaSnapshot,
  actions: DeltaAction[],
  commitId?: string,
  check?: WinnerCheck,
): Promise<number> {
  const body = `${actions.map((a) => JSON.stringify(a)).join('\n')}\n`;
  let version = snapshot.version + 1;
  for (let attempt = 0; attempt < MAX_COMMIT_ATTEMPTS; attempt++) {
    if (await store.put(commitUri(root, version), body, { ifAbsent: true })) return version;
    // Lost the race for `version`: check every winning commit before retrying after them.
    for (;;) {
      const won = await readCommit(store, root, version);
      if (!won) break;
      if (commitId !== undefined && commitIdOf(won) === commitId) return version;
      const change = won.find((a) => a.metaData) ?? won.find((a) => a.protocol);
      if (change) {
        const md = change.metaData as DeltaMetaData | undefined;
        const what = md
          ? `metaData (schema, partitioning or configuration; it is partitioned by [${(md.partitionColumns ?? []).join(', ')}])`
          : 'protocol';
        const info = won.find((a) => a.commitInfo)?.commitInfo as Record<string, unknown> | undefined;
        const by = typeof info?.engineInfo === 'string' ? ` by ${info.engineInfo}` : '';
        throw new RuntimeError(
          `${root}: concurrent commit conflict: version ${version} was written${by} while this run was writing and changes the table's ${what}; nothing of this run was committed`,
          'run the sink again: it appends to the new table state (or fails on an incompatible one)',
        );
      }
      const why = check?.(won, version);
      if (why !== undefined)
        throw new CommitConflictError(`${root}: concurrent commit conflict at version ${version}: ${why}`);
      version++;
    }
  }
  throw new RuntimeError(
    `${root}: could not commit to the Delta log: lost the race for a version ${MAX_COMMIT_ATTEMPTS} times; nothing of this run was committed`,
  );
}

/**
 * Per-column statistics of one data file, for `add.stats` (Delta PROTOCOL.md "Per-file
 * Statistics"): numRecords, minValues/maxValues (not for boolean, json, binary), nullCount. Parquet
 * files take them from the writer (`setFrom`), text files gather them row by row (`add`).
 */
export class FileStats {
  numRecords = 0;
  private readonly min: Record<string, number | string> = {};
  private readonly max: Record<string, number | string> = {};
  private readonly nulls: Record<string, number> = {};

  constructor(private readonly columns: Column[]) {
    for (const c of columns) this.nulls[c.name] = 0;
  }

  /**
   * Replaces the counts with statistics a format writer computed while writing the file (Parquet
   * column chunks, see PartWriter.columnStats); `toJSON` then gives the same JSON as `add` over the
   * same rows, except that strings are ordered by UTF-8 bytes (Parquet's and Delta's order) where
   * `add` compares UTF-16 code units. Min/max of boolean, json and binary columns are ignored.
   */
  setFrom(s: FileColumnStats): void {
    this.numRecords = s.numRecords;
    for (const c of this.columns) {
      const cs = s.columns[c.name];
      this.nulls[c.name] = cs?.nullCount ?? 0;
      delete this.min[c.name];
      delete this.max[c.name];
      if (!cs || c.type === 'json' || c.type === 'binary' || c.type === 'boolean') continue;
      if (cs.min !== undefined) this.min[c.name] = cs.min;
      if (cs.max !== undefined) this.max[c.name] = cs.max;
    }
  }

  /** Adds one row (values already type-checked). Text formats only: Parquet files use `setFrom`. */
  add(row: Record<string, unknown>): void {
    this.numRecords++;
    for (const c of this.columns) {
      const v = row[c.name];
      if (v === null || v === undefined) {
        this.nulls[c.name]++;
        continue;
      }
      if (c.type === 'json' || c.type === 'binary' || c.type === 'boolean') continue;
      const x = v as number | string;
      const lo = this.min[c.name];
      if (lo === undefined || x < lo) this.min[c.name] = x;
      const hi = this.max[c.name];
      if (hi === undefined || x > hi) this.max[c.name] = x;
    }
  }

  /** The Delta stats JSON string. Timestamps as ISO-8601 with milliseconds (UTC `Z` for timestamptz). */
  toJSON(): string {
    const fmt = (c: Column, v: number | string): number | string => {
      if (c.type === 'timestamptz') return new Date(v as number).toISOString();
      if (c.type === 'timestamp') return new Date(v as number).toISOString().slice(0, -1);
      return v;
    };
    const minValues: Record<string, unknown> = {};
    const maxValues: Record<string, unknown> = {};
    for (const c of this.columns) {
      if (this.min[c.name] !== undefined) minValues[c.name] = fmt(c, this.min[c.name]);
      if (this.max[c.name] !== undefined) maxValues[c.name] = fmt(c, this.max[c.name]);
    }
    return JSON.stringify({ numRecords: this.numRecords, minValues, maxValues, nullCount: this.nulls });
  }
}

/** A live data file of a table, as ingest lists it. */
export interface LiveFile {
  uri: string;
  size: number;
  /** Partition values to add to records (null values and event-time partition columns left out). */
  partitionValues: Record<string, string>;
}

/**
 * The live data files of the Delta table at `root` (adds minus removes at the latest version), or
 * undefined when `root` has no `_delta_log`. Partition columns that kappa derived from event time
 * (`kappa.eventTimePartitionColumns`) are left out of `partitionValues`: they are not record fields.
 */
export async function deltaLiveFiles(store: ObjectStore, root: string): Promise<LiveFile[] | undefined> {
  const snap = await readDeltaLog(store, root);
  if (!snap?.metaData) return undefined;
  const timeCols = new Set(
    (snap.metaData.configuration?.['kappa.eventTimePartitionColumns'] ?? '').split(',').filter(Boolean),
  );
  const out: LiveFile[] = [];
  for (const add of snap.files.values()) {
    const pv: Record<string, string> = {};
    for (const [k, v] of Object.entries(add.partitionValues ?? {}))
      if (v !== null && !timeCols.has(k)) pv[k] = v;
    const rel = decodeDeltaPath(add.path);
    out.push({
      uri: /^[a-z][a-z0-9+.-]*:\/\//i.test(rel) ? rel : joinUri(root, rel),
      size: add.size,
      partitionValues: pv,
    });
  }
  return out.sort((a, b) => (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0));
}
