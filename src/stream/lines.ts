/**
 * Fast line splitting over byte chunks. This is the hot loop of every command, so it works on
 * whole chunks: decode once, split with indexOf, carry the unterminated tail to the next chunk.
 *
 * Linear in the input: the tail of an unfinished line is kept as a list of pieces and only the new
 * chunk is scanned for the newline (joining tail + chunk before scanning made a 50 MB line cost
 * O(n²): 23 s). A line longer than `maxLineBytes` is not buffered: its first bytes are kept for
 * the error message and the rest is discarded up to the next newline, where reading resynchronises.
 */
import { StringDecoder } from 'node:string_decoder';

/** Default of `--max-line-bytes`: 64 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;

/** Characters of an over-long line kept for messages and dead-letter files. */
const HEAD_CHARS = 1024;

/** A line longer than the limit, returned as an empty string in its place. */
export interface OversizedLine {
  /** Its UTF-8 length in bytes (exact: counted while discarding it). */
  bytes: number;
  /** Its first (up to) 1024 characters. */
  head: string;
}

/** Splits a byte stream into lines (without the `\n`; a trailing `\r` is removed). */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  /** Pieces of the current unterminated line, in order. */
  private parts: string[] = [];
  /** UTF-16 length of `parts`. */
  private partChars = 0;
  /** UTF-8 length of `parts`, counted only once it may matter (-1 until then: the usual case). */
  private partBytes = -1;
  /** While discarding an over-long line: its head and its bytes so far. */
  private skipping: OversizedLine | undefined;
  /** Number of lines returned so far (the 1-based number of the last line returned). */
  lineNo = 0;
  /**
   * Over-long lines among those returned by the last `push()`/`end()`, by index in the returned
   * array (where they appear as `''`). Undefined when there were none (the usual case).
   */
  oversized: Map<number, OversizedLine> | undefined;

  /** @param maxLineBytes longest line in UTF-8 bytes (without the newline) returned as text */
  constructor(readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {
    if (!(maxLineBytes >= 1)) throw new RangeError(`maxLineBytes must be at least 1, got ${maxLineBytes}`);
  }

  /** Characters held for the current unterminated line (bounded by the limit; for tests). */
  get buffered(): number {
    return this.partChars;
  }

  /** Returns every complete line in `chunk`, in order. */
  push(chunk: Buffer | string): string[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const out: string[] = [];
    this.oversized = undefined;
    let start = 0;
    if (this.skipping !== undefined || this.parts.length > 0) {
      const nl = text.indexOf('\n');
      if (nl < 0) {
        this.hold(text);
        return out;
      }
      this.finishHeld(text.slice(0, nl), out);
      start = nl + 1;
    }
    // A line of at most this many UTF-16 units is at most maxLineBytes UTF-8 bytes (<= 3 bytes each).
    const safeChars = Math.floor(this.maxLineBytes / 3);
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      let end = nl;
      if (end > start && text.charCodeAt(end - 1) === 13) end--;
      if (end - start > safeChars) this.addChecked(text.slice(start, end), out);
      else out.push(text.slice(start, end));
      start = nl + 1;
    }
    if (start < text.length) this.hold(start === 0 ? text : text.slice(start));
    this.lineNo += out.length;
    return out;
  }

  /** Returns the final unterminated line, if any (see `oversized` for an over-long one). */
  end(): string[] {
    const rest = this.decoder.end();
    const out: string[] = [];
    this.oversized = undefined;
    if (rest.length > 0) this.hold(rest);
    if (this.skipping !== undefined || this.parts.length > 0) this.finishHeld('', out);
    this.lineNo += out.length;
    return out;
  }

  /** Adds text of the current unterminated line: kept, or counted and dropped past the limit. */
  private hold(s: string): void {
    if (s.length === 0) return;
    if (this.skipping !== undefined) {
      this.skipping.bytes += Buffer.byteLength(s);
      return;
    }
    this.parts.push(s);
    this.partChars += s.length;
    if (this.partBytes >= 0) this.partBytes += Buffer.byteLength(s);
    else if (this.partChars * 3 > this.maxLineBytes) {
      // From here on count bytes incrementally (each piece once: linear).
      let bytes = 0;
      for (const p of this.parts) bytes += Buffer.byteLength(p);
      this.partBytes = bytes;
    } else return;
    if (this.partBytes <= this.maxLineBytes) return;
    let head = '';
    for (let i = 0; i < this.parts.length && head.length < HEAD_CHARS; i++) head += this.parts[i];
    head = head.slice(0, HEAD_CHARS);
    this.skipping = { bytes: this.partBytes, head };
    this.parts = [];
    this.partChars = 0;
    this.partBytes = -1;
  }

  /** Ends the held line with `last` (its text up to the newline) and appends it to `out`. */
  private finishHeld(last: string, out: string[]): void {
    const skip = this.skipping;
    if (skip !== undefined) {
      skip.bytes += Buffer.byteLength(last);
      if (last.endsWith('\r')) skip.bytes--;
      this.skipping = undefined;
      this.markOversized(out, skip);
      return;
    }
    this.parts.push(last);
    let line = this.parts.join('');
    this.parts = [];
    this.partChars = 0;
    this.partBytes = -1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.addChecked(line, out);
  }

  /** Appends `line`, or its oversized placeholder when it is over the limit in bytes. */
  private addChecked(line: string, out: string[]): void {
    if (line.length * 3 <= this.maxLineBytes) {
      out.push(line);
      return;
    }
    const bytes = Buffer.byteLength(line);
    if (bytes <= this.maxLineBytes) out.push(line);
    else this.markOversized(out, { bytes, head: line.slice(0, HEAD_CHARS) });
  }

  private markOversized(out: string[], o: OversizedLine): void {
    this.oversized ??= new Map();
    this.oversized.set(out.length, o);
    out.push('');
  }
}

/** One batch of lines from one input chunk. */
export interface LineBatch {
  lines: string[];
  /** 1-based number of `lines[0]`. */
  firstLine: number;
  /** Over-long lines by index in `lines` (which holds `''` there); undefined when none. */
  oversized?: Map<number, OversizedLine>;
  /** True when the last line of this batch had no trailing newline (only the input's last line). */
  unterminated?: boolean;
}

/**
 * Iterates the lines of a byte stream in batches (one array per input chunk), with the 1-based
 * number of the first line of each batch. Batches keep the per-line cost synchronous.
 *
 * @param opts.maxLineBytes longest line in bytes (default 64 MiB); longer lines come back as `''`
 *   with an entry in the batch's `oversized` map, and reading resumes after their newline
 */
export async function* lineBatches(
  input: AsyncIterable<Buffer | string>,
  opts: { maxLineBytes?: number } = {},
): AsyncGenerator<LineBatch> {
  const sp = new LineSplitter(opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  for await (const chunk of input) {
    const first = sp.lineNo + 1;
    const lines = sp.push(chunk);
    if (lines.length > 0) yield { lines, firstLine: first, oversized: sp.oversized };
  }
  const first = sp.lineNo + 1;
  const lines = sp.end();
  if (lines.length > 0) yield { lines, firstLine: first, oversized: sp.oversized, unterminated: true };
}
