/**
 * The operator contract. An operator takes records and watermarks and returns records (and its own
 * watermarks); it knows nothing of pipes, files or flags, so it can be tested with arrays.
 *
 * Stateless operators forward watermarks unchanged. Stateful ones fire on watermarks and emit their
 * own. `end()` means watermark +infinity: fire everything. Operators never mutate an input record:
 * emitting the very input object means "unchanged" (the runtime may re-emit its original line). Methods may return a promise (state in
 * LevelDB); the runtime waits for it before the next event. An operator signals a bad record by
 * throwing `BadRecordError`; the runtime applies the `--on-error` policy.
 */

import type { Json, SavepointEntry, StateDescriptor } from '../state/savepoint/format.js';
import type { SavepointColumns } from '../state/savepoint/write.js';
import { type RecordBatch, recordsOf } from '../stream/batch.js';
import type { Barrier, Header, Rec } from '../stream/protocol.js';
import type { WindowRowsCopy } from './window/snapshot-rows.js';

/** What `Operator.snapshot` returns: the savepoint writer's operator input minus the uid. */
export interface OperatorStateSnapshot {
  /** Operator kind, e.g. `window`. */
  kind: string;
  states: StateDescriptor[];
  /** Input watermark (epoch ms) or null. */
  watermark: number | null;
  /** Non-keyed state. */
  operatorState: Json;
  /** Keyed state rows in key-group order. */
  entries: AsyncIterable<SavepointEntry> | Iterable<SavepointEntry>;
  /**
   * The same rows, already copied out of the live state (then `entries` is not read): the part
   * no longer depends on the operator, so it may be written while the operator goes on
   * (src/checkpoint/stage.ts `barrierAsync`).
   */
  columns?: SavepointColumns;
  /**
   * Instead of `columns` (asked for with `SnapshotOptions.deferColumns`): a window operator's rows
   * copied as typed arrays, turned into columns by `windowSnapshotColumns` where the part is
   * written (the part writer's thread).
   */
  windowRows?: WindowRowsCopy;
  /** Key groups of the operator's state store. */
  maxKeyGroups: number;
}

/** How `Operator.snapshot` may return its copy. */
export interface SnapshotOptions {
  /**
   * A window operator may return `windowRows` (typed arrays, cheap to copy at the barrier and to
   * send to another thread) instead of building `columns` itself.
   */
  deferColumns?: boolean;
}

/** What `Operator.restore` gets: one operator's part of a savepoint. */
export interface SavedOperatorState {
  states: StateDescriptor[];
  operatorState: Json;
  entries: AsyncIterable<SavepointEntry> | Iterable<SavepointEntry>;
  /** Key groups of the savepoint. */
  maxKeyGroups: number;
}

export interface Collector {
  record(r: Rec): void;
  watermark(wm: number): void;
  barrier?(b: Barrier): void;
  /**
   * Resolves when the downstream has room; an operator that emits many records in one call awaits
   * it every few thousand records (e.g. `if (++n % 2048 === 0) await out.drain?.()`), so its output
   * is written as it goes instead of being built up as one unbounded buffer. Optional: collectors
   * without a destination (arrays) leave it out.
   */
  drain?(): void | Promise<void>;
  /**
   * Emits a batch of records in order (columnar operators). Collectors that lack it receive the
   * batch's records one by one through `record` (see `emitBatch`).
   */
  batch?(b: RecordBatch): void;
}

/**
 * Reports a bad row of a batch: the runtime applies the `--on-error` policy to row `row` (0-based
 * within the batch) with `reason`, and the operator goes on with the other rows.
 */
export type BadRow = (row: number, reason: string) => void;

export interface Operator {
  /** Given the upstream header, returns the header this operator emits (its output schema). */
  open(header: Header): Header | Promise<Header>;
  record(r: Rec, out: Collector): void | Promise<void>;
  /**
   * Columnar path (optional): the records of one batch, in order. When present, the runtime calls it
   * for every input batch instead of `record` per row; it must give the same result as `record`
   * over `recordsOf(b)`. Rows it cannot process go to `bad`, never thrown.
   */
  batch?(b: RecordBatch, out: Collector, bad: BadRow): void | Promise<void>;
  watermark(wm: number, out: Collector): void | Promise<void>;
  /** Checkpoint barrier: snapshot state, then forward. Default: forward. */
  barrier?(b: Barrier, out: Collector): void | Promise<void>;
  /**
   * A consistent snapshot of the operator's state (stateful operators only), taken between events
   * when a checkpoint barrier arrives; the runtime writes it in the savepoint format
   * (src/checkpoint/snapshot.ts) before it forwards the barrier.
   */
  snapshot?(opts?: SnapshotOptions): Promise<OperatorStateSnapshot>;
  /**
   * Loads a snapshot: called after `open` and before any record when the pipeline restores
   * (`--resume`, `--from-savepoint`).
   * @throws DataError when the saved state does not fit this operator (other window, key groups)
   */
  restore?(saved: SavedOperatorState): Promise<void>;
  /** End of input (watermark +infinity): emit everything still held. */
  end(out: Collector): void | Promise<void>;
  /** Named counters for the run summary and periodic stats (e.g. open windows, late records). */
  counters?(): Record<string, number | string>;
  /** Releases resources (state stores). Called once, also after a failure. */
  close?(): void | Promise<void>;
}

/** Thrown by an operator for a record it cannot process (an expression threw, a field is missing). */
export class BadRecordError extends Error {}

/** Emits a batch through `out.batch` when the collector takes batches, else record by record. */
export function emitBatch(out: Collector, b: RecordBatch): void {
  if (out.batch) out.batch(b);
  else for (const r of recordsOf(b)) out.record(r);
}

/** Collects an operator's output into arrays: for tests and for composing operators. */
export class ArrayCollector implements Collector {
  readonly records: Rec[] = [];
  readonly watermarks: number[] = [];
  record(r: Rec): void {
    this.records.push(r);
  }
  watermark(wm: number): void {
    this.watermarks.push(wm);
  }
}
