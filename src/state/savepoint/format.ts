/**
 * The kappa savepoint format, version 1 (man/kappa-savepoint.5; docs/architecture.md, "State"): the on-disk
 * form of a checkpoint or savepoint, written by `writeSavepoint` (write.ts) and read by
 * `openSavepoint` (read.ts). The upcoming checkpoint commands and `kappa state-edit` use it.
 *
 * A savepoint is a directory (local path or `s3://` prefix):
 *
 *   _metadata.json                         written last: its presence means "complete"
 *   <operator uid>/kg-<first>-<last>.parquet   keyed state of key groups first..last (5 digits each)
 *
 * Every path in `_metadata.json` is relative to the directory, so a savepoint can be moved or copied
 * (relocatable). Every Parquet file has the same columns (`SAVEPOINT_COLUMNS`), one row per state
 * entry (for window state: per window), in key-group order, within a key group by state name and
 * key as the operator's state store orders them (UTF-8 byte order of the stored key), so the rows of
 * one key are contiguous.
 */
import type { KEY_GROUP_HASH } from '../keygroup.js';

/** `format` field of `_metadata.json`. */
export const SAVEPOINT_FORMAT = 'kappa-savepoint';
/** The format version this code writes and the only one it reads. */
export const SAVEPOINT_FORMAT_VERSION = 1;
/** Name of the metadata file. */
export const METADATA_FILE = '_metadata.json';
/** Default key groups per Parquet file. */
export const DEFAULT_KEY_GROUPS_PER_FILE = 32;

/** A JSON value (what `JSON.stringify` writes and `JSON.parse` returns). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * Parquet columns of every state file, in order. Timestamps are INT64 TIMESTAMP(MILLIS,
 * isAdjustedToUTC=false), epoch ms (DuckDB reads them as TIMESTAMP). `value` is JSON text.
 */
export const SAVEPOINT_COLUMNS = [
  { name: 'key_group', parquet: 'INT32' },
  { name: 'state', parquet: 'STRING' },
  { name: 'key', parquet: 'STRING' },
  { name: 'window_start', parquet: 'TIMESTAMP_MILLIS' },
  { name: 'window_end', parquet: 'TIMESTAMP_MILLIS' },
  { name: 'timer', parquet: 'TIMESTAMP_MILLIS' },
  { name: 'value', parquet: 'STRING' },
] as const;

/** One row of a savepoint's state files. */
export interface SavepointEntry {
  /** Key group, 0 <= keyGroup < maxKeyGroups; must equal the hash of `key` (src/state/keygroup.ts). */
  keyGroup: number;
  /** State name (one of the operator's `states`). */
  state: string;
  /** The key's canonical JSON text (RFC 8785), e.g. `"JFK"` with quotes, or `42`. */
  key: string;
  /** Window bounds [start, end) in epoch ms, for state kinds with windows; else null. */
  windowStart: number | null;
  windowEnd: number | null;
  /** The entry's registered event-time timer (epoch ms), or null when it has none. */
  timer: number | null;
  /** The entry's value, a JSON value whose shape the state's `schema` describes. */
  value: Json;
}

/** One state of an operator: its name, kind and the schema of its values. */
export interface StateDescriptor {
  /** State name, as in the `state` column. */
  name: string;
  /**
   * `window`: one row per (key, window) with window_start/window_end; `session`: one row per
   * session window of a key (the rows of a key are one state entry); `value`: one row per key,
   * window columns null.
   */
  kind: 'window' | 'session' | 'value';
  /** Describes `value` (and what the operator needs to use it): free-form JSON, per operator kind. */
  schema: Json;
}

/** Position and watermark of one source at the snapshot. */
export interface SourceSnapshot {
  uid: string;
  /**
   * The source's position (`SourcePosition` of src/connectors/source.ts): Kafka
   * `{kind: "kafka", topic, next: {"<p>": "<offset>"}}`, files `{kind: "files", file, uri, rows}`.
   */
  positions: Json;
  /** Epoch ms, or null when the source had emitted no watermark. */
  watermark: number | null;
}

/** One data file, as listed in `_metadata.json`. */
export interface FileMetadata {
  /** Path relative to the savepoint directory, `/`-separated. */
  path: string;
  /** First and last key group the file may hold (inclusive). */
  keyGroups: [number, number];
  rows: number;
  bytes: number;
  /** Lower-case hex SHA-256 of the file's bytes. */
  sha256: string;
}

/** One operator's entry in `_metadata.json`. */
export interface OperatorMetadata {
  uid: string;
  /** Operator kind, e.g. `window`. */
  kind: string;
  states: StateDescriptor[];
  /** The operator's input watermark at the snapshot (epoch ms), or null. */
  watermark: number | null;
  /** Non-keyed operator state (counters, output watermark, …), per operator kind. */
  operatorState: Json;
  /** Total rows in the operator's files. */
  entries: number;
  /** Data files, in key-group order. */
  files: FileMetadata[];
}

/** `_metadata.json`. */
export interface SavepointMetadata {
  format: typeof SAVEPOINT_FORMAT;
  formatVersion: number;
  /** `savepoint` (taken on request, kept) or `checkpoint` (periodic, retained N at a time). */
  type: 'savepoint' | 'checkpoint';
  /** Checkpoint id N (the barrier id), or null. */
  checkpointId: number | null;
  /** When the savepoint was written, ISO 8601 UTC. */
  createdAt: string;
  /** The pipeline's uid. */
  pipeline: string;
  /** Key groups of all keyed state. */
  maxKeyGroups: number;
  /** How keys map to key groups (src/state/keygroup.ts). */
  keyGroupHash: typeof KEY_GROUP_HASH;
  /** Key groups per data file (the writer's split). */
  keyGroupsPerFile: number;
  sources: SourceSnapshot[];
  operators: OperatorMetadata[];
}

/** An operator uid usable as a directory name: letters, digits, `.`, `_`, `-`, not starting with `.` or `_`. */
export const UID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** File name of the data file for key groups first..last. */
export function dataFileName(first: number, last: number): string {
  return `kg-${String(first).padStart(5, '0')}-${String(last).padStart(5, '0')}.parquet`;
}

/** A finite number as itself, anything else (±Infinity, NaN, undefined) as null: for JSON. */
export function finiteOrNull(n: number | null | undefined): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? n : null;
}
