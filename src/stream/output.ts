/**
 * Buffered line writer for stdout or any Writable, with back-pressure and quiet EPIPE handling.
 *
 * Lines are collected into a string buffer and written in ~64 KiB chunks, always whole lines, so a
 * reader never sees a partial line. Callers `await flushIfFull()` between batches: when the
 * destination's buffer is full it waits for 'drain' (back-pressure). When the reader goes away
 * (`… | head`), writes fail with EPIPE; the writer then marks itself closed and the process exits 0
 * without a stack trace (see `isClosed`).
 */
import type { Writable } from 'node:stream';

const CHUNK = 64 * 1024;

/**
 * Where an encoder writes whole lines as bytes (`LineWriter.bytes()`; stream/line-encoder.ts):
 * lines go into `buf` from `pos` on, and the encoder stores the new `pos` when it is done. It
 * calls `grow(need)` (with `pos` stored) before a line that might not fit: the bytes written so
 * far go out as one chunk and `buf`/`pos` then have room for at least `need` bytes.
 */
export interface LineBytes {
  buf: Buffer;
  pos: number;
  /** Number of lines the encoder wrote (it adds to this). */
  lines: number;
  grow(need: number): void;
}

/**
 * Writes `data` and, when the destination's buffer is full, waits for 'drain' (or for its end:
 * 'error'/'close', so a reader that went away never leaves the writer waiting).
 * @param closed whether the destination is known to be gone (EPIPE): then nothing is awaited
 */
export async function writeWithBackPressure(
  out: Writable,
  data: string | Uint8Array,
  closed: () => boolean,
): Promise<void> {
  if (out.write(data) || closed()) return;
  await drained(out);
}

/** Resolves at the stream's next 'drain', 'error' or 'close' (whichever comes first). */
export function drained(out: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('error', done);
      out.off('close', done);
      resolve();
    };
    out.on('drain', done);
    out.on('error', done);
    out.on('close', done);
  });
}

export class LineWriter {
  /** The lines since the last full chunk (a short string: at most about CHUNK characters). */
  private buf = '';
  /**
   * Full chunks already turned into bytes. A string buffer of a whole batch (megabytes of lines)
   * is a deep rope of short strings that lives through old-space GCs before it is flattened:
   * measured 46% of `ingest x.parquet` in GC; converting every 64 KiB keeps each rope young.
   */
  private chunks: Buffer[] = [];
  private closed = false;
  private failure: Error | undefined;
  /**
   * Lines written as bytes (`bytes()`): `raw.buf[0, raw.pos)` follows every chunk and precedes
   * `buf` (one of the two is empty at any time).
   */
  private readonly raw: LineBytes = {
    buf: Buffer.alloc(0),
    pos: 0,
    lines: 0,
    grow: (need) => this.growRaw(need),
  };
  private linesBefore = 0;

  /** Number of lines written (handed to the destination). */
  get lines(): number {
    return this.linesBefore + this.raw.lines;
  }

  constructor(private readonly out: Writable) {
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') this.closed = true;
      else this.failure = err;
    });
  }

  /** True once the reader has gone away (EPIPE). Producers should stop and exit 0. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Appends one line (without newline). Cheap: only concatenates. */
  line(s: string): void {
    if (this.raw.pos > 0) this.takeRaw();
    this.buf += `${s}\n`;
    this.linesBefore++;
    if (this.buf.length >= CHUNK) {
      this.chunks.push(Buffer.from(this.buf, 'utf8'));
      this.buf = '';
    }
  }

  /**
   * The byte sink for encoders that write lines as bytes (see `LineBytes`); lines appended with
   * `line()` before it come first. Use it at once: a later `line()` moves its bytes to a chunk.
   */
  bytes(): LineBytes {
    if (this.buf.length > 0) {
      this.chunks.push(Buffer.from(this.buf, 'utf8'));
      this.buf = '';
    }
    return this.raw;
  }

  /** The bytes written into `raw` become a chunk; `raw` keeps the rest of its buffer. */
  private takeRaw(): void {
    const r = this.raw;
    this.chunks.push(r.buf.subarray(0, r.pos));
    r.buf = r.buf.subarray(r.pos);
    r.pos = 0;
  }

  private growRaw(need: number): void {
    const r = this.raw;
    if (r.pos > 0) this.chunks.push(r.buf.subarray(0, r.pos));
    r.buf = Buffer.allocUnsafe(Math.max(CHUNK, need));
    r.pos = 0;
  }

  /** Writes the buffer if it holds at least a chunk, waiting for drain when the destination is full. */
  async flushIfFull(): Promise<void> {
    if (this.chunks.length > 0) await this.flush();
  }

  /** Writes whatever is buffered and waits for drain if needed. Throws a destination error. */
  async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.raw.pos > 0) this.takeRaw();
    if (this.closed) {
      this.buf = '';
      this.chunks = [];
      return;
    }
    if (this.buf.length === 0 && this.chunks.length === 0) return;
    // The full chunks, then the rest; back-pressure is awaited once, after the last write (no
    // Buffer.concat: it copied every output byte once more).
    const chunks = this.chunks;
    const rest = this.buf;
    this.buf = '';
    this.chunks = [];
    const last = rest.length > 0 ? rest : chunks.pop();
    for (const c of chunks) this.out.write(c);
    if (last !== undefined) await writeWithBackPressure(this.out, last, () => this.closed);
    if (this.failure) throw this.failure;
  }

  /** Flushes and waits until the destination has accepted everything (for stdout: written to the pipe). */
  async end(): Promise<void> {
    await this.flush();
    if (this.closed) return;
    // The write callback runs once everything written before it was handed to the destination
    // (waiting for 'drain' would hang: it only fires after a write returned false).
    await new Promise<void>((resolve) => this.out.write('', () => resolve()));
  }
}
