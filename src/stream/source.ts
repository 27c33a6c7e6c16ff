/**
 * The source runtime: opened record sources -> a kappa stream on stdout. It is what `kappa ingest`
 * runs (and what replay and checkpoints will build on), beside `runOperator` (run.ts) for the
 * stages after it. Per batch it
 * - assigns event time and key (`--ts-field` / `--key-field`, or the source's native time and key),
 *   sending rows that have none to the bad-record policy;
 * - keeps one watermark per split (Kafka partition; one for all files) with bounded
 *   out-of-orderness and emits their minimum over the sources that have not finished (a source not
 *   yet started holds it back). The bound is `--max-out-of-orderness` if given, else the source's
 *   default: none for files (no watermark before the end line: batch semantics, nothing is late),
 *   0 ms for Kafka;
 * - encodes records (an unchanged NDJSON row is written from its raw text) and flushes at 64 KiB,
 *   whenever a source waits for data (an empty batch), and when the next batch takes longer than
 *   `LINGER_MS` (a live stdin), honouring back-pressure;
 * - tracks each source's serialisable position (`RecordSource.position`) for barriers;
 * - writes the end-of-stream line only when every source reached its end, then commits source
 *   positions (Kafka `--group` offsets). A signal (src/stream/signals.ts) or a failure never
 *   writes the end line and commits nothing.
 */
import type { Writable } from 'node:stream';
import { TRIGGER_POLL_MS } from '../checkpoint/follow.js';
import type { SourceCheckpointer } from '../checkpoint/source.js';
import type { RecordSource, SourcePosition } from '../connectors/source.js';
import { RuntimeError } from '../errors.js';
import { makeAssigner, makeKeyGetter } from '../ops/assign.js';
import { METADATA_FILE } from '../state/savepoint/format.js';
import { joinUri, storeFor } from '../storage/store.js';
import { type TsFormat, timestampParser } from '../time/timestamp.js';
import { SplitWatermarks } from '../time/watermark.js';
import type { BadRecords } from './badrecords.js';
import { stageOutput } from './direct.js';
import { stdoutPipeHasReader, stdoutReader } from './negotiate.js';
import type { Progress } from './progress.js';
import { type Header, PROTOCOL_VERSION, type Schema } from './protocol.js';
import {
  deferFirstSignal,
  InterruptedError,
  interruptedBy,
  raceInterrupt,
  type StopSignal,
} from './signals.js';
import { columnarAssigner, maxTs } from './source-columns.js';
import { openStreamWriter } from './writer.js';

/**
 * checkpoint/snapshot.js (with the savepoint writer: hyparquet-writer and zstd WebAssembly), loaded
 * on the first completed snapshot only: a source without checkpoints never pays for it at start-up.
 */
function snapshotModule(): Promise<typeof import('../checkpoint/snapshot.js')> {
  return import('../checkpoint/snapshot.js');
}

/** How long (ms) records may wait in the output buffer while the source has nothing new. */
export const LINGER_MS = 100;

/** What `runSource` runs: the sources (already opened) and how to turn their rows into records. */
export interface SourceSpec {
  /** Sources read one after the other, in this order. */
  sources: RecordSource[];
  /** Event-time field (dotted path); undefined: the source's native time (Kafka), else ingestion time. */
  tsField?: string;
  /** How to read `tsField` ('auto' reads a typed Parquet timestamp column as such). */
  tsFormat: TsFormat;
  /** IANA zone for zone-less times. */
  tz: string;
  /** Key field (dotted path); undefined: the source's native key (Kafka message key), else null. */
  keyField?: string;
  /** `--max-out-of-orderness` in ms when the user gave it; undefined: each source's default. */
  maxOutOfOrdernessMs?: number;
  bad: BadRecords;
  progress: Progress;
  /** Where the stream goes (default: stdout). */
  output?: Writable;
  /** Prints one warning line (default: `kappa ingest: warning: …` on stderr). */
  warn?: (message: string) => void;
  /**
   * Called after each batch was written (not yet necessarily flushed) with every source's position
   * (undefined for a source that tracks none). The checkpoint barrier will carry these.
   */
  onPositions?: (positions: (SourcePosition | undefined)[]) => void;
  /**
   * Checkpointing (src/checkpoint/source.ts): the header carries the pipeline info, barriers go out
   * every `--checkpoint-interval`, and the first SIGINT/SIGTERM, `--stop-at` or (with
   * `--savepoint-at-end`) the end of input stop the stream with a savepoint and a stop line.
   */
  checkpoint?: SourceCheckpointer;
}

/** How often (ms) the source looks whether the last stage completed a savepoint it waits for. */
const SAVEPOINT_POLL_MS = 100;

/**
 * Runs the sources to the end of input (or until the reader of stdout goes away). Resolves with
 * the summary status ('done' or 'stopped (downstream closed)'). Always closes the sources.
 * @throws InterruptedError (exit 130/143) on SIGINT/SIGTERM: no end line, no source commit
 * @throws DataError from the bad-record policy; any error of a source (RuntimeError, …)
 */
export async function runSource(spec: SourceSpec): Promise<string> {
  const { sources, bad, progress } = spec;
  const stats = progress.stats;
  const out = openStreamWriter(spec.output);
  const warn =
    spec.warn ?? ((m: string) => process.stderr.write(`kappa ${progress.command}: warning: ${m}\n`));
  const schema = sources.find((s) => s.schema)?.schema;
  const assign = makeAssigner({
    tsField: spec.tsField,
    tsFormat: typedTsFormat(spec.tsFormat, spec.tsField, schema),
    tz: spec.tz,
    keyField: spec.keyField,
  });
  // Every encoding takes column batches: Arrow as they are, NDJSON through the line encoder.
  const columnar = columnarAssigner({
    tsField: spec.tsField,
    tsFormat: typedTsFormat(spec.tsFormat, spec.tsField, schema),
    tz: spec.tz,
    keyField: spec.keyField,
  });
  // The binary stream and `kappa run`'s direct channel take column batches: readers that can
  // (NDJSON) scan straight into columns. With the byte scanner (formats/ndjson-scan.ts) columns
  // cost less than rows under `kappa run` too (3M flights, CPU s: 1b's filter keeping 5% 2.75
  // against 3.7 with rows, scenario 3 from NDJSON 3.3 against 9.0; bench/ANALYSIS.md). NDJSON
  // output keeps the row path: it re-emits each line's raw text.
  if (columnar && (out.format === 'arrow' || out.format === 'direct'))
    for (const s of sources) s.preferColumns?.();
  // With a native event time (Kafka) and no --ts-field, --key-field still applies.
  const keyOf = spec.keyField ? makeKeyGetter(spec.keyField) : undefined;
  const wms = sources.map((s) => {
    const w = new SplitWatermarks(
      spec.maxOutOfOrdernessMs ?? s.defaultMaxOutOfOrdernessMs ?? Number.POSITIVE_INFINITY,
    );
    for (const sp of s.splits?.() ?? []) w.addSplit(sp);
    return w;
  });
  // Watermarks from Parquet row-group statistics (RowBatch.unreadMin), per source: only with no
  // bound of its own (batch semantics) and where event time is a monotonic function of the value.
  const fromStats = sources.map((s) =>
    spec.maxOutOfOrdernessMs === undefined && s.defaultMaxOutOfOrdernessMs === undefined
      ? statsEventTime(spec.tsField, typedTsFormat(spec.tsFormat, spec.tsField, schema), spec.tz, schema)
      : undefined,
  );
  const finished = sources.map(() => false);
  let emitted = Number.NEGATIVE_INFINITY;
  let warnedIngestionTime = false;
  const interrupted = (sig: StopSignal) =>
    new InterruptedError(
      sig,
      `interrupted by ${sig} after ${stats.recordsOut.toLocaleString('en-US')} records; the source did not reach its end, so no end-of-stream line was written (downstream stages commit nothing) and no source position was committed`,
    );
  const stopIfInterrupted = () => {
    const sig = interruptedBy();
    if (sig) throw interrupted(sig);
  };

  const ck = spec.checkpoint;
  let stopRequested = false;
  const undefer = ck
    ? deferFirstSignal((sig) => {
        stopRequested = true;
        warn(
          ck.followerRun === undefined
            ? `${sig}: stopping with a savepoint (send it again to abort without one)`
            : `${sig}: waiting for the savepoint barrier of the join's left source (send it again to abort)`,
        );
      })
    : () => {};
  // The source is the last stage when nothing of kappa reads its stdout (`ingest … > file`).
  let last: boolean | undefined;
  const isLast = () => {
    // (A follower, the right input of a join, never is: the join reads it.)
    last ??= ck?.followerRun === undefined && stageOutput() === undefined && stdoutReader() === 'other';
    return last;
  };
  const positions = () => sources.map((s) => s.position?.());
  /** Ends the stream with a savepoint barrier and a stop line; resolves once the savepoint is complete. */
  const stopWithSavepoint = async (): Promise<string> => {
    if (!ck) throw new Error('internal: savepoint without checkpointing');
    const b = await ck.barrier('savepoint', positions(), emitted);
    out.barrier(b);
    out.stopEvent({ savepoint: b.path as string, checkpoint: b.id });
    await out.close();
    const path = b.path as string;
    if (isLast()) await (await snapshotModule()).completeSnapshot(path, []);
    else await waitForSnapshot(path);
    process.stderr.write(`kappa ${progress.command}: savepoint ${path}\n`);
    return `stopped with savepoint ${path}`;
  };
  /**
   * A follower's answers to the join's triggers (checkpoint/follow.ts): barrier N goes out after the
   * records already written — also while a flush waits for the join to read (the follower is
   * back-pressured then, and the join needs barrier N to go on), so that the right input runs at
   * most the buffered data past the left input's barrier.
   */
  const follow =
    ck?.followerRun === undefined
      ? undefined
      : {
          stoppedAt: undefined as string | undefined,
          async poll(): Promise<void> {
            if (this.stoppedAt !== undefined) return;
            const t = await ck.triggered();
            if (!t) return;
            out.barrier(ck.followerBarrier(t, positions(), emitted));
            if (t.type === 'savepoint') {
              out.stopEvent({ savepoint: t.path, checkpoint: t.id });
              this.stoppedAt = t.path;
            }
          },
          async whileFlushing(p: Promise<void>): Promise<void> {
            let settled = false;
            const done = p.then(
              () => {
                settled = true;
              },
              () => {
                settled = true;
              },
            );
            while (!settled && this.stoppedAt === undefined) {
              await Promise.race([done, new Promise((r) => setTimeout(r, TRIGGER_POLL_MS))]);
              if (!settled) await this.poll();
            }
            return p;
          },
        };
  const checkpointNow = async (): Promise<void> => {
    if (!ck) return;
    const b = await ck.barrier('checkpoint', positions(), emitted);
    out.barrier(b);
    if (isLast()) {
      await out.flush();
      await (await snapshotModule()).completeSnapshot(b.path as string, []);
    }
  };

  try {
    const h: Header = { kappa: PROTOCOL_VERSION, schema };
    if (ck) h.pipeline = ck.header();
    out.header(h);
    for (let si = 0; si < sources.length; si++) {
      const src = sources[si];
      const it = src.batches()[Symbol.asyncIterator]();
      try {
        for (;;) {
          // Linger (Kafka's linger.ms): records buffered below a full chunk go out once the source
          // has had nothing new for LINGER_MS (a live stdin, a quiet topic), not at the next 64 KiB.
          let lingered: Promise<void> | undefined;
          const linger = setTimeout(() => {
            lingered = out.flush().catch(() => {}); // a destination error resurfaces at the next flush
          }, LINGER_MS);
          // Race the source against a signal: a source waiting for data (stdin held open, a FIFO)
          // must not keep a stopped run alive.
          // A stop-with-savepoint request waits for the pending batch: its rows may already count
          // in the source's position, so they must go out before the savepoint barrier.
          const next = await raceInterrupt(it.next());
          clearTimeout(linger);
          const lingerDone = lingered ? await raceInterrupt(lingered) : undefined;
          if (next instanceof InterruptedError) throw interrupted(next.signal);
          if (lingerDone instanceof InterruptedError) throw interrupted(lingerDone.signal);
          if (next.done) break;
          const batch = next.value;
          const split = batch.split ?? '';
          // Columnar branch (source-columns.ts): a batch the reader gave column-wise goes out as
          // one Arrow batch when every row has a valid event time; else the rows below.
          const cols = columnar?.(batch);
          if (cols && cols.length > 0) {
            out.batch(cols);
            stats.recordsIn += cols.length;
            stats.recordsOut += cols.length;
            stats.extra['rows by columns'] =
              ((stats.extra['rows by columns'] as number | undefined) ?? 0) + cols.length;
            wms[si].observe(split, maxTs(cols.ts));
          }
          const rows = cols ? [] : batch.rows;
          const rawIsJson = batch.rawIsJson === true;
          if (batch.bigIntegers) countBigIntegers(stats.extra, batch.bigIntegers);
          const native = batch.nativeTs !== undefined && !spec.tsField;
          if (!native && !spec.tsField && !warnedIngestionTime && (rows.length > 0 || cols?.length)) {
            warnedIngestionTime = true;
            warn(
              'no --ts-field: event time is the ingestion time (now), so historical rows land in today’s windows and partitions; give --ts-field FIELD to use a time in the data',
            );
          }
          for (let i = 0; i < rows.length; i++) {
            stats.recordsIn++;
            const row = rows[i];
            if (row === undefined) {
              bad.report(batch.where(i), batch.errors?.get(i) ?? 'unreadable row', batch.raw(i));
              continue;
            }
            let ts: number;
            let key: string | null;
            if (native) {
              const t = batch.nativeTs?.(i);
              if (t === undefined) {
                bad.report(batch.where(i), 'record has no timestamp', batch.raw(i));
                continue;
              }
              ts = t;
              key = keyOf ? keyOf(row) : null;
            } else {
              const a = assign(row);
              if ('error' in a) {
                bad.report(batch.where(i), a.error, batch.raw(i));
                continue;
              }
              ts = a.ts;
              key = a.key;
            }
            if (batch.nativeKey && !spec.keyField) key = batch.nativeKey(i);
            if (batch.watermark === undefined) wms[si].observe(split, ts);
            out.record(
              { ts, key, value: row, prov: batch.prov?.(i), headers: batch.headers?.(i) },
              undefined,
              rawIsJson ? batch.raw(i) : undefined,
            );
            stats.recordsOut++;
          }
          if (batch.watermark !== undefined) wms[si].raiseTo(split, batch.watermark); // replay
          const toTs = fromStats[si];
          if (toTs && batch.unreadMin !== undefined && Number.isFinite(batch.unreadMin)) {
            // No unread row has a value below unreadMin, so none has an event time below toTs(it).
            const t = toTs(batch.unreadMin);
            if (t !== undefined) wms[si].raiseTo(split, t - 1);
          }
          if (src.idleSplits) wms[si].setIdle(src.idleSplits());
          wms[si].advance();
          const w = combined(wms, finished);
          if (w > emitted && Number.isFinite(w)) {
            emitted = w;
            out.watermark(w);
          }
          src.onWatermarks?.(wms[si].perSplit(), wms[si].current());
          spec.onPositions?.(sources.map((s) => s.position?.()));
          if (batch.bytesDone !== undefined) stats.bytes = batch.bytesDone;
          if (src.detail) progress.setDetail(src.detail());
          progress.update(progress.unit === 'rows' ? stats.recordsIn : stats.bytes);
          // An empty batch means the source is waiting for data (live Kafka): flush what we have.
          // A stalled reader must not keep a stopped run waiting for 'drain' either.
          const flushing = rows.length === 0 && !cols?.length ? out.flush() : out.flushIfFull();
          const flushed = await raceInterrupt(follow ? follow.whileFlushing(flushing) : flushing);
          if (flushed instanceof InterruptedError) throw interrupted(flushed.signal);
          // A follower (the right input of a join): barrier N when the join asks for it.
          if (follow && follow.stoppedAt === undefined && !out.isClosed) await follow.poll();
          if (follow?.stoppedAt !== undefined) {
            // Before the close: once the join read the stop line it may exit (EPIPE ends us quietly).
            process.stderr.write(`kappa ${progress.command}: savepoint ${follow.stoppedAt} (following)\n`);
            await out.close();
            return `stopped with savepoint ${follow.stoppedAt}`;
          }
          if (out.isClosed) break;
          if (ck && !follow) {
            if (stopRequested || (ck.stopAt !== undefined && emitted >= ck.stopAt))
              return await stopWithSavepoint();
            if (ck.due()) await checkpointNow();
          }
        }
      } finally {
        // Stop a source left early (downstream closed, failure, signal); a no-op after its end.
        void Promise.resolve(it.return?.()).catch(() => {});
      }
      if (out.isClosed) break;
      finished[si] = true;
    }
    // Every source reached its end: only now may the end line (watermark +infinity) go out.
    stopIfInterrupted();
    if (ck?.savepointAtEnd && !out.isClosed) return await stopWithSavepoint();
    // With checkpoints the end line carries the final checkpoint (positions at the end, no open
    // state), so that --resume after a finished run has nothing left to do.
    const final =
      ck && !out.isClosed
        ? ck.followerRun !== undefined
          ? ck.followerBarrier(undefined, positions(), emitted)
          : await ck.barrier('checkpoint', positions(), emitted)
        : undefined;
    out.endEvent(final);
    await out.close();
    if (final && isLast()) await (await snapshotModule()).completeSnapshot(final.path as string, []);
    if (!out.isClosed) for (const s of sources) await s.commit?.();
    return out.isClosed ? 'stopped (downstream closed)' : 'done';
  } finally {
    undefer();
    await ck?.closeFollower();
    await Promise.all(sources.map((s) => s.close().catch(() => {})));
  }
}

/**
 * Waits until the last stage completed the snapshot at `path` (`_metadata.json`).
 * @throws RuntimeError when every reader of stdout exited without completing it
 * @throws InterruptedError on another signal
 */
async function waitForSnapshot(path: string): Promise<void> {
  const meta = joinUri(path, METADATA_FILE);
  const store = storeFor(meta);
  for (;;) {
    if (await store.stat(meta)) return;
    if (stageOutput() === undefined && stdoutPipeHasReader() === false && !(await store.stat(meta)))
      throw new RuntimeError(
        `the pipeline's last stage exited without completing savepoint ${path}; it is not usable`,
        'see the downstream stages’ errors above',
      );
    const r = await raceInterrupt(new Promise((res) => setTimeout(res, SAVEPOINT_POLL_MS)));
    if (r instanceof InterruptedError) throw r;
  }
}

/** Minimum watermark over the sources that have not finished (ms; -Infinity if one holds it back). */
function combined(wms: SplitWatermarks[], finished: boolean[]): number {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < wms.length; i++) if (!finished[i]) min = Math.min(min, wms[i].current());
  return min;
}

/**
 * With `--ts-format auto` and a typed event-time column (Parquet TIMESTAMP: epoch ms in the
 * stream), reads it as epoch ms whatever its magnitude (auto would take ms values before 1973 for
 * seconds); a zone-less `timestamp` column is wall-clock time, read in `--tz`.
 */
export function typedTsFormat(
  f: TsFormat,
  tsField: string | undefined,
  schema: Schema | undefined,
): TsFormat {
  if (f !== 'auto' || !tsField || !schema) return f;
  const t = schema[tsField];
  if (t === 'timestamptz') return 'epoch-ms';
  if (t === 'timestamp') return 'wallclock-ms';
  return f;
}

/**
 * How a value of the `--ts-field` column becomes event time, when that is a monotonic
 * non-decreasing function (so a lower bound of the values gives one of the event times, and a
 * watermark `toTs(min) - 1` from row-group statistics is sound, kappa-stream(5)): the column is a
 * top-level `timestamptz`, `timestamp` or `int64` column, and the format one of `epoch-s|ms|us|ns`
 * (a multiplication or floored division) or `wallclock-ms` in UTC (the identity). Undefined
 * otherwise: strings, `auto` on integers (unit guessed by magnitude), wall-clock times in a zone
 * with DST (a gap makes local -> UTC non-monotonic).
 * @returns the value -> epoch ms function (undefined for a value out of range), or undefined
 */
export function statsEventTime(
  tsField: string | undefined,
  format: TsFormat,
  tz: string,
  schema: Schema | undefined,
): ((v: number) => number | undefined) | undefined {
  if (tsField === undefined || tsField.includes('.') || schema === undefined) return undefined;
  const type = schema[tsField];
  if (type !== 'timestamptz' && type !== 'timestamp' && type !== 'int64') return undefined;
  const utc = tz === 'UTC' || tz === 'utc' || tz === 'Z';
  const epoch =
    format === 'epoch-s' || format === 'epoch-ms' || format === 'epoch-us' || format === 'epoch-ns';
  if (!epoch && !(format === 'wallclock-ms' && utc)) return undefined;
  const parse = timestampParser(format, tz);
  return (v) => {
    const t = parse(v);
    return typeof t === 'number' && Number.isFinite(t) ? t : undefined;
  };
}

/** Summary counter of integer literals beyond 2^53 that a reader kept as exact decimal strings. */
export const BIG_INTEGERS_COUNTER = 'integers beyond 2^53 kept as decimal strings';

/** Adds `n` to the `BIG_INTEGERS_COUNTER` of a run's summary counters. */
function countBigIntegers(extra: Record<string, number | string>, n: number): void {
  extra[BIG_INTEGERS_COUNTER] = ((extra[BIG_INTEGERS_COUNTER] as number | undefined) ?? 0) + n;
}
