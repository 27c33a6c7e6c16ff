/**
 * Side outputs: a second kappa stream (kappa-stream(5)) that an operator writes besides its main
 * output, e.g. the late records of `kappa window --late-output PATH` (and, later, of `kappa join`).
 * Flink's name for the same facility is a side output (`OutputTag`).
 *
 * A side output is a complete stream of its own: the header (given at `open`, normally the input's
 * header, since side records are input records), the records, and the end line only when the run
 * finished cleanly (`finish`). A failed run `abort`s: what was written stays, without the end
 * line, so a reader of the file sees that it was cut off (exit 1), exactly as with a pipe whose
 * writer died. Writes go through a LineWriter (whole lines, back-pressure via `flushIfFull`).
 *
 * The file is created (truncated) by `create`, so an unwritable path is a usage error before any
 * record is read.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { RuntimeError, UsageError } from '../errors.js';
import type { Collector, Operator } from '../ops/operator.js';
import { LineWriter } from './output.js';
import { END_LINE, encodeHeader, encodeRecord, type Header, type Rec } from './protocol.js';

export class SideOutput {
  private readonly file: WriteStream;
  private readonly out: LineWriter;
  private opened = false;
  private done = false;
  /** Records written so far. */
  count = 0;

  /**
   * Creates (truncates) the file at `path` and waits until it is open.
   * @param what how messages name this output, e.g. `--late-output`
   * @throws UsageError (exit 2, at start, before any record is read) when the file cannot be
   *   created; names the flag, the path and the reason
   */
  static async create(path: string, what: string): Promise<SideOutput> {
    const file = createWriteStream(path);
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', (e) =>
        reject(
          new UsageError(`${what} ${path}: cannot create the file: ${e.message}`, 'give a writable path'),
        ),
      );
    });
    return new SideOutput(file, path, what);
  }

  private constructor(
    file: WriteStream,
    readonly path: string,
    readonly what: string,
  ) {
    this.file = file;
    this.out = new LineWriter(file);
  }

  /** Writes the stream header. Called once, before any record. */
  open(header: Header): void {
    if (this.opened) return;
    this.opened = true;
    this.out.line(encodeHeader(header));
  }

  /** Appends one record (written unchanged, `ts`, `key`, `value`, provenance and headers). */
  record(r: Rec): void {
    if (!this.opened) this.open({ kappa: 1 });
    this.out.line(encodeRecord(r));
    this.count++;
  }

  /** Writes buffered lines once a chunk is full, waiting for the file (back-pressure). */
  flushIfFull(): Promise<void> {
    return this.out.flushIfFull();
  }

  /** A Collector view for operators that emit side records through the Collector interface. */
  collector(): Collector {
    return { record: (r) => this.record(r), watermark: () => {}, drain: () => this.out.flushIfFull() };
  }

  /** Clean finish: the end line, then flush and close the file. */
  async finish(): Promise<void> {
    if (this.done) return;
    this.done = true;
    if (!this.opened) this.open({ kappa: 1 });
    this.out.line(END_LINE);
    await this.out.flush();
    await this.close();
  }

  /** Failed run: keep what was written, without the end line (readers see a cut-off stream). */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.out.flush().catch(() => {});
    await this.close().catch(() => {});
  }

  private close(): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.file.end((e?: Error | null) =>
        e ? reject(new RuntimeError(`${this.what} ${this.path}: ${e.message}`)) : resolve(),
      ),
    );
  }
}

/**
 * Wraps an operator so that its side outputs follow the main stream's life cycle: each gets the
 * input header at `open`, is flushed (with back-pressure) after every watermark, and is finished
 * (end line) after the operator's `end`, i.e. only on a clean finish. A failed run must call
 * `abort()` on each side output (e.g. in a `finally`; it is a no-op after `finish`).
 */
export function withSideOutputs(op: Operator, sides: readonly SideOutput[]): Operator {
  if (sides.length === 0) return op;
  const wrapped: Operator = {
    open: (h) => {
      for (const s of sides) s.open(h);
      return op.open(h);
    },
    record: (r, out) => op.record(r, out),
    watermark: async (wm, out) => {
      await op.watermark(wm, out);
      for (const s of sides) await s.flushIfFull();
    },
    end: async (out) => {
      await op.end(out);
      for (const s of sides) await s.finish();
    },
  };
  if (op.barrier) wrapped.barrier = (b, out) => op.barrier!(b, out);
  if (op.snapshot) wrapped.snapshot = () => op.snapshot!();
  if (op.restore) wrapped.restore = (saved) => op.restore!(saved);
  if (op.counters) wrapped.counters = () => op.counters!();
  if (op.close) wrapped.close = () => op.close!();
  return wrapped;
}
