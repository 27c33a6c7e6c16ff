/**
 * Checkpointing at the source stage (ingest, replay): where a run starts (`--resume`,
 * `--from-savepoint`), the pipeline info its header carries, and the barriers it emits
 * (`--checkpoint-interval`, stop-with-savepoint). The source decides for the whole pipeline: the
 * snapshot to restore and the checkpoint ids travel downstream in the header and the barriers, so
 * every stage restores the same checkpoint even while a sink completes another one.
 */
import { randomUUID } from 'node:crypto';
import type { SourcePosition } from '../connectors/source.js';
import { DataError, UsageError } from '../errors.js';
import { finiteOrNull, METADATA_FILE, type SavepointMetadata } from '../state/savepoint/format.js';
import { openSavepoint } from '../state/savepoint/read.js';
import { joinUri, storeFor } from '../storage/store.js';
import type { Barrier, PipelineInfo } from '../stream/protocol.js';
import { parseDuration } from '../time/duration.js';
import {
  type FollowTrigger,
  isJoinRightInput,
  readTrigger,
  removeTrigger,
  TRIGGER_POLL_MS,
} from './follow.js';
import {
  checkpointUri,
  DEFAULT_RETAIN_CHECKPOINTS,
  listCheckpoints,
  pipelineId,
  savepointUri,
} from './layout.js';
import { checkpointSettings, type SourceCheckpointFlags } from './options.js';
import {
  completeSnapshot,
  operatorPartUids,
  readSinkParts,
  type SinkPart,
  writeBarrierPart,
} from './snapshot.js';

/** Flink's `execution.checkpointing.timeout` default: a checkpoint not complete after 10 min is given up. */
export const DEFAULT_CHECKPOINT_TIMEOUT_MS = 600_000;

/**
 * How periodic checkpoints are paced (Flink's max-concurrent-checkpoints 1, `checkpointing.timeout`
 * and `checkpointing.min-pause`).
 */
export interface CheckpointPacing {
  /** A checkpoint in flight longer than this (ms) is given up: the next tick may start another. */
  timeoutMs: number;
  /** Minimum time (ms) between a checkpoint's completion (as the source sees it) and the next start. */
  minPauseMs: number;
}

/** Summary counters of a source's periodic checkpoints (`SourceCheckpointer.counters`). */
export const CHECKPOINT_COUNTERS = {
  taken: 'checkpoints taken',
  skipped: 'checkpoint ticks skipped (one in flight)',
  expired: 'checkpoints expired',
} as const;

/** A snapshot to restore from. */
export interface RestorePoint {
  /** The snapshot directory (URI). */
  path: string;
  checkpointId: number | null;
  type: 'checkpoint' | 'savepoint';
  metadata: SavepointMetadata;
}

/**
 * The newest epoch the sink described by a sink part committed (`SinkTarget.committedEpoch`), or
 * null; undefined when no target can answer for it. Built by the command from connectors/index.ts.
 */
export type SinkProbe = (part: SinkPart) => Promise<number | null | undefined>;

/**
 * The newest complete checkpoint in `dir`. A checkpoint without `_metadata.json` whose every sink
 * reports the epoch committed (a crash between the sink's commit and the completion) is completed
 * from its parts first and chosen: its output is already in the sink, so restoring an older one
 * would write it twice.
 * @param note prints one informational line
 */
export async function findRestorePoint(
  dir: string,
  probe: SinkProbe,
  note: (m: string) => void,
): Promise<RestorePoint | undefined> {
  const all = await listCheckpoints(dir);
  for (let i = all.length - 1; i >= 0; i--) {
    const c = all[i];
    if (!c.complete) {
      const sinks = await readSinkParts(c.uri);
      if (sinks.length === 0) continue;
      let committed = true;
      for (const s of sinks) {
        const e = await probe(s);
        if (e === undefined || e === null || e < c.id) committed = false;
      }
      if (!committed) continue;
      await completeSnapshot(c.uri, await operatorPartUids(c.uri));
      note(
        `checkpoint ${c.id} was committed by the sink but not marked complete (a crash in between): completed it`,
      );
    }
    const sp = await openSavepoint(c.uri);
    return { path: c.uri, checkpointId: c.id, type: 'checkpoint', metadata: sp.metadata };
  }
  return undefined;
}

/** The checkpoint state of a source stage for one run. */
export class SourceCheckpointer {
  private nextId: number;
  constructor(
    /** The checkpoint directory. */
    readonly dir: string,
    /** The source stage's uid. */
    readonly uid: string,
    /** The pipeline's uid. */
    readonly pipeline: string,
    /** Where stop-with-savepoint writes. */
    readonly savepointDir: string,
    /** `--checkpoint-interval` in ms, or undefined for none. */
    readonly intervalMs: number | undefined,
    /** Complete checkpoints kept. */
    readonly retain: number,
    /** What this run restored from, if anything. */
    readonly restore: RestorePoint | undefined,
    firstId: number,
    /** `--savepoint-at-end`. */
    readonly savepointAtEnd: boolean,
    /** `--stop-at` in epoch ms. */
    readonly stopAt: number | undefined,
    /** Prints one informational line. */
    private readonly note: (m: string) => void,
    /**
     * Set when this source follows another source's checkpoints (the right input of a join,
     * follow.ts): the run's trigger name. A follower never starts a checkpoint itself.
     */
    readonly followerRun?: string,
    /** Pacing of periodic checkpoints (timeout, minimum pause). */
    readonly pacing: CheckpointPacing = { timeoutMs: DEFAULT_CHECKPOINT_TIMEOUT_MS, minPauseMs: 0 },
  ) {
    this.nextId = firstId;
    this.probeEveryMs = Math.min(Math.max(Math.floor((intervalMs ?? 0) / 4), 5), 1000);
  }

  /**
   * The periodic checkpoint in flight: started, not yet seen complete (its `_metadata.json`) nor
   * given up. At most one: while it is in flight, ticks are skipped.
   */
  private inFlight: { id: number; path: string; since: number } | undefined;
  /** A completion probe (a stat of `_metadata.json`) is running. */
  private probing = false;
  /** When the probe whose answer is the latest started (callers' clock). */
  private answeredFrom = Number.NEGATIVE_INFINITY;
  private lastProbeAt = 0;
  private readonly probeEveryMs: number;
  /** When the source last saw a periodic checkpoint complete (epoch ms). */
  private completedAt = Number.NEGATIVE_INFINITY;
  private taken = 0;
  private skipped = 0;
  private expired = 0;
  private warnedExpired = false;

  /**
   * Summary counters of the periodic checkpoints (CHECKPOINT_COUNTERS: taken, ticks skipped because
   * one was in flight, given up after `--checkpoint-timeout`); empty without `--checkpoint-interval`.
   */
  counters(): Record<string, number> {
    if (this.intervalMs === undefined || this.followerRun !== undefined) return {};
    const c: Record<string, number> = { [CHECKPOINT_COUNTERS.taken]: this.taken };
    if (this.skipped > 0) c[CHECKPOINT_COUNTERS.skipped] = this.skipped;
    if (this.expired > 0) c[CHECKPOINT_COUNTERS.expired] = this.expired;
    return c;
  }

  /**
   * Looks, without waiting, whether the checkpoint in flight is complete: starts a stat of its
   * `_metadata.json` (at most one at a time; at most every `probeEveryMs` unless `force`); its
   * answer clears `inFlight` when the file is there, and either way records, as `answeredFrom`,
   * the time (on the callers' clock) the answered stat started. A stat that never answers only
   * keeps the next checkpoint from starting (until the timeout), never the source.
   */
  private probe(now: number, force = false): void {
    const f = this.inFlight;
    if (!f || this.probing || (!force && now - this.lastProbeAt < this.probeEveryMs)) return;
    this.probing = true;
    this.lastProbeAt = now;
    const meta = joinUri(f.path, METADATA_FILE);
    storeFor(meta)
      .stat(meta)
      .then(
        (e) => {
          if (this.inFlight !== f) return;
          this.answeredFrom = now;
          if (e) {
            this.inFlight = undefined;
            this.completedAt = Date.now();
          }
        },
        () => {}, // unreadable now: looked at again at the next probe
      )
      .finally(() => {
        this.probing = false;
      });
  }

  private lastPoll = 0;
  private lastTriggered = 0;

  /**
   * A follower's pending trigger: barrier N the join asked for and this source has not emitted
   * yet (polled at most every TRIGGER_POLL_MS), else undefined. Always undefined for a coordinator.
   */
  async triggered(now = Date.now()): Promise<FollowTrigger | undefined> {
    if (this.followerRun === undefined || now - this.lastPoll < TRIGGER_POLL_MS) return undefined;
    this.lastPoll = now;
    const t = await readTrigger(this.dir, this.followerRun);
    if (!t || t.id <= this.lastTriggered) return undefined;
    this.lastTriggered = t.id;
    return t;
  }

  /**
   * A follower's barrier for trigger `t`: its positions, no part written (the join adds them to
   * the coordinator's `_barrier.json`). With `t` undefined: the positions at the end of input, for
   * the end line (id 0, no path; the join merges them into the checkpoints that follow).
   */
  followerBarrier(
    t: FollowTrigger | undefined,
    positions: (SourcePosition | undefined)[],
    watermark: number,
  ): Barrier {
    const sources = positions.map((p, i) => ({
      uid: this.sourceUid(i),
      positions: (p ?? null) as SavepointMetadata['sources'][number]['positions'],
      watermark: finiteOrNull(watermark),
    }));
    return t
      ? { id: t.id, type: t.type, path: t.path, sources, operators: [] }
      : { id: 0, type: 'checkpoint', sources, operators: [] };
  }

  /** A follower removes its trigger file at exit (best effort). */
  async closeFollower(): Promise<void> {
    if (this.followerRun !== undefined) await removeTrigger(this.dir, this.followerRun);
  }

  private lastBarrierAt = Date.now();

  /** The uid of source `i` of this stage: the stage uid for the first, `<uid>.<i>` for others. */
  sourceUid(i: number): string {
    return i === 0 ? this.uid : `${this.uid}.${i}`;
  }

  /**
   * Where source `i` starts: its position in the restored snapshot, or undefined for a fresh start
   * (no snapshot, or a source the snapshot does not know: a new source uid starts from its
   * beginning, as a new operator does in Flink — how a job bootstrapped from history with
   * `--savepoint-at-end` goes on with another input).
   * @throws DataError when the saved position is not a source position
   */
  startAt(i: number): SourcePosition | undefined {
    if (!this.restore) return undefined;
    const uid = this.sourceUid(i);
    const s = this.restore.metadata.sources.find((x) => x.uid === uid);
    if (!s) {
      const others = this.restore.metadata.sources.map((x) => x.uid);
      this.note(
        `${this.restore.path} has no position for source '${uid}'${others.length ? ` (it has: ${others.join(', ')})` : ''}: it reads from its beginning`,
      );
      return undefined;
    }
    if (s.positions === null) return undefined;
    if (typeof s.positions !== 'object' || Array.isArray(s.positions) || !('kind' in s.positions))
      throw new DataError(`${this.restore.path}: the position of source '${uid}' is not a source position`);
    return s.positions as unknown as SourcePosition;
  }

  /** The pipeline info the source's header carries. */
  header(): PipelineInfo {
    const p: PipelineInfo = { id: this.pipeline, checkpointDir: this.dir, stage: 0, uids: [this.uid] };
    p.retainCheckpoints = this.retain;
    if (this.restore)
      p.restore = {
        path: this.restore.path,
        checkpointId: this.restore.checkpointId,
        type: this.restore.type,
      };
    if (this.followerRun !== undefined) p.follower = { run: this.followerRun };
    return p;
  }

  /**
   * True when a periodic checkpoint is to start now (never for a follower). Called between batches;
   * never waits. At each `--checkpoint-interval` tick: when the previous periodic checkpoint is still
   * in flight (no `_metadata.json` seen yet), the tick is skipped and counted, and the next tick is
   * one interval later (Flink's max-concurrent-checkpoints 1); one in flight for
   * `--checkpoint-timeout` is given up (a warning the first time, counted), so a pipeline whose last
   * stage never completes (e.g. its stdout read by a process kappa cannot see) still checkpoints;
   * after a completion the next start waits for `--min-pause-between-checkpoints`.
   */
  due(now = Date.now()): boolean {
    if (this.followerRun !== undefined || this.intervalMs === undefined) return false;
    this.probe(now);
    if (now - this.lastBarrierAt < this.intervalMs) return false;
    const f = this.inFlight;
    if (f) {
      if (now - f.since < this.pacing.timeoutMs) {
        // Decide on an answer to a stat started at or after the tick, waited for (between batches)
        // at most one interval: a stale "not complete" must not skip a tick.
        const tickAt = this.lastBarrierAt + this.intervalMs;
        if (this.answeredFrom < tickAt && now - tickAt < this.intervalMs) {
          this.probe(now, true);
          return false;
        }
        this.skipped++;
        this.lastBarrierAt = now;
        return false;
      }
      this.inFlight = undefined;
      this.expired++;
      if (!this.warnedExpired) {
        this.warnedExpired = true;
        this.note(
          `warning: checkpoint ${f.id} did not complete within ${this.pacing.timeoutMs} ms (--checkpoint-timeout); the next one starts (later ones that expire are counted in the summary). Does the pipeline end in a sink, a file or a terminal? A last stage whose stdout goes to a process kappa cannot see never completes a checkpoint`,
        );
      }
    }
    return now - this.completedAt >= this.pacing.minPauseMs;
  }

  /**
   * Starts checkpoint (or savepoint) N: writes the source's part, then returns the barrier to emit.
   * @param positions each source's position after the records already written
   * @param watermark the watermark emitted so far (epoch ms; -Infinity for none)
   */
  async barrier(
    type: 'checkpoint' | 'savepoint',
    positions: (SourcePosition | undefined)[],
    watermark: number,
  ): Promise<Barrier> {
    const id = this.nextId++;
    const now = Date.now();
    this.lastBarrierAt = now;
    const path = type === 'savepoint' ? savepointUri(this.savepointDir, id) : checkpointUri(this.dir, id);
    if (type === 'checkpoint') {
      // Also the end line's final checkpoint, which goes out whatever is in flight.
      this.inFlight = { id, path, since: now };
      this.taken++;
    }
    const sources = positions.map((p, i) => ({
      uid: this.sourceUid(i),
      positions: (p ?? null) as SavepointMetadata['sources'][number]['positions'],
      watermark: finiteOrNull(watermark),
    }));
    await writeBarrierPart(path, {
      id,
      type,
      pipeline: this.pipeline,
      sources,
      createdAt: new Date().toISOString(),
    });
    return { id, type, path, sources, operators: [] };
  }
}

/**
 * Sets up checkpointing for a source stage from its flags and the environment, or returns
 * undefined when the pipeline does not checkpoint (no checkpoint dir).
 * @param command the command name (the default uid is `<command>-0`)
 * @throws UsageError for a checkpoint flag without a checkpoint dir, a bad duration or count;
 *   DataError / RuntimeError for a damaged checkpoint dir or savepoint
 */
export async function prepareSourceCheckpointing(
  command: string,
  flags: SourceCheckpointFlags,
  probe: SinkProbe,
  note: (m: string) => void,
): Promise<SourceCheckpointer | undefined> {
  const s = checkpointSettings(flags);
  const needsDir: [unknown, string][] = [
    [flags.checkpointInterval, '--checkpoint-interval'],
    [flags.savepointDir, '--savepoint-dir'],
    [flags.savepointAtEnd, '--savepoint-at-end'],
    [flags.stopAt, '--stop-at'],
    [flags.retainCheckpoints, '--retain-checkpoints'],
    [flags.checkpointTimeout, '--checkpoint-timeout'],
    [flags.minPauseBetweenCheckpoints, '--min-pause-between-checkpoints'],
    [flags.resume, '--resume'],
    [flags.fromSavepoint, '--from-savepoint'],
    [flags.uid, '--uid'],
  ];
  if (!s.dir) {
    const given = needsDir.filter(([v]) => v !== undefined && v !== false).map(([, f]) => f);
    if (given.length > 0)
      throw new UsageError(
        `${given.join(', ')} ${given.length === 1 ? 'needs' : 'need'} a checkpoint directory`,
        'give --checkpoint-dir DIR (or export KAPPA_CHECKPOINT_DIR=DIR for the whole pipeline)',
      );
    return undefined;
  }
  const intervalMs =
    flags.checkpointInterval === undefined
      ? undefined
      : parseDuration(flags.checkpointInterval, '--checkpoint-interval');
  if (intervalMs !== undefined && intervalMs <= 0)
    throw new UsageError('--checkpoint-interval must be positive, e.g. 10s');
  const pacing: CheckpointPacing = { timeoutMs: DEFAULT_CHECKPOINT_TIMEOUT_MS, minPauseMs: 0 };
  for (const [v, flag] of [
    [flags.checkpointTimeout, '--checkpoint-timeout'],
    [flags.minPauseBetweenCheckpoints, '--min-pause-between-checkpoints'],
  ] as const) {
    if (v === undefined) continue;
    if (intervalMs === undefined)
      throw new UsageError(
        `${flag} applies with --checkpoint-interval (it paces periodic checkpoints)`,
        'give --checkpoint-interval DUR too, or leave the flag out',
      );
    const d = parseDuration(v, flag);
    if (flag === '--checkpoint-timeout') {
      if (d <= 0) throw new UsageError('--checkpoint-timeout must be positive, e.g. 10m');
      pacing.timeoutMs = d;
    } else pacing.minPauseMs = d;
  }
  let retain = DEFAULT_RETAIN_CHECKPOINTS;
  if (flags.retainCheckpoints !== undefined) {
    if (!/^\d+$/.test(flags.retainCheckpoints) || Number(flags.retainCheckpoints) < 1)
      throw new UsageError(
        `--retain-checkpoints: expected a count of at least 1, got '${flags.retainCheckpoints}'`,
      );
    retain = Number(flags.retainCheckpoints);
  }
  let stopAt: number | undefined;
  if (flags.stopAt !== undefined && !isOffsetList(flags.stopAt)) {
    stopAt = Date.parse(flags.stopAt);
    if (!/^\d{4}-\d{2}-\d{2}/.test(flags.stopAt) || Number.isNaN(stopAt))
      throw new UsageError(
        `--stop-at: '${flags.stopAt}' is not an ISO 8601 time`,
        'give an ISO time, or Kafka offsets as PARTITION:OFFSET,… (e.g. 0:1200,1:980)',
      );
  }
  // The source feeding a join's --right input follows the left source's checkpoints (follow.ts).
  const follower = isJoinRightInput();
  if (follower) {
    const own: [unknown, string][] = [
      [flags.checkpointInterval, '--checkpoint-interval'],
      [flags.savepointDir, '--savepoint-dir'],
      [flags.savepointAtEnd, '--savepoint-at-end'],
      [flags.stopAt, '--stop-at'],
      [flags.retainCheckpoints, '--retain-checkpoints'],
      [flags.checkpointTimeout, '--checkpoint-timeout'],
      [flags.minPauseBetweenCheckpoints, '--min-pause-between-checkpoints'],
    ];
    const given = own.filter(([v]) => v !== undefined && v !== false).map(([, f]) => f);
    if (given.length > 0)
      throw new UsageError(
        `${given.join(', ')}: this ${command} feeds the --right input of a kappa join, so it follows the checkpoints of the join's left source and takes none of its own`,
        "give these flags to the source of the join's left input (its stdin), the pipeline's checkpoint coordinator",
      );
  }
  const pipeline = (await pipelineId(s.dir, true)) as string;
  let restore: RestorePoint | undefined;
  if (s.fromSavepoint !== undefined) {
    const sp = await openSavepoint(s.fromSavepoint);
    restore = {
      path: s.fromSavepoint,
      checkpointId: sp.metadata.checkpointId,
      type: sp.metadata.type,
      metadata: sp.metadata,
    };
    note(`restoring from savepoint ${s.fromSavepoint}`);
  } else if (s.resume) {
    restore = await findRestorePoint(s.dir, probe, note);
    note(
      restore
        ? `resuming from checkpoint ${restore.checkpointId} (${restore.path})`
        : `no complete checkpoint in ${s.dir}: starting fresh`,
    );
  }
  const ids = (await listCheckpoints(s.dir)).map((c) => c.id);
  const firstId = Math.max(0, restore?.checkpointId ?? 0, ...ids) + 1;
  return new SourceCheckpointer(
    s.dir,
    s.uid ?? (follower ? `${command}-right` : `${command}-0`),
    pipeline,
    flags.savepointDir ?? joinUri(s.dir, 'savepoints'),
    intervalMs,
    retain,
    restore,
    firstId,
    flags.savepointAtEnd === true,
    stopAt,
    note,
    follower ? randomUUID() : undefined,
    pacing,
  );
}

/** True for a Kafka offset list `P:OFFSET,…` (the `--stop-at OFFSETS` form). */
export function isOffsetList(v: string): boolean {
  return /^\d+:\d+(,\d+:\d+)*$/.test(v.trim());
}
