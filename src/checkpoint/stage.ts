/**
 * Checkpointing at a stage after the source (transform, window, join, sink): reads the pipeline
 * info in the upstream header, restores the stage's state from the snapshot the source chose,
 * writes the stage's part of each checkpoint on its barrier, and — at the last stage of the
 * pipeline — completes the checkpoint (`_metadata.json`) and prunes old ones. See layout.ts and
 * snapshot.ts for the files, man kappa-checkpoints.7 for the guarantees.
 */
import type { SinkCheckpointContext } from '../connectors/sink.js';
import { UsageError } from '../errors.js';
import type { OperatorStateSnapshot, SavedOperatorState, SnapshotOptions } from '../ops/operator.js';
import type { Json } from '../state/savepoint/format.js';
import type { Barrier, Header, PipelineInfo } from '../stream/protocol.js';
import { DEFAULT_RETAIN_CHECKPOINTS, retainCheckpoints } from './layout.js';
import type { CheckpointSettings } from './options.js';

/**
 * The snapshot writer and the savepoint reader (hyparquet-writer, the Parquet reader), loaded on
 * first use: a stage that never restores or snapshots does not pay for them at start-up.
 */
const snapshots = () => import('./snapshot.js');
const savepoints = () => import('../state/savepoint/read.js');

const trimSlash = (u: string) => u.replace(/\/+$/, '');

/** Summary counters of a stage's checkpoint parts (`StageCheckpointer.counters`). */
export const PART_COUNTERS = {
  thread: 'checkpoint parts by the part-writer thread',
  stage: 'checkpoint parts on the stage thread',
} as const;

/** The checkpoint state of one stage after the source for one run. */
export class StageCheckpointer {
  private info: PipelineInfo | undefined;
  private myUid = '';
  /** Parts written by the part writer's thread (as that thread reported) and on this stage's thread. */
  private partsByThread = 0;
  private partsOnStage = 0;

  /**
   * Summary counters: where this stage's checkpoint parts were written (`PART_COUNTERS`): by the
   * part writer's thread (the count comes from that thread's answers, which carry its threadId) or
   * on the stage's own thread (a snapshot that is no copy, or `KAPPA_CHECKPOINT_THREAD=0`). Empty
   * when the stage wrote no part.
   */
  counters(): Record<string, number> {
    const c: Record<string, number> = {};
    if (this.partsByThread > 0) c[PART_COUNTERS.thread] = this.partsByThread;
    if (this.partsOnStage > 0) c[PART_COUNTERS.stage] = this.partsOnStage;
    return c;
  }

  /**
   * @param command the command name (the default uid is `<command>-<position>`)
   * @param settings the stage's checkpoint flags (options.ts `checkpointSettings`)
   * @param isLast whether this stage is the pipeline's last (sinks: always; others: when their
   *   stdout is not read by a kappa stage); asked when a checkpoint is to be completed
   * @param note prints one informational line on stderr
   */
  constructor(
    readonly command: string,
    readonly settings: CheckpointSettings,
    private readonly isLast: () => boolean,
    private readonly note: (m: string) => void,
  ) {}

  /** True when the pipeline checkpoints (the upstream header carried pipeline info). */
  get active(): boolean {
    return this.info !== undefined;
  }

  /** This stage's uid (valid once `onHeader` saw pipeline info). */
  get uid(): string {
    return this.myUid;
  }

  /** The pipeline info this stage forwards (undefined when the pipeline does not checkpoint). */
  get pipeline(): PipelineInfo | undefined {
    return this.info;
  }

  /**
   * Takes the upstream header: checks this stage's flags against the source's decisions and
   * returns the pipeline info to forward (this stage's position and uid added), or undefined.
   * @param stateful the stage keeps state that a checkpoint must hold
   * @throws UsageError for a checkpoint flag while the source does not checkpoint, another
   *   checkpoint dir than the source's, a duplicate uid, or a restoring source while this stateful
   *   stage was not told to restore
   */
  onHeader(h: Header, stateful: boolean): PipelineInfo | undefined {
    const s = this.settings;
    const p = h.pipeline;
    if (!p) {
      const given = [
        s.dirFromFlag ? '--checkpoint-dir' : '',
        s.restoreFromFlag ? (s.resume ? '--resume' : '--from-savepoint') : '',
        s.uid !== undefined ? '--uid' : '',
      ].filter(Boolean);
      if (given.length > 0)
        throw new UsageError(
          `${given.join(', ')}: the input stream carries no checkpoint context, so there is nothing to checkpoint or restore`,
          'checkpoints start at the source: give kappa ingest --checkpoint-dir DIR too (or export KAPPA_CHECKPOINT_DIR=DIR for the whole pipeline)',
        );
      return undefined;
    }
    if (s.dir !== undefined && trimSlash(s.dir) !== trimSlash(p.checkpointDir))
      throw new UsageError(
        `the checkpoint dir ${s.dir} is not the source's (${p.checkpointDir})`,
        'every stage of a pipeline uses the same checkpoint dir: export KAPPA_CHECKPOINT_DIR once for all of them',
      );
    const uid = s.uid ?? `${this.command}-${p.stage + 1}`;
    if (p.uids.includes(uid))
      throw new UsageError(
        `two stages of the pipeline have the uid '${uid}'`,
        'give each stage its own --uid',
      );
    if (p.restore && stateful && !s.resume && s.fromSavepoint === undefined)
      throw new UsageError(
        `the source restored ${p.restore.type} ${p.restore.path}, but this stage was started without --resume or --from-savepoint, so its state would start empty`,
        'give every stage --resume (or export KAPPA_RESUME=1 for the whole pipeline)',
      );
    if (
      p.restore &&
      s.fromSavepoint !== undefined &&
      trimSlash(s.fromSavepoint) !== trimSlash(p.restore.path)
    )
      throw new UsageError(
        `--from-savepoint ${s.fromSavepoint} differs from the source's ${p.restore.path}`,
        'give every stage the same savepoint (export KAPPA_FROM_SAVEPOINT once)',
      );
    this.myUid = uid;
    this.info = { ...p, stage: p.stage + 1, uids: [...p.uids, uid] };
    return this.info;
  }

  /**
   * Restores this stage's state from the snapshot the source chose (if any) into `target`. The last
   * stage also checks that every operator state in the snapshot is claimed by a stage.
   * @param target the operator (undefined for a stateless stage)
   * @throws UsageError when the snapshot holds state for this stage's uid while it keeps none, or
   *   state of a uid no stage claims; DataError from the operator when the state does not fit
   */
  async restore(target?: { restore?(saved: SavedOperatorState): Promise<void> }): Promise<void> {
    const r = this.info?.restore;
    if (!r || !this.info) return;
    const sp = await (await savepoints()).openSavepoint(r.path);
    const om = sp.operator(this.myUid);
    if (om && !target?.restore)
      throw new UsageError(
        `${r.path} holds state of '${this.myUid}' (${om.kind}), but this stage keeps no state`,
        `give the stage that owns it --uid ${this.myUid}, or remove it with \`kappa state-edit drop-operator\``,
      );
    if (om && target?.restore) {
      await target.restore({
        states: om.states,
        operatorState: om.operatorState,
        entries: sp.entries(this.myUid),
        maxKeyGroups: sp.metadata.maxKeyGroups,
      });
      this.note(`restored ${om.entries.toLocaleString('en-US')} state entries of '${this.myUid}'`);
    } else if (target?.restore) this.note(`no state of '${this.myUid}' in ${r.path}: starting empty`);
    if (this.isLast()) {
      const uids = this.info.uids;
      const orphans = sp.metadata.operators.filter((o) => !uids.includes(o.uid)).map((o) => o.uid);
      if (orphans.length > 0)
        throw new UsageError(
          `${r.path} holds state of ${orphans.map((u) => `'${u}'`).join(', ')}, which no stage of this pipeline claims (stages: ${uids.join(', ')})`,
          'give the stage that owns it that --uid, or rename/drop it with `kappa state-edit rename-operator` / `drop-operator`',
        );
    }
  }

  /**
   * Handles barrier `b` before it is forwarded: writes this stage's state part (when `snapshot` is
   * given) and returns the barrier to forward (with this stage's uid in `operators`).
   */
  async barrier(b: Barrier, snapshot?: () => Promise<OperatorStateSnapshot>): Promise<Barrier> {
    if (!this.info || !b.path || !snapshot) return b;
    const { maxKeyGroups, ...snap } = await snapshot();
    await (await snapshots()).writeOperatorPart(b.path, { uid: this.myUid, ...snap }, maxKeyGroups);
    this.partsOnStage++;
    return { ...b, operators: [...(b.operators ?? []), this.myUid] };
  }

  /**
   * Handles barrier `b` as `barrier` does, but when the operator's snapshot is already a copy
   * (`columns`: nothing in it depends on the live state any more) the part is written in the
   * background (Flink's asynchronous snapshot phase): `background` is then true and the caller may
   * go on processing records while `written` is pending. Either way, `written` resolves to the
   * barrier to forward once the part (`<uid>/kg-*.parquet`, then `_parts/<uid>.json`) is durable;
   * the caller must not forward the barrier, nor anything it emits after it, before that, so no
   * later stage and no sink can commit an epoch whose state is not written.
   */
  async barrierAsync(
    b: Barrier,
    snapshot?: (opts?: SnapshotOptions) => Promise<OperatorStateSnapshot>,
  ): Promise<{ background: boolean; written: Promise<Barrier> }> {
    if (!this.info || !b.path || !snapshot) return { background: false, written: Promise.resolve(b) };
    const thread = process.env.KAPPA_CHECKPOINT_THREAD !== '0';
    const { maxKeyGroups, ...snap } = await snapshot({ deferColumns: thread });
    const path = b.path;
    const done = (): Barrier => ({ ...b, operators: [...(b.operators ?? []), this.myUid] });
    if (thread && (snap.columns !== undefined || snap.windowRows !== undefined)) {
      // A copy: encoded and written in the part writer's thread (part-worker.ts) while this thread
      // goes on reading its input.
      const { entries: _unread, ...copy } = snap;
      const written = import('./part-writer.js')
        .then((m) => m.writePartInWorker(path, { uid: this.myUid, ...copy }, maxKeyGroups))
        .then((w) => {
          if (w.threadId !== 0) this.partsByThread++;
          else this.partsOnStage++;
          return done();
        });
      return { background: true, written };
    }
    const written = snapshots()
      .then((m) => m.writeOperatorPart(path, { uid: this.myUid, ...snap }, maxKeyGroups))
      .then(() => {
        this.partsOnStage++;
        return done();
      });
    return { background: snap.columns !== undefined, written };
  }

  /** The sink's context (appId and the restored checkpoint), or undefined without checkpoints. */
  sinkContext(): SinkCheckpointContext | undefined {
    if (!this.info) return undefined;
    return {
      appId: `${this.info.id}.${this.myUid}`,
      restoredCheckpoint: this.info.restore?.checkpointId ?? null,
    };
  }

  /** Records a sink's commit descriptor in snapshot `b.path` (before the sink commits epoch `b.id`). */
  async sinkPart(b: Barrier, target: string, descriptor: Json | undefined): Promise<void> {
    if (!this.info || !b.path || descriptor === undefined) return;
    await (await snapshots()).writeSinkPart(b.path, { uid: this.myUid, target, descriptor });
  }

  /**
   * After barrier `b` was forwarded (and, at a sink, committed): the last stage completes the
   * snapshot and prunes old checkpoints.
   * @returns true when this stage completed it
   */
  async complete(b: Barrier): Promise<boolean> {
    if (!this.info || !b.path || !this.isLast()) return false;
    await (await snapshots()).completeSnapshot(b.path, b.operators ?? []);
    if (b.type !== 'savepoint')
      await retainCheckpoints(
        this.info.checkpointDir,
        this.info.retainCheckpoints ?? DEFAULT_RETAIN_CHECKPOINTS,
      );
    return true;
  }
}
