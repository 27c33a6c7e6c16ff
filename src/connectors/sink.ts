/**
 * Sink targets: where `kappa sink TARGET` writes. Each kind (stdout, a single file, a table
 * directory on any object store, a Kafka topic) registers once with a predicate on the target;
 * the sink command picks the first that claims it.
 *
 * Commit contract: nothing written becomes visible before `commit()` (end of input) or a
 * checkpoint; `abort()` after a failure leaves nothing partial visible.
 */

import { UsageError } from '../errors.js';
import type { RecordBatch } from '../stream/batch.js';
import type { Barrier, Header, Rec } from '../stream/protocol.js';
import type { JsonValue } from './source.js';

/** Options common to all targets, as parsed from flags. Targets read the ones they understand. */
export interface SinkOptions {
  format?: string;
  [flag: string]: unknown;
}

/**
 * What a sink needs to commit exactly once per checkpoint (given when the pipeline checkpoints:
 * the header carries a pipeline id; see src/checkpoint/).
 */
export interface SinkCheckpointContext {
  /**
   * Stable per pipeline and sink across restarts: `<pipeline id>.<sink uid>`. The table sink's
   * Delta `txn` appId; the Kafka sink's transactional.id (and the key of its progress records).
   */
  appId: string;
  /** The checkpoint id the pipeline restored from (`--resume`, `--from-savepoint`), or null. */
  restoredCheckpoint: number | null;
}

export interface RecordSink {
  /**
   * Receives the stream header (schema) before any record; `ctx` when the pipeline checkpoints.
   * With `ctx`, the sink commits only on barriers (one atomic commit per epoch, tagged with the
   * barrier id) and at the end, and skips an epoch whose id it finds already committed.
   */
  open(header: Header, ctx?: SinkCheckpointContext): Promise<void>;
  /**
   * Buffers or writes one record. A record the target cannot take (e.g. a schema conflict) goes to
   * the bad-record policy passed in the options as `bad`.
   * @param line 1-based input line of the record, for error messages
   */
  write(r: Rec, line?: number): void | Promise<void>;
  /**
   * Optional batch path: the records of a version-2 stream (or of a fused upstream stage under
   * `kappa run`) a batch at a time, with the same outcome as `write` of each record in order
   * (`recordsOf`). Without it, the sink gets records one by one.
   * @param first 1-based input line of the batch's first record (records follow on consecutive lines)
   */
  writeBatch?(b: RecordBatch, first: number): void | Promise<void>;
  /** Called after each input batch: flush buffers, honour back-pressure. */
  afterBatch?(): Promise<void>;
  /** True once the destination reader went away (stdout EPIPE): stop quietly. */
  readonly closed?: boolean;
  /** Watermark: may finalise partitions (`_SUCCESS`) or roll time-based files. */
  watermark(wm: number): void | Promise<void>;
  /**
   * Checkpoint barrier: commit the records of epoch `b.id` (those since the previous barrier)
   * atomically, tagged with `b.id` (Delta `txn` action version; Kafka progress record in the same
   * transaction), so a probe (`SinkTarget.committedEpoch`) can tell afterwards whether it happened.
   */
  barrier?(b: Barrier): Promise<void>;
  /**
   * What `SinkTarget.committedEpoch` needs to find this sink's last committed epoch (JSON; e.g. the
   * table URI and appId). Written to the checkpoint directory before the barrier's commit, so that
   * a checkpoint whose commit happened but whose `_metadata.json` was not yet written (a crash in
   * between) is recognised as complete on `--resume`.
   */
  commitDescriptor?(): JsonValue;
  /**
   * End of input: commit everything. Returns a short description of where the output went.
   * `final`: in a checkpointing pipeline, the final checkpoint: the commit is tagged with its id
   * like a barrier's, so that `committedEpoch` reports it.
   */
  commit(final?: Barrier): Promise<string>;
  /** Failure: discard uncommitted output. */
  abort(): Promise<void>;
  /** Extra counters for the summary line (files, partitions, …). */
  counters?(): Record<string, number | string>;
}

export interface SinkTarget {
  name: string;
  /** True if this target kind handles `target` (e.g. `-`, `kafka://…`, a path). */
  claims(target: string, opts: SinkOptions): boolean;
  /**
   * The `kappa sink` options this target reads (commander attribute names): a user option that the
   * chosen target does not read is a usage error (commands/applicable.ts).
   */
  options: readonly string[];
  create(target: string, opts: SinkOptions): Promise<RecordSink>;
  /**
   * The newest epoch (barrier id) a sink described by `descriptor` (its `commitDescriptor()`)
   * committed, or null when it committed none. Reads only the target (Delta log `txn` actions;
   * the Kafka progress topic, read_committed).
   */
  committedEpoch?(descriptor: JsonValue): Promise<number | null>;
}

/**
 * The first target of `targets` (the explicit list in connectors/index.ts) that claims `target`.
 * @throws UsageError if none claims it
 */
export function sinkTargetFor(target: string, opts: SinkOptions, targets: readonly SinkTarget[]): SinkTarget {
  const t = targets.find((k) => k.claims(target, opts));
  if (!t)
    throw new UsageError(
      `cannot write to '${target}': no sink handles it (known: ${targets.map((k) => k.name).join(', ')})`,
    );
  return t;
}
