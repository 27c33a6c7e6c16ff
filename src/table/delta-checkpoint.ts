/**
 * Delta log checkpoints (delta-io/delta PROTOCOL.md, "Checkpoints", "Checkpoint Schema",
 * "Last Checkpoint File"): `_delta_log/NNNNNNNNNNNNNNNNNNNN.checkpoint.parquet` holds the table
 * state at version N, one action per row (columns `txn`, `add`, `remove`, `metaData`, `protocol`;
 * never `commitInfo`), and `_delta_log/_last_checkpoint` points at the newest one
 * (`{"version":N,"size":rows,"sizeInBytes":…,"numOfAddFiles":…}`; only a hint: readers list the log).
 *
 * Schema, as Spark writes it (every struct and field nullable; MAP and LIST in the standard
 * Parquet three-level layout, which DuckDB's delta extension requires: duckdb-delta#99):
 *   txn      struct<appId string, version long, lastUpdated long>
 *   add      struct<path string, partitionValues map<string,string>, size long,
 *                   modificationTime long, dataChange boolean, tags map<string,string>, stats string>
 *   remove   struct<path string, deletionTimestamp long, dataChange boolean,
 *                   extendedFileMetadata boolean, partitionValues map<string,string>, size long>
 *   metaData struct<id string, name string, description string,
 *                   format struct<provider string, options map<string,string>>, schemaString string,
 *                   partitionColumns array<string>, configuration map<string,string>, createdTime long>
 *   protocol struct<minReaderVersion int, minWriterVersion int, readerFeatures array<string>,
 *                   writerFeatures array<string>>
 * `stats` stays the JSON string of the `add` action (no `stats_parsed`). Removes are kept as
 * tombstones (Delta keeps them for `delta.deletedFileRetentionDuration`, 1 week; kappa keeps every
 * remove whose file is not live again, so `kappa compact --vacuum` still finds them).
 *
 * Written after the commit of every version that is a multiple of the interval (Spark's default
 * 10): by `kappa compact` and by the table sink's committer. Written with a plain atomic put
 * after the version's JSON exists; two writers racing write the same state.
 */
import type { AsyncBuffer, SchemaElement } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { DataError } from '../errors.js';
import { joinUri, type ObjectStore } from '../storage/store.js';
import type { DeltaAdd, DeltaMetaData, DeltaProtocol, DeltaRemove } from './delta.js';

const LOG_DIR = '_delta_log';

/** Spark's default checkpoint interval (commits). */
export const DEFAULT_CHECKPOINT_INTERVAL = 10;

/** The table state as a checkpoint holds it. */
export interface CheckpointState {
  version: number;
  protocol?: DeltaProtocol;
  metaData?: DeltaMetaData;
  files: Map<string, DeltaAdd>;
  removes: Map<string, DeltaRemove>;
  txns: Map<string, { appId: string; version: number; lastUpdated?: number }>;
}

const str = (name: string, rep: 'OPTIONAL' | 'REQUIRED' = 'OPTIONAL'): SchemaElement => ({
  name,
  type: 'BYTE_ARRAY',
  converted_type: 'UTF8',
  logical_type: { type: 'STRING' },
  repetition_type: rep,
});
const long = (name: string): SchemaElement => ({ name, type: 'INT64', repetition_type: 'OPTIONAL' });
const int = (name: string): SchemaElement => ({ name, type: 'INT32', repetition_type: 'OPTIONAL' });
const bool = (name: string): SchemaElement => ({ name, type: 'BOOLEAN', repetition_type: 'OPTIONAL' });
const struct = (name: string, children: SchemaElement[][]): SchemaElement[] => [
  { name, repetition_type: 'OPTIONAL', num_children: children.length },
  ...children.flat(),
];
const map = (name: string): SchemaElement[] => [
  {
    name,
    repetition_type: 'OPTIONAL',
    converted_type: 'MAP',
    logical_type: { type: 'MAP' },
    num_children: 1,
  },
  { name: 'key_value', repetition_type: 'REPEATED', num_children: 2 },
  str('key', 'REQUIRED'),
  str('value'),
];
const list = (name: string): SchemaElement[] => [
  {
    name,
    repetition_type: 'OPTIONAL',
    converted_type: 'LIST',
    logical_type: { type: 'LIST' },
    num_children: 1,
  },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  str('element'),
];

/** The checkpoint's Parquet schema (see the module comment). */
export function checkpointSchema(): SchemaElement[] {
  const cols = [
    struct('txn', [[str('appId')], [long('version')], [long('lastUpdated')]]),
    struct('add', [
      [str('path')],
      map('partitionValues'),
      [long('size')],
      [long('modificationTime')],
      [bool('dataChange')],
      map('tags'),
      [str('stats')],
    ]),
    struct('remove', [
      [str('path')],
      [long('deletionTimestamp')],
      [bool('dataChange')],
      [bool('extendedFileMetadata')],
      map('partitionValues'),
      [long('size')],
    ]),
    struct('metaData', [
      [str('id')],
      [str('name')],
      [str('description')],
      struct('format', [[str('provider')], map('options')]),
      [str('schemaString')],
      list('partitionColumns'),
      map('configuration'),
      [long('createdTime')],
    ]),
    struct('protocol', [
      [int('minReaderVersion')],
      [int('minWriterVersion')],
      list('readerFeatures'),
      list('writerFeatures'),
    ]),
  ];
  return [{ name: 'spark_schema', num_children: cols.length }, ...cols.flat()];
}

/** `_delta_log/<version zero-padded to 20>.checkpoint.parquet` under `root`. */
export function checkpointUri(root: string, version: number): string {
  return joinUri(root, LOG_DIR, `${String(version).padStart(20, '0')}.checkpoint.parquet`);
}

const big = (v: number | undefined): bigint | null => (v === undefined || v === null ? null : BigInt(v));
const mapOf = (m: Record<string, string | null> | undefined): Record<string, string | null> | null =>
  m === undefined || m === null ? null : m;

/** Encodes a state as checkpoint Parquet bytes (one row per action) and the row count. */
export function encodeCheckpoint(s: CheckpointState): { bytes: Uint8Array; rows: number } {
  type Row = Record<'txn' | 'add' | 'remove' | 'metaData' | 'protocol', unknown>;
  const empty = (): Row => ({ txn: null, add: null, remove: null, metaData: null, protocol: null });
  const rows: Row[] = [];
  if (s.protocol) {
    const p = s.protocol;
    rows.push({
      ...empty(),
      protocol: {
        minReaderVersion: p.minReaderVersion,
        minWriterVersion: p.minWriterVersion,
        readerFeatures: p.readerFeatures ?? null,
        writerFeatures: p.writerFeatures ?? null,
      },
    });
  }
  if (s.metaData) {
    const m = s.metaData;
    rows.push({
      ...empty(),
      metaData: {
        id: m.id,
        name: m.name ?? null,
        description: null,
        format: { provider: m.format.provider, options: m.format.options ?? {} },
        schemaString: m.schemaString,
        partitionColumns: m.partitionColumns,
        configuration: m.configuration ?? {},
        createdTime: big(m.createdTime),
      },
    });
  }
  for (const t of s.txns.values())
    rows.push({
      ...empty(),
      txn: { appId: t.appId, version: BigInt(t.version), lastUpdated: big(t.lastUpdated) },
    });
  for (const a of s.files.values())
    rows.push({
      ...empty(),
      add: {
        path: a.path,
        partitionValues: a.partitionValues ?? {},
        size: BigInt(a.size),
        modificationTime: BigInt(a.modificationTime),
        dataChange: false,
        tags: null,
        stats: a.stats ?? null,
      },
    });
  for (const r of s.removes.values())
    rows.push({
      ...empty(),
      remove: {
        path: r.path,
        deletionTimestamp: big(r.deletionTimestamp),
        dataChange: false,
        extendedFileMetadata: r.extendedFileMetadata ?? null,
        partitionValues: mapOf(r.partitionValues),
        size: big(r.size),
      },
    });
  const writer = new ByteWriter();
  const names = ['txn', 'add', 'remove', 'metaData', 'protocol'] as const;
  const pw = new ParquetWriter({
    writer,
    schema: checkpointSchema(),
    codec: 'SNAPPY',
    statistics: false,
    createdBy: 'kappa version 0.1.0',
  });
  pw.write({
    columnData: names.map((n) => ({ name: n, data: rows.map((r) => r[n]) as never[] })),
    rowGroupSize: Math.max(1, rows.length),
  });
  pw.finish();
  return { bytes: new Uint8Array(writer.getBuffer()), rows: rows.length };
}

/**
 * Writes the checkpoint of `state` and updates `_last_checkpoint` (unless it names a newer one).
 * @throws RuntimeError on storage failure (the table is unaffected: a checkpoint is an optimisation)
 */
export async function writeCheckpoint(
  store: ObjectStore,
  root: string,
  state: CheckpointState,
): Promise<void> {
  const { bytes, rows } = encodeCheckpoint(state);
  await store.put(checkpointUri(root, state.version), bytes);
  const lastUri = joinUri(root, LOG_DIR, '_last_checkpoint');
  const last = await readLastCheckpoint(store, root);
  if (last !== undefined && last >= state.version) return;
  await store.put(
    lastUri,
    `${JSON.stringify({ version: state.version, size: rows, sizeInBytes: bytes.length, numOfAddFiles: state.files.size })}\n`,
  );
}

/** The version in `_last_checkpoint`, or undefined when there is none (or it is unreadable). */
export async function readLastCheckpoint(store: ObjectStore, root: string): Promise<number | undefined> {
  const uri = joinUri(root, LOG_DIR, '_last_checkpoint');
  try {
    if (!(await store.stat(uri))) return undefined;
    const v = (JSON.parse(new TextDecoder().decode(await store.read(uri))) as { version?: unknown }).version;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

const CHECKPOINT_RE = /\/(\d{20})\.checkpoint\.parquet$/;

/** The version of a single-part checkpoint file URI, or undefined for any other file. */
export function checkpointVersionOf(uri: string): number | undefined {
  const m = CHECKPOINT_RE.exec(uri);
  return m ? Number(m[1]) : undefined;
}

/**
 * Reads a single-part checkpoint into a state (without the JSON versions after it).
 * @throws DataError when the file is not a readable checkpoint
 */
export async function readCheckpoint(
  store: ObjectStore,
  root: string,
  version: number,
): Promise<CheckpointState> {
  const uri = checkpointUri(root, version);
  const st = await store.stat(uri);
  if (!st) throw new DataError(`${uri}: the checkpoint is missing`);
  let rows: Record<string, unknown>[];
  // Loaded here, not at start-up: a table sink reads a checkpoint only when its log has one.
  const [{ parquetMetadataAsync, parquetReadObjects }, { compressors }, { storeAsyncBuffer }] =
    await Promise.all([
      import('hyparquet'),
      import('hyparquet-compressors'),
      import('../formats/parquet/read.js'),
    ]);
  try {
    const file: AsyncBuffer = storeAsyncBuffer(store, uri, st.size);
    const metadata = await parquetMetadataAsync(file);
    rows = (await parquetReadObjects({ file, metadata, compressors })) as Record<string, unknown>[];
  } catch (e) {
    throw new DataError(`${uri}: not a readable Delta checkpoint: ${(e as Error).message}`);
  }
  const s: CheckpointState = { version, files: new Map(), removes: new Map(), txns: new Map() };
  const num = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
  const strMap = (v: unknown): Record<string, string | null> => {
    if (v === null || v === undefined) return {};
    if (v instanceof Map) return Object.fromEntries(v) as Record<string, string | null>;
    return v as Record<string, string | null>;
  };
  for (const r of rows) {
    const add = r.add as Record<string, unknown> | null | undefined;
    const rem = r.remove as Record<string, unknown> | null | undefined;
    const md = r.metaData as Record<string, unknown> | null | undefined;
    const p = r.protocol as Record<string, unknown> | null | undefined;
    const t = r.txn as Record<string, unknown> | null | undefined;
    if (add?.path) {
      const a: DeltaAdd = {
        path: add.path as string,
        partitionValues: strMap(add.partitionValues),
        size: num(add.size) ?? 0,
        modificationTime: num(add.modificationTime) ?? 0,
        dataChange: false,
      };
      if (typeof add.stats === 'string') a.stats = add.stats;
      s.files.set(a.path, a);
    } else if (rem?.path) {
      const x: DeltaRemove = { path: rem.path as string, dataChange: false };
      if (num(rem.deletionTimestamp) !== undefined) x.deletionTimestamp = num(rem.deletionTimestamp);
      if (rem.extendedFileMetadata !== null && rem.extendedFileMetadata !== undefined)
        x.extendedFileMetadata = rem.extendedFileMetadata as boolean;
      if (rem.partitionValues) x.partitionValues = strMap(rem.partitionValues);
      if (num(rem.size) !== undefined) x.size = num(rem.size);
      s.removes.set(x.path, x);
    } else if (md?.id) {
      const f = (md.format ?? {}) as Record<string, unknown>;
      s.metaData = {
        id: md.id as string,
        ...(typeof md.name === 'string' ? { name: md.name } : {}),
        format: {
          provider: (f.provider as string) ?? 'parquet',
          options: strMap(f.options) as Record<string, string>,
        },
        schemaString: md.schemaString as string,
        partitionColumns: (md.partitionColumns as string[] | null) ?? [],
        ...(num(md.createdTime) !== undefined ? { createdTime: num(md.createdTime) } : {}),
        configuration: strMap(md.configuration) as Record<string, string>,
      };
    } else if (p && p.minReaderVersion !== null && p.minReaderVersion !== undefined) {
      s.protocol = {
        minReaderVersion: Number(p.minReaderVersion),
        minWriterVersion: Number(p.minWriterVersion),
        ...(Array.isArray(p.readerFeatures) ? { readerFeatures: p.readerFeatures as string[] } : {}),
        ...(Array.isArray(p.writerFeatures) ? { writerFeatures: p.writerFeatures as string[] } : {}),
      };
    } else if (t?.appId) {
      s.txns.set(t.appId as string, {
        appId: t.appId as string,
        version: num(t.version) ?? 0,
        ...(num(t.lastUpdated) !== undefined ? { lastUpdated: num(t.lastUpdated) } : {}),
      });
    }
  }
  return s;
}

/** Applies one version's actions to a state (action reconciliation, PROTOCOL.md). */
export function applyActions(s: CheckpointState, actions: Record<string, unknown>[], version: number): void {
  for (const a of actions) {
    if (a.protocol) s.protocol = a.protocol as DeltaProtocol;
    else if (a.metaData) s.metaData = a.metaData as DeltaMetaData;
    else if (a.add) {
      const add = a.add as DeltaAdd;
      s.files.set(add.path, add);
      s.removes.delete(add.path);
    } else if (a.remove) {
      const r = a.remove as DeltaRemove;
      s.files.delete(r.path);
      s.removes.set(r.path, r);
    } else if (a.txn) {
      const t = a.txn as { appId: string; version: number; lastUpdated?: number };
      s.txns.set(t.appId, t);
    }
  }
  s.version = version;
}
