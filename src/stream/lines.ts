/**
 * Fast line splitting over byte chunks. This is the hot loop of every command, so it works on
 * whole chunks: decode once, split with indexOf, carry the unterminated tail to the next chunk.
 */
import { StringDecoder } from 'node:string_decoder';

/** Splits a byte stream into lines (without the `\n`; a trailing `\r` is removed). */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';
  /** Number of lines returned so far (the 1-based number of the last line returned). */
  lineNo = 0;

  /** Returns every complete line in `chunk`, in order. */
  push(chunk: Buffer | string): string[] {
    const text = this.tail + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      let end = nl;
      if (end > start && text.charCodeAt(end - 1) === 13) end--;
      out.push(text.slice(start, end));
      start = nl + 1;
    }
    this.tail = start === 0 ? text : text.slice(start);
    this.lineNo += out.length;
    return out;
  }

  /** Returns the final unterminated line, if any. */
  end(): string[] {
    const rest = this.tail + this.decoder.end();
    this.tail = '';
    if (rest.length === 0) return [];
    this.lineNo++;
    return [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
  }
}

/**
 * Iterates the lines of a byte stream in batches (one array per input chunk), with the 1-based
 * number of the first line of each batch. Batches keep the per-line cost synchronous.
 */
export async function* lineBatches(
  input: AsyncIterable<Buffer | string>,
): AsyncGenerator<{ lines: string[]; firstLine: number }> {
  const sp = new LineSplitter();
  for await (const chunk of input) {
    const first = sp.lineNo + 1;
    const lines = sp.push(chunk);
    if (lines.length > 0) yield { lines, firstLine: first };
  }
  const first = sp.lineNo + 1;
  const lines = sp.end();
  if (lines.length > 0) yield { lines, firstLine: first };
}
