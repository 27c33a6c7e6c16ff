/**
 * The parts of one checkpoint or savepoint that the stages of a pipeline write, and their assembly
 * into `_metadata.json` (layout in layout.ts; format in man kappa-savepoint.5):
 *
 * 1. the source writes `_parts/_barrier.json` (`BarrierPart`), then emits the barrier;
 * 2. each stateful stage, on the barrier, writes its keyed state and `_parts/<uid>.json`, then
 *    forwards the barrier with its uid appended to `operators`;
 * 3. the sink writes `_parts/<uid>.sink.json` (`SinkPart`) and commits epoch N;
 * 4. the last stage writes `_metadata.json` (put-if-absent): the checkpoint is complete.
 *
 * A crash between 3 and 4 leaves a committed epoch without `_metadata.json`; `--resume` asks the sink
 * target (`SinkTarget.committedEpoch`) and completes such a checkpoint from its parts (resume.ts).
 */
import { DataError, RuntimeError, UsageError } from '../errors.js';
import { DEFAULT_MAX_KEY_GROUPS, KEY_GROUP_HASH } from '../state/keygroup.js';
import {
  DEFAULT_KEY_GROUPS_PER_FILE,
  type Json,
  METADATA_FILE,
  type OperatorMetadata,
  SAVEPOINT_FORMAT,
  SAVEPOINT_FORMAT_VERSION,
  type SavepointMetadata,
  type SourceSnapshot,
} from '../state/savepoint/format.js';
import { type OperatorSnapshotInput, writeOperatorState } from '../state/savepoint/write.js';
import { joinUri, storeFor } from '../storage/store.js';
import { BARRIER_PART, PARTS_DIR } from './layout.js';

/** `_parts/_barrier.json`: the barrier as the source emitted it, with what completion needs. */
export interface BarrierPart {
  id: number;
  type: 'checkpoint' | 'savepoint';
  pipeline: string;
  sources: SourceSnapshot[];
  /** ISO 8601 UTC. */
  createdAt: string;
}

/** `_parts/<uid>.json`: a stateful stage's operator entry and the key-group count of its state. */
export interface OperatorPart extends OperatorMetadata {
  maxKeyGroups: number;
}

/** `_parts/<uid>.sink.json`: which target a sink committed to and what its probe needs. */
export interface SinkPart {
  uid: string;
  /** `SinkTarget.name` of the target. */
  target: string;
  /** The sink's `commitDescriptor()`. */
  descriptor: Json;
}

async function putJson(uri: string, v: unknown): Promise<void> {
  await storeFor(uri).put(uri, `${JSON.stringify(v, null, 2)}\n`);
}

async function getJson<T>(uri: string): Promise<T | undefined> {
  const store = storeFor(uri);
  if (!(await store.stat(uri))) return undefined;
  try {
    return JSON.parse(Buffer.from(await store.read(uri)).toString('utf8')) as T;
  } catch (e) {
    throw new DataError(`${uri}: not JSON (${(e as Error).message})`, 'the checkpoint is damaged');
  }
}

/** Writes the source's part of snapshot `path` (before the barrier is emitted). */
export async function writeBarrierPart(path: string, part: BarrierPart): Promise<void> {
  await putJson(joinUri(path, PARTS_DIR, BARRIER_PART), part);
}

/** Reads the source's part of snapshot `path`, or undefined when there is none. */
export function readBarrierPart(path: string): Promise<BarrierPart | undefined> {
  return getJson<BarrierPart>(joinUri(path, PARTS_DIR, BARRIER_PART));
}

/**
 * Writes a stateful stage's part of snapshot `path`: its keyed state files, then `_parts/<uid>.json`.
 * @throws RuntimeError / UsageError from the savepoint writer
 */
export async function writeOperatorPart(
  path: string,
  op: OperatorSnapshotInput,
  maxKeyGroups: number,
): Promise<OperatorMetadata> {
  const meta = await writeOperatorState(path, op, maxKeyGroups);
  const part: OperatorPart = { ...meta, maxKeyGroups };
  await putJson(joinUri(path, PARTS_DIR, `${op.uid}.json`), part);
  return meta;
}

/** Writes a sink's part (its commit descriptor) of snapshot `path`, before its commit. */
export async function writeSinkPart(path: string, part: SinkPart): Promise<void> {
  await putJson(joinUri(path, PARTS_DIR, `${part.uid}.sink.json`), part);
}

/** The sink parts of snapshot `path`. */
export async function readSinkParts(path: string): Promise<SinkPart[]> {
  const store = storeFor(path);
  const dir = joinUri(path, PARTS_DIR);
  const out: SinkPart[] = [];
  for await (const e of store.list(dir))
    if (e.uri.endsWith('.sink.json')) {
      const p = await getJson<SinkPart>(e.uri);
      if (p) out.push(p);
    }
  return out;
}

/** The uids of the stateful stages that wrote a part of snapshot `path`. */
export async function operatorPartUids(path: string): Promise<string[]> {
  const store = storeFor(path);
  const uids: string[] = [];
  for await (const e of store.list(joinUri(path, PARTS_DIR))) {
    const name = e.uri.slice(e.uri.lastIndexOf('/') + 1);
    if (name.endsWith('.json') && !name.endsWith('.sink.json') && name !== BARRIER_PART)
      uids.push(name.slice(0, -'.json'.length));
  }
  return uids;
}

/**
 * Completes snapshot `path`: reads the source's part and the parts of `operators` and writes
 * `_metadata.json` (put-if-absent; a snapshot completed already is left as it is).
 * @returns the metadata now in place
 * @throws RuntimeError when a part is missing (a stage did not write its snapshot)
 */
export async function completeSnapshot(
  path: string,
  operators: readonly string[],
): Promise<SavepointMetadata> {
  const metaUri = joinUri(path, METADATA_FILE);
  const existing = await getJson<SavepointMetadata>(metaUri);
  if (existing) return existing;
  const barrier = await readBarrierPart(path);
  if (!barrier)
    throw new RuntimeError(`${path}: the source's part (${PARTS_DIR}/${BARRIER_PART}) is missing`);
  const ops: OperatorMetadata[] = [];
  let maxKeyGroups: number | undefined;
  for (const uid of operators) {
    const part = await getJson<OperatorPart>(joinUri(path, PARTS_DIR, `${uid}.json`));
    if (!part) throw new RuntimeError(`${path}: the part of stage '${uid}' is missing`);
    const { maxKeyGroups: n, ...m } = part;
    if (maxKeyGroups !== undefined && n !== maxKeyGroups)
      throw new UsageError(
        `stage '${uid}' keeps its state in ${n} key groups, another stage in ${maxKeyGroups}`,
        'give every stateful stage of a pipeline the same --max-key-groups',
      );
    maxKeyGroups = n;
    ops.push(m);
  }
  const meta: SavepointMetadata = {
    format: SAVEPOINT_FORMAT,
    formatVersion: SAVEPOINT_FORMAT_VERSION,
    type: barrier.type,
    checkpointId: barrier.id,
    createdAt: barrier.createdAt,
    pipeline: barrier.pipeline,
    maxKeyGroups: maxKeyGroups ?? DEFAULT_MAX_KEY_GROUPS,
    keyGroupHash: KEY_GROUP_HASH,
    keyGroupsPerFile: DEFAULT_KEY_GROUPS_PER_FILE,
    sources: barrier.sources,
    operators: ops,
  };
  const store = storeFor(metaUri);
  if (!(await store.put(metaUri, `${JSON.stringify(meta, null, 2)}\n`, { ifAbsent: true }))) {
    const now = await getJson<SavepointMetadata>(metaUri);
    if (now) return now;
  }
  return meta;
}
