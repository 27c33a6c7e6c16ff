/**
 * Sink targets: where `kappa sink TARGET` writes. Each kind (stdout, a single file, a table
 * directory on any object store, a Kafka topic) registers once with a predicate on the target;
 * the sink command picks the first that claims it.
 *
 * Commit contract: nothing written becomes visible before `commit()` (end of input) or a
 * checkpoint; `abort()` after a failure leaves nothing partial visible.
 */

import { UsageError } from '../errors.js';
import type { Barrier, Header, Rec } from '../stream/protocol.js';

/** Options common to all targets, as parsed from flags. Targets read the ones they understand. */
export interface SinkOptions {
  format?: string;
  [flag: string]: unknown;
}

export interface RecordSink {
  /** Receives the stream header (schema) before any record. */
  open(header: Header): Promise<void>;
  /**
   * Buffers or writes one record. A record the target cannot take (e.g. a schema conflict) goes to
   * the bad-record policy passed in the options as `bad`.
   * @param line 1-based input line of the record, for error messages
   */
  write(r: Rec, line?: number): void | Promise<void>;
  /** Called after each input batch: flush buffers, honour back-pressure. */
  afterBatch?(): Promise<void>;
  /** True once the destination reader went away (stdout EPIPE): stop quietly. */
  readonly closed?: boolean;
  /** Watermark: may finalise partitions (`_SUCCESS`) or roll time-based files. */
  watermark(wm: number): void | Promise<void>;
  /** Checkpoint barrier: commit what was written so far with the source positions. */
  barrier?(b: Barrier): Promise<void>;
  /** End of input: commit everything. Returns a short description of where the output went. */
  commit(): Promise<string>;
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
