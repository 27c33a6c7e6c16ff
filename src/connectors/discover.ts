/**
 * Expands ingest SOURCE arguments into input files: single files, globs, and directories or
 * prefixes walked recursively. Hive-style path segments (`dt=2024-01-01/hr=05`) become fields
 * (values URL-decoded as Hive escapes them). Paths with a segment starting with `_` or `.` are
 * ignored (`_SUCCESS`, `_delta_log`, in-progress files), as Spark and Hive do. A directory holding a
 * `_delta_log` is read as a Delta table: its live files come from the log (adds minus removes).
 */
import { isAbsolute } from 'node:path';
import { UsageError } from '../errors.js';
import { readerForPath } from '../formats/readers.js';
import {
  isHiddenPath,
  joinUri,
  type ObjectStore,
  relativeUri,
  schemeOf,
  storeFor,
} from '../storage/store.js';

export interface InputFile {
  uri: string;
  size: number;
  store: ObjectStore;
  /** Hive partition values from the path below the source root, e.g. `{ dt: '2024-01-01' }`. */
  partitionValues: Record<string, string>;
}

const GLOB = /[*?[\]{}]/;

/** Hive partition fields from a relative path: every directory segment of the form `k=v`. */
export function hivePartitionValues(rel: string): Record<string, string> {
  const out: Record<string, string> = {};
  const segs = rel.split('/');
  for (let i = 0; i < segs.length - 1; i++) {
    const eq = segs[i].indexOf('=');
    if (eq > 0) {
      let v = segs[i].slice(eq + 1);
      try {
        v = decodeURIComponent(v);
      } catch {
        /* keep raw */
      }
      out[segs[i].slice(0, eq)] = v === '__HIVE_DEFAULT_PARTITION__' ? '' : v;
    }
  }
  return out;
}

/**
 * Lists the files of every source, in argument order, each source's files in path order.
 * @param anyExtension accept files of unknown extension (when `--format` is given)
 * @throws UsageError when a source matches no file
 */
export async function discover(sources: string[], anyExtension: boolean): Promise<InputFile[]> {
  const out: InputFile[] = [];
  for (const src of sources) {
    const store = storeFor(src);
    const before = out.length;
    if (schemeOf(src) === 'file' && GLOB.test(src)) {
      const root = src.slice(0, src.search(GLOB)).replace(/[^/]*$/, '');
      // Absolute patterns must yield absolute paths: cwd-relative `../..` paths would look hidden.
      const { glob } = await import('tinyglobby'); // loaded for a glob only (about 15 ms)
      const matches = (
        await glob(src, { onlyFiles: true, dot: false, expandDirectories: false, absolute: isAbsolute(src) })
      ).sort();
      for (const m of matches) {
        const rel = relativeUri(root.replace(/\/$/, '') || '.', m);
        if (isHiddenPath(rel)) continue;
        const st = await store.stat(m);
        if (st) out.push({ uri: m, size: st.size, store, partitionValues: hivePartitionValues(rel) });
      }
    } else if (await isDeltaTable(store, src)) {
      // A table with a Delta log: its live files come from the log, not from listing. The Delta
      // code (with its Parquet checkpoint reader) is loaded for such a table only.
      for (const f of (await (
        await import('../table/delta.js')
      ).deltaLiveFiles(store, src.replace(/\/+$/, ''))) ?? [])
        out.push({ ...f, store });
      if (out.length === before) continue; // an empty table is a valid, empty source
    } else {
      for await (const e of store.list(src)) {
        const rel = relativeUri(src, e.uri);
        if (e.uri !== src && isHiddenPath(rel)) continue;
        if (e.uri !== src && !anyExtension && !readerForPath(e.uri)) continue;
        out.push({
          uri: e.uri,
          size: e.size,
          store,
          partitionValues: e.uri === src ? {} : hivePartitionValues(rel),
        });
      }
    }
    if (out.length === before) throw new UsageError(`no input files found at '${src}'`);
  }
  return out;
}

/** True when `root` is a directory with a Delta log (`_delta_log/00000000000000000000.json`). */
async function isDeltaTable(store: ObjectStore, root: string): Promise<boolean> {
  return (await store.stat(joinUri(root, '_delta_log', '00000000000000000000.json'))) !== undefined;
}
