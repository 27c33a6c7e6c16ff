/**
 * `kappa sink -`: writes each record's value as one JSON line on stdout, for jq and friends.
 * Timestamps stay epoch milliseconds as they travel in the stream. Batches (a version-2 input,
 * `kappa run`) are written from their columns as bytes, with the same output. At-least-once in a
 * checkpointing pipeline: a barrier flushes stdout, but lines written after the last completed
 * checkpoint are written again after a `--resume` (no commit descriptor: nothing to probe).
 */
import { type RecordBatch, recordsOf } from '../stream/batch.js';
import { encodeValueBytes } from '../stream/line-encoder.js';
import { LineWriter } from '../stream/output.js';
import type { Rec } from '../stream/protocol.js';
import type { RecordSink, SinkTarget } from './sink.js';

class StdoutSink implements RecordSink {
  private readonly out = new LineWriter(process.stdout);
  /** Records written from columns by `writeBatch` (summary: `rows by columns`). */
  private columnarRows = 0;
  async open(): Promise<void> {}
  write(r: Rec): void {
    this.out.line(JSON.stringify(r.value));
  }
  /**
   * The batch path (a version-2 stream, or a fused upstream stage under `kappa run`): the values
   * written as bytes straight from the columns (stream/line-encoder.ts `encodeValueBytes`, the
   * NDJSON edge's encoder), the same bytes as `write` of each record; a batch the encoder does not
   * take (missing fields, non-object values) goes record by record.
   */
  writeBatch(b: RecordBatch): void {
    if (encodeValueBytes(b, this.out.bytes())) {
      this.columnarRows += b.length;
      return;
    }
    for (const r of recordsOf(b)) this.write(r);
  }
  counters(): Record<string, number> {
    return this.columnarRows ? { 'rows by columns': this.columnarRows } : {};
  }
  afterBatch(): Promise<void> {
    return this.out.flushIfFull();
  }
  /** Checkpoint barrier: flushes every line of the epoch to stdout (at-least-once). */
  async barrier(): Promise<void> {
    await this.out.flush();
  }
  watermark(): void {}
  async commit(): Promise<string> {
    await this.out.end();
    return 'stdout';
  }
  async abort(): Promise<void> {
    await this.out.flush().catch(() => {});
  }
  get closed(): boolean {
    return this.out.isClosed;
  }
}

/** `-`: record values as NDJSON on stdout (it reads no options of its own). */
export const stdoutSink: SinkTarget = {
  name: "'-' (stdout)",
  options: [],
  claims: (t) => t === '-',
  create: async () => new StdoutSink(),
};
