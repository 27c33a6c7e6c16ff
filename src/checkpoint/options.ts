/**
 * The checkpoint flags (man kappa-checkpoints.7). Every command: `--checkpoint-dir`, `--uid`,
 * `--resume`, `--from-savepoint`; source commands (ingest, replay) also `--checkpoint-interval`,
 * `--savepoint-dir`, `--savepoint-at-end`, `--stop-at`, `--retain-checkpoints`, `--checkpoint-timeout`
 * and `--min-pause-between-checkpoints`. The
 * environment gives defaults so that one `export` configures a whole pipeline:
 * `KAPPA_CHECKPOINT_DIR`, `KAPPA_RESUME=1`, `KAPPA_FROM_SAVEPOINT`.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { UID_PATTERN } from '../state/savepoint/format.js';

/** Checkpoint flags of every command, as commander parses them. */
export interface CheckpointFlags {
  checkpointDir?: string;
  uid?: string;
  resume?: boolean;
  fromSavepoint?: string;
}

/** Checkpoint flags of source commands. */
export interface SourceCheckpointFlags extends CheckpointFlags {
  checkpointInterval?: string;
  savepointDir?: string;
  savepointAtEnd?: boolean;
  stopAt?: string;
  retainCheckpoints?: string;
  checkpointTimeout?: string;
  minPauseBetweenCheckpoints?: string;
}

/** The resolved checkpoint settings of a stage: flags first, then the environment. */
export interface CheckpointSettings {
  dir?: string;
  /** True when `dir` came from `--checkpoint-dir` (not only the environment). */
  dirFromFlag: boolean;
  uid?: string;
  resume: boolean;
  fromSavepoint?: string;
  /** True when `--resume` or `--from-savepoint` was a flag (not only the environment). */
  restoreFromFlag: boolean;
}

/** Adds the flags of every command. */
export function withCheckpointOptions(cmd: Command): Command {
  return cmd
    .option(
      '--checkpoint-dir <uri>',
      'checkpoint directory of the pipeline, local or s3:// (default: $KAPPA_CHECKPOINT_DIR); the source decides, the other stages must agree',
    )
    .option(
      '--uid <name>',
      "stable id of this stage's state in checkpoints and savepoints (default: COMMAND-POSITION, e.g. window-1)",
    )
    .option(
      '--resume',
      'restore from the newest complete checkpoint in the checkpoint dir, or start fresh when there is none (also KAPPA_RESUME=1)',
    )
    .option('--from-savepoint <path>', 'restore from this savepoint (also $KAPPA_FROM_SAVEPOINT)');
}

/** Adds the flags of source commands (ingest, replay). */
export function withSourceCheckpointOptions(cmd: Command): Command {
  return cmd
    .option(
      '--checkpoint-interval <dur>',
      'take a checkpoint this often (wall time), e.g. 10s, 1m; needs a checkpoint dir',
    )
    .option(
      '--savepoint-dir <uri>',
      'where stop-with-savepoint writes (default: <checkpoint-dir>/savepoints)',
    )
    .option(
      '--savepoint-at-end',
      'at the end of a bounded input take a savepoint and stop instead of ending the stream (windows do not fire): bootstraps a live job from history',
    )
    .option(
      '--stop-at <time|offsets>',
      'stop with a savepoint once the watermark reaches this time (ISO 8601), or, for kafka://, once every partition reached PARTITION:OFFSET,…',
    )
    .option('--retain-checkpoints <n>', 'complete checkpoints kept in the checkpoint dir (default: 3)')
    .option(
      '--checkpoint-timeout <dur>',
      'give up a checkpoint not complete after this long, so the next tick may start one (default: 10m; one checkpoint is in flight at a time, ticks meanwhile are skipped)',
    )
    .option(
      '--min-pause-between-checkpoints <dur>',
      'at least this long between the completion of a checkpoint and the start of the next (default: 0s)',
    );
}

/**
 * Resolves flags and environment.
 * @throws UsageError for a bad `--uid` or both `--resume` and `--from-savepoint`
 */
export function checkpointSettings(
  o: CheckpointFlags,
  env: NodeJS.ProcessEnv = process.env,
): CheckpointSettings {
  const dir = o.checkpointDir ?? (env.KAPPA_CHECKPOINT_DIR || undefined);
  const resume = o.resume === true || (o.fromSavepoint === undefined && env.KAPPA_RESUME === '1');
  const fromSavepoint = o.fromSavepoint ?? (o.resume ? undefined : env.KAPPA_FROM_SAVEPOINT || undefined);
  if (o.resume && o.fromSavepoint !== undefined)
    throw new UsageError('--resume and --from-savepoint exclude each other', 'give one of them');
  if (resume && fromSavepoint !== undefined)
    throw new UsageError(
      'both KAPPA_RESUME=1 and KAPPA_FROM_SAVEPOINT are set',
      'unset one of them, or give --resume or --from-savepoint on the command line',
    );
  if (o.uid !== undefined && !UID_PATTERN.test(o.uid))
    throw new UsageError(
      `--uid '${o.uid}': letters, digits, '.', '_' and '-' only, starting with a letter or digit`,
    );
  return {
    dir,
    dirFromFlag: o.checkpointDir !== undefined,
    uid: o.uid,
    resume,
    fromSavepoint,
    restoreFromFlag: o.resume === true || o.fromSavepoint !== undefined,
  };
}
