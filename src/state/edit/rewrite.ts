/**
 * Writing an edited copy of a savepoint (`kappa state-edit` verbs that change something): the
 * source savepoint is only read; the copy is a new savepoint (writeSavepoint: fresh files, fresh
 * SHA-256 checksums, `_metadata.json` last) with the source's pipeline, type, checkpoint id and
 * key groups per file, unless the edit says otherwise.
 */
import { existsSync, rmSync } from 'node:fs';
import { UsageError } from '../../errors.js';
import { schemeOf, storeFor } from '../../storage/store.js';
import type { OperatorMetadata, SavepointMetadata, SourceSnapshot } from '../savepoint/format.js';
import type { Savepoint } from '../savepoint/read.js';
import { type OperatorSnapshotInput, writeSavepoint } from '../savepoint/write.js';

/** An operator of the copy: the source's operator (by `from` uid) with what the edit replaces. */
export type OperatorEdit = Partial<Omit<OperatorSnapshotInput, 'uid'>> & { uid: string; from?: string };

/** What changes between the source savepoint and its copy. */
export interface SavepointEdit {
  maxKeyGroups?: number;
  sources?: SourceSnapshot[];
  /**
   * The copy's operators, in order; an operator given only as `{uid}` (or `{uid, from}`) is copied
   * from the source's operator `from ?? uid`. Default: every operator of the source, unchanged.
   */
  operators?: OperatorEdit[];
}

/**
 * Refuses an output that exists: edits never overwrite, and never write in place.
 * @throws UsageError when `out` exists (a local path) or has objects below it (s3://)
 */
export async function checkNewOutput(out: string | undefined, verb: string): Promise<string> {
  if (!out)
    throw new UsageError(
      `state-edit ${verb}: -o NEW_SAVEPOINT is required (edits never change a savepoint in place)`,
    );
  const exists =
    schemeOf(out) === 'file'
      ? existsSync(out.replace(/^file:\/\//, ''))
      : await (async () => {
          for await (const _ of storeFor(out).list(out)) return true;
          return false;
        })();
  if (exists)
    throw new UsageError(
      `state-edit ${verb}: ${out} already exists`,
      'give -o a path that does not exist yet',
    );
  return out;
}

/** The source's operator `uid` as writer input (its entries streamed from the source). */
export function copyOperator(sp: Savepoint, op: OperatorMetadata): OperatorSnapshotInput {
  return {
    uid: op.uid,
    kind: op.kind,
    states: op.states,
    watermark: op.watermark,
    operatorState: op.operatorState,
    entries: sp.entries(op.uid),
  };
}

/**
 * Removes what a failed edit wrote below `out` (which did not exist before: checkNewOutput), so the
 * same command can be rerun once the cause is fixed. Errors while cleaning up are ignored.
 */
export async function removeOutput(out: string): Promise<void> {
  try {
    if (schemeOf(out) === 'file') {
      rmSync(out.replace(/^file:\/\//, ''), { recursive: true, force: true });
      return;
    }
    const store = storeFor(out);
    const uris: string[] = [];
    for await (const o of store.list(out)) uris.push(o.uri);
    for (const u of uris) await store.delete(u);
  } catch {
    // best effort: the error that made the edit fail is the one to report
  }
}

/**
 * Writes the edited copy of `sp` to `out`; on failure removes what it wrote (removeOutput).
 * @returns the copy's metadata
 * @throws UsageError when an operator to copy does not exist in the source; what writeSavepoint
 *   throws (an existing output, entries in the wrong key group or order)
 */
export async function writeEdited(
  sp: Savepoint,
  out: string,
  edit: SavepointEdit,
): Promise<SavepointMetadata> {
  const m = sp.metadata;
  const edits: OperatorEdit[] = edit.operators ?? m.operators.map((o) => ({ uid: o.uid }));
  const ops = edits.map((e): OperatorSnapshotInput => {
    const base = sp.operator(e.from ?? e.uid);
    if (!base && (e.kind === undefined || e.states === undefined || e.entries === undefined))
      throw new UsageError(`savepoint ${sp.uri} has no operator '${e.from ?? e.uid}'`);
    const copy = base ? copyOperator(sp, base) : undefined;
    const { from: _from, ...rest } = e;
    return { ...(copy as OperatorSnapshotInput), ...rest };
  });
  try {
    return await writeSavepoint(
      out,
      {
        metadata: {
          pipeline: m.pipeline,
          maxKeyGroups: edit.maxKeyGroups ?? m.maxKeyGroups,
          type: m.type,
          checkpointId: m.checkpointId,
          sources: edit.sources ?? m.sources,
        },
        operators: ops,
      },
      { keyGroupsPerFile: m.keyGroupsPerFile },
    );
  } catch (e) {
    await removeOutput(out);
    throw e;
  }
}
