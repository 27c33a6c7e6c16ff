/**
 * `kappa sink -`: writes each record's value as one JSON line on stdout, for jq and friends.
 * Timestamps stay epoch milliseconds as they travel in the stream. At-least-once in a
 * checkpointing pipeline: a barrier flushes stdout, but lines written after the last completed
 * checkpoint are written again after a `--resume` (no commit descriptor: nothing to probe).
 */
import { LineWriter } from '../stream/output.js';
import type { Rec } from '../stream/protocol.js';
import type { RecordSink, SinkTarget } from './sink.js';

class StdoutSink implements RecordSink {
  private readonly out = new LineWriter(process.stdout);
  async open(): Promise<void> {}
  write(r: Rec): void {
    this.out.line(JSON.stringify(r.value));
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
