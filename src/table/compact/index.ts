/**
 * `kappa compact`: atomic small-file compaction of a kappa (Delta) table, safe while a sink appends.
 *
 * One run:
 *  1. recovers what crashed writers left (the table sink's committer: pending commits rolled forward
 *     or discarded, in-progress files of dead runs deleted), then writes its own run marker, so a
 *     sink starting meanwhile leaves this run's in-progress files alone;
 *  2. reads the log and plans bins per partition (plan.ts): only sealed partitions (`_SUCCESS`)
 *     unless `includeOpen`, only partitions selected by `where`;
 *  3. per batch of partitions: rewrites each bin into one new file (rewrite.ts) and commits one
 *     Delta version through the sink's committer (pending record, put-if-absent, publish): `remove`
 *     of every input (`dataChange: false`, with `extendedFileMetadata`) and `add` of every output
 *     (with stats, `dataChange: false`); `--keep-latest-by` changes data, so its actions carry
 *     `dataChange: true`. A reader of the log sees the old files or the new ones, never both.
 *     Conflict check (Delta's ConflictChecker under snapshot isolation, as delta-rs's optimize):
 *     a winning commit that adds files is fine; one that removes an input of this commit aborts
 *     it (CommitConflictError; its outputs are discarded) and the batch is planned again from the
 *     new table state, so a bin whose inputs are gone is no longer planned;
 *  4. deletes the inputs at once when `retainMs` is 0 (glob readers then see exactly the live rows),
 *     and every file removed earlier whose retention has passed (vacuum.ts).
 * A crash at any point leaves the old rows readable through the log; the next run repairs (step 1)
 * and completes the job.
 */
import { randomBytes } from 'node:crypto';
import { RuntimeError, UsageError } from '../../errors.js';
import { compileExpr } from '../../ops/expr.js';
import { joinUri, type ObjectStore } from '../../storage/store.js';
import type { Rec } from '../../stream/protocol.js';
import {
  CommitConflictError,
  columnsFromSchemaString,
  type DeltaAction,
  type DeltaAdd,
  type DeltaRemove,
  readDeltaLog,
  type WinnerCheck,
} from '../delta.js';
import type { Column } from '../schema.js';
import { Committer, crashPoint, type Recovery } from '../sink/committer.js';
import { type Bin, byPartition, type PartitionPlan, planBins, planWholePartition } from './plan.js';
import { type Rewritten, rewriteBin } from './rewrite.js';
import { deleteExpired, readTombstones } from './vacuum.js';

/** Options of one compaction run (flags of kappa-compact(1)). */
export interface CompactOptions {
  /** Bytes (`--target-size`, default 128 MiB). */
  targetSize: number;
  /** `--min-files` (default 2). */
  minFiles: number;
  /** `--where`: a JavaScript expression over the partition values (bare names or `r.NAME`). */
  where?: string;
  includeOpen: boolean;
  dryRun: boolean;
  /** ms (`--retain`, default 0). */
  retainMs: number;
  /** Only vacuum: no compaction. */
  vacuum: boolean;
  keepLatestBy?: string[];
  orderBy?: string;
  /** Event-time column (`--ts-field`); default: the first timestamp, timestamptz or date column. */
  tsField?: string;
  /** Partitions per commit (`--commit-every`, default 16). */
  commitEvery: number;
  /** `--log-checkpoint-interval` (default 10): a log checkpoint after every version that is a multiple. */
  checkpointInterval: number;
}

/** What a run did, for the summary line and tests. */
export interface CompactResult {
  partitions: number;
  filesBefore: number;
  bytesBefore: number;
  filesAfter: number;
  bytesAfter: number;
  rowsBefore: number;
  rowsAfter: number;
  commits: number;
  /** Partitions skipped because they are open (no `_SUCCESS`). */
  open: number;
  /** Batches planned again after a conflicting concurrent commit. */
  conflicts: number;
  deleted: { files: number; bytes: number };
  recovery: Recovery;
  version: number;
  /** The plan (for `--dry-run`). */
  plan: PartitionPlan[];
}

/** Times a batch is planned again after conflicts before the run gives up on it. */
const MAX_REPLANS = 5;

/** The partition filter of `--where`. */
function wherePredicate(
  src: string | undefined,
  columns: string[],
): (pv: Record<string, string | null>) => boolean {
  if (src === undefined) return () => true;
  const ids = columns.filter((c) => /^[A-Za-z_$][\w$]*$/.test(c) && !['r', 'key', 'ts', 'rec'].includes(c));
  const wrapped = `((${ids.join(', ')}) => (${src}))(${ids.map((c) => `r[${JSON.stringify(c)}]`).join(', ')})`;
  const f = compileExpr(wrapped, {}, '--where');
  return (pv) => {
    try {
      return Boolean(f(pv, null, 0, { ts: 0, key: null, value: pv } as unknown as Rec));
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(
        `--where '${src}': ${(e as Error).message} (partition values ${JSON.stringify(pv)})`,
      );
    }
  };
}

/**
 * Compacts (or, with `vacuum`, only vacuums) the table at `root`.
 * @param log progress messages (dry-run plan lines go to `out`)
 * @throws UsageError when `root` is not a kappa table or a flag does not fit it; RuntimeError on
 *   storage failures or repeated conflicts; DataError on unreadable data files
 */
export async function compactTable(
  store: ObjectStore,
  root: string,
  o: CompactOptions,
  out: (line: string) => void = () => {},
): Promise<CompactResult> {
  const res: CompactResult = {
    partitions: 0,
    filesBefore: 0,
    bytesBefore: 0,
    filesAfter: 0,
    bytesAfter: 0,
    rowsBefore: 0,
    rowsAfter: 0,
    commits: 0,
    open: 0,
    conflicts: 0,
    deleted: { files: 0, bytes: 0 },
    recovery: { rolledForward: 0, discarded: 0, inProgressRemoved: 0, foreignRuns: [] },
    version: -1,
    plan: [],
  };
  const first = await readDeltaLog(store, root);
  if (!first?.metaData)
    throw new UsageError(
      `${root}: not a kappa table (no Delta log with a metaData action)`,
      'pass a table directory written by kappa sink',
    );
  const runId = randomBytes(8).toString('hex');
  const committer = new Committer(store, root, runId);
  committer.checkpointInterval = o.checkpointInterval;
  if (!o.dryRun) res.recovery = await committer.recover();
  res.version = first.version;
  if (o.vacuum) {
    const tomb = await readTombstones(store, root);
    if (!o.dryRun) res.deleted = await deleteExpired(store, root, tomb, o.retainMs);
    return res;
  }
  const md = first.metaData;
  const timeCols = (md.configuration['kappa.eventTimePartitionColumns'] ?? '').split(',').filter(Boolean);
  const columns: Column[] = columnsFromSchemaString(md.schemaString, timeCols);
  const tsField =
    o.tsField ??
    columns.find((c) => c.type === 'timestamp' || c.type === 'timestamptz' || c.type === 'date')?.name;
  if (o.tsField && !columns.some((c) => c.name === o.tsField))
    throw new UsageError(
      `--ts-field ${o.tsField}: not a column of ${root} (${columns.map((c) => c.name).join(', ')})`,
    );
  if (md.format.provider !== 'parquet')
    throw new UsageError(
      `${root}: the table holds ${md.format.provider} files; kappa compact rewrites Parquet tables only`,
    );
  const where = wherePredicate(o.where, md.partitionColumns);
  let seq = 0;
  const name = (ext: string): string => `part-${String(seq++).padStart(5, '0')}-${runId}.${ext}`;
  const done = new Set<string>();
  if (!o.dryRun) await committer.start();
  try {
    let replans = 0;
    for (;;) {
      const snap = (await readDeltaLog(store, root)) ?? first;
      res.version = snap.version;
      // Plan every selected partition not handled yet.
      const plans: PartitionPlan[] = [];
      for (const [dir, files] of byPartition(snap.files.values())) {
        if (done.has(dir)) continue;
        done.add(dir);
        const pv = files[0].partitionValues ?? {};
        if (!where(pv)) continue;
        if (!o.includeOpen && !(await store.stat(joinUri(root, dir, '_SUCCESS')))) {
          res.open++;
          continue;
        }
        const bins = o.keepLatestBy ? planWholePartition(files) : planBins(files, o.targetSize, o.minFiles);
        if (bins.length > 0) plans.push({ dir, partitionValues: pv, bins });
        if (plans.length >= o.commitEvery && !o.dryRun) break;
      }
      if (plans.length === 0) break;
      if (o.dryRun) {
        for (const p of plans) {
          res.plan.push(p);
          for (const b of p.bins) {
            out(`${p.dir || '.'}: ${b.files.length} files (${b.bytes} bytes) -> 1 file`);
            count(res, p, b);
            res.filesAfter++;
          }
        }
        continue;
      }
      try {
        await compactBatch(store, root, committer, snap, plans, columns, { ...o, tsField }, name, res);
        replans = 0;
      } catch (e) {
        if (!(e instanceof CommitConflictError)) throw e;
        res.conflicts++;
        if (++replans > MAX_REPLANS)
          throw new RuntimeError(
            `${root}: ${e.message}; gave up after ${MAX_REPLANS} attempts`,
            'run kappa compact again later',
          );
        for (const p of plans) done.delete(p.dir);
      }
    }
    if (!o.dryRun) {
      const snap = (await readDeltaLog(store, root)) ?? first;
      res.version = snap.version;
      const tomb = await readTombstones(store, root);
      const d = await deleteExpired(store, root, tomb, o.retainMs);
      res.deleted.files += d.files;
      res.deleted.bytes += d.bytes;
    }
  } finally {
    if (!o.dryRun) await committer.close();
  }
  return res;
}

function count(res: CompactResult, p: PartitionPlan, b: Bin): void {
  res.filesBefore += b.files.length;
  res.bytesBefore += b.bytes;
  for (const f of b.files) res.rowsBefore += statsRows(f);
  void p;
}

function statsRows(f: DeltaAdd): number {
  try {
    return (JSON.parse(f.stats ?? '{}') as { numRecords?: number }).numRecords ?? 0;
  } catch {
    return 0;
  }
}

/** Rewrites and commits the bins of a batch of partitions in one log version. */
async function compactBatch(
  store: ObjectStore,
  root: string,
  committer: Committer,
  snap: Awaited<ReturnType<typeof readDeltaLog>> & object,
  plans: PartitionPlan[],
  columns: Column[],
  o: CompactOptions,
  name: (ext: string) => string,
  res: CompactResult,
): Promise<void> {
  const outputs: { w: Rewritten; pv: Record<string, string | null> }[] = [];
  const inputs: DeltaAdd[] = [];
  let rowsIn = 0;
  try {
    for (const p of plans)
      for (const b of p.bins) {
        const w = await rewriteBin(store, root, p.dir, name, b, columns, {
          tsField: o.tsField,
          keepLatestBy: o.keepLatestBy,
          orderBy: o.orderBy,
        });
        outputs.push({ w, pv: p.partitionValues });
        inputs.push(...b.files);
        rowsIn += w.rowsIn;
      }
  } catch (e) {
    await Promise.all(outputs.map((x) => x.w.pending.abort().catch(() => {})));
    throw e;
  }
  crashPoint('compact-after-rewrite');
  const dataChange = o.keepLatestBy !== undefined;
  const inputPaths = new Set(inputs.map((f) => f.path));
  const check: WinnerCheck = (won) => {
    for (const a of won) {
      const r = a.remove as DeltaRemove | undefined;
      if (r && inputPaths.has(r.path))
        return `it removed ${r.path}, an input of this compaction; this batch is planned again`;
    }
    return undefined;
  };
  const now = Date.now();
  const version = await committer.commit(
    snap,
    outputs.map(({ w, pv }) => ({
      rel: w.rel,
      pending: w.pending,
      partitionValues: pv,
      stats: w.stats.toJSON(),
    })),
    (adds) => {
      const actions: DeltaAction[] = [];
      for (const f of inputs)
        actions.push({
          remove: {
            path: f.path,
            deletionTimestamp: now,
            dataChange,
            extendedFileMetadata: true,
            partitionValues: f.partitionValues,
            size: f.size,
          },
        });
      for (const add of adds) actions.push({ add: { ...add, dataChange } });
      actions.push({
        commitInfo: {
          timestamp: now,
          operation: 'OPTIMIZE',
          operationParameters: {
            targetSize: String(o.targetSize),
            ...(o.keepLatestBy ? { keepLatestBy: o.keepLatestBy.join(','), orderBy: o.orderBy ?? null } : {}),
          },
          isBlindAppend: false,
          engineInfo: 'kappa/0.1.0',
          'kappa.operation': o.keepLatestBy
            ? `keep-latest-by ${o.keepLatestBy.join(',')}: kept the latest row per key in each partition (by ${o.tsField ?? 'file order'}${o.orderBy ? `, ties by ${o.orderBy}` : ''}), dropped ${rowsIn - outputs.reduce((n, x) => n + x.w.rowsOut, 0)} older rows`
            : 'compact: merged small files, rows unchanged',
        },
      });
      return actions;
    },
    check,
  );
  res.version = version;
  res.commits++;
  crashPoint('compact-before-delete');
  if (o.retainMs === 0)
    for (const f of inputs) {
      await store.delete(joinUri(root, decodePath(f.path)));
      res.deleted.files++;
      res.deleted.bytes += f.size;
    }
  res.partitions += plans.length;
  for (const p of plans) for (const b of p.bins) count(res, p, b);
  res.filesAfter += outputs.length;
  for (const { w } of outputs) {
    res.bytesAfter += w.pending.bytes;
    res.rowsAfter += w.rowsOut;
  }
}

function decodePath(p: string): string {
  return decodeURIComponent(p);
}
