/**
 * The checkpoint directory (`--checkpoint-dir`, default `$KAPPA_CHECKPOINT_DIR`; man
 * kappa-checkpoints.7). One directory per pipeline, local or `s3://`:
 *
 *   _pipeline.json                     `{"pipeline":"<uuid>","createdAt":"<ISO>"}`: the pipeline's
 *                                      uid, created (put-if-absent) by the source on its first run
 *   chk-0000000001/                    checkpoint 1, in the savepoint format (man kappa-savepoint.5)
 *     _parts/_barrier.json             written by the source before it emits the barrier: id, type,
 *                                      source positions and watermarks, pipeline id, key groups
 *     <uid>/kg-NNNNN-NNNNN.parquet     a stateful stage's keyed state
 *     _parts/<uid>.json                that stage's `_metadata.json` operator entry (after its files)
 *     _parts/<uid>.sink.json           a sink's commit descriptor (written before its commit)
 *     _metadata.json                   written last, by the last stage after the sink committed:
 *                                      its presence makes the checkpoint complete
 *   savepoints/savepoint-<id>-<time>/  stop-with-savepoint, same layout (default `--savepoint-dir`)
 *
 * Checkpoint ids increase within a directory: a run continues after the largest id present, so a
 * crashed run's half-written checkpoint is never reused.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { DataError } from '../errors.js';
import { METADATA_FILE } from '../state/savepoint/format.js';
import { joinUri, relativeUri, schemeOf, storeFor } from '../storage/store.js';

/** Name of the pipeline-id file in the checkpoint directory. */
export const PIPELINE_FILE = '_pipeline.json';
/** Directory below a snapshot that holds the stages' parts until `_metadata.json` assembles them. */
export const PARTS_DIR = '_parts';
/** The source's part: the barrier as the source emitted it. */
export const BARRIER_PART = '_barrier.json';
/** Default number of complete checkpoints kept (`--retain-checkpoints`). */
export const DEFAULT_RETAIN_CHECKPOINTS = 3;

/** The directory of checkpoint `id` below `dir`: `chk-` and the id in 10 digits (lists in order). */
export function checkpointUri(dir: string, id: number): string {
  return joinUri(dir, `chk-${String(id).padStart(10, '0')}`);
}

/**
 * The directory of a new savepoint: `<savepointDir>/savepoint-<id>-<UTC time, yyyymmddThhmmssZ>`.
 * @param now epoch ms
 */
export function savepointUri(savepointDir: string, id: number, now = Date.now()): string {
  const t = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return joinUri(savepointDir, `savepoint-${id}-${t}`);
}

/**
 * The pipeline uid recorded in `dir`; with `create`, writes a new one first if there is none (put
 * if absent, so two racing first runs agree).
 * @returns undefined when there is none and `create` is false
 * @throws DataError when `_pipeline.json` is unreadable
 */
export async function pipelineId(dir: string, create: boolean): Promise<string | undefined> {
  const store = storeFor(dir);
  const uri = joinUri(dir, PIPELINE_FILE);
  if (create && !(await store.stat(uri)))
    await store.put(
      uri,
      `${JSON.stringify({ pipeline: randomUUID(), createdAt: new Date().toISOString() })}\n`,
      { ifAbsent: true },
    );
  if (!(await store.stat(uri))) return undefined;
  try {
    const o = JSON.parse(Buffer.from(await store.read(uri)).toString('utf8')) as { pipeline?: unknown };
    if (typeof o.pipeline === 'string' && o.pipeline.length > 0) return o.pipeline;
  } catch {}
  throw new DataError(
    `${uri}: not a kappa pipeline file`,
    'the checkpoint directory is damaged; point --checkpoint-dir at a new directory',
  );
}

/** A checkpoint found in the checkpoint directory. */
export interface CheckpointListing {
  id: number;
  uri: string;
  /** `_metadata.json` exists. */
  complete: boolean;
  /** Every object below it (for retention). */
  files: string[];
}

/** Lists the checkpoints in `dir`, oldest first. */
export async function listCheckpoints(dir: string): Promise<CheckpointListing[]> {
  // A local directory that does not exist yet holds no checkpoints (object stores list nothing).
  if (schemeOf(dir) === 'file' && !existsSync(dir.replace(/^file:\/\//, ''))) return [];
  const store = storeFor(dir);
  const byId = new Map<number, CheckpointListing>();
  for await (const e of store.list(dir)) {
    const rel = relativeUri(dir, e.uri);
    const m = /^chk-(\d{10})\/(.*)$/.exec(rel);
    if (!m) continue;
    const id = Number(m[1]);
    let c = byId.get(id);
    if (!c) {
      c = { id, uri: checkpointUri(dir, id), complete: false, files: [] };
      byId.set(id, c);
    }
    c.files.push(e.uri);
    if (m[2] === METADATA_FILE) c.complete = true;
  }
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/**
 * Deletes every checkpoint of `dir` but the newest `keep` complete ones; incomplete checkpoints
 * older than the newest complete one go too (a crashed run's leftovers). Never touches savepoints.
 * @returns the ids deleted
 */
export async function retainCheckpoints(dir: string, keep: number): Promise<number[]> {
  const all = await listCheckpoints(dir);
  const complete = all.filter((c) => c.complete);
  if (complete.length === 0) return [];
  const kept = new Set(complete.slice(-Math.max(1, keep)).map((c) => c.id));
  const newest = complete[complete.length - 1].id;
  const store = storeFor(dir);
  const gone: number[] = [];
  for (const c of all) {
    if (kept.has(c.id) || c.id > newest) continue;
    // `_metadata.json` first: a checkpoint half deleted must not look complete.
    const meta = c.files.filter((f) => f.endsWith(`/${METADATA_FILE}`));
    for (const f of [...meta, ...c.files.filter((x) => !meta.includes(x))]) await store.delete(f);
    // Local directories stay behind empty after their files are deleted.
    if (schemeOf(c.uri) === 'file') rmSync(c.uri.replace(/^file:\/\//, ''), { recursive: true, force: true });
    gone.push(c.id);
  }
  return gone;
}
