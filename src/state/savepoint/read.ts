/**
 * Reads a savepoint (format: format.ts, man/kappa-savepoint.5) through the ObjectStore interface
 * (local path or `s3://`).
 *
 * `openSavepoint` reads `_metadata.json`, checks the format and version, and verifies every listed
 * file (exists, size, SHA-256) before anything is restored from it, so a damaged savepoint fails
 * before an operator has half-loaded it. Entries are then read per operator, file by file in
 * key-group order, one Parquet row group in memory at a time.
 */
import { createHash } from 'node:crypto';
import { DataError } from '../../errors.js';
import { parquetBatches, readParquetFooter, storeAsyncBuffer } from '../../formats/parquet/read.js';
import { joinUri, type ObjectStore, storeFor } from '../../storage/store.js';
import { MAX_KEY_GROUPS_LIMIT } from '../keygroup.js';
import {
  type FileMetadata,
  type Json,
  METADATA_FILE,
  type OperatorMetadata,
  SAVEPOINT_FORMAT,
  SAVEPOINT_FORMAT_VERSION,
  type SavepointEntry,
  type SavepointMetadata,
} from './format.js';

/** An opened, verified savepoint. */
export interface Savepoint {
  /** Where it was opened (its files are resolved relative to this). */
  readonly uri: string;
  readonly metadata: SavepointMetadata;
  /** The operator with this uid, or undefined. */
  operator(uid: string): OperatorMetadata | undefined;
  /**
   * The operator's keyed state rows, in key-group order.
   * @throws DataError for an unknown uid, an unreadable file, a row outside its file's key-group
   *   range or out of order, or a `value` that is not JSON
   */
  entries(uid: string): AsyncIterable<SavepointEntry>;
}

export interface OpenSavepointOptions {
  /** Verify every file's size and SHA-256 at open (default true). */
  verify?: boolean;
}

function bad(uri: string, what: string): DataError {
  return new DataError(`savepoint ${uri}: ${what}`, 'the savepoint is damaged or not a kappa savepoint');
}

/** Checks the shape of `_metadata.json` (enough to read it safely). */
function checkMetadata(uri: string, m: unknown): SavepointMetadata {
  if (m === null || typeof m !== 'object' || Array.isArray(m))
    throw bad(uri, `${METADATA_FILE} is not a JSON object`);
  const o = m as Partial<SavepointMetadata>;
  if (o.format !== SAVEPOINT_FORMAT)
    throw bad(uri, `${METADATA_FILE}: format is ${JSON.stringify(o.format)}, expected "${SAVEPOINT_FORMAT}"`);
  if (o.formatVersion !== SAVEPOINT_FORMAT_VERSION)
    throw new DataError(
      `savepoint ${uri}: format version ${JSON.stringify(o.formatVersion)} is not supported (this kappa reads version ${SAVEPOINT_FORMAT_VERSION})`,
      'use the kappa version that wrote it',
    );
  const kg = o.maxKeyGroups;
  if (typeof kg !== 'number' || !Number.isInteger(kg) || kg < 1 || kg > MAX_KEY_GROUPS_LIMIT)
    throw bad(
      uri,
      `${METADATA_FILE}: maxKeyGroups ${JSON.stringify(kg)} is not an integer in 1..${MAX_KEY_GROUPS_LIMIT}`,
    );
  if (!Array.isArray(o.operators)) throw bad(uri, `${METADATA_FILE}: operators is not a list`);
  if (!Array.isArray(o.sources)) throw bad(uri, `${METADATA_FILE}: sources is not a list`);
  for (const op of o.operators) {
    if (typeof op?.uid !== 'string' || !Array.isArray(op.files) || !Array.isArray(op.states))
      throw bad(uri, `${METADATA_FILE}: an operator lacks uid, states or files`);
    for (const f of op.files) {
      if (
        typeof f?.path !== 'string' ||
        typeof f.sha256 !== 'string' ||
        !Array.isArray(f.keyGroups) ||
        typeof f.bytes !== 'number'
      )
        throw bad(
          uri,
          `${METADATA_FILE}: operator '${op.uid}' lists a file without path, keyGroups, bytes or sha256`,
        );
      // Relocatable and confined: paths are relative and stay inside the savepoint.
      if (f.path.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(f.path) || f.path.split('/').includes('..'))
        throw bad(uri, `${METADATA_FILE}: file path '${f.path}' is not relative to the savepoint`);
    }
  }
  return o as SavepointMetadata;
}

/** Verifies one file's presence, size and SHA-256. */
async function verifyFile(store: ObjectStore, uri: string, f: FileMetadata): Promise<void> {
  const fileUri = joinUri(uri, f.path);
  const st = await store.stat(fileUri);
  if (!st) throw bad(uri, `file ${f.path} is missing`);
  if (st.size !== f.bytes)
    throw bad(uri, `file ${f.path} has ${st.size} bytes, ${METADATA_FILE} says ${f.bytes}`);
  const h = createHash('sha256');
  for await (const chunk of store.readStream(fileUri)) h.update(chunk);
  const got = h.digest('hex');
  if (got !== f.sha256)
    throw bad(uri, `file ${f.path}: sha256 ${got} does not match ${f.sha256} in ${METADATA_FILE}`);
}

const numOrNull = (v: unknown): number | null => (typeof v === 'number' ? v : null);

/**
 * Rows of one data file, checked against its key-group range (used by `Savepoint.entries` and by
 * `kappa state-edit validate`, which reads file by file).
 * @throws DataError when the file is missing or unreadable, lacks a column, a row is outside the
 *   file's key-group range or out of order, or a `value` is not JSON
 */
export async function* readFileEntries(
  store: ObjectStore,
  uri: string,
  f: FileMetadata,
): AsyncGenerator<SavepointEntry> {
  const fileUri = joinUri(uri, f.path);
  const st = await store.stat(fileUri);
  if (!st) throw bad(uri, `file ${f.path} is missing`);
  const file = storeAsyncBuffer(store, fileUri, st.size);
  const info = await readParquetFooter(file, fileUri);
  for (const col of ['key_group', 'state', 'key', 'value'])
    if (!(col in info.schema)) throw bad(uri, `file ${f.path} has no column ${col}`);
  const [first, last] = f.keyGroups;
  let prev = first;
  for await (const batch of parquetBatches(file, fileUri, info)) {
    for (let i = 0; i < batch.rows.length; i++) {
      const r = batch.rows[i] as Record<string, unknown>;
      const g = r.key_group;
      const where = () => {
        const w = batch.where(i);
        return `file ${f.path} row group ${w.rowGroup} row ${w.row}`;
      };
      if (typeof g !== 'number' || g < prev || g > last)
        throw bad(uri, `${where()}: key group ${String(g)} is outside ${first}..${last} or out of order`);
      prev = g;
      if (typeof r.state !== 'string' || typeof r.key !== 'string' || typeof r.value !== 'string')
        throw bad(uri, `${where()}: state, key and value must be strings`);
      let value: Json;
      try {
        value = JSON.parse(r.value) as Json;
      } catch {
        throw bad(uri, `${where()}: value is not JSON`);
      }
      yield {
        keyGroup: g,
        state: r.state,
        key: r.key,
        windowStart: numOrNull(r.window_start),
        windowEnd: numOrNull(r.window_end),
        timer: numOrNull(r.timer),
        value,
      };
    }
  }
}

/**
 * Opens the savepoint at `uri` (directory: local path or `s3://bucket/prefix`).
 * @throws DataError when `_metadata.json` is missing (incomplete or no savepoint) or malformed, its
 *   format version is not 1, or (with `verify`) a listed file is missing or its size or SHA-256
 *   differs (the message names the file); RuntimeError when the store cannot be read
 */
export async function openSavepoint(uri: string, opts: OpenSavepointOptions = {}): Promise<Savepoint> {
  const store = storeFor(uri);
  const metaUri = joinUri(uri, METADATA_FILE);
  if (!(await store.stat(metaUri)))
    throw new DataError(
      `savepoint ${uri}: no ${METADATA_FILE}: not a savepoint, or an incomplete one (${METADATA_FILE} is written last)`,
      'pass the directory that holds _metadata.json',
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(await store.read(metaUri)).toString('utf8'));
  } catch (e) {
    if (e instanceof SyntaxError) throw bad(uri, `${METADATA_FILE} is not JSON: ${e.message}`);
    throw e;
  }
  const metadata = checkMetadata(uri, parsed);
  if (opts.verify ?? true)
    for (const op of metadata.operators) for (const f of op.files) await verifyFile(store, uri, f);
  const byUid = new Map(metadata.operators.map((o) => [o.uid, o]));
  return {
    uri,
    metadata,
    operator: (uid) => byUid.get(uid),
    async *entries(uid: string): AsyncGenerator<SavepointEntry> {
      const op = byUid.get(uid);
      if (!op)
        throw new DataError(
          `savepoint ${uri} has no operator '${uid}' (it has: ${[...byUid.keys()].join(', ') || 'none'})`,
        );
      const files = [...op.files].sort((a, b) => a.keyGroups[0] - b.keyGroups[0]);
      for (const f of files) yield* readFileEntries(store, uri, f);
    },
  };
}
