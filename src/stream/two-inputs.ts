/**
 * The two-input runtime (`kappa join`): two kappa streams in (left: stdin; right: a file, FIFO or
 * process substitution), one out, through a `TwoInputOperator` (src/ops/join/operator.ts).
 *
 * - Both inputs are read concurrently (`readStream`, so each may be NDJSON v1 or Arrow v2); the
 *   operator sees one event at a time (calls are serialised).
 * - Watermark: the operator gets the minimum of both inputs' watermarks (an ended input counts as
 *   +infinity; an idle input, with no event for `idleTimeoutMs`, is left out until it sends again),
 *   only when it advances.
 * - Back-pressure (Flink's watermark alignment, FLIP-182): an input whose watermark is ahead of the
 *   other's is paused (its reader waits) until the other catches up, ends, goes idle or waits at a
 *   barrier, so the state held for the slower input stays bounded. A paused input is never idle
 *   (FLIP-471).
 * - Barrier alignment (aligned checkpoints): when barrier N arrives on one input, that input is held
 *   until barrier N arrives on the other (or the other ended); then one barrier N goes to the
 *   operator (`barrier`, which snapshots and forwards) with the sources of both and the union of
 *   their operators.
 * - End: the end line once both inputs ended (`op.end` fires everything first). A stop line
 *   (stop-with-savepoint) on either input, once both are done: the stop line is forwarded once,
 *   without firing.
 * - Checkpoints through the join (src/checkpoint/follow.ts): `onHeld` is called when barrier N
 *   arrives on one input while the other is live and has not delivered it (the join asks the right
 *   input's follower source for barrier N there). An input that ended keeps counting in later
 *   checkpoints: the sources of its end line's final checkpoint are merged into every barrier
 *   forwarded after it, and into the other input's final checkpoint on the end line. After a
 *   barrier or the end line is forwarded and flushed, `op.complete` runs (the last stage completes
 *   the checkpoint there).
 */
import type { Writable } from 'node:stream';
import { RuntimeError } from '../errors.js';
import type { Side, TwoInputOperator } from '../ops/join/operator.js';
import { BadRecordError, type Collector } from '../ops/operator.js';
import type { BadRecords } from './badrecords.js';
import { type RecordBatch, recordsOf } from './batch.js';
import { readStream, type StreamConsumer } from './input.js';
import type { Progress } from './progress.js';
import { type Barrier, encodeRecord, type Header, type Rec, type StopInfo } from './protocol.js';
import { interruptible, throwIfInterrupted } from './signals.js';
import { openStreamWriter } from './writer.js';

/** Options of `runTwoInputs`. */
export interface TwoInputRunOptions {
  /** Left input bytes (default: stdin). */
  left?: AsyncIterable<Buffer | string>;
  /** Right input bytes. */
  right: AsyncIterable<Buffer | string>;
  /** How messages name the inputs (default `stdin`, `right`). */
  leftName?: string;
  rightName?: string;
  output?: Writable;
  bad: BadRecords;
  progress: Progress;
  maxLineBytes?: number;
  /** `--idle-timeout` in ms: an input without events this long is left out of the watermark. */
  idleTimeoutMs?: number;
  /** Force the output encoding (tests); default negotiated. */
  format?: 'ndjson' | 'arrow';
  /**
   * Barrier `b` arrived on input `side` and is held: the other input is live and has not delivered
   * barrier `b.id` yet. Awaited before the input waits for the other's barrier.
   */
  onHeld?(side: Side, b: Barrier): void | Promise<void>;
}

interface InputState {
  name: string;
  header?: Header;
  wm: number;
  ended: boolean;
  stop?: StopInfo;
  /** The barrier this input is held at (waiting for the other input's). */
  barrier?: Barrier;
  /** The final checkpoint its end line carried (its sources' positions at the end). */
  final?: Barrier;
  /** Waiting because its watermark is ahead (back-pressure). */
  paused: boolean;
  idle: boolean;
  lastActive: number;
}

/** Merges the two inputs' barrier N: the sources of both, the union of their operators. */
export function mergeBarriers(a: Barrier, b: Barrier): Barrier {
  const m: Barrier = { ...a };
  if (a.sources || b.sources) m.sources = [...(a.sources ?? []), ...(b.sources ?? [])];
  if (a.operators || b.operators)
    m.operators = [...new Set([...(a.operators ?? []), ...(b.operators ?? [])])];
  if (a.positions || b.positions) m.positions = { ...(a.positions ?? {}), ...(b.positions ?? {}) };
  return m;
}

/**
 * Runs `op` over two kappa streams to stdout (see the module comment). Resolves when the end (or
 * stop) line is written.
 * @throws DataError / RuntimeError from either reader (bad input, a cut-off stream), errors of the
 *   operator, RuntimeError when the inputs' barrier ids disagree
 */
export async function runTwoInputs(op: TwoInputOperator, opts: TwoInputRunOptions): Promise<void> {
  const out = openStreamWriter(opts.output, opts.format);
  const stats = opts.progress.stats;
  const now = Date.now();
  const inputs: [InputState, InputState] = [
    {
      name: opts.leftName ?? 'stdin',
      wm: Number.NEGATIVE_INFINITY,
      ended: false,
      paused: false,
      idle: false,
      lastActive: now,
    },
    {
      name: opts.rightName ?? 'right',
      wm: Number.NEGATIVE_INFINITY,
      ended: false,
      paused: false,
      idle: false,
      lastActive: now,
    },
  ];
  const collector: Collector = {
    record(r: Rec) {
      out.record(r);
      stats.recordsOut++;
    },
    batch(b: RecordBatch) {
      out.batch(b);
      stats.recordsOut += b.length;
    },
    watermark: (wm) => out.watermark(wm),
    barrier: (b) => out.barrier(b),
    drain: () => out.flushIfFull(),
  };

  // --- serialising the operator calls of both readers ---
  let pending = 0;
  let tail: Promise<void> = Promise.resolve();
  const serial = (fn: () => void | Promise<void>): void | Promise<void> => {
    if (pending === 0) {
      const p = fn();
      if (p === undefined) return;
      pending++;
      tail = p.finally(() => {
        pending--;
      });
      return tail;
    }
    pending++;
    tail = tail.then(fn).finally(() => {
      pending--;
    });
    return tail;
  };

  // --- waiting for a condition (paused inputs, barrier alignment, headers) ---
  let failed: unknown;
  const waiters: { cond: () => boolean; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const wake = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (failed !== undefined) w.reject(failed);
      else if (w.cond()) w.resolve();
      else continue;
      waiters.splice(i, 1);
    }
  };
  const until = (test: () => boolean): void | Promise<void> => {
    if (failed !== undefined) throw failed;
    // The downstream reader went away: nothing to wait for (the readers stop at their next line).
    const cond = () => out.isClosed || test();
    if (cond()) return;
    return new Promise<void>((resolve, reject) => waiters.push({ cond, resolve, reject }));
  };

  // --- the combined watermark ---
  let combined = Number.NEGATIVE_INFINITY;
  const advance = (): void | Promise<void> => {
    let min = Number.POSITIVE_INFINITY;
    let any = false;
    for (const s of inputs) {
      if (s.ended || s.stop) continue;
      if (s.idle) continue;
      any = true;
      if (s.wm < min) min = s.wm;
    }
    if (!any && !(inputs[0].ended && inputs[1].ended)) return; // all idle: time stands still
    if (!any) return; // both ended: op.end fires
    if (min > combined) {
      combined = min;
      return op.watermark(min, collector);
    }
  };
  const touch = (i: Side): void | Promise<void> => {
    const s = inputs[i];
    s.lastActive = Date.now();
    if (s.idle) {
      s.idle = false;
      wake();
    }
  };

  // --- barriers ---
  const settleBarriers = (): void | Promise<void> => {
    const [a, b] = inputs;
    let forward: Barrier | undefined;
    if (a.barrier && b.barrier) {
      if (a.barrier.id !== b.barrier.id)
        throw new RuntimeError(
          `barrier alignment: ${a.name} is at barrier ${a.barrier.id}, ${b.name} at barrier ${b.barrier.id}; both inputs must come from checkpoints of the same job`,
        );
      forward = mergeBarriers(a.barrier, b.barrier);
    } else if (a.barrier && (b.ended || b.stop)) forward = withEnded(a.barrier, b);
    else if (b.barrier && (a.ended || a.stop)) forward = withEnded(b.barrier, a);
    if (!forward) return;
    a.barrier = undefined;
    b.barrier = undefined;
    wake();
    const f = forward;
    return serial(async () => {
      const fwd = op.barrier ? ((await op.barrier(f, collector)) ?? f) : f;
      if (!op.barrier) collector.barrier!(f);
      if (op.complete) {
        await out.flush();
        await op.complete(fwd);
      }
    });
  };
  /** `b` with the end positions of input `ended` (which delivers no more barriers). */
  const withEnded = (b: Barrier, ended: InputState): Barrier =>
    ended.final?.sources ? mergeBarriers(b, { id: b.id, sources: ended.final.sources }) : b;

  // --- the end ---
  let finished = false;
  const finishIfDone = (): void | Promise<void> => {
    const [a, b] = inputs;
    if (finished || !(a.ended || a.stop) || !(b.ended || b.stop)) return;
    finished = true;
    const stop = a.stop ?? b.stop;
    return serial(async () => {
      if (stop) {
        out.stopEvent(stop); // stop-with-savepoint: forwarded once, nothing fires
        return;
      }
      await op.end(collector);
      throwIfInterrupted(); // a signal never turns into an end line
      // The final checkpoint: the one of the input that has a snapshot path (the coordinator's),
      // with the other input's end positions.
      const [p, q] = a.final?.path ? [a, b] : [b, a];
      let final = p.final ? withEnded(p.final, q) : undefined;
      if (final && op.endBarrier) final = await op.endBarrier(final);
      out.endEvent(final);
      if (final && op.complete) {
        await out.flush();
        await op.complete(final);
      }
    });
  };

  let opened = false;
  const consumer = (i: Side): StreamConsumer => {
    const me = inputs[i];
    const other = inputs[i === 0 ? 1 : 0];
    const handleBad = (e: unknown, r: Rec, line: number): void => {
      if (!(e instanceof BadRecordError)) throw e;
      opts.bad.report({ source: me.name, line }, e.message, encodeRecord(r));
    };
    const one = (r: Rec, line: number): void | Promise<void> =>
      serial(() => {
        try {
          const p = op.record(i, r, collector);
          if (p) return p.catch((e) => handleBad(e, r, line));
        } catch (e) {
          handleBad(e, r, line);
        }
      });
    return {
      async header(h) {
        me.header = h;
        if (inputs[0].header && inputs[1].header && !opened) {
          opened = true;
          const oh = await op.open(inputs[0].header, inputs[1].header);
          out.header(oh);
          wake();
        }
        await until(() => opened);
      },
      record(r, line) {
        stats.recordsIn++;
        touch(i);
        return one(r, line);
      },
      async batch(b, first) {
        stats.recordsIn += b.length;
        touch(i);
        const recs = b.rec ? undefined : recordsOf(b);
        for (let k = 0; k < b.length; k++) {
          const p = one(recs ? recs[k] : b.rec!(k), first + k);
          if (p) await p;
        }
      },
      async watermark(wm) {
        touch(i);
        me.wm = wm;
        wake(); // the other input may be waiting for this one to catch up
        await serial(advance);
        // Back-pressure: ahead of the other input? Wait until it catches up (or cannot).
        me.paused = true;
        try {
          await until(
            () =>
              other.wm >= me.wm ||
              other.ended ||
              other.stop !== undefined ||
              other.idle ||
              other.barrier !== undefined,
          );
        } finally {
          me.paused = false;
        }
      },
      async barrier(b) {
        touch(i);
        me.barrier = b;
        wake(); // the other input may be paused for its watermark: an input at a barrier releases it
        if (opts.onHeld && !other.barrier && !other.ended && !other.stop) await opts.onHeld(i, b);
        await settleBarriers();
        await until(() => me.barrier === undefined);
      },
      async end(final) {
        me.ended = true;
        if (final) me.final = final;
        me.wm = Number.POSITIVE_INFINITY;
        wake();
        await serial(advance);
        await settleBarriers();
        await finishIfDone();
      },
      async stop(st) {
        me.stop = st;
        wake();
        await settleBarriers();
        await finishIfDone();
      },
      async afterBatch() {
        opts.progress.update(stats.recordsIn);
        await out.flushIfFull();
      },
      bad(line, reason, raw) {
        stats.recordsIn++;
        opts.bad.report({ source: me.name, line }, reason, raw);
      },
      stopped: () => out.isClosed,
    };
  };

  // --- idleness ---
  const idleMs = opts.idleTimeoutMs;
  const idleTimer =
    idleMs !== undefined && idleMs > 0
      ? setInterval(
          () => {
            let changed = false;
            const t = Date.now();
            for (const s of inputs) {
              if (s.idle || s.ended || s.stop || s.paused || s.barrier || t - s.lastActive < idleMs) continue;
              s.idle = true;
              changed = true;
            }
            if (!changed) return;
            wake();
            const p = serial(advance);
            if (p) p.catch(fail);
          },
          Math.max(10, Math.min(1000, idleMs / 4)),
        )
      : undefined;
  idleTimer?.unref();

  const fail = (e: unknown): void => {
    if (failed === undefined) failed = e;
    wake();
  };
  const read = (i: Side, input: AsyncIterable<Buffer | string>) =>
    readStream(input, consumer(i), { name: inputs[i].name, maxLineBytes: opts.maxLineBytes }).then(
      () => wake(), // an input that stopped early (downstream gone) releases the other's waits
      (e) => {
        fail(e);
        throw e;
      },
    );
  // Nothing left to wake a waiting input (a bug): fail loudly instead of exiting 0 without the
  // end line when Node's event loop runs dry.
  const stalled = () =>
    fail(
      new RuntimeError(
        `internal: both inputs wait for each other (${inputs.map((s) => `${s.name}: ${s.barrier ? `at barrier ${s.barrier.id}` : s.paused ? 'paused' : s.ended ? 'ended' : 'waiting'}`).join(', ')})`,
      ),
    );
  process.once('beforeExit', stalled);
  try {
    await Promise.all([read(0, opts.left ?? interruptible(process.stdin)), read(1, opts.right)]);
    await tail;
    await out.close();
  } finally {
    process.off('beforeExit', stalled);
    if (idleTimer) clearInterval(idleTimer);
    if (op.counters) Object.assign(stats.extra, op.counters());
    await op.close?.();
    stats.bad = opts.bad.count;
  }
}
