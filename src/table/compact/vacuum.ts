/**
 * Deleting removed files (Delta's VACUUM for tombstones): a data file that a `remove` action took
 * out of the table stays on storage, so that readers pinned to an older version can still read it,
 * until its retention has passed (`deletionTimestamp + retain <= now`); then it is deleted, unless
 * a later `add` made the same path live again. Orphaned in-progress files and multipart uploads of
 * crashed writers are the committer's recovery (src/table/sink/committer.ts, `recover`).
 */
import { joinUri, type ObjectStore } from '../../storage/store.js';
import { decodeDeltaPath, readDeltaState } from '../delta.js';

/** A removed file: its log path and when it was removed (epoch ms). */
export interface Tombstone {
  path: string;
  deletionTimestamp: number;
}

/**
 * Every removed file of the table (its `remove` tombstones, from the newest checkpoint and the JSON
 * versions after it) whose path is not live again.
 */
export async function readTombstones(store: ObjectStore, root: string): Promise<Tombstone[]> {
  const s = await readDeltaState(store, root);
  return [...(s?.removes.values() ?? [])].map((r) => ({
    path: r.path,
    deletionTimestamp: r.deletionTimestamp ?? 0,
  }));
}

/**
 * Deletes the tombstoned files whose retention has passed.
 * @param retainMs retention in ms
 * @returns files and bytes deleted
 */
export async function deleteExpired(
  store: ObjectStore,
  root: string,
  tombstones: Tombstone[],
  retainMs: number,
  now = Date.now(),
): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const t of tombstones) {
    if (t.deletionTimestamp + retainMs > now) continue;
    const uri = joinUri(root, decodeDeltaPath(t.path));
    const st = await store.stat(uri);
    if (!st) continue;
    await store.delete(uri);
    files++;
    bytes += st.size;
  }
  return { files, bytes };
}
