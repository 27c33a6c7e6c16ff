/**
 * Stream writers: one interface over the two encodings of the kappa stream (man/kappa-stream.5):
 * NDJSON (version 1, `NdjsonStreamWriter`, over LineWriter) and Arrow IPC (version 2,
 * `ArrowStreamWriter`). `openStreamWriter` picks the encoding (negotiate.ts).
 *
 * Both buffer their output, write whole lines / whole IPC messages only, honour back-pressure
 * (`flushIfFull`, `flush`) and go quiet on EPIPE (`isClosed`), like LineWriter.
 */
import type { Writable } from 'node:stream';
import { ArrowEncoder } from './arrow.js';
import { batchFromRecords, type RecordBatch } from './batch.js';
import { stageOutput } from './direct.js';
import { encodeBatchBytes, encodeBatchLines } from './line-encoder.js';
import { resolveStreamFormat } from './negotiate.js';
import { drained, LineWriter, writeWithBackPressure } from './output.js';
import {
  type Barrier,
  encodeBarrier,
  encodeEnd,
  encodeHeader,
  encodeRecord,
  encodeStop,
  encodeWatermark,
  type Header,
  PROTOCOL_VERSION,
  type Rec,
  type Schema,
  type StopInfo,
} from './protocol.js';

/** Writes one kappa stream. */
export interface StreamWriter {
  readonly format: 'ndjson' | 'arrow' | 'direct';
  /** Writes the header (its version is the writer's). Must come first. */
  header(h: Header): void;
  /**
   * Appends one record. `rawLine`: the record's exact version-1 line (a record re-emitted
   * unchanged); `rawValue`: the value's exact JSON text. NDJSON writes them instead of serialising.
   */
  record(r: Rec, rawLine?: string, rawValue?: string): void;
  /** Appends a batch of records (Arrow: encoded as is, without row objects). */
  batch(b: RecordBatch): void;
  watermark(wm: number): void;
  barrier(b: Barrier): void;
  /** Writes the end event (the stream's last), with the final checkpoint when there is one. */
  endEvent(final?: Barrier): void;
  /** Writes the stop event (stop-with-savepoint; the stream's last, instead of the end event). */
  stopEvent(s: StopInfo): void;
  /** Writes buffered output once it holds at least a chunk, waiting for drain when needed. */
  flushIfFull(): Promise<void>;
  /** Writes everything buffered (pending records included) and waits for drain if needed. */
  flush(): Promise<void>;
  /** Flushes and waits until the destination accepted everything. */
  close(): Promise<void>;
  /** True once the reader went away (EPIPE). */
  readonly isClosed: boolean;
}

/**
 * Opens a writer on `out` (default stdout) in the negotiated encoding.
 * @param format force an encoding (tests); default: `resolveStreamFormat()`
 */
export function openStreamWriter(out?: Writable, format?: 'ndjson' | 'arrow'): StreamWriter {
  // A stage fused by `kappa run` hands its events to the next stage directly (direct.ts).
  const direct = out === undefined ? stageOutput() : undefined;
  if (direct) return direct.writer();
  const f = format ?? resolveStreamFormat(out === undefined || out === process.stdout);
  const dest = out ?? process.stdout;
  return f === 'arrow' ? new ArrowStreamWriter(dest) : new NdjsonStreamWriter(dest);
}

/** Version 1: one JSON object per line. */
export class NdjsonStreamWriter implements StreamWriter {
  readonly format = 'ndjson';
  readonly lines: LineWriter;
  constructor(out: Writable) {
    this.lines = new LineWriter(out);
  }
  header(h: Header): void {
    this.lines.line(encodeHeader({ ...h, kappa: PROTOCOL_VERSION }));
  }
  record(r: Rec, rawLine?: string, rawValue?: string): void {
    this.lines.line(rawLine ?? encodeRecord(r, rawValue));
  }
  batch(b: RecordBatch): void {
    // Straight from the columns as bytes when the batch allows it (line-encoder.ts): the same lines.
    if (!encodeBatchBytes(b, this.lines.bytes())) encodeBatchLines(b, this.emit);
  }
  private readonly emit = (line: string): void => this.lines.line(line);
  watermark(wm: number): void {
    this.lines.line(encodeWatermark(wm));
  }
  barrier(b: Barrier): void {
    this.lines.line(encodeBarrier(b));
  }
  endEvent(final?: Barrier): void {
    this.lines.line(encodeEnd(final));
  }
  stopEvent(s: StopInfo): void {
    this.lines.line(encodeStop(s));
  }
  flushIfFull(): Promise<void> {
    return this.lines.flushIfFull();
  }
  flush(): Promise<void> {
    return this.lines.flush();
  }
  close(): Promise<void> {
    return this.lines.end();
  }
  get isClosed(): boolean {
    return this.lines.isClosed;
  }
}

/** Records gathered from row producers before they are encoded as one Arrow batch. */
export const ARROW_BATCH_ROWS = 65_536;
/**
 * How long (ms) gathered records may wait for more before they are encoded and written anyway
 * (Kafka's linger.ms): a live stream with no watermarks must not stall below a full batch.
 */
export const ARROW_LINGER_MS = 100;
const CHUNK = 64 * 1024;

/** Version 2: an Arrow IPC stream (arrow.ts). */
export class ArrowStreamWriter implements StreamWriter {
  readonly format = 'arrow';
  private encoder: ArrowEncoder | undefined;
  private schema: Schema | undefined;
  private pending: Rec[] = [];
  private bufs: Uint8Array[] = [];
  private bytes = 0;
  private closed = false;
  private failure: Error | undefined;
  private linger: NodeJS.Timeout | undefined;
  /** The write still waiting for the destination's 'drain', if any. */
  private inflight: Promise<void> | undefined;

  constructor(private readonly out: Writable) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') this.closed = true;
      else this.failure = err;
    });
  }
  get isClosed(): boolean {
    return this.closed;
  }
  header(h: Header): void {
    this.schema = h.schema;
    this.encoder = new ArrowEncoder(h.schema, h.pipeline);
  }
  private enc(): ArrowEncoder {
    if (!this.encoder) throw new Error('internal: stream writer used before its header');
    return this.encoder;
  }
  private put(parts: Uint8Array[]): void {
    for (const p of parts) {
      this.bufs.push(p);
      this.bytes += p.length;
    }
  }
  private encodePending(): void {
    if (this.linger) {
      clearTimeout(this.linger);
      this.linger = undefined;
    }
    if (this.pending.length === 0) return;
    const recs = this.pending;
    this.pending = [];
    this.put(this.enc().records(recs, (r) => batchFromRecords(r, this.schema)));
  }
  record(r: Rec): void {
    this.pending.push(r);
    if (this.pending.length >= ARROW_BATCH_ROWS) this.encodePending();
    else if (!this.linger) this.armLinger();
  }
  /**
   * Flushes the gathered rows after ARROW_LINGER_MS. While an earlier write still waits for
   * 'drain', it waits another ARROW_LINGER_MS instead: one write in flight at a time, so a stalled
   * reader does not collect a waiter (and an unbounded buffer) per linger.
   */
  private armLinger(): void {
    this.linger = setTimeout(() => {
      if (this.inflight) this.armLinger();
      else void this.flush().catch(() => {}); // a destination error resurfaces at the next flush
    }, ARROW_LINGER_MS);
    this.linger.unref();
  }
  batch(b: RecordBatch): void {
    this.encodePending();
    this.put(this.enc().batch(b));
  }
  watermark(wm: number): void {
    this.encodePending();
    this.put(this.enc().control(encodeWatermark(wm)));
  }
  barrier(b: Barrier): void {
    this.encodePending();
    this.put(this.enc().control(encodeBarrier(b)));
  }
  endEvent(final?: Barrier): void {
    this.encodePending();
    const e = this.enc();
    this.put(e.control(encodeEnd(final)));
    this.put(e.finish());
  }
  stopEvent(s: StopInfo): void {
    this.encodePending();
    const e = this.enc();
    this.put(e.control(encodeStop(s)));
    this.put(e.finish());
  }
  async flushIfFull(): Promise<void> {
    // A write the linger started keeps its back-pressure: wait for it like for our own.
    if (this.inflight) await this.inflight;
    if (this.bytes >= CHUNK) await this.write();
  }
  async flush(): Promise<void> {
    this.encodePending();
    await this.write();
  }
  private async write(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.closed) {
      this.bufs = [];
      this.bytes = 0;
      return;
    }
    if (this.bytes === 0) return;
    const parts = this.bufs;
    this.bufs = [];
    this.bytes = 0;
    const p = writePieces(this.out, parts, () => this.closed);
    this.inflight = p;
    try {
      await p;
    } finally {
      if (this.inflight === p) this.inflight = undefined;
    }
    if (this.failure) throw this.failure;
  }
  async close(): Promise<void> {
    await this.flush();
    if (this.closed) return;
    await new Promise<void>((resolve) => this.out.write('', () => resolve()));
  }
}

/**
 * Writes `parts` in order as one gathered write (`cork`, a `write` per piece, `uncork`: Node hands
 * them to the stream's `_writev`, one `writev(2)` for a pipe or socket) instead of copying them
 * into one buffer first: the encoded messages of a batch are written from the pieces flechette
 * made (headers, padding, the columns' own buffers), which no code changes after encoding. Measured
 * on `kappa ingest flights-3m.ndjson` into a pipe: the copy was 145 MB and ~0.09 CPU s.
 * Back-pressure as `writeWithBackPressure`: resolves at once unless the last write said the
 * buffer is full, then at 'drain' (or 'error' / 'close').
 */
async function writePieces(out: Writable, parts: Uint8Array[], closed: () => boolean): Promise<void> {
  if (parts.length === 1) return writeWithBackPressure(out, parts[0], closed);
  out.cork();
  let ok = true;
  for (const b of parts) ok = out.write(b);
  out.uncork();
  if (ok || closed()) return;
  await drained(out);
}
