/**
 * Runs an operator between a kappa stream on stdin and a kappa stream on stdout: the glue every
 * stream-to-stream command (transform, window, join) uses.
 */

import type { StageCheckpointer } from '../checkpoint/stage.js';
import { ExitCode, KappaError } from '../errors.js';
import { BadRecordError, type Collector, type Operator } from '../ops/operator.js';
import type { BadRecords } from './badrecords.js';
import { type RecordBatch, recordsOf } from './batch.js';
import { stageInput } from './direct.js';
import { readStream } from './input.js';
import type { Progress } from './progress.js';
import { type Barrier, encodeRecord, type Rec } from './protocol.js';
import { deferFirstSignal, interruptible, throwIfInterrupted } from './signals.js';
import { openStreamWriter } from './writer.js';

export interface RunOptions {
  input?: AsyncIterable<Buffer | string>;
  output?: NodeJS.WritableStream & import('node:stream').Writable;
  bad: BadRecords;
  progress: Progress;
  /** Print the operator's counters on stderr every this many ms of wall time (0/undefined: never). */
  statsEveryMs?: number;
  /** `--max-line-bytes`: longest input line in bytes (default 64 MiB); longer lines are bad records. */
  maxLineBytes?: number;
  /**
   * Checkpointing (src/checkpoint/stage.ts): restores the operator from the snapshot the source
   * chose, snapshots it on every barrier before forwarding, completes checkpoints at the last stage.
   */
  checkpoint?: StageCheckpointer;
}

/** Records, watermarks and batches held behind a barrier before the stage waits for its part. */
const HOLD_MAX = 4096;

/**
 * Pumps stdin through `op` to stdout; resolves with the summary status (`done`, or `stopped with
 * savepoint PATH` after a stop line). Bad records (BadRecordError from the operator, and lines the
 * reader rejects: invalid `ts`, too deep, too long, not JSON) go through the `--on-error` policy;
 * the record's text is what a dead-letter file receives. Resolves when the end line is written, or
 * early (quietly) when the downstream reader went away.
 *
 * The collector handed to the operator implements `drain()`: it writes the buffered output once it
 * holds at least a chunk (64 KiB) and resolves when the destination accepted it (its 'drain'), so
 * an operator emitting many records from one event (a watermark firing 200k windows) keeps the
 * output buffer bounded by awaiting it every few thousand records.
 *
 * Barriers: the operator's part is written before the barrier is forwarded. When its snapshot is a
 * copy (`OperatorStateSnapshot.columns`), the part is written in the background while input goes
 * on; the barrier and everything emitted after it are held (at most HOLD_MAX items, then the stage
 * waits) and forwarded once the part is written, so downstream sees the same stream as with a
 * synchronous snapshot. A failed background write fails the stage (exit 1, or the error's code).
 */
export async function runOperator(op: Operator, opts: RunOptions): Promise<string> {
  let status = 'done';
  const out = openStreamWriter(opts.output);
  const stats = opts.progress.stats;
  const ck = opts.checkpoint;
  let undefer = () => {};
  // The input record being processed and its line: an operator that emits that very object
  // (unchanged: operators never mutate their input) gets its original line re-emitted verbatim.
  let current: Rec | undefined;
  let currentRaw: string | undefined;
  let lastStats = Date.now();
  // A barrier whose part is being written in the background (`StageCheckpointer.barrierAsync`):
  // the operator goes on, but what it emits waits behind the barrier, which is forwarded only once
  // the part is durable (`release`): by the next input event that finds it written, or at once when
  // the write ends while the stage waits for input (a source taking a savepoint sends nothing more
  // until the checkpoint completes).
  let held: { written: Promise<Barrier>; queue: (() => void)[]; settled: boolean } | undefined;
  let releasing: Promise<void> | undefined;
  const emit = (f: () => void): void => {
    if (held) held.queue.push(f);
    else f();
  };
  /**
   * Forwards the held barrier and what was emitted after it, then completes the checkpoint at the
   * last stage: waits for the part when `wait` (or when too much is held), else only if written.
   */
  const release = (wait: boolean): Promise<void> => {
    if (releasing) return releasing;
    const h = held;
    if (!h || (!wait && !h.settled && h.queue.length < HOLD_MAX)) return Promise.resolve();
    releasing = (async () => {
      try {
        const fwd = await h.written; // a failed write fails the stage here
        held = undefined;
        out.barrier(fwd);
        for (const f of h.queue) f();
        // Hand the barrier on now: the stage may be idle (a source taking a savepoint sends
        // nothing more until the checkpoint completes downstream).
        await out.flush();
        if (ck?.active && fwd.path) await ck.complete(fwd);
      } finally {
        releasing = undefined;
      }
    })();
    return releasing;
  };
  /** A part written in the background failed while the stage waited for input: fail the stage. */
  const failInBackground = (e: unknown): void => {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`kappa ${opts.progress.command}: error: checkpoint part: ${msg}\n`);
    process.exit(e instanceof KappaError ? e.exitCode : ExitCode.runtime);
  };
  const collector: Collector = {
    record(r: Rec) {
      const raw = r === current ? currentRaw : undefined;
      if (held) held.queue.push(() => out.record(r, raw));
      else out.record(r, raw);
      stats.recordsOut++;
    },
    batch(b: RecordBatch) {
      emit(() => out.batch(b));
      stats.recordsOut += b.length;
    },
    watermark(wm: number) {
      emit(() => out.watermark(wm));
    },
    barrier(b: Barrier) {
      emit(() => out.barrier(b));
    },
    async drain() {
      await release(false);
      await out.flushIfFull();
    },
  };
  try {
    await readStream(
      opts.input ?? interruptible(stageInput()),
      {
        async header(h) {
          const pipeline = ck?.onHeader(h, op.snapshot !== undefined);
          const oh = await op.open(h);
          out.header(pipeline ? { ...oh, pipeline } : oh);
          if (pipeline && ck) {
            await ck.restore(op);
            undefer = deferFirstSignal((sig) =>
              process.stderr.write(
                `kappa ${opts.progress.command}: ${sig}: waiting for the source's savepoint (send it again to abort)\n`,
              ),
            );
          }
        },
        async batch(b, first) {
          // Version-2 input: the operator's columnar path when it has one, else row by row.
          stats.recordsIn += b.length;
          current = undefined;
          currentRaw = undefined;
          const exact = b.rec?.bind(b);
          const recAt = (i: number): Rec => (exact ? exact(i) : recordsOf(b)[i]);
          if (op.batch) {
            await op.batch(b, collector, (row, reason) =>
              opts.bad.report({ source: 'stdin', line: first + row }, reason, encodeRecord(recAt(row))),
            );
            return;
          }
          const recs = exact ? undefined : recordsOf(b);
          for (let i = 0; i < b.length; i++) {
            const r = recs ? recs[i] : recAt(i);
            try {
              const p = op.record(r, collector);
              if (p) await p.catch((e) => handleBad(e, r, first + i));
            } catch (e) {
              handleBad(e, r, first + i);
            }
          }
        },
        record(r, line, raw) {
          stats.recordsIn++;
          current = r;
          currentRaw = raw;
          try {
            const p = op.record(r, collector);
            if (p) return p.catch((e) => handleBad(e, r, line));
          } catch (e) {
            handleBad(e, r, line);
          }
        },
        watermark(wm) {
          return op.watermark(wm, collector);
        },
        async barrier(b) {
          await release(true);
          if (ck && op.snapshot && !op.barrier) {
            const { background, written } = await ck.barrierAsync(b, (o) => op.snapshot!(o));
            if (background) {
              const h = { written, queue: [], settled: false };
              const settle = () => {
                h.settled = true;
                if (held === h) release(false).catch(failInBackground);
              };
              written.then(settle, settle);
              held = h;
              return;
            }
            collector.barrier?.(await written);
            if (ck.active && b.path) {
              await out.flush();
              await ck.complete(await written);
            }
            return;
          }
          const fwd = ck ? await ck.barrier(b, op.snapshot ? () => op.snapshot!() : undefined) : b;
          if (op.barrier) await op.barrier(fwd, collector);
          else collector.barrier?.(fwd);
          if (ck?.active && fwd.path) {
            await out.flush();
            await ck.complete(fwd);
          }
        },
        async end(final) {
          await release(true);
          await op.end(collector);
          throwIfInterrupted(); // a signal never turns into an end line
          out.endEvent(final);
          if (final && ck?.active) {
            await out.flush();
            await ck.complete(final);
          }
        },
        async stop(st) {
          await release(true);
          // Stop-with-savepoint: forward the stop line without firing anything.
          out.stopEvent(st);
          status = `stopped with savepoint ${st.savepoint}`;
        },
        async afterBatch() {
          await release(false);
          opts.progress.update(stats.recordsIn);
          if (opts.statsEveryMs && op.counters && Date.now() - lastStats >= opts.statsEveryMs) {
            lastStats = Date.now();
            const c = Object.entries(op.counters()).map(([k, v]) => `${k} ${v}`);
            process.stderr.write(`kappa ${opts.progress.command}: ${stats.recordsIn} in, ${c.join(', ')}\n`);
          }
          await out.flushIfFull();
        },
        bad(line, reason, raw) {
          stats.recordsIn++;
          opts.bad.report({ source: 'stdin', line }, reason, raw);
        },
        stopped: () => out.isClosed,
      },
      { maxLineBytes: opts.maxLineBytes },
    );
    await release(true); // input that stopped early (downstream gone) may leave a barrier held
    await out.close();
    return status;
  } finally {
    undefer();
    if (op.counters) Object.assign(stats.extra, op.counters());
    if (ck) Object.assign(stats.extra, ck.counters());
    await op.close?.();
    stats.bad = opts.bad.count;
  }

  function handleBad(e: unknown, r: Rec, line: number): void {
    if (!(e instanceof BadRecordError)) throw e;
    opts.bad.report({ source: 'stdin', line }, e.message, encodeRecord(r));
  }
}
