/**
 * `kappa sink -`: writes each record's value as one JSON line on stdout, for jq and friends.
 * Timestamps stay epoch milliseconds as they travel in the stream.
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
