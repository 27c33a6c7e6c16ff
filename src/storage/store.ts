/**
 * Object stores by URI scheme: the one seam between tables/files and where bytes live.
 *
 * Local paths (no scheme, or `file://`) and `s3://bucket/prefix` implement the same interface, so
 * the table layout, the commit log, ingest and sink never ask which one they have. Each scheme
 * registers itself once with `registerStore`; `storeFor(uri)` picks by scheme.
 *
 * Visibility contract (FileSink-style part-file lifecycle): `create()` returns a pending file that
 * readers cannot see until `commit()` (local: a hidden `.name.inprogress-*` file renamed on commit;
 * S3: a multipart upload completed on commit). `abort()` leaves nothing visible. For commits that
 * must survive a crash, `finish()` makes the bytes durable and returns a serialisable
 * `PendingRecord` that any later process can `publish` (roll forward) or `discard`;
 * `listInProgress` finds what crashed writers left (hidden temp files, open multipart uploads).
 */
import { UsageError } from '../errors.js';
import { localStore } from './local.js';
import { s3Store } from './s3-options.js';
import { STDIN_URI, stdinStore } from './stdin.js';

export interface StoreEntry {
  /** Full URI or path of the object, in the same form as the listed root. */
  uri: string;
  /** Size in bytes. */
  size: number;
}

/**
 * Serialisable record of a finished but unpublished file (Flink FileSink's pending file): enough
 * for any later process to publish it under its final name (roll forward) or discard it.
 * - `file`: the hidden, fsynced `tmp` path and the final `target` path.
 * - `s3`: an open multipart upload of `uri` with every part uploaded (ETag and number).
 * `bytes` is the file's size.
 */
export type PendingRecord =
  | { store: 'file'; tmp: string; target: string; bytes: number }
  | {
      store: 's3';
      uri: string;
      uploadId: string;
      parts: { ETag: string; PartNumber: number }[];
      bytes: number;
    };

/** An unfinished file of some writer found below a root (a crashed run's leftover, or a live one's). */
export interface InProgressFile {
  /** The final URI the file would get. */
  uri: string;
  /** When it was started (epoch ms), if the store knows. */
  started?: number;
  /** Removes it (local: unlink; S3: AbortMultipartUpload). */
  discard(): Promise<void>;
}

export interface PendingFile {
  /** Appends bytes. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Makes the written bytes durable but still invisible (local: fsync + close; S3: the last part
   * uploaded) and returns the serialisable record that `ObjectStore.publish` / `discard` take.
   * No write may follow.
   */
  finish(): Promise<PendingRecord>;
  /** Makes the file visible under its final name (finishing it first). After commit the file is durable. */
  commit(): Promise<void>;
  /** Discards the file; nothing becomes visible. Safe to call after a failed write. */
  abort(): Promise<void>;
  /** Bytes written so far. */
  readonly bytes: number;
}

export interface ObjectStore {
  /** True for a store that can only be read once, in order (stdin): no sizes, no random access. */
  readonly sequential?: boolean;
  /** Lists every object below `root` (recursively), in lexicographic order of URI. */
  list(root: string): AsyncIterable<StoreEntry>;
  /** Size of one object, or undefined if it does not exist. */
  stat(uri: string): Promise<StoreEntry | undefined>;
  /** Whole object. */
  read(uri: string): Promise<Uint8Array>;
  /** Bytes [start, end) of an object (ranged GET on S3). */
  readRange(uri: string, start: number, end: number): Promise<Uint8Array>;
  /** Streams an object's bytes. */
  readStream(uri: string): AsyncIterable<Uint8Array>;
  /** Starts a file that becomes visible at `uri` only on commit. */
  create(uri: string): Promise<PendingFile>;
  /**
   * Writes a small object atomically. With `ifAbsent`, returns false (and writes nothing) if the
   * object exists: the mutual exclusion the Delta log needs for commit files.
   */
  put(uri: string, data: Uint8Array | string, opts?: { ifAbsent?: boolean }): Promise<boolean>;
  /** Deletes an object; no error if it is missing. */
  delete(uri: string): Promise<void>;
  /**
   * Publishes a finished file under its final name. Idempotent: a record already published (the
   * hidden file or upload gone and the target present) is a no-op.
   * @throws RuntimeError when neither the pending data nor the target exists
   */
  publish(rec: PendingRecord): Promise<void>;
  /** Discards a finished, unpublished file; no error if it is already gone. */
  discard(rec: PendingRecord): Promise<void>;
  /**
   * Every in-progress file (hidden local temp file, open S3 multipart upload) below `root`, or, when
   * `root` names a single file, that file's own in-progress copies.
   */
  listInProgress(root: string): AsyncIterable<InProgressFile>;
}

/**
 * The one explicit list of stores by scheme (docs/architecture.md, "Storage"): local paths
 * (`file`) and `s3`. Tests may add a scheme with `registerStore`.
 */
const factories = new Map<string, (uri: string) => ObjectStore>([
  ['file', () => localStore],
  ['s3', () => s3Store],
  ['stdin', () => stdinStore],
]);

/** Adds a store for another scheme (tests use it for in-memory stores). */
export function registerStore(scheme: string, factory: (uri: string) => ObjectStore): void {
  factories.set(scheme, factory);
}

/** True if a store is registered for the scheme. */
export function hasStore(scheme: string): boolean {
  return factories.has(scheme);
}

/** The scheme of a URI: `s3` for `s3://b/k`, `stdin` for `-`, `file` for plain paths and `file://`. */
export function schemeOf(uri: string): string {
  if (uri === STDIN_URI) return 'stdin';
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri);
  return m ? m[1].toLowerCase() : 'file';
}

/** The store for a URI. Throws UsageError for an unknown scheme. */
export function storeFor(uri: string): ObjectStore {
  const scheme = schemeOf(uri);
  const f = factories.get(scheme);
  if (!f)
    throw new UsageError(
      `unknown scheme '${scheme}://' in '${uri}'; known: ${[...factories.keys()].map((k) => (k === 'file' ? 'local paths' : k === 'stdin' ? "'-' (stdin)" : `${k}://`)).join(', ')}`,
    );
  return f(uri);
}

/** How messages name an input: `stdin` for `-`, else the URI itself. */
export function displayName(uri: string): string {
  return uri === STDIN_URI ? 'stdin' : uri;
}

/** Joins a URI or path with relative segments using `/`. */
export function joinUri(base: string, ...parts: string[]): string {
  let out = base.replace(/\/+$/, '');
  for (const p of parts) {
    const s = p.replace(/^\/+/, '').replace(/\/+$/, '');
    if (s) out = out === '' ? s : `${out}/${s}`;
  }
  return out;
}

/** The part of `uri` below `root`, without a leading slash. */
export function relativeUri(root: string, uri: string): string {
  const r = root.replace(/\/+$/, '');
  return uri.startsWith(`${r}/`) ? uri.slice(r.length + 1) : uri;
}

/** True when a path has a segment starting with `_` or `.`: hidden from readers, as in Spark and Hive. */
export function isHiddenPath(rel: string): boolean {
  return rel.split('/').some((seg) => seg.startsWith('_') || seg.startsWith('.'));
}

/**
 * How many files a sink finishes, publishes or writes at once (`mapLimit`): enough to keep the
 * libuv thread pool (4 threads) and an object store's connections busy, few enough to bound the
 * open handles and memory.
 */
export const IO_CONCURRENCY = 8;

/**
 * `fn` over `items` with at most `limit` calls in flight, started in item order; the results in
 * item order. On a failure no further call starts, and the first error is thrown once every call
 * already started has settled (so no operation runs on after the caller has seen the error).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let first: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (e) {
        if (!failed) first = e;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw first;
  return out;
}
