/**
 * Runs an operator between a kappa stream on stdin and a kappa stream on stdout: the glue every
 * stream-to-stream command (transform, window, join) uses.
 */

import { BadRecordError, type Collector, type Operator } from '../ops/operator.js';
import type { BadRecords } from './badrecords.js';
import { readStream } from './input.js';
import { LineWriter } from './output.js';
import type { Progress } from './progress.js';
import {
  type Barrier,
  END_LINE,
  encodeBarrier,
  encodeHeader,
  encodeRecord,
  encodeWatermark,
  type Rec,
} from './protocol.js';
import { interruptible, throwIfInterrupted } from './signals.js';

export interface RunOptions {
  input?: AsyncIterable<Buffer | string>;
  output?: NodeJS.WritableStream & import('node:stream').Writable;
  bad: BadRecords;
  progress: Progress;
  /** Print the operator's counters on stderr every this many ms of wall time (0/undefined: never). */
  statsEveryMs?: number;
}

/**
 * Pumps stdin through `op` to stdout. Bad records (BadRecordError) go through the policy; the
 * record's JSON is what a dead-letter file receives. Resolves when the end line is written, or
 * early (quietly) when the downstream reader went away.
 */
export async function runOperator(op: Operator, opts: RunOptions): Promise<void> {
  const out = new LineWriter(opts.output ?? process.stdout);
  const stats = opts.progress.stats;
  // The input record being processed and its line: an operator that emits that very object
  // (unchanged: operators never mutate their input) gets its original line re-emitted verbatim.
  let current: Rec | undefined;
  let currentRaw: string | undefined;
  let lastStats = Date.now();
  const collector: Collector = {
    record(r: Rec) {
      out.line(r === current && currentRaw !== undefined ? currentRaw : encodeRecord(r));
      stats.recordsOut++;
    },
    watermark(wm: number) {
      out.line(encodeWatermark(wm));
    },
    barrier(b: Barrier) {
      out.line(encodeBarrier(b));
    },
  };
  try {
    await readStream(opts.input ?? interruptible(process.stdin), {
      async header(h) {
        out.line(encodeHeader(await op.open(h)));
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
      barrier(b) {
        return op.barrier ? op.barrier(b, collector) : collector.barrier?.(b);
      },
      async end() {
        await op.end(collector);
        throwIfInterrupted(); // a signal never turns into an end line
        out.line(END_LINE);
      },
      async afterBatch() {
        opts.progress.update(stats.recordsIn);
        if (opts.statsEveryMs && op.counters && Date.now() - lastStats >= opts.statsEveryMs) {
          lastStats = Date.now();
          const c = Object.entries(op.counters()).map(([k, v]) => `${k} ${v}`);
          process.stderr.write(`kappa ${opts.progress.command}: ${stats.recordsIn} in, ${c.join(', ')}\n`);
        }
        await out.flushIfFull();
      },
      stopped: () => out.isClosed,
    });
    await out.end();
  } finally {
    if (op.counters) Object.assign(stats.extra, op.counters());
    await op.close?.();
    stats.bad = opts.bad.count;
  }

  function handleBad(e: unknown, r: Rec, line: number): void {
    if (!(e instanceof BadRecordError)) throw e;
    opts.bad.report({ source: 'stdin', line }, e.message, encodeRecord(r));
  }
}
